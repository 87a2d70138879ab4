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

// Orders joined with the stock table: the table holds the latest stock per item.
Topology stock_join(bool left) {
  StreamBuilder builder;
  auto stock = builder.table("stock", kCounts, "stock-by-item");
  auto orders = builder.stream("orders", kStrings);
  if (left) {
    orders
        .left_join(stock,
                   [](const std::string& user, const std::optional<std::int64_t>& units) {
                     return user + (units ? ":" + std::to_string(*units) : ":unknown");
                   })
        .to("decisions", kStrings);
  } else {
    orders
        .join(stock, [](const std::string& user,
                        std::int64_t units) { return user + ":" + std::to_string(units); })
        .to("decisions", kStrings);
  }
  return builder.build();
}

TEST(TableJoinTest, StreamRecordsSeeTheLatestTableValueForTheirKey) {
  TopologyTestDriver driver(stock_join(/*left=*/false));
  auto stock = driver.input_topic("stock", kCounts);
  auto orders = driver.input_topic("orders", kStrings);
  stock.pipe("sku-1", 5);
  orders.pipe("sku-1", "alice");
  stock.pipe("sku-1", 4);
  orders.pipe("sku-1", "bob");
  orders.pipe("sku-2", "carol");  // not in the table: an inner join drops it
  EXPECT_THAT(driver.output_topic("decisions", kStrings).read_values(),
              ElementsAre("alice:5", "bob:4"));
}

TEST(TableJoinTest, ANullValueRemovesTheKeyFromTheTable) {
  TopologyTestDriver driver(stock_join(/*left=*/true));
  driver.input_topic("stock", kCounts).pipe("sku-1", 5);
  driver.pipe_raw("stock", {std::string("sku-1"), std::nullopt, {}, 0});  // a tombstone
  driver.input_topic("orders", kStrings).pipe("sku-1", "alice");
  EXPECT_THAT(driver.output_topic("decisions", kStrings).read_values(),
              ElementsAre("alice:unknown"));
  EXPECT_FALSE(driver.store("stock-by-item").get("sku-1").has_value());
}

TEST(TableJoinTest, TheTableAndTheJoiningStreamRunInOneTask) {
  const auto topology = stock_join(/*left=*/false);
  ASSERT_EQ(topology.subtopology_count(), 1);
  EXPECT_THAT(topology.source_topics(0), ElementsAre("orders", "stock"));
  EXPECT_THAT(topology.stores(0), ElementsAre("stock-by-item"));
}

TEST(TableJoinTest, AStreamCanJoinAnAggregate) {
  StreamBuilder builder;
  auto orders = builder.stream("orders", kStrings);
  auto per_user = orders.group_by_key(kStrings).count("orders-per-user");
  builder.stream("visits", kStrings)
      .join(per_user,
            [](const std::string& page, std::int64_t n) {
              return page + " after " + std::to_string(n) + " orders";
            })
      .to("annotated", kStrings);
  TopologyTestDriver driver(builder.build());
  driver.input_topic("orders", kStrings).pipe_all({{"alice", "o1"}, {"alice", "o2"}});
  driver.input_topic("visits", kStrings).pipe("alice", "/cart");
  EXPECT_THAT(driver.output_topic("annotated", kStrings).read_values(),
              ElementsAre("/cart after 2 orders"));
}

}  // namespace
}  // namespace streamrun
