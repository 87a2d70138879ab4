// Error policies through the test driver: what a user sees when records fail.

#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TopologyTestDriver;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};
const Serdes<std::string, std::int64_t> kCounts{serdes::string(), serdes::int64()};

// Prices orders "<item>:<units>"; "poison" cannot be priced.
Topology pricing(std::optional<ErrorPolicy> price_policy = std::nullopt) {
  StreamBuilder builder;
  auto priced = builder.stream("orders", kStrings).map_values([](const std::string& order) {
    if (order == "poison")
      throw std::runtime_error("cannot price order '" + order + "'");
    return order + " priced";
  });
  if (price_policy)
    priced = priced.on_error(*price_policy);
  priced.to("priced", kStrings);
  return builder.build();
}

std::optional<std::string> header(const testing::TestRecord& record, std::string_view key) {
  for (const auto& h : record.headers) {
    if (h.key == key)
      return h.value;
  }
  return std::nullopt;
}

TEST(ErrorPolicyTest, FailStopsAtTheRecordNamingTheOperator) {
  TopologyTestDriver driver(pricing());
  auto orders = driver.input_topic("orders", kStrings);
  orders.pipe("alice", "book:1");
  try {
    orders.pipe("bob", "poison");
    FAIL() << "the record should have failed";
  } catch (const OperatorFailure& failure) {
    EXPECT_EQ(failure.operator_name(), "map_values-1");
    EXPECT_THAT(failure.error_message(), HasSubstr("cannot price order 'poison'"));
  }
  EXPECT_THAT(driver.output_topic("priced", kStrings).read_values(), ElementsAre("book:1 priced"));
}

TEST(ErrorPolicyTest, SkipDropsTheRecordCountsItAndGoesOn) {
  TopologyTestDriver driver(pricing());
  driver.set_error_policy(ErrorPolicy::skip());
  driver.input_topic("orders", kStrings)
      .pipe_all({{"alice", "book:1"}, {"bob", "poison"}, {"carol", "pen:2"}});
  EXPECT_THAT(driver.output_topic("priced", kStrings).read_values(),
              ElementsAre("book:1 priced", "pen:2 priced"));
  EXPECT_EQ(driver.skipped(), 1);
}

TEST(ErrorPolicyTest, DeadLetterKeepsTheRecordAndSaysWhatFailedWhereAndWhen) {
  TopologyTestDriver driver(pricing(), "shop", /*start_time_ms=*/1'000);
  driver.set_error_policy(ErrorPolicy::dead_letter());
  driver.pipe_raw("orders", {std::string("bob"), std::string("poison"), {{"trace", "t-1"}}, 5});
  driver.input_topic("orders", kStrings).pipe("carol", "pen:2");

  const auto letters = driver.read_raw("shop-dead-letter");
  ASSERT_EQ(letters.size(), 1u);
  const auto& letter = letters[0];
  EXPECT_EQ(letter.key, "bob");
  EXPECT_EQ(letter.value, "poison");
  EXPECT_EQ(header(letter, "trace"), "t-1") << "the original headers stay";
  EXPECT_EQ(header(letter, "streamrun.source.topic"), "orders");
  EXPECT_EQ(header(letter, "streamrun.source.partition"), "0");
  EXPECT_EQ(header(letter, "streamrun.source.offset"), "0");
  EXPECT_EQ(header(letter, "streamrun.error.class"), "std::runtime_error");
  EXPECT_THAT(*header(letter, "streamrun.error.message"), HasSubstr("cannot price order"));
  EXPECT_EQ(header(letter, "streamrun.error.attempts"), "1");
  EXPECT_EQ(header(letter, "streamrun.application.id"), "shop");
  EXPECT_EQ(header(letter, "streamrun.operator"), "map_values-1");
  EXPECT_EQ(header(letter, "streamrun.failure.time.ms"), "1000");
  EXPECT_THAT(driver.output_topic("priced", kStrings).read_values(), ElementsAre("pen:2 priced"));
}

TEST(ErrorPolicyTest, UndecodableRecordsAreDeadLetteredByTheSource) {
  StreamBuilder builder;
  builder.stream("counts", kCounts).to("copy", kCounts);
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::dead_letter("bad-counts"));
  driver.pipe_raw("counts", {std::string("k"), std::string("not eight bytes"), {}, 0});
  const auto letters = driver.read_raw("bad-counts");
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(header(letters[0], "streamrun.operator"), "source-0");
  EXPECT_EQ(letters[0].value, "not eight bytes");
}

TEST(ErrorPolicyTest, RetriesRecoverFromATransientFailureWithExponentialBackoff) {
  auto failures_left = std::make_shared<int>(2);
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .map_values([failures_left](const std::string& order) {
        if ((*failures_left)-- > 0)
          throw std::runtime_error("pricing service busy");
        return order + " priced";
      })
      .to("priced", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::dead_letter().with_retries(3));
  driver.input_topic("orders", kStrings).pipe("alice", "book:1");
  EXPECT_THAT(driver.output_topic("priced", kStrings).read_values(), ElementsAre("book:1 priced"));
  EXPECT_TRUE(driver.read_raw("test-app-dead-letter").empty());
  // Full jitter, fixed at half the range by the driver: 100 ms / 2, then 200 ms / 2.
  EXPECT_EQ(driver.now_ms(), 150);
}

TEST(ErrorPolicyTest, RetriesStopAtTheTotalDelayCapThenDeadLetter) {
  ErrorPolicy policy = ErrorPolicy::dead_letter().with_retries(10);
  policy.max_total_delay = 250ms;
  TopologyTestDriver driver(pricing());
  driver.set_error_policy(policy);
  driver.input_topic("orders", kStrings).pipe("bob", "poison");
  const auto letters = driver.read_raw("test-app-dead-letter");
  ASSERT_EQ(letters.size(), 1u);
  // Waits of 50, 100, then 100 (200 cut to the cap): four attempts, 250 ms.
  EXPECT_EQ(header(letters[0], "streamrun.error.attempts"), "4");
  EXPECT_EQ(driver.now_ms(), 250);
}

TEST(ErrorPolicyTest, AnOperatorsOwnPolicyOverridesThePipelines) {
  TopologyTestDriver driver(pricing(ErrorPolicy::skip()));
  // The pipeline says fail; the pricing operator says skip.
  driver.input_topic("orders", kStrings).pipe_all({{"bob", "poison"}, {"carol", "pen:2"}});
  EXPECT_THAT(driver.output_topic("priced", kStrings).read_values(), ElementsAre("pen:2 priced"));
  EXPECT_EQ(driver.skipped(), 1);
}

TEST(ErrorPolicyTest, AFailedRecordLeavesNoTraceInState) {
  // The count is written before the operator after it fails: the failure must undo it.
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .group_by_key(kStrings)
      .count("orders-per-user")
      .to_stream()
      .map_values([](std::int64_t count) {
        if (count == 2)
          throw std::runtime_error("second order refused");
        return count;
      })
      .to("counts", kCounts);
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::skip());
  driver.input_topic("orders", kStrings).pipe_all({{"alice", "o1"}, {"alice", "o2"}});
  EXPECT_EQ(serdes::int64().deserialize(driver.store("orders-per-user").get("alice")), 1);
  EXPECT_EQ(driver.skipped(), 1);
}

TEST(ErrorPolicyTest, BackoffIsFullJitterUnderAnExponentialCeiling) {
  ErrorPolicy policy = ErrorPolicy::skip().with_retries(20);
  policy.backoff = 100ms;
  policy.max_backoff = 1s;
  policy.max_total_delay = 1h;
  EXPECT_EQ(policy.retry_delay(1, 0ms, 0.0), 0ms);
  EXPECT_EQ(policy.retry_delay(1, 0ms, 0.999), 99ms);
  EXPECT_EQ(policy.retry_delay(3, 0ms, 0.5), 200ms);       // ceiling 400 ms
  EXPECT_EQ(policy.retry_delay(12, 0ms, 0.5), 500ms);      // ceiling capped at 1 s
  EXPECT_EQ(policy.retry_delay(3, 1h - 10ms, 0.5), 10ms);  // what is left of the total
  EXPECT_FALSE(policy.may_retry(20, 0ms));
  EXPECT_FALSE(policy.may_retry(0, 1h));
}

}  // namespace
}  // namespace streamrun
