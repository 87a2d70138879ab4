#include <map>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_fixture.h>

#include "support/kafka_test_util.h"

namespace streamrun::kafka {
namespace {

using namespace std::chrono_literals;
using testing::poll_until;
using testing::send_waiting;

class ProducerConsumerTest : public testing::BrokerFixture {
 protected:
  std::vector<TopicSpec> topics() const override {
    return {{"events", 8}, {"resume", 4}, {"paused", 2}};
  }

  std::unique_ptr<Producer> make_producer() {
    auto producer = Producer::create(producer_properties());
    EXPECT_TRUE(producer.ok()) << producer.error().message();
    return std::move(producer).value();
  }

  std::unique_ptr<Consumer> make_consumer(const std::string& group, const std::string& topic,
                                          RebalanceListener* listener = nullptr) {
    auto consumer = Consumer::create(consumer_properties(group), listener);
    EXPECT_TRUE(consumer.ok()) << consumer.error().message();
    auto subscribed = (*consumer)->subscribe({topic});
    EXPECT_TRUE(subscribed.ok()) << subscribed.error().message();
    return std::move(consumer).value();
  }

  // Produces `count` records with key k<i % 1000>, value v<i> and a "seq" header; returns the
  // sequence numbers per partition in offset order, as acknowledged by the broker.
  std::map<int, std::vector<std::int64_t>> produce_sequence(const std::string& topic, int count) {
    auto producer = make_producer();
    std::map<int, std::map<std::int64_t, std::int64_t>> by_offset;  // partition -> offset -> seq
    int failures = 0;
    for (int i = 0; i < count; ++i) {
      const auto key = fmt::format("k{}", i % 1000);
      const auto value = fmt::format("v{}", i);
      const auto seq = std::to_string(i);
      const std::array headers = {HeaderView{"seq", seq}, HeaderView{"null-header", std::nullopt}};
      send_waiting(*producer, {topic, std::nullopt, key, value, headers, 1'700'000'000'000 + i},
                   [&, i](const DeliveryReport& report) {
                     if (report.error) {
                       ++failures;
                       return;
                     }
                     by_offset[report.partition.value()][report.offset.value()] = i;
                   });
      producer->poll();
    }
    auto flushed = producer->flush(30s);
    EXPECT_TRUE(flushed.ok()) << flushed.error().message();
    EXPECT_EQ(failures, 0);
    std::map<int, std::vector<std::int64_t>> sequences;
    for (const auto& [partition, offsets] : by_offset) {
      for (const auto& [offset, seq] : offsets)
        sequences[partition].push_back(seq);
    }
    return sequences;
  }
};

TEST_F(ProducerConsumerTest, HundredThousandKeyedRecordsArriveIntactAndInPartitionOrder) {
  constexpr int kRecords = 100'000;
  const auto produced = produce_sequence("events", kRecords);
  ASSERT_EQ(produced.size(), 8u) << "keys should spread over all 8 partitions";

  auto consumer = make_consumer("intact", "events");
  std::map<int, std::vector<std::int64_t>> consumed;
  int received = 0;
  int damaged = 0;
  const bool all = poll_until(
      *consumer, [&] { return received >= kRecords; },
      [&](const Message& message) {
        ++received;
        const auto seq = std::stoll(std::string(message.header("seq").value_or("-1")));
        consumed[message.partition().value()].push_back(seq);
        const auto headers = message.headers();
        const bool intact = message.key() == fmt::format("k{}", seq % 1000) &&
                            message.value() == fmt::format("v{}", seq) &&
                            message.timestamp_ms() == 1'700'000'000'000 + seq &&
                            message.timestamp_type() == TimestampType::create_time &&
                            headers.size() == 2 &&
                            headers[0] == Header{"seq", std::to_string(seq)} &&
                            headers[1] == Header{"null-header", std::nullopt};
        if (!intact)
          ++damaged;
      },
      120s);
  ASSERT_TRUE(all) << "received " << received << " of " << kRecords;
  EXPECT_EQ(received, kRecords);
  EXPECT_EQ(damaged, 0);
  EXPECT_EQ(consumed, produced) << "per-partition order must match the acknowledged order";
}

// Remembers, per partition, the offset after the last record handled: what a commit would say.
struct Progress {
  std::map<TopicPartition, Offset> next;
  std::set<std::pair<int, std::int64_t>> seen;  // (partition, offset)
  int duplicates = 0;

  void record(const Message& message) {
    next[message.topic_partition()] = Offset(message.offset().value() + 1);
    if (!seen.emplace(message.partition().value(), message.offset().value()).second)
      ++duplicates;
  }
  std::vector<PartitionOffset> offsets() const {
    std::vector<PartitionOffset> result;
    for (const auto& [tp, offset] : next)
      result.push_back({tp, offset});
    return result;
  }
};

TEST_F(ProducerConsumerTest, RestartedConsumerResumesExactlyAfterItsCommittedOffset) {
  constexpr int kRecords = 2000;
  const auto produced = produce_sequence("resume", kRecords);

  Progress first;
  std::map<TopicPartition, Offset> committed_by_first;
  {
    auto consumer = make_consumer("resumers", "resume");
    ASSERT_TRUE(poll_until(
        *consumer, [&] { return first.seen.size() >= 700; },
        [&](const Message& message) { first.record(message); }));
    auto committed = consumer->commit(first.offsets());
    ASSERT_TRUE(committed.ok()) << committed.error().message();
    committed_by_first = first.next;
    ASSERT_TRUE(consumer->close().ok());
  }
  // Records the first consumer saw but did not commit do not count: they come again.
  std::set<std::pair<int, std::int64_t>> committed_records;
  for (const auto& [partition, offset] : first.seen) {
    auto it = committed_by_first.find({TopicName("resume"), PartitionId(partition)});
    if (it != committed_by_first.end() && offset < it->second.value()) {
      committed_records.emplace(partition, offset);
    }
  }

  auto consumer = make_consumer("resumers", "resume");
  Progress second;
  std::map<int, std::int64_t> first_offset_seen;
  ASSERT_TRUE(poll_until(
      *consumer, [&] { return committed_records.size() + second.seen.size() >= kRecords; },
      [&](const Message& message) {
        first_offset_seen.try_emplace(message.partition().value(), message.offset().value());
        second.record(message);
      }));

  for (const auto& [tp, offset] : committed_by_first) {
    const auto partition_size = static_cast<std::int64_t>(produced.at(tp.partition.value()).size());
    if (offset.value() == partition_size) {
      EXPECT_FALSE(first_offset_seen.contains(tp.partition.value()))
          << tp << " was consumed and committed to its end; nothing may come again";
      continue;
    }
    EXPECT_EQ(first_offset_seen[tp.partition.value()], offset.value())
        << "restart must resume exactly at the committed offset of " << tp;
  }
  EXPECT_EQ(second.duplicates, 0);
  for (const auto& record : second.seen) {
    EXPECT_FALSE(committed_records.contains(record))
        << "record " << record.first << "/" << record.second << " was committed, yet redelivered";
  }
  EXPECT_EQ(committed_records.size() + second.seen.size(), static_cast<std::size_t>(kRecords));

  std::vector<TopicPartition> partitions;
  for (const auto& [tp, offset] : committed_by_first)
    partitions.push_back(tp);
  auto committed = consumer->committed(partitions, 10s);
  ASSERT_TRUE(committed.ok()) << committed.error().message();
  EXPECT_EQ(committed->size(), committed_by_first.size());
}

TEST_F(ProducerConsumerTest, PauseStopsDeliveryFromAPartitionAndResumeRestartsIt) {
  auto consumer = make_consumer("pausers", "paused");
  // Sync point: the assignment is in place once the consumer has joined.
  std::vector<Message> ignored;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (consumer->assignment().size() < 2 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(consumer->poll(ignored, 100, 50ms).ok());
  }
  ASSERT_EQ(consumer->assignment().size(), 2u);
  ASSERT_TRUE(ignored.empty());

  const TopicPartition paused{TopicName("paused"), PartitionId(0)};
  ASSERT_TRUE(consumer->pause({paused}).ok());

  auto producer = make_producer();
  for (int partition : {0, 1}) {
    for (int i = 0; i < 100; ++i) {
      const auto value = std::to_string(i);
      send_waiting(*producer, {"paused", partition, std::nullopt, value, {}, std::nullopt});
    }
    ASSERT_TRUE(producer->flush(10s).ok());
  }

  std::map<int, int> received;
  auto count = [&](const Message& message) { ++received[message.partition().value()]; };
  ASSERT_TRUE(poll_until(
      *consumer, [&] { return received[1] >= 100; }, count));
  // Partition 0's records were written first and both partitions share one broker and one fetch
  // request: had partition 0 not been paused, its records would have come with partition 1's.
  // Keep polling a little longer to give any leak a chance to show.
  poll_until(
      *consumer, [] { return false; }, count, 1s);
  EXPECT_EQ(received[0], 0) << "a paused partition must not deliver";

  ASSERT_TRUE(consumer->resume({paused}).ok());
  ASSERT_TRUE(poll_until(
      *consumer, [&] { return received[0] >= 100; }, count, 30s));
  EXPECT_EQ(received[0], 100);
  EXPECT_EQ(received[1], 100);
}

}  // namespace
}  // namespace streamrun::kafka
