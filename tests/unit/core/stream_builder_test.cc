#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TopologyTestDriver;

using StringKV = KeyValue<std::string, std::string>;
const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};
const Serdes<std::string, std::int64_t> kStringInt{serdes::string(), serdes::int64()};

TEST(StreamBuilderTest, FilterKeepsMatchingRecords) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .filter([](const std::string&, const std::string& value) { return value.starts_with("a"); })
      .to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  auto in = driver.input_topic("in", kStrings);
  auto out = driver.output_topic("out", kStrings);
  in.pipe_all({{"1", "apple"}, {"2", "banana"}, {"3", "avocado"}});
  EXPECT_THAT(out.read_key_values(), ElementsAre(StringKV{"1", "apple"}, StringKV{"3", "avocado"}));
}

TEST(StreamBuilderTest, FilterNotDropsMatchingRecords) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .filter_not([](const std::string& key, const std::string&) { return key == "x"; })
      .to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe_all({{"x", "1"}, {"y", "2"}});
  EXPECT_THAT(driver.output_topic("out", kStrings).read_values(), ElementsAre("2"));
}

TEST(StreamBuilderTest, MapChangesKeyAndValueTypes) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .map([](const std::string& key, const std::string& value) {
        return KeyValue<std::string, std::int64_t>{key + "!",
                                                   static_cast<std::int64_t>(value.size())};
      })
      .to("out", kStringInt);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe("k", "hello");
  EXPECT_THAT(driver.output_topic("out", kStringInt).read_key_values(),
              ElementsAre(KeyValue<std::string, std::int64_t>{"k!", 5}));
}

TEST(StreamBuilderTest, MapValuesKeepsKeyHeadersAndTimestamp) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .map_values([](const std::string& value) { return value + value; })
      .to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe("k", "ab", 1234, {{"trace", "t-1"}});
  auto records = driver.output_topic("out", kStrings).read_records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].key, "k");
  EXPECT_EQ(records[0].value, "abab");
  EXPECT_EQ(records[0].timestamp_ms, 1234);
  EXPECT_EQ(records[0].header("trace"), "t-1");
}

TEST(StreamBuilderTest, FlatMapEmitsZeroOrMoreRecords) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .flat_map([](const std::string& key, const std::string& value) {
        std::vector<StringKV> words;
        for (char c : value)
          words.push_back({key, std::string(1, c)});
        return words;
      })
      .to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe_all({{"k", "abc"}, {"e", ""}});
  EXPECT_THAT(driver.output_topic("out", kStrings).read_values(), ElementsAre("a", "b", "c"));
}

TEST(StreamBuilderTest, FlatMapValuesKeepsTheKey) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .flat_map_values([](const std::string& value) {
        return std::vector<std::string>{value, value};
      })
      .to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe("k", "v");
  EXPECT_THAT(driver.output_topic("out", kStrings).read_key_values(),
              ElementsAre(StringKV{"k", "v"}, StringKV{"k", "v"}));
}

TEST(StreamBuilderTest, PeekSeesEveryRecordAndPassesItOn) {
  StreamBuilder builder;
  auto seen = std::make_shared<std::vector<std::string>>();
  builder.stream("in", kStrings)
      .peek([seen](const std::string& key, const std::string&) { seen->push_back(key); })
      .to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe_all({{"a", "1"}, {"b", "2"}});
  EXPECT_THAT(*seen, ElementsAre("a", "b"));
  EXPECT_EQ(driver.output_topic("out", kStrings).read_values().size(), 2u);
}

TEST(StreamBuilderTest, KeyByReplacesTheKey) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .key_by([](const std::string&, const std::string& value) { return value.substr(0, 1); })
      .to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe("old", "xyz");
  EXPECT_THAT(driver.output_topic("out", kStrings).read_key_values(),
              ElementsAre(StringKV{"x", "xyz"}));
}

TEST(StreamBuilderTest, SplitRoutesToTheFirstMatchingBranchOrTheDefault) {
  StreamBuilder builder;
  auto branches = builder.stream("in", kStringInt)
                      .split("by-size")
                      .branch("big", [](const std::string&, std::int64_t v) { return v >= 100; })
                      .branch("even", [](const std::string&, std::int64_t v) { return v % 2 == 0; })
                      .default_branch("rest");
  branches.at("big").to("big", kStringInt);
  branches.at("even").to("even", kStringInt);
  branches.at("rest").to("rest", kStringInt);
  TopologyTestDriver driver(builder.build());
  auto in = driver.input_topic("in", kStringInt);
  in.pipe_all({{"a", 200}, {"b", 4}, {"c", 7}, {"d", 102}});
  EXPECT_THAT(driver.output_topic("big", kStringInt).read_values(), ElementsAre(200, 102));
  EXPECT_THAT(driver.output_topic("even", kStringInt).read_values(), ElementsAre(4));
  EXPECT_THAT(driver.output_topic("rest", kStringInt).read_values(), ElementsAre(7));
}

TEST(StreamBuilderTest, SplitWithoutDefaultDropsUnmatchedRecords) {
  StreamBuilder builder;
  auto branches = builder.stream("in", kStringInt)
                      .split()
                      .branch("odd", [](const std::string&, std::int64_t v) { return v % 2 != 0; })
                      .branches();
  branches.at("odd").to("odd", kStringInt);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStringInt).pipe_all({{"a", 1}, {"b", 2}, {"c", 3}});
  EXPECT_THAT(driver.output_topic("odd", kStringInt).read_values(), ElementsAre(1, 3));
}

TEST(StreamBuilderTest, MergeCombinesStreamsInArrivalOrder) {
  StreamBuilder builder;
  auto left = builder.stream("left", kStrings);
  auto right =
      builder.stream("right", kStrings).map_values([](const std::string& v) { return "r" + v; });
  left.merge(right).to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("left", kStrings).pipe("k", "1");
  driver.input_topic("right", kStrings).pipe("k", "2");
  driver.input_topic("left", kStrings).pipe("k", "3");
  EXPECT_THAT(driver.output_topic("out", kStrings).read_values(), ElementsAre("1", "r2", "3"));
}

TEST(StreamBuilderTest, OneStreamCanFeedSeveralOperators) {
  StreamBuilder builder;
  auto source = builder.stream("in", kStrings);
  source.to("copy-a", kStrings);
  source.map_values([](const std::string& v) { return v + "!"; }).to("copy-b", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("in", kStrings).pipe("k", "v");
  EXPECT_THAT(driver.output_topic("copy-a", kStrings).read_values(), ElementsAre("v"));
  EXPECT_THAT(driver.output_topic("copy-b", kStrings).read_values(), ElementsAre("v!"));
}

// Counts records per key in memory and forwards running counts; also stamps the task id.
class CountingProcessor : public Processor<std::string, std::string, std::string, std::int64_t> {
 public:
  void init(Context& context) override {
    Processor::init(context);
    task_id_ = context.task().id();
  }
  void process(Record<std::string, std::string> record) override {
    const auto count = ++counts_[record.key];
    auto out = record.with<std::string, std::int64_t>(record.key, count);
    out.headers.push_back({"task", task_id_});
    out.timestamp_ms = context().now_ms();
    context().forward(std::move(out));
  }
  void close() override { closed_ = true; }

  static inline bool closed_ = false;

 private:
  std::map<std::string, std::int64_t> counts_;
  std::string task_id_;
};

TEST(ProcessorApiTest, CustomProcessorForwardsAndSeesTaskAndClock) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .process<std::string, std::int64_t>([] { return std::make_unique<CountingProcessor>(); })
      .to("out", kStringInt);
  CountingProcessor::closed_ = false;
  {
    TopologyTestDriver driver(builder.build(), "app", 1000);
    auto in = driver.input_topic("in", kStrings);
    in.pipe("a", "x");
    driver.advance_time(std::chrono::milliseconds(500));
    in.pipe("a", "y");
    auto records = driver.output_topic("out", kStringInt).read_records();
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0].value, 1);
    EXPECT_EQ(records[1].value, 2);
    EXPECT_EQ(records[0].timestamp_ms, 1000);
    EXPECT_EQ(records[1].timestamp_ms, 1500);
    EXPECT_EQ(records[0].header("task"), "0_0");
  }
  EXPECT_TRUE(CountingProcessor::closed_) << "close() runs when the task closes";
}

TEST(ErrorTest, AThrowingOperatorIsNamedWithTheErrorClassAndText) {
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .map_values(
          [](const std::string& v) {
            if (v == "bad")
              throw std::out_of_range("no such sku");
            return v;
          },
          "lookup-sku")
      .to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  auto in = driver.input_topic("in", kStrings);
  try {
    in.pipe("k", "bad");
    FAIL() << "the failure must surface";
  } catch (const OperatorFailure& failure) {
    EXPECT_EQ(failure.operator_name(), "lookup-sku");
    EXPECT_EQ(failure.error_class(), "std::out_of_range");
    EXPECT_EQ(failure.error_message(), "no such sku");
  }
  in.pipe("k", "good");  // the task goes on with the next record
  EXPECT_THAT(driver.output_topic("out", kStrings).read_values(), ElementsAre("good"));
}

TEST(ErrorTest, UndeserializableRecordIsASourceFailure) {
  StreamBuilder builder;
  builder.stream("in", kStringInt, "orders-in").to("out", kStringInt);
  TopologyTestDriver driver(builder.build());
  try {
    driver.pipe_raw("in", {"k", "not eight bytes", {}, 0});
    FAIL();
  } catch (const OperatorFailure& failure) {
    EXPECT_EQ(failure.operator_name(), "orders-in");
    EXPECT_EQ(failure.error_class(), "streamrun::SerdeError");
    EXPECT_THAT(failure.error_message(), HasSubstr("expected 8 bytes, got 15"));
  }
}

TEST(TopologyTest, DescribeShowsOperatorsAndTopics) {
  StreamBuilder builder;
  auto branches =
      builder.stream("orders", kStrings)
          .filter([](const std::string&, const std::string& v) { return !v.empty(); }, "non-empty")
          .split("route")
          .branch("vip", [](const std::string& k, const std::string&) { return k == "vip"; })
          .default_branch("rest");
  branches.at("vip").to("vip-orders", kStrings);
  branches.at("rest").to("orders-out", kStrings);
  builder.stream("audit", kStrings).to("audit-out", kStrings);
  const auto topology = builder.build();

  EXPECT_EQ(topology.subtopology_count(), 2);
  EXPECT_EQ(topology.describe(),
            "Sub-topology 0 (reads orders)\n"
            "  source-0 [source: orders] --> non-empty\n"
            "  non-empty [filter] --> route\n"
            "  route [split] --> route-vip, route-rest\n"
            "  route-vip [branch] --> sink-5\n"
            "  route-rest [branch] --> sink-6\n"
            "  sink-5 [sink: vip-orders]\n"
            "  sink-6 [sink: orders-out]\n"
            "Sub-topology 1 (reads audit)\n"
            "  source-7 [source: audit] --> sink-8\n"
            "  sink-8 [sink: audit-out]\n");
  const auto mermaid = topology.describe_mermaid();
  EXPECT_THAT(mermaid, HasSubstr("flowchart LR"));
  EXPECT_THAT(mermaid, HasSubstr("topic_orders --> n0"));
  EXPECT_THAT(mermaid, HasSubstr("n1 --> n2"));
  EXPECT_THAT(mermaid, HasSubstr("topic_orders[(\"orders\")]"));
  EXPECT_THAT(mermaid, HasSubstr("subgraph sub1[\"sub-topology 1\"]"));
}

TEST(TopologyTest, DuplicateOperatorNamesAreRejected) {
  StreamBuilder builder;
  auto stream = builder.stream("in", kStrings, "x");
  EXPECT_THROW(stream.peek([](const auto&, const auto&) {}, "x"), std::invalid_argument);
}

TEST(TopologyTest, PipingATopicNobodyReadsIsAnError) {
  StreamBuilder builder;
  builder.stream("in", kStrings).to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  EXPECT_THROW(driver.input_topic("nope", kStrings).pipe("k", "v"), std::invalid_argument);
}

TEST(SerdeTest, IntegersAreBigEndianLikeKafka) {
  EXPECT_EQ(serdes::int32().serialize(1), std::string("\0\0\0\1", 4));
  EXPECT_EQ(serdes::int64().deserialize(std::string("\0\0\0\0\0\0\1\0", 8)), 256);
  EXPECT_EQ(serdes::int64().deserialize(*serdes::int64().serialize(-5)), -5);
  EXPECT_THROW(serdes::int32().deserialize(std::nullopt), SerdeError);
  EXPECT_EQ(serdes::int64_text().deserialize("42"), 42);
  EXPECT_THROW(serdes::int64_text().deserialize("4x"), SerdeError);
  EXPECT_EQ(serdes::nullable_string().deserialize(std::nullopt), std::nullopt);
}

}  // namespace
}  // namespace streamrun
