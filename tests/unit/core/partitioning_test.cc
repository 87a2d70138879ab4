// The test driver partitions topics as a broker would, so a test sees what a key change, a
// repartition or a join does across tasks.

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/partitioner.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TopologyTestDriver;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};
const Serdes<std::string, std::int64_t> kCounts{serdes::string(), serdes::int64()};

TEST(PartitionerTest, Murmur2MatchesKafkasJavaClient) {
  // The values Kafka's own UtilsTest checks murmur2 against.
  EXPECT_EQ(murmur2("21"), -973932308);
  EXPECT_EQ(murmur2("foobar"), -790332482);
  EXPECT_EQ(murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(murmur2("abc"), 479470107);
}

TEST(PartitionerTest, PartitionIsThePositiveHashModuloTheCount) {
  EXPECT_EQ(partition_for_key("foobar", 4), (-790332482 & 0x7fffffff) % 4);
  for (int n = 1; n <= 16; ++n)
    EXPECT_LT(partition_for_key("any key", n), n);
}

TEST(DriverPartitionsTest, RecordsGoToThePartitionTheirKeyHashesTo) {
  StreamBuilder builder;
  builder.stream("in", kStrings).to("out", kStrings);
  TopologyTestDriver driver(builder.build(),
                            TopologyTestDriver::Options{.partitions = {{"in", 4}, {"out", 3}}});
  driver.input_topic("in", kStrings).pipe_all({{"alice", "1"}, {"bob", "2"}});
  const auto& in = driver.topic_contents("in");
  ASSERT_EQ(in.size(), 2u);
  EXPECT_EQ(in[0].partition, partition_for_key("alice", 4));
  EXPECT_EQ(in[1].partition, partition_for_key("bob", 4));
  const auto out = driver.output_topic("out", kStrings).read_records();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].origin.partition, partition_for_key("alice", 3));
}

TEST(DriverPartitionsTest, AKeyChangeSendsEachNewKeyToOneTask) {
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .key_by([](const std::string&, const std::string& sku) { return sku; })
      .group_by_key(kStrings, "by-sku")
      .count("per-sku")
      .to_stream()
      .to("counts", kCounts);
  TopologyTestDriver driver(
      builder.build(),
      TopologyTestDriver::Options{.application_id = "shop", .partitions = {{"orders", 4}}});
  // The same SKU ordered by users whose keys land on different input partitions.
  auto orders = driver.input_topic("orders", kStrings);
  for (const char* user : {"alice", "bob", "carol", "dave", "erin", "frank"})
    orders.pipe(user, "sku-1");
  EXPECT_THAT(driver.output_topic("counts", kCounts).read_values(), ElementsAre(1, 2, 3, 4, 5, 6));
  const auto home = partition_for_key("sku-1", 4);
  for (std::int32_t p = 0; p < 4; ++p) {
    EXPECT_EQ(driver.store("per-sku", p).get("sku-1").has_value(), p == home)
        << "only the task of sku-1's partition has a count for it (partition " << p << ")";
  }
  EXPECT_THROW(static_cast<void>(driver.store("per-sku")), std::invalid_argument)
      << "four instances: the test must say which";
}

TEST(DriverPartitionsTest, WithoutARepartitionEachTaskCountsOnlyItsOwnPartition) {
  // Counting by a key that is not the topic's key without repartitioning would split counts;
  // the driver shows this the way the broker would (here the key is the topic's key, so
  // counts are whole).
  StreamBuilder builder;
  builder.stream("orders", kStrings).group_by_key(kStrings).count("per-user");
  TopologyTestDriver driver(builder.build(),
                            TopologyTestDriver::Options{.partitions = {{"orders", 4}}});
  auto orders = driver.input_topic("orders", kStrings);
  orders.pipe_all({{"alice", "o1"}, {"alice", "o2"}, {"bob", "o3"}});
  const auto p = partition_for_key("alice", 4);
  EXPECT_EQ(serdes::int64().deserialize(driver.store("per-user", p).get("alice")), 2);
}

TEST(DriverPartitionsTest, TopicsJoinedMustBeCoPartitioned) {
  StreamBuilder builder;
  auto stock = builder.table("stock", kCounts, "stock");
  builder.stream("orders", kStrings)
      .join(stock, [](const std::string& o, std::int64_t s) { return o + std::to_string(s); })
      .to("out", kStrings);
  try {
    TopologyTestDriver driver(
        builder.build(), TopologyTestDriver::Options{.partitions = {{"orders", 4}, {"stock", 2}}});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("'orders' (4 partitions) and 'stock' (2 partitions)"));
    EXPECT_THAT(e.what(), HasSubstr("not co-partitioned"));
  }
}

// Orders arrive keyed by user; the stock table is keyed by SKU.
Topology orders_joined_with_stock(bool pass_serdes) {
  StreamBuilder builder;
  auto stock = builder.table("stock", kCounts, "stock");
  auto by_sku =
      builder.stream("orders", kStrings).key_by([](const std::string&, const std::string& sku) {
        return sku;
      });
  auto joiner = [](const std::string& sku, std::int64_t units) {
    return sku + ":" + std::to_string(units);
  };
  if (pass_serdes) {
    by_sku.join(stock, joiner, kStrings).to("joined", kStrings);
  } else {
    by_sku.join(stock, joiner).to("joined", kStrings);
  }
  return builder.build();
}

TEST(DriverPartitionsTest, AJoinAfterAKeyChangeLooksTheNewKeyUpInItsOwnPartition) {
  TopologyTestDriver driver(
      orders_joined_with_stock(/*pass_serdes=*/true),
      TopologyTestDriver::Options{.application_id = "shop",
                                  .partitions = {{"orders", 4}, {"stock", 4}}});
  auto stock = driver.input_topic("stock", kCounts);
  for (int i = 0; i < 8; ++i)
    stock.pipe("sku-" + std::to_string(i), 10 + i);
  auto orders = driver.input_topic("orders", kStrings);
  for (int i = 0; i < 8; ++i)
    orders.pipe("user-" + std::to_string(i * 7), "sku-" + std::to_string(i));
  std::vector<std::string> joined = driver.output_topic("joined", kStrings).read_values();
  std::sort(joined.begin(), joined.end());
  EXPECT_THAT(joined, ElementsAre("sku-0:10", "sku-1:11", "sku-2:12", "sku-3:13", "sku-4:14",
                                  "sku-5:15", "sku-6:16", "sku-7:17"))
      << "every order found its SKU: it was repartitioned to the SKU's partition first";
  EXPECT_EQ(driver.topic_contents("shop-join-2-by-key-repartition").size(), 8u);
}

TEST(DriverPartitionsTest, TheRepartitionTopicOfAJoinHasTheTablesPartitionCount) {
  // Orders on 8 partitions, stock on 4: the repartition topic before the join must have 4, or
  // tasks 4 to 7 would read orders for a table they have no part of.
  TopologyTestDriver driver(
      orders_joined_with_stock(/*pass_serdes=*/true),
      TopologyTestDriver::Options{.application_id = "shop",
                                  .partitions = {{"orders", 8}, {"stock", 4}}});
  auto stock = driver.input_topic("stock", kCounts);
  auto orders = driver.input_topic("orders", kStrings);
  for (int i = 0; i < 16; ++i) {
    stock.pipe("sku-" + std::to_string(i), i);
    orders.pipe("user-" + std::to_string(i), "sku-" + std::to_string(i));
  }
  EXPECT_EQ(driver.output_topic("joined", kStrings).read_values().size(), 16u);
  for (const auto& record : driver.topic_contents("shop-join-2-by-key-repartition"))
    EXPECT_LT(record.partition, 4);
}

TEST(DriverPartitionsTest, AJoinAfterAKeyChangeWithoutSerdesIsRefusedWhenBuilt) {
  try {
    static_cast<void>(orders_joined_with_stock(/*pass_serdes=*/false));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("must be repartitioned by the new key first"));
  }
}

TEST(DriverPartitionsTest, PipingToAPartitionThatDoesNotExistIsAnError) {
  StreamBuilder builder;
  builder.stream("in", kStrings).to("out", kStrings);
  TopologyTestDriver driver(builder.build());
  EXPECT_THROW(driver.pipe_raw("in", {std::string("k"), std::string("v"), {}, 0, 3}),
               std::invalid_argument);
}

}  // namespace
}  // namespace streamrun
