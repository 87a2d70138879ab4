#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TopologyTestDriver;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};
const Serdes<std::string, std::int64_t> kCounts{serdes::string(), serdes::int64()};
using CountKV = KeyValue<std::string, std::int64_t>;

TEST(KeyedOperatorsTest, CountEmitsTheRunningCountPerKeyAndKeepsItInItsStore) {
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .group_by_key(kStrings)
      .count("orders-per-user")
      .to_stream()
      .to("counts", kCounts);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("orders", kStrings)
      .pipe_all({{"alice", "o1"}, {"bob", "o2"}, {"alice", "o3"}});
  EXPECT_THAT(driver.output_topic("counts", kCounts).read_key_values(),
              ElementsAre(CountKV{"alice", 1}, CountKV{"bob", 1}, CountKV{"alice", 2}));
  EXPECT_EQ(serdes::int64().deserialize(driver.store("orders-per-user").get("alice")), 2);
}

TEST(KeyedOperatorsTest, ReduceStartsFromTheFirstValue) {
  StreamBuilder builder;
  builder.stream("prices", kCounts)
      .group_by_key(kCounts)
      .reduce([](std::int64_t highest, std::int64_t price) { return std::max(highest, price); },
              "highest-price")
      .to_stream()
      .to("highest", kCounts);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("prices", kCounts).pipe_all({{"sku", 5}, {"sku", 3}, {"sku", 9}});
  EXPECT_THAT(driver.output_topic("highest", kCounts).read_values(), ElementsAre(5, 5, 9));
}

TEST(KeyedOperatorsTest, AggregateFoldsIntoAnInitialValue) {
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .group_by_key(kStrings)
      .aggregate([] { return std::string("["); },
                 [](const std::string&, const std::string& order, std::string list) {
                   return list + order + ";";
                 },
                 "order-lists", serdes::string())
      .to_stream()
      .to("lists", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("orders", kStrings).pipe_all({{"u", "a"}, {"u", "b"}});
  EXPECT_THAT(driver.output_topic("lists", kStrings).read_values(), ElementsAre("[a;", "[a;b;"));
}

TEST(KeyedOperatorsTest, AKeyChangeBeforeGroupingGoesThroughARepartitionTopic) {
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .key_by([](const std::string&, const std::string& sku) { return sku; })
      .group_by_key(kStrings, "by-sku")
      .count("orders-per-sku")
      .to_stream()
      .to("sku-counts", kCounts);
  const auto topology = builder.build();
  EXPECT_EQ(topology.subtopology_count(), 2) << "the repartition topic splits the topology";
  EXPECT_THAT(topology.describe(), HasSubstr("[sink: ${application.id}-by-sku-repartition]"));
  EXPECT_THAT(topology.resolved("shop").describe(),
              HasSubstr("by-sku [source: shop-by-sku-repartition] --> count-"));

  TopologyTestDriver driver(topology, "shop");
  driver.input_topic("orders", kStrings)
      .pipe_all({{"alice", "sku-1"}, {"bob", "sku-1"}, {"carol", "sku-2"}});
  EXPECT_THAT(driver.output_topic("sku-counts", kCounts).read_key_values(),
              ElementsAre(CountKV{"sku-1", 1}, CountKV{"sku-1", 2}, CountKV{"sku-2", 1}));
  EXPECT_EQ(driver.topic_contents("shop-by-sku-repartition").size(), 3u);
}

TEST(KeyedOperatorsTest, GroupingWithoutAKeyChangeNeedsNoRepartition) {
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .filter([](const std::string&, const std::string&) { return true; })
      .map_values([](const std::string& v) { return v; })
      .group_by_key(kStrings)
      .count("c");
  EXPECT_EQ(builder.build().subtopology_count(), 1);
}

TEST(KeyedOperatorsTest, BranchesRememberThatTheKeyChanged) {
  StreamBuilder builder;
  auto branches = builder.stream("orders", kStrings)
                      .key_by([](const std::string&, const std::string& sku) { return sku; })
                      .split()
                      .branch("all", [](const std::string&, const std::string&) { return true; })
                      .branches();
  branches.at("all").group_by_key(kStrings, "by-sku").count("per-sku");
  EXPECT_EQ(builder.build().subtopology_count(), 2) << "grouping after the split repartitions";
}

TEST(KeyedOperatorsTest, ReservedStoreNamesAreRefused) {
  StreamBuilder builder;
  auto grouped = builder.stream("orders", kStrings).group_by_key(kStrings);
  EXPECT_THROW(static_cast<void>(grouped.count("__streamrun_meta")), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(grouped.count("default")), std::invalid_argument);
}

TEST(KeyedOperatorsTest, OneStoreCannotServeTwoOperators) {
  StreamBuilder builder;
  auto grouped = builder.stream("orders", kStrings).group_by_key(kStrings);
  static_cast<void>(grouped.count("shared"));
  EXPECT_THROW(static_cast<void>(grouped.count("shared")), std::invalid_argument);
}

TEST(KeyedOperatorsTest, TopologyListsTheStoresOfEachSubTopology) {
  StreamBuilder builder;
  builder.stream("orders", kStrings).group_by_key(kStrings).count("per-user");
  const auto topology = builder.build();
  EXPECT_TRUE(topology.stateful());
  EXPECT_EQ(topology.stores(0), std::vector<std::string>{"per-user"});
}

}  // namespace
}  // namespace streamrun
