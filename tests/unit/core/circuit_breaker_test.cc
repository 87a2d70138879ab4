// The circuit breaker's every transition and the rate limiter's pace, on a clock the test moves.

#include <gtest/gtest.h>

#include <streamrun/core/circuit_breaker.h>

namespace streamrun {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;

struct ManualClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  SteadyClock function() {
    return [this] { return now; };
  }
};

CircuitBreakerOptions options(int consecutive, int minimum_calls = 1000) {
  CircuitBreakerOptions o;
  o.consecutive_failures = consecutive;
  o.minimum_calls = minimum_calls;
  o.failure_rate = 0.5;
  o.window = 10s;
  o.open_for = 5s;
  o.half_open_probes = 2;
  return o;
}

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailuresAndASuccessResetsTheCount) {
  ManualClock clock;
  CircuitBreaker breaker("orders", options(3), clock.function());
  std::vector<std::string> seen;
  breaker.set_listener([&](State from, State to, const std::string& why) {
    seen.push_back(std::string(to_string(from)) + "->" + to_string(to) + ": " + why);
  });
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker.try_acquire());
    breaker.on_failure();
  }
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_success();  // the count starts again
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker.try_acquire());
    breaker.on_failure();
  }
  EXPECT_EQ(breaker.state(), State::closed);
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_failure();
  EXPECT_EQ(breaker.state(), State::open);
  EXPECT_FALSE(breaker.try_acquire()) << "an open breaker fails fast";
  EXPECT_EQ(breaker.retry_after(), 5000ms);
  EXPECT_EQ(breaker.times_opened(), 1);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "closed->open: 3 calls in a row failed");
}

TEST(CircuitBreakerTest, OpensOnTheFailureRateOnceTheWindowHasEnoughCalls) {
  ManualClock clock;
  CircuitBreaker breaker("orders", options(/*consecutive=*/0, /*minimum_calls=*/10),
                         clock.function());
  // Alternating: never two failures in a row, half of the calls failing.
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(breaker.try_acquire());
    (i % 2 == 0) ? breaker.on_failure() : breaker.on_success();
    clock.now += 100ms;
  }
  EXPECT_EQ(breaker.state(), State::closed) << "9 calls: under minimum_calls";
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_success();  // 10 calls, 5 failed: the next failure decides
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_failure();
  EXPECT_EQ(breaker.state(), State::open);
}

TEST(CircuitBreakerTest, FailuresOutsideTheWindowNoLongerCount) {
  ManualClock clock;
  CircuitBreaker breaker("orders", options(0, 4), clock.function());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(breaker.try_acquire());
    breaker.on_failure();
  }
  clock.now += 11s;  // those three are out of the 10 s window
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_failure();
  EXPECT_EQ(breaker.state(), State::closed) << "one failure in the window, under minimum_calls";
}

TEST(CircuitBreakerTest, HalfOpenAfterTheCoolDownThenClosesWhenEveryProbeSucceeds) {
  ManualClock clock;
  CircuitBreaker breaker("orders", options(1), clock.function());
  std::vector<std::pair<State, State>> seen;
  breaker.set_listener(
      [&](State from, State to, const std::string&) { seen.emplace_back(from, to); });
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_failure();
  clock.now += 4999ms;
  EXPECT_FALSE(breaker.try_acquire());
  EXPECT_EQ(breaker.retry_after(), 1ms);
  clock.now += 1ms;
  EXPECT_EQ(breaker.state(), State::half_open);
  EXPECT_TRUE(breaker.try_acquire());
  EXPECT_TRUE(breaker.try_acquire());
  EXPECT_FALSE(breaker.try_acquire()) << "two probes at most";
  breaker.on_success();
  EXPECT_EQ(breaker.state(), State::half_open);
  breaker.on_success();
  EXPECT_EQ(breaker.state(), State::closed);
  EXPECT_EQ(breaker.times_closed(), 1);
  EXPECT_EQ(seen, (std::vector<std::pair<State, State>>{{State::closed, State::open},
                                                        {State::open, State::half_open},
                                                        {State::half_open, State::closed}}));
  // Recovered: the failures before do not count against it.
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_success();
  EXPECT_EQ(breaker.state(), State::closed);
}

TEST(CircuitBreakerTest, AFailedProbeOpensItForAnotherCoolDown) {
  ManualClock clock;
  CircuitBreaker breaker("orders", options(1), clock.function());
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_failure();
  clock.now += 5s;
  ASSERT_TRUE(breaker.try_acquire());
  breaker.on_failure();
  EXPECT_EQ(breaker.state(), State::open);
  EXPECT_EQ(breaker.times_opened(), 1);
  EXPECT_EQ(breaker.times_reopened(), 1);
  EXPECT_EQ(breaker.retry_after(), 5000ms);
  EXPECT_FALSE(breaker.try_acquire());
}

TEST(CircuitBreakerTest, InvalidOptionsAreNamed) {
  auto bad = options(1);
  bad.failure_rate = 0;
  EXPECT_NE(bad.invalid().find("failure_rate"), std::string::npos);
  bad = options(1);
  bad.half_open_probes = 0;
  EXPECT_NE(bad.invalid().find("half_open_probes"), std::string::npos);
  bad = options(-1);
  EXPECT_THROW(CircuitBreaker("x", bad), std::invalid_argument);
}

TEST(RateLimiterTest, BurstThenTheRate) {
  ManualClock clock;
  RateLimiter limiter(/*rate=*/10, /*burst=*/3, clock.function());
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(limiter.try_acquire(), 0ns) << i;
  EXPECT_EQ(limiter.try_acquire(), 100ms) << "the next permit in 1/10 s";
  clock.now += 50ms;
  EXPECT_EQ(limiter.try_acquire(), 50ms);
  clock.now += 50ms;
  EXPECT_EQ(limiter.try_acquire(), 0ns);
  // A long pause refills no more than the burst.
  clock.now += 10s;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(limiter.try_acquire(), 0ns) << i;
  EXPECT_GT(limiter.try_acquire(), 0ns);
  EXPECT_THROW(RateLimiter(0, 1), std::invalid_argument);
  EXPECT_THROW(RateLimiter(1, 0.5), std::invalid_argument);
}

TEST(RateLimiterTest, HoldsThePaceOverAMinute) {
  ManualClock clock;
  RateLimiter limiter(250, 1, clock.function());
  int granted = 0;
  for (int step = 0; step < 60'000; ++step) {  // 1 ms steps, asking every step
    if (limiter.try_acquire() == 0ns)
      ++granted;
    clock.now += 1ms;
  }
  EXPECT_NEAR(granted, 250 * 60, 2);
}

}  // namespace
}  // namespace streamrun
