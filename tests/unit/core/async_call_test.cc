// The async call operator against a scripted fake endpoint, on the test driver's clock: order,
// capacity, timeouts, the retry schedule, every breaker transition, the poison/outage split,
// fallbacks and the rate limiter.

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun {
namespace {

using namespace std::chrono_literals;
using testing::TopologyTestDriver;

// Remembers every call; the test completes them.
struct FakeEndpoint {
  struct Call {
    std::string value;
    CallCompletion<std::string> completion;
  };
  std::vector<Call> calls;

  void succeed(std::size_t index) { calls.at(index).completion.succeed(calls[index].value + "!"); }
  void fail(std::size_t index) { calls.at(index).completion.fail("503 Service Unavailable"); }
  [[nodiscard]] std::vector<std::string> values() const {
    std::vector<std::string> out;
    for (const auto& call : calls)
      out.push_back(call.value);
    return out;
  }
};

Serdes<std::string, std::string> strings() {
  return {serdes::string(), serdes::string()};
}

// The call function of the tests: every call goes to `fake`.
std::function<void(const Record<std::string, std::string>&, CallCompletion<std::string>)> calls_to(
    const std::shared_ptr<FakeEndpoint>& fake) {
  return [fake](const Record<std::string, std::string>& record,
                CallCompletion<std::string> completion) {
    fake->calls.push_back({record.value, std::move(completion)});
  };
}

Topology call_topology(
    const std::shared_ptr<FakeEndpoint>& fake, AsyncCallOptions options,
    std::function<std::string(const Record<std::string, std::string>&)> fallback = {}) {
  StreamBuilder builder;
  builder.stream<std::string, std::string>("in", strings())
      .call_async<std::string>(calls_to(fake), std::move(options), "lookup", std::move(fallback))
      .to("out", strings());
  return builder.build();
}

AsyncCallOptions no_breaker() {
  AsyncCallOptions options;
  options.breaker.reset();
  return options;
}

struct Harness {
  Harness(const std::string& application, AsyncCallOptions options,
          std::function<std::string(const Record<std::string, std::string>&)> fallback = {})
      : fake(std::make_shared<FakeEndpoint>()),
        driver(call_topology(fake, std::move(options), std::move(fallback)), application),
        in(driver.input_topic("in", strings())),
        out(driver.output_topic("out", strings())),
        application_id(application) {
    driver.set_error_policy(ErrorPolicy::dead_letter("dead"));
  }
  [[nodiscard]] CallEndpointFigures figures() const {
    auto all = call_endpoint_figures(application_id);
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? CallEndpointFigures{} : all.front();
  }
  [[nodiscard]] std::size_t dead_letters() const { return driver.topic_contents("dead").size(); }

  std::shared_ptr<FakeEndpoint> fake;
  TopologyTestDriver driver;
  testing::TestInputTopic<std::string, std::string> in;
  testing::TestOutputTopic<std::string, std::string> out;
  std::string application_id;
};

TEST(AsyncCallTest, OrderedResultsFollowTheInputOrder) {
  Harness h("ordered", no_breaker());
  for (const auto* value : {"a", "b", "c"})
    h.in.pipe("k", value);
  ASSERT_EQ(h.fake->values(), (std::vector<std::string>{"a", "b", "c"}));  // all in flight
  h.fake->succeed(2);
  h.fake->succeed(1);
  h.driver.run_calls();
  EXPECT_TRUE(h.out.read_values().empty());  // a is not back yet
  h.fake->succeed(0);
  h.driver.run_calls();
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"a!", "b!", "c!"}));
  EXPECT_EQ(h.driver.calls_held(), 0u);
}

TEST(AsyncCallTest, UnorderedResultsGoOnAsTheyComplete) {
  auto options = no_breaker();
  options.ordered = false;
  Harness h("unordered", options);
  for (const auto* value : {"a", "b", "c"})
    h.in.pipe("k", value);
  h.fake->succeed(2);
  h.driver.run_calls();
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"c!"}));
  h.fake->succeed(0);
  h.fake->succeed(1);
  h.driver.run_calls();
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"a!", "b!"}));
}

TEST(AsyncCallTest, CapacityBoundsTheCallsInFlight) {
  auto options = no_breaker();
  options.capacity = 2;
  Harness h("capacity", options);
  for (const auto* value : {"a", "b", "c", "d"})
    h.in.pipe("k", value);
  // The task takes no third record while two calls are held.
  EXPECT_EQ(h.fake->values(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(h.driver.calls_held(), 2u);
  h.fake->succeed(1);
  h.driver.run_calls();
  EXPECT_EQ(h.fake->calls.size(), 2u);  // b finished, but a holds the order: still two held
  h.fake->succeed(0);
  h.driver.run_calls();
  EXPECT_EQ(h.fake->values(), (std::vector<std::string>{"a", "b", "c", "d"}));
  h.fake->succeed(2);
  h.fake->succeed(3);
  h.driver.run_calls();
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"a!", "b!", "c!", "d!"}));
}

TEST(AsyncCallTest, ATimedOutCallIsRetriedAndItsLateAnswerIgnored) {
  auto options = no_breaker();
  options.timeout = 1000ms;
  options.retries = 1;
  options.backoff = 100ms;
  Harness h("timeout", options);
  h.in.pipe("k", "a");
  h.driver.advance_time(999ms);
  EXPECT_EQ(h.fake->calls.size(), 1u);
  h.driver.advance_time(1ms);  // timed out; the retry waits 50 ms (jitter fixed at half)
  EXPECT_EQ(h.fake->calls.size(), 1u);
  h.driver.advance_time(50ms);
  ASSERT_EQ(h.fake->calls.size(), 2u);
  h.fake->calls[0].completion.succeed("late");
  h.driver.run_calls();
  EXPECT_TRUE(h.out.read_values().empty());
  h.fake->calls[1].completion.succeed("on time");
  h.driver.run_calls();
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"on time"}));
  const auto figures = h.figures();
  EXPECT_EQ(figures.timed_out, 1);
  EXPECT_EQ(figures.retried, 1);
  EXPECT_EQ(figures.succeeded, 1);
}

TEST(AsyncCallTest, RetriesBackOffExponentiallyWithFullJitterThenTheRecordIsDeadLettered) {
  auto options = no_breaker();
  options.retries = 3;
  options.backoff = 100ms;
  options.max_backoff = 300ms;
  Harness h("retries", options);
  h.in.pipe("k", "a");
  // Delays: half of 100, 200, min(300, 400) ms.
  for (const auto delay : {50ms, 100ms, 150ms}) {
    const auto calls = h.fake->calls.size();
    h.fake->fail(calls - 1);
    h.driver.run_calls();
    h.driver.advance_time(delay - 1ms);
    EXPECT_EQ(h.fake->calls.size(), calls) << "retry before its delay " << delay.count();
    h.driver.advance_time(1ms);
    EXPECT_EQ(h.fake->calls.size(), calls + 1) << "no retry after " << delay.count();
  }
  h.fake->fail(3);
  h.driver.run_calls();
  ASSERT_EQ(h.dead_letters(), 1u);
  const auto& letter = h.driver.topic_contents("dead").front();
  EXPECT_EQ(letter.value, "a");
  std::map<std::string, std::string> headers;
  for (const auto& header : letter.headers)
    headers[header.key] = header.value.value_or("");
  EXPECT_EQ(headers["streamrun.error.class"], "CallFailed");
  EXPECT_EQ(headers["streamrun.error.attempts"], "4");
  EXPECT_EQ(headers["streamrun.operator"], "lookup");
  EXPECT_EQ(h.driver.calls_held(), 0u);
}

TEST(AsyncCallTest, ARejectedCallIsTheRecordsFaultAndNotRetried) {
  Harness h("rejected", AsyncCallOptions{});
  h.in.pipe("k", "bad");
  h.in.pipe("k", "good");
  h.fake->calls[0].completion.reject("400 Bad Request: field 'sku' missing");
  h.fake->succeed(1);
  h.driver.run_calls();
  EXPECT_EQ(h.fake->calls.size(), 2u);
  EXPECT_EQ(h.dead_letters(), 1u);
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"good!"}));
  EXPECT_EQ(h.figures().state, CircuitBreaker::State::closed);
}

TEST(AsyncCallTest, ARecordThatFailsWhileOthersSucceedIsPoisonAndDeadLettered) {
  AsyncCallOptions options;
  options.retries = 1;
  Harness h("poison", options);
  h.in.pipe("k", "poison");
  h.in.pipe("k", "fine");
  h.fake->fail(0);
  h.fake->succeed(1);
  h.driver.run_calls();
  h.driver.advance_time(50ms);
  ASSERT_EQ(h.fake->calls.size(), 3u);
  h.fake->fail(2);
  h.driver.run_calls();
  EXPECT_EQ(h.dead_letters(), 1u);
  EXPECT_EQ(h.driver.topic_contents("dead").front().value, "poison");
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"fine!"}));
}

// Right after an outage the service may answer a few of the calls that all go out at once and
// time out the rest. A record whose retries run out then is not poison: most of the endpoint's
// other calls failed too. It waits and goes through once the service keeps up.
TEST(AsyncCallTest, ARecordThatFailsWhileMostOtherCallsFailTooWaitsInsteadOfBeingDeadLettered) {
  AsyncCallOptions options;
  options.retries = 1;
  options.breaker->consecutive_failures = 0;  // the rate only, over more calls than here: closed
  options.breaker->minimum_calls = 100;
  Harness h("overload", options);
  for (const auto* value : {"a", "b", "c", "d", "e"})
    h.in.pipe("k", value);
  for (std::size_t i = 0; i < 4; ++i)
    h.fake->fail(i);
  h.fake->succeed(4);
  h.driver.run_calls();
  h.driver.advance_time(100ms);  // a..d are tried again
  ASSERT_EQ(h.fake->calls.size(), 9u);
  h.fake->fail(5);  // a's retries are used up: 1 of the other 4 calls since got through
  h.driver.run_calls();
  EXPECT_EQ(h.dead_letters(), 0u) << "an overloaded endpoint was taken for a poison record";
  EXPECT_EQ(h.figures().state, CircuitBreaker::State::closed);
  for (std::size_t i = 6; i < 9; ++i)
    h.fake->succeed(i);  // the service keeps up again
  h.driver.run_calls();
  h.driver.advance_time(10s);
  ASSERT_EQ(h.fake->calls.size(), 10u) << "a is tried again";
  h.fake->succeed(9);
  h.driver.run_calls();
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"a!", "b!", "c!", "d!", "e!"}));
  EXPECT_EQ(h.dead_letters(), 0u);
}

TEST(AsyncCallTest, TheBreakerOpensProbesReopensAndClosesWhileRecordsWaitInsteadOfDeadLettering) {
  AsyncCallOptions options;
  options.retries = 1;
  options.breaker->consecutive_failures = 3;
  options.breaker->open_for = 5000ms;
  Harness h("breaker", options);
  for (const auto* value : {"a", "b", "c", "d"})
    h.in.pipe("k", value);
  for (std::size_t i = 0; i < 4; ++i)
    h.fake->fail(i);
  h.driver.run_calls();
  auto figures = h.figures();
  EXPECT_EQ(figures.state, CircuitBreaker::State::open);
  EXPECT_EQ(figures.opened, 1);

  // Open: the retries are due, but nothing is called.
  h.driver.advance_time(4999ms);
  EXPECT_EQ(h.fake->calls.size(), 4u);
  EXPECT_EQ(h.dead_letters(), 0u);

  // Half-open: one probe; it fails and the breaker opens again.
  h.driver.advance_time(1ms);
  ASSERT_EQ(h.fake->calls.size(), 5u);
  EXPECT_EQ(h.figures().state, CircuitBreaker::State::half_open);
  h.fake->fail(4);
  h.driver.run_calls();
  figures = h.figures();
  EXPECT_EQ(figures.state, CircuitBreaker::State::open);
  EXPECT_EQ(figures.reopened, 1);
  EXPECT_EQ(h.dead_letters(), 0u) << "an outage is nobody's record's fault";

  // The service is back: the next probe succeeds, the breaker closes, every record goes on.
  h.driver.advance_time(5000ms);
  ASSERT_EQ(h.fake->calls.size(), 6u);
  h.fake->succeed(5);
  h.driver.run_calls();
  h.driver.advance_time(100ms);
  ASSERT_EQ(h.fake->calls.size(), 9u);
  for (std::size_t i = 6; i < 9; ++i)
    h.fake->succeed(i);
  h.driver.run_calls();
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"a!", "b!", "c!", "d!"}));
  figures = h.figures();
  EXPECT_EQ(figures.state, CircuitBreaker::State::closed);
  EXPECT_EQ(figures.opened, 1);
  EXPECT_EQ(figures.reopened, 1);
  EXPECT_EQ(figures.closed, 1);
  EXPECT_EQ(h.dead_letters(), 0u);
}

TEST(AsyncCallTest, WhenOpenFallbackPassesTheFallbackValueWithoutCalling) {
  AsyncCallOptions options;
  options.retries = 0;
  options.breaker->consecutive_failures = 1;
  options.when_open = WhenOpen::fallback;
  Harness h("fallback", options, [](const auto& record) { return record.value + "?"; });
  h.in.pipe("k", "a");
  h.fake->fail(0);
  h.driver.run_calls();  // opens the breaker; a waits: its failure was not the record's
  h.in.pipe("k", "b");
  EXPECT_EQ(h.fake->calls.size(), 1u);
  h.driver.advance_time(100ms);
  EXPECT_EQ(h.out.read_values(), (std::vector<std::string>{"a?", "b?"}));
  EXPECT_EQ(h.figures().fallbacks, 2);
}

TEST(AsyncCallTest, TheRateLimiterSpacesTheCalls) {
  auto options = no_breaker();
  options.rate_limit = 10;  // one call per 100 ms
  options.burst = 1;
  Harness h("rate", options);
  for (const auto* value : {"a", "b", "c"})
    h.in.pipe("k", value);
  EXPECT_EQ(h.fake->calls.size(), 1u);
  h.driver.advance_time(99ms);
  EXPECT_EQ(h.fake->calls.size(), 1u);
  h.driver.advance_time(1ms);
  EXPECT_EQ(h.fake->calls.size(), 2u);
  h.driver.advance_time(100ms);
  EXPECT_EQ(h.fake->calls.size(), 3u);
  EXPECT_GE(h.figures().rate_limited, 2);
}

TEST(AsyncCallTest, AFailureAfterTheCallFollowsThatOperatorsPolicy) {
  auto fake = std::make_shared<FakeEndpoint>();
  StreamBuilder builder;
  builder.stream<std::string, std::string>("in", strings())
      .call_async<std::string>(calls_to(fake), no_breaker(), "lookup")
      .map_values(
          [](const std::string& value) {
            if (value == "boom!")
              throw std::runtime_error("cannot map");
            return value;
          },
          "check")
      .to("out", strings());
  TopologyTestDriver driver(builder.build(), "after-call");
  driver.set_error_policy(ErrorPolicy::dead_letter("dead"));
  auto in = driver.input_topic("in", strings());
  in.pipe("k", "boom");
  in.pipe("k", "ok");
  fake->succeed(0);
  fake->succeed(1);
  driver.run_calls();
  ASSERT_EQ(driver.topic_contents("dead").size(), 1u);
  EXPECT_EQ(driver.topic_contents("dead").front().value, "boom");  // the input, as read
  EXPECT_EQ(driver.output_topic("out", strings()).read_values(), (std::vector<std::string>{"ok!"}));
}

TEST(AsyncCallTest, InvalidOptionsAreNamed) {
  auto fake = std::make_shared<FakeEndpoint>();
  AsyncCallOptions zero;
  zero.capacity = 0;
  EXPECT_THROW(
      {
        try {
          static_cast<void>(call_topology(fake, zero));
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos) << e.what();
          throw;
        }
      },
      std::invalid_argument);
  AsyncCallOptions fallback;
  fallback.when_open = WhenOpen::fallback;
  EXPECT_THROW(static_cast<void>(call_topology(fake, fallback)), std::invalid_argument);
}

}  // namespace
}  // namespace streamrun
