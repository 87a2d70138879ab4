#pragma once

// Runs a topology in-process with in-memory topics and a clock the test controls: no broker,
// no threads, no waiting. Kafka Streams' TopologyTestDriver is the model.
//
//   TopologyTestDriver driver(builder.build());
//   auto orders = driver.input_topic("orders", string_serdes);
//   auto sizes = driver.output_topic("sizes", {serdes::string(), serdes::int64()});
//   orders.pipe("k", "hello");
//   EXPECT_EQ(sizes.read_key_values(), (std::vector<KeyValue<std::string, std::int64_t>>{{"k",
//   5}}));
//
// Topics have partitions, as on a broker: one unless Options::partitions says otherwise. A record
// goes to the partition the producer's partitioner picks for its key (murmur2, as Kafka's
// clients do; null keys go round-robin), and each sub-topology runs one task per partition, with
// its own store instances — so a test sees what a key change, a repartition or a join does on
// the broker. Topics read together (a join) must have as many partitions as each other, as in
// the runtime. A record that makes an operator fail throws OperatorFailure out of pipe().

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <streamrun/core/kv_store.h>
#include <streamrun/core/record.h>
#include <streamrun/core/serde.h>
#include <streamrun/core/topology.h>

namespace streamrun::testing {

struct TestRecord {
  std::optional<std::string> key;
  std::optional<std::string> value;
  RecordHeaders headers;
  std::int64_t timestamp_ms = 0;
  // Piped: -1 lets the partitioner choose. Read back: the partition it was written to.
  std::int32_t partition = -1;
};

template <typename K, typename V>
class TestInputTopic;
template <typename K, typename V>
class TestOutputTopic;

class TopologyTestDriver {
 public:
  struct Options {
    std::string application_id = "test-app";
    std::int64_t start_time_ms = 0;
    // Partitions per topic; a topic not named here has `default_partitions`. Repartition
    // topics get as many as the largest input topic, as the runtime creates them.
    std::map<std::string, std::int32_t, std::less<>> partitions;
    std::int32_t default_partitions = 1;
  };

  // Throws std::invalid_argument when topics a sub-topology reads together have different
  // partition counts.
  TopologyTestDriver(const Topology& topology, Options options);
  explicit TopologyTestDriver(const Topology& topology, std::string application_id = "test-app",
                              std::int64_t start_time_ms = 0);
  ~TopologyTestDriver();
  TopologyTestDriver(const TopologyTestDriver&) = delete;
  TopologyTestDriver& operator=(const TopologyTestDriver&) = delete;

  template <typename K, typename V>
  TestInputTopic<K, V> input_topic(std::string topic, Serdes<K, V> serdes) {
    return TestInputTopic<K, V>(*this, std::move(topic), std::move(serdes));
  }
  template <typename K, typename V>
  TestOutputTopic<K, V> output_topic(std::string topic, Serdes<K, V> serdes) {
    return TestOutputTopic<K, V>(*this, std::move(topic), std::move(serdes));
  }

  // Appends a serialized record to `topic` and runs it (and whatever it causes) to completion.
  void pipe_raw(std::string_view topic, TestRecord record);
  // The records written to `topic` since the last read.
  [[nodiscard]] std::vector<TestRecord> read_raw(std::string_view topic);
  // Everything ever written to `topic`.
  [[nodiscard]] const std::vector<TestRecord>& topic_contents(std::string_view topic) const;

  // A state store of the topology, to look at (or seed) in tests. Keys and values are serialized
  // with the serdes the operator was given. Each task (partition) has its own instance: without
  // `partition`, the store's tasks must have one partition (else std::invalid_argument).
  [[nodiscard]] KeyValueStore& store(std::string_view name,
                                     std::optional<std::int32_t> partition = std::nullopt);
  // Records that operators dropped on purpose (null keys or values in keyed operators).
  [[nodiscard]] std::int64_t dropped() const;

  // The pipeline's policy for failing records (default: fail, i.e. pipe() throws the
  // OperatorFailure). Retries advance the driver's clock by their backoff (jitter fixed at half
  // the range); dead letters go to their topic like any output.
  void set_error_policy(ErrorPolicy policy);
  // Records skipped by a skip policy so far.
  [[nodiscard]] std::int64_t skipped() const;

  // Moves the clock on (the mock wall clock), then runs the wall-clock punctuators that are due
  // (once each, however many intervals passed) and async calls (their timeouts, retries, rate
  // limits and circuit breakers follow this clock). Stream time moves with the records piped.
  void advance_time(std::chrono::milliseconds by);
  // Async calls (KStream::call_async): passes on what completed calls produced (and whatever
  // that causes). pipe() does this after each record; call it after completing calls from a
  // test's fake client.
  void run_calls();
  // Async calls held by the tasks (in flight, waiting for a retry or to go on in order).
  [[nodiscard]] std::size_t calls_held() const;
  [[nodiscard]] std::int64_t now_ms() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

template <typename K, typename V>
class TestInputTopic {
 public:
  TestInputTopic(TopologyTestDriver& driver, std::string topic, Serdes<K, V> serdes)
      : driver_(&driver), topic_(std::move(topic)), serdes_(std::move(serdes)) {}

  // Timestamp defaults to the driver's clock.
  void pipe(const K& key, const V& value, std::optional<std::int64_t> timestamp_ms = std::nullopt,
            RecordHeaders headers = {}) {
    driver_->pipe_raw(topic_, {serdes_.key.serialize(key), serdes_.value.serialize(value),
                               std::move(headers), timestamp_ms.value_or(driver_->now_ms())});
  }
  void pipe_all(const std::vector<KeyValue<K, V>>& records) {
    for (const auto& kv : records)
      pipe(kv.key, kv.value);
  }
  [[nodiscard]] const std::string& name() const noexcept { return topic_; }

 private:
  TopologyTestDriver* driver_;
  std::string topic_;
  Serdes<K, V> serdes_;
};

template <typename K, typename V>
class TestOutputTopic {
 public:
  TestOutputTopic(TopologyTestDriver& driver, std::string topic, Serdes<K, V> serdes)
      : driver_(&driver), topic_(std::move(topic)), serdes_(std::move(serdes)) {}

  // Reads (and consumes) everything written since the last read.
  std::vector<Record<K, V>> read_records() {
    std::vector<Record<K, V>> records;
    for (auto& raw : driver_->read_raw(topic_)) {
      // Where it was written: tests of partitioning look at origin.partition.
      const RecordOrigin origin{topic_, raw.partition, -1};
      Record<K, V> record;
      record.key = serdes_.key.deserialize(raw.key);
      record.value = serdes_.value.deserialize(raw.value);
      record.headers = std::move(raw.headers);
      record.timestamp_ms = raw.timestamp_ms;
      record.origin = origin;
      records.push_back(std::move(record));
    }
    return records;
  }
  std::vector<KeyValue<K, V>> read_key_values() {
    std::vector<KeyValue<K, V>> out;
    for (auto& record : read_records())
      out.push_back({std::move(record.key), std::move(record.value)});
    return out;
  }
  std::vector<V> read_values() {
    std::vector<V> out;
    for (auto& record : read_records())
      out.push_back(std::move(record.value));
    return out;
  }

 private:
  TopologyTestDriver* driver_;
  std::string topic_;
  Serdes<K, V> serdes_;
};

}  // namespace streamrun::testing
