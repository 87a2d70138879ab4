#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <streamrun/base/ids.h>
#include <streamrun/base/result.h>
#include <streamrun/kafka/client_config.h>
#include <streamrun/kafka/errors.h>
#include <streamrun/kafka/message.h>

namespace streamrun::kafka {

// A topic to create: partitions, replication (-1: the broker's default) and topic configs.
struct NewTopic {
  std::string name;
  int partitions = 1;
  int replication_factor = -1;
  std::map<std::string, std::string> configs;
};

// Valid only during the delivery call: `topic` points into the client's own topic handle.
struct DeliveryReport {
  std::string_view topic;
  PartitionId partition;
  Offset offset;               // valid only when error is empty
  std::optional<Error> error;  // why the broker did not acknowledge the record
  [[nodiscard]] TopicPartition topic_partition() const {
    return {TopicName(std::string(topic)), partition};
  }
};

using DeliveryCallback = std::function<void(const DeliveryReport&)>;

// Told the outcome of one record by a sender that keeps one such object per record in flight,
// so that sending allocates nothing per record. Called inside poll() or flush(), on the polling
// thread; the object must stay valid (and not move) until then.
class Delivery {
 public:
  virtual void delivered(const DeliveryReport& report) noexcept = 0;
  // Called instead of delivered() for a record still unacknowledged when the producer is
  // destroyed: what delivered() would touch may be gone.
  virtual void released() noexcept {}

 protected:
  ~Delivery() = default;
};

// A Kafka producer that reports the outcome of every record.
//
// Idempotent by default (enable.idempotence=true, acks=all) so that retries inside the client
// never duplicate or reorder. Delivery callbacks run inside poll() or flush(), on the caller's
// thread; nothing here starts a thread. send() may be called from several threads at once;
// poll() and flush() from one owner.
class Producer {
 public:
  // Checks `properties` as create() would, without creating a client or touching the network.
  [[nodiscard]] static Result<void> validate(const ClientProperties& properties);
  [[nodiscard]] static Result<std::unique_ptr<Producer>> create(const ClientProperties& properties);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues one record. errc::queue_full means the local queue is at its bound: poll() and send
  // again (never drop). Any other error means the record can never be sent as it is.
  [[nodiscard]] Result<void> send(const ProducerRecord& record, DeliveryCallback on_delivery = {});
  // The same, reporting to `delivery` (null: no report). Nothing is allocated per record beyond
  // librdkafka's own copy; on an error `delivery` is never called.
  [[nodiscard]] Result<void> send(const ProducerRecord& record, Delivery* delivery);

  // errc::record_too_large when send() would refuse `record` at once for its size: key, value
  // and headers with the record format's overhead over the producer's message.max.bytes (the
  // rule librdkafka applies). Cheap; no I/O.
  [[nodiscard]] Result<void> check_size(const ProducerRecord& record) const;

  // Serves delivery reports; returns how many were served. timeout 0 never blocks.
  int poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Records queued whose delivery report has not been served yet.
  [[nodiscard]] std::int64_t in_flight() const noexcept;

  // Blocks until every queued record has its delivery report served, or the timeout passes.
  [[nodiscard]] Result<void> flush(std::chrono::milliseconds timeout);

  // Asks the cluster for metadata; names the bootstrap address and the last connection error
  // when no broker answers within the timeout.
  [[nodiscard]] Result<void> check_connection(std::chrono::milliseconds timeout);

  // Number of partitions of `topic`, from the cluster's metadata.
  [[nodiscard]] Result<int> partition_count(std::string_view topic,
                                            std::chrono::milliseconds timeout);

  // Every topic of the cluster with its partition count; asking never creates a topic.
  [[nodiscard]] Result<std::map<std::string, int>> list_topics(std::chrono::milliseconds timeout);

  // Creates `spec` through the Admin API; a topic that already exists is not an error (its
  // partition count is not checked here).
  [[nodiscard]] Result<void> create_topic(const NewTopic& spec, std::chrono::milliseconds timeout);

  // Creates several topics in one Admin API request. The call fails as a whole when the cluster
  // does not answer it (no Admin API, no answer within `timeout`); otherwise each topic maps to
  // nullopt (created, or it existed) or the error the cluster gave for it.
  [[nodiscard]] Result<std::map<std::string, std::optional<Error>>> create_topics(
      const std::vector<NewTopic>& specs, std::chrono::milliseconds timeout);

  // The configuration of each topic (DescribeConfigs: cleanup.policy, retention.ms, ...), as
  // the cluster reports it, defaults included. Fails as a whole like create_topics(), or when
  // the cluster refuses to describe one of the topics.
  [[nodiscard]] Result<std::map<std::string, std::map<std::string, std::string>>>
  describe_topic_configs(const std::vector<std::string>& topics, std::chrono::milliseconds timeout);

  struct Impl;

 private:
  explicit Producer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrun::kafka
