// The example app as a user runs it: a separate process stopped with SIGTERM.

#include <csignal>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_fixture.h>
#include <streamrun/testing/child_process.h>

#include "support/kafka_test_util.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;

class GracefulStopTest : public BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"orders", 4}, {"orders-valid", 4}, {"orders-rejected", 4}};
  }
};

TEST_F(GracefulStopTest, SigtermDrainsCommitsAndExitsCleanly) {
  constexpr int kOrders = 1000;
  auto producer = kafka::Producer::create(producer_properties());
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < kOrders; ++i) {
    // Every tenth order is malformed, and one has no value: they go to orders-rejected.
    const auto value =
        i % 10 == 0 ? std::string("garbage") : fmt::format("user-{},sku-{},1", i, i % 7);
    const auto key = fmt::format("user-{}", i);
    send_waiting(**producer, {"orders",
                              std::nullopt,
                              key,
                              i == 5 ? std::nullopt : std::optional<std::string_view>(value),
                              {},
                              std::nullopt});
  }
  ASSERT_TRUE((*producer)->flush(10s).ok());

  auto app =
      ChildProcess::spawn(STREAMRUN_ORDER_FILTER_PATH, {"--bootstrap", bootstrap_servers(), "--set",
                                                        "consumer.session.timeout.ms=6000", "--set",
                                                        "consumer.heartbeat.interval.ms=500"});
  ASSERT_TRUE(app.ok()) << app.error().message();

  auto reader = kafka::Consumer::create(consumer_properties("reader"), nullptr);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->subscribe({"orders-valid", "orders-rejected"}).ok());
  std::map<std::string, int> per_topic;
  std::map<std::string, int> reasons;
  int null_rejected = 0;
  int outputs = 0;
  ASSERT_TRUE(poll_until(
      **reader, [&] { return outputs >= kOrders; },
      [&](const kafka::Message& m) {
        ++outputs;
        ++per_topic[std::string(m.topic())];
        if (m.topic() == "orders-rejected") {
          ++reasons[std::string(m.header("reason").value_or("(no reason header)"))];
          null_rejected += m.value().has_value() ? 0 : 1;
        }
      }))
      << outputs << " outputs";
  EXPECT_EQ(per_topic["orders-valid"], 899);
  EXPECT_EQ(per_topic["orders-rejected"], 101);
  EXPECT_EQ(reasons, (std::map<std::string, int>{{"expected user,sku,quantity", 100},
                                                 {"no value (null)", 1}}));
  EXPECT_EQ(null_rejected, 1) << "a null value is passed on as null, not as \"\"";

  app->signal(SIGTERM);
  EXPECT_EQ(app->wait(30s), std::optional<int>(0)) << "a graceful stop exits with status 0";

  // Everything it processed is committed: a restart would not redo a single record.
  auto group = kafka::Consumer::create(consumer_properties("order-filter"), nullptr);
  ASSERT_TRUE(group.ok());
  std::vector<TopicPartition> partitions;
  for (int p = 0; p < 4; ++p)
    partitions.push_back({TopicName("orders"), PartitionId(p)});
  auto committed = (*group)->committed(partitions, 10s);
  ASSERT_TRUE(committed.ok()) << committed.error().message();
  std::int64_t total = 0;
  for (const auto& po : *committed)
    total += po.offset.value();
  EXPECT_EQ(total, kOrders);
}

}  // namespace
}  // namespace streamrun::testing
