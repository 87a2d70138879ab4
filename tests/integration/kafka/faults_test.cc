#include <atomic>

#include <gtest/gtest.h>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_fixture.h>

#include "support/kafka_test_util.h"

namespace streamrun::kafka {
namespace {

using namespace std::chrono_literals;
using testing::send_waiting;

class FaultsTest : public testing::BrokerFixture {
 protected:
  std::vector<TopicSpec> topics() const override { return {{"orders", 2}}; }

  std::unique_ptr<Producer> make_producer(const std::string& message_timeout_ms) {
    auto properties = producer_properties();
    properties["message.timeout.ms"] = message_timeout_ms;
    auto producer = Producer::create(properties);
    EXPECT_TRUE(producer.ok()) << producer.error().message();
    return std::move(producer).value();
  }

  struct Outcome {
    int delivered = 0;
    int failed = 0;
    std::string last_error;
  };

  void send_batch(Producer& producer, int count, Outcome& outcome) {
    for (int i = 0; i < count; ++i) {
      const auto value = std::to_string(i);
      send_waiting(producer, {"orders", std::nullopt, value, value, {}, std::nullopt},
                   [&outcome](const DeliveryReport& report) {
                     if (report.error) {
                       ++outcome.failed;
                       outcome.last_error = report.error->message();
                     } else {
                       ++outcome.delivered;
                     }
                   });
    }
  }
};

TEST_F(FaultsTest, ProducerReportsFailuresWhileTheBrokerIsDownAndDeliversOnceItIsBack) {
  auto producer = make_producer("3000");
  Outcome warmup;
  send_batch(*producer, 10, warmup);
  ASSERT_TRUE(producer->flush(10s).ok());
  ASSERT_EQ(warmup.delivered, 10);

  ASSERT_TRUE(broker().set_broker_down(1).ok());
  Outcome while_down;
  send_batch(*producer, 20, while_down);
  // Every record gets a report within its message timeout: failures, not a hang.
  auto flushed = producer->flush(20s);
  ASSERT_TRUE(flushed.ok()) << flushed.error().message();
  EXPECT_EQ(while_down.failed, 20);
  EXPECT_EQ(while_down.delivered, 0);
  EXPECT_NE(while_down.last_error.find("delivery to orders["), std::string::npos)
      << while_down.last_error;
  EXPECT_NE(while_down.last_error.find("timed out"), std::string::npos) << while_down.last_error;

  ASSERT_TRUE(broker().set_broker_up(1).ok());
  // Sync point: the client has reconnected (its reconnect backoff may exceed the message
  // timeout this test uses).
  auto reconnected = producer->check_connection(30s);
  ASSERT_TRUE(reconnected.ok()) << reconnected.error().message();
  Outcome after;
  send_batch(*producer, 20, after);
  flushed = producer->flush(30s);
  ASSERT_TRUE(flushed.ok()) << flushed.error().message();
  EXPECT_EQ(after.delivered, 20) << after.last_error;
  EXPECT_EQ(after.failed, 0);
}

TEST_F(FaultsTest, RecordsQueuedDuringAnOutageAreDeliveredWhenTheBrokerReturns) {
  auto producer = make_producer("60000");
  Outcome warmup;
  send_batch(*producer, 1, warmup);
  ASSERT_TRUE(producer->flush(10s).ok());

  ASSERT_TRUE(broker().set_broker_down(1).ok());
  Outcome queued;
  send_batch(*producer, 50, queued);
  // While the broker is down nothing can be acknowledged.
  EXPECT_FALSE(producer->flush(1s).ok());
  EXPECT_EQ(queued.delivered + queued.failed, 0);

  ASSERT_TRUE(broker().set_broker_up(1).ok());
  auto flushed = producer->flush(45s);
  ASSERT_TRUE(flushed.ok()) << flushed.error().message();
  EXPECT_EQ(queued.delivered, 50) << queued.last_error;
  EXPECT_EQ(queued.failed, 0);
}

TEST(UnreachableBrokerTest, ProducerSaysWhichAddressItCannotReachInOneLine) {
  auto producer = Producer::create({{"bootstrap.servers", "127.0.0.1:1"}});
  ASSERT_TRUE(producer.ok()) << producer.error().message();
  auto reachable = (*producer)->check_connection(2s);
  ASSERT_FALSE(reachable.ok());
  EXPECT_EQ(reachable.error().code(), errc::unreachable);
  const auto& message = reachable.error().message();
  EXPECT_NE(message.find("cannot reach Kafka at bootstrap.servers=127.0.0.1:1"), std::string::npos)
      << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(UnreachableBrokerTest, ConsumerSaysWhichAddressItCannotReach) {
  auto consumer =
      Consumer::create({{"bootstrap.servers", "127.0.0.1:1"}, {"group.id", "g"}}, nullptr);
  ASSERT_TRUE(consumer.ok()) << consumer.error().message();
  auto reachable = (*consumer)->check_connection(2s);
  ASSERT_FALSE(reachable.ok());
  EXPECT_NE(reachable.error().message().find("127.0.0.1:1"), std::string::npos);
}

TEST(ConsumerConfigTest, AutoCommitIsRefusedWithTheReason) {
  auto consumer = Consumer::create(
      {{"bootstrap.servers", "127.0.0.1:1"}, {"group.id", "g"}, {"enable.auto.commit", "true"}},
      nullptr);
  ASSERT_FALSE(consumer.ok());
  EXPECT_EQ(consumer.error().code(), errc::invalid_config);
  EXPECT_NE(consumer.error().message().find("'enable.auto.commit'"), std::string::npos);
}

TEST(ConsumerConfigTest, GroupIdIsRequired) {
  auto consumer = Consumer::create({{"bootstrap.servers", "127.0.0.1:1"}}, nullptr);
  ASSERT_FALSE(consumer.ok());
  EXPECT_NE(consumer.error().message().find("'group.id' is required"), std::string::npos);
}

}  // namespace
}  // namespace streamrun::kafka
