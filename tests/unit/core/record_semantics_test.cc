// What keyed operators do with null keys and values, what an aggregate returning "no value"
// does, how a topic read twice is delivered, and that a failed attempt's outputs stay invisible.
// Each case was a fault found in review; docs/semantics.md says what was decided and why.

#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::TopologyTestDriver;

using MaybeString = std::optional<std::string>;
const Serdes<MaybeString, MaybeString> kNullable{serdes::nullable_string(),
                                                 serdes::nullable_string()};
const Serdes<MaybeString, std::int64_t> kNullableCounts{serdes::nullable_string(), serdes::int64()};
const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};
const Serdes<std::string, std::int64_t> kCounts{serdes::string(), serdes::int64()};

// --- Null keys: dropped by every keyed operator, never mixed up with the empty key ----------

TEST(NullKeyTest, CountDropsANullKeyAndKeepsTheEmptyKeyApart) {
  StreamBuilder builder;
  builder.stream("in", kNullable)
      .group_by_key(kNullable)
      .count("counts")
      .to_stream()
      .to("out", kNullableCounts);
  TopologyTestDriver driver(builder.build());
  auto in = driver.input_topic("in", kNullable);
  in.pipe(std::nullopt, "x");
  in.pipe(std::string(), "y");
  in.pipe(std::string(), "z");
  EXPECT_THAT(driver.output_topic("out", kNullableCounts).read_key_values(),
              ElementsAre(KeyValue<MaybeString, std::int64_t>{std::string(), 1},
                          KeyValue<MaybeString, std::int64_t>{std::string(), 2}));
  EXPECT_EQ(driver.dropped(), 1);
  EXPECT_EQ(serdes::int64().deserialize(driver.store("counts").get("")), 2);
}

TEST(NullKeyTest, ANullKeyReadAsEmptyByItsSerdeIsStillNotTheEmptyKey) {
  // serdes::string() reads a null key as "", but the producer did not place a null-keyed record
  // in the partition of "": counting it under "" would split the count of "" over partitions.
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .group_by_key(kStrings)
      .count("counts")
      .to_stream()
      .to("out", kCounts);
  TopologyTestDriver driver(builder.build(),
                            TopologyTestDriver::Options{.partitions = {{"in", 4}}});
  for (int i = 0; i < 3; ++i)
    driver.pipe_raw("in", {std::nullopt, std::string("x"), {}, 0});
  driver.input_topic("in", kStrings).pipe("", "y");
  EXPECT_THAT(driver.output_topic("out", kCounts).read_key_values(),
              ElementsAre(KeyValue<std::string, std::int64_t>{"", 1}));
  EXPECT_EQ(driver.dropped(), 3);
}

TEST(NullKeyTest, StatelessOperatorsPassNullKeysOn) {
  StreamBuilder builder;
  builder.stream("in", kNullable)
      .filter([](const MaybeString&, const MaybeString&) { return true; })
      .map_values([](const MaybeString& v) { return MaybeString(*v + "!"); })
      .to("out", kNullable);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kNullable).pipe(std::nullopt, "x");
  const auto& out = driver.topic_contents("out");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].key.has_value());
  EXPECT_EQ(out[0].value, "x!");
  EXPECT_EQ(driver.dropped(), 0);
}

TEST(NullKeyTest, ReduceAndAggregateDropNullKeysToo) {
  StreamBuilder builder;
  auto grouped = builder.stream("in", kNullable).group_by_key(kNullable);
  grouped
      .reduce([](MaybeString a, const MaybeString& b) { return MaybeString(*a + *b); }, "reduced")
      .to_stream()
      .to("reduced-out", kNullable);
  grouped
      .aggregate([] { return std::string(); },
                 [](const MaybeString&, const MaybeString& v, std::string agg) { return agg + *v; },
                 "aggregated", serdes::string())
      .to_stream()
      .to("aggregated-out", {serdes::nullable_string(), serdes::string()});
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kNullable).pipe(std::nullopt, "x");
  EXPECT_THAT(driver.read_raw("reduced-out"), IsEmpty());
  EXPECT_THAT(driver.read_raw("aggregated-out"), IsEmpty());
  EXPECT_EQ(driver.dropped(), 2) << "each keyed operator counts the record it dropped";
}

TEST(NullKeyTest, ATableIgnoresNullKeysAndAJoinMatchesNoNullKey) {
  StreamBuilder builder;
  auto table = builder.table("stock", kNullable, "stock");
  auto orders = builder.stream("orders", kNullable);
  orders
      .join(table, [](const MaybeString& o, const MaybeString& s) { return MaybeString(*o + *s); })
      .to("joined", kNullable);
  orders
      .left_join(table,
                 [](const MaybeString& o, const std::optional<MaybeString>& s) {
                   return MaybeString(*o + (s ? **s : std::string("?")));
                 })
      .to("left-joined", kNullable);
  TopologyTestDriver driver(builder.build());
  auto stock = driver.input_topic("stock", kNullable);
  stock.pipe(std::nullopt, "null-stock");  // no key: cannot be in the table
  stock.pipe(std::string(), "empty-stock");
  EXPECT_FALSE(driver.store("stock").get("").value_or("") == "null-stock");
  EXPECT_EQ(driver.store("stock").get(""), "empty-stock");

  driver.input_topic("orders", kNullable).pipe(std::nullopt, "o1");
  EXPECT_THAT(driver.output_topic("joined", kNullable).read_values(), IsEmpty());
  EXPECT_THAT(driver.output_topic("left-joined", kNullable).read_key_values(),
              ElementsAre(KeyValue<MaybeString, MaybeString>{std::nullopt, "o1?"}))
      << "a null key matches nothing, not even the empty key";
  EXPECT_EQ(driver.dropped(), 2) << "the table's null-key record and the inner join's";
}

TEST(NullKeyTest, ANullKeyIsDroppedBeforeTheRepartitionTopic) {
  StreamBuilder builder;
  builder.stream("in", kNullable)
      .key_by(
          [](const MaybeString&, const MaybeString& v) { return v == "none" ? MaybeString() : v; })
      .group_by_key(kNullable, "by-value")
      .count("per-value");
  TopologyTestDriver driver(builder.build(), "app");
  auto in = driver.input_topic("in", kNullable);
  in.pipe("k1", "none");
  in.pipe("k2", "");
  EXPECT_EQ(driver.topic_contents("app-by-value-repartition").size(), 1u);
  EXPECT_EQ(driver.dropped(), 1);
  EXPECT_EQ(serdes::int64().deserialize(driver.store("per-value").get("")), 1);
}

// --- Null values and "no aggregate" ---------------------------------------------------------

TEST(NullValueTest, AggregationsSkipNullValuesAsKafkaStreamsDoes) {
  StreamBuilder builder;
  builder.stream("in", kNullable)
      .group_by_key(kNullable)
      .count("counts")
      .to_stream()
      .to("out", kNullableCounts);
  TopologyTestDriver driver(builder.build());
  auto in = driver.input_topic("in", kNullable);
  in.pipe("k", "a");
  in.pipe("k", std::nullopt);
  in.pipe("k", "b");
  EXPECT_THAT(driver.output_topic("out", kNullableCounts).read_values(), ElementsAre(1, 2));
  EXPECT_EQ(driver.dropped(), 1);
}

TEST(NullValueTest, AnAggregateOfNoValueDeletesTheKeyAndTheNextRecordStartsAgain) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .group_by_key(kStrings)
      .aggregate([] { return MaybeString("[init]"); },
                 [](const std::string&, const std::string& v, MaybeString agg) -> MaybeString {
                   if (v == "reset")
                     return std::nullopt;
                   return *agg + "+" + v;
                 },
                 "lists", serdes::nullable_string())
      .to_stream()
      .to("out", {serdes::string(), serdes::nullable_string()});
  TopologyTestDriver driver(builder.build());
  auto in = driver.input_topic("in", kStrings);
  auto out = driver.output_topic(
      "out", Serdes<std::string, MaybeString>{serdes::string(), serdes::nullable_string()});
  in.pipe("k", "a");
  in.pipe("k", "reset");
  EXPECT_FALSE(driver.store("lists").get("k").has_value()) << "deleted, not kept as \"\"";
  in.pipe("k", "b");
  EXPECT_THAT(out.read_values(), ElementsAre("[init]+a", std::nullopt, "[init]+b"));
  const auto& written = driver.topic_contents("out");
  ASSERT_EQ(written.size(), 3u);
  EXPECT_FALSE(written[1].value.has_value()) << "downstream gets a tombstone";
}

// --- A topic read by several sources ----------------------------------------------------------

TEST(SharedTopicTest, EverySourceOfATopicSeesEveryRecord) {
  StreamBuilder builder;
  builder.stream("in", kStrings).to("copy-a", kStrings);
  builder.stream("in", kStrings)
      .map_values([](const std::string& v) { return v + "!"; })
      .to("copy-b", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe_all({{"k", "1"}, {"k", "2"}});
  EXPECT_THAT(driver.output_topic("copy-a", kStrings).read_values(), ElementsAre("1", "2"));
  EXPECT_THAT(driver.output_topic("copy-b", kStrings).read_values(), ElementsAre("1!", "2!"));
}

TEST(SharedTopicTest, ATopicReadAsAStreamAndAsATableFeedsBoth) {
  StreamBuilder builder;
  auto prices = builder.table("prices", kCounts, "prices");
  builder.stream("prices", kCounts)
      .join(prices, [](std::int64_t update, std::int64_t latest) { return update == latest; })
      .to("consistent",
          {serdes::string(),
           Serde<bool>{
               "bool",
               [](const bool& b) { return std::optional<std::string>(b ? "true" : "false"); },
               [](std::optional<std::string_view> s) { return s == "true"; }}});
  TopologyTestDriver driver(builder.build());
  driver.input_topic("prices", kCounts).pipe("sku", 5);
  EXPECT_EQ(serdes::int64().deserialize(driver.store("prices").get("sku")), 5);
  EXPECT_EQ(driver.topic_contents("consistent").size(), 1u)
      << "the table saw the record before the stream that joins it";
}

TEST(SharedTopicTest, ASourceNamingATopicTwiceIsRefused) {
  StreamBuilder builder;
  try {
    static_cast<void>(builder.stream(std::vector<std::string>{"in", "other", "in"}, kStrings));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("names topic 'in' twice"));
  }
}

TEST(TopicNameTest, IllegalTopicAndStoreNamesAreRefusedWhenTheTopologyIsBuilt) {
  StreamBuilder builder;
  EXPECT_THROW(static_cast<void>(builder.stream("orders/eu", kStrings)), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(builder.stream("", kStrings)), std::invalid_argument);
  auto grouped = builder.stream("orders", kStrings).group_by_key(kStrings);
  try {
    static_cast<void>(grouped.count("../escape"));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("state store name '../escape' has '/' at position 3"));
  }
}

// --- A failed attempt leaves nothing downstream ---------------------------------------------

TEST(FailedAttemptTest, ARetriedRecordReachesTheRepartitionTopicOnce) {
  auto attempts = std::make_shared<int>(0);
  StreamBuilder builder;
  auto orders = builder.stream("orders", kStrings);
  // First branch: the key changes, so the count goes through a repartition topic.
  orders.key_by([](const std::string&, const std::string& sku) { return sku; })
      .group_by_key(kStrings, "by-sku")
      .count("per-sku")
      .to_stream()
      .to("counts", kCounts);
  // Second branch fails the first attempt of every record, after the first branch has run.
  orders
      .peek([attempts](const std::string&, const std::string&) {
        if (++*attempts % 2 == 1)
          throw std::runtime_error("flaky");
      })
      .to("audit", kStrings);
  TopologyTestDriver driver(builder.build(), "shop");
  driver.set_error_policy(ErrorPolicy::skip().with_retries(2));
  driver.input_topic("orders", kStrings).pipe_all({{"u1", "sku-1"}, {"u2", "sku-1"}});
  EXPECT_EQ(driver.topic_contents("shop-by-sku-repartition").size(), 2u);
  EXPECT_THAT(driver.output_topic("counts", kCounts).read_values(), ElementsAre(1, 2));
  EXPECT_EQ(driver.topic_contents("audit").size(), 2u);
}

TEST(FailedAttemptTest, ASkippedRecordSendsNothingAtAll) {
  StreamBuilder builder;
  auto in = builder.stream("in", kStrings);
  in.to("first", kStrings);
  in.filter([](const std::string&, const std::string& v) {
      if (v == "bad")
        throw std::runtime_error("bad record");
      return true;
    }).to("second", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::skip());
  driver.input_topic("in", kStrings).pipe_all({{"k", "good"}, {"k", "bad"}, {"k", "fine"}});
  EXPECT_THAT(driver.output_topic("first", kStrings).read_values(), ElementsAre("good", "fine"));
  EXPECT_THAT(driver.output_topic("second", kStrings).read_values(), ElementsAre("good", "fine"));
  EXPECT_EQ(driver.skipped(), 1);
}

TEST(FailedAttemptTest, AnInfrastructureFailureIsNeverSkippedOrDeadLettered) {
  // A store read that fails (RocksDB I/O error) or a fenced producer is not the record's
  // fault: whatever the policy, it fails the task.
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .map_values([](const std::string& v) -> std::string {
        if (v == "disk")
          throw InfrastructureError("state store 'counts': read failed: IO error");
        return v;
      })
      .to("out", kStrings);
  for (auto policy : {ErrorPolicy::skip(), ErrorPolicy::dead_letter("dlq").with_retries(2)}) {
    TopologyTestDriver driver(builder.build());
    driver.set_error_policy(policy);
    auto in = driver.input_topic("in", kStrings);
    in.pipe("k", "fine");
    EXPECT_THROW(in.pipe("k", "disk"), InfrastructureError);
    EXPECT_EQ(driver.skipped(), 0);
    EXPECT_TRUE(driver.topic_contents("dlq").empty());
    EXPECT_THAT(driver.output_topic("out", kStrings).read_values(), ElementsAre("fine"));
  }
}

}  // namespace
}  // namespace streamrun
