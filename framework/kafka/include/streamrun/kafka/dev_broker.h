#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <streamrun/base/result.h>

namespace streamrun::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication_factor = 0;  // 0: min(3, brokers)

  // Parses "NAME:PARTITIONS" (the `--topic` flag).
  [[nodiscard]] static Result<TopicSpec> parse(std::string_view text);
};

struct DevBrokerOptions {
  int brokers = 1;
  std::vector<TopicSpec> topics;
};

// The development broker: librdkafka's in-memory mock cluster, speaking the Kafka protocol on
// loopback. For demos and tests only — nothing in the framework knows it is there. It runs its
// own threads (inside librdkafka) until destroyed.
//
// Limits (see docs/development-broker.md): no transactions, no Admin API, no compaction,
// retention capped, topics auto-created with 4 partitions.
class DevBroker {
 public:
  [[nodiscard]] static Result<std::unique_ptr<DevBroker>> start(const DevBrokerOptions& options);
  ~DevBroker();
  DevBroker(const DevBroker&) = delete;
  DevBroker& operator=(const DevBroker&) = delete;

  // "127.0.0.1:port[,127.0.0.1:port...]"
  [[nodiscard]] const std::string& bootstrap_servers() const noexcept;
  [[nodiscard]] int broker_count() const noexcept;

  [[nodiscard]] Result<void> create_topic(const TopicSpec& topic);

  // Fault injection. Broker ids run from 1 to broker_count().
  [[nodiscard]] Result<void> set_broker_down(int broker_id);
  [[nodiscard]] Result<void> set_broker_up(int broker_id);
  [[nodiscard]] Result<void> set_broker_rtt(int broker_id, std::chrono::milliseconds rtt);
  // Which broker leads a partition, and which coordinates a consumer group: with a broker set
  // down, what it serves becomes unreachable while the rest works.
  [[nodiscard]] Result<void> set_partition_leader(const std::string& topic, int partition,
                                                  int broker_id);
  [[nodiscard]] Result<void> set_group_coordinator(const std::string& group, int broker_id);

  // The next `count` requests of a kind fail with a retriable error, as a broker under a
  // leader change or overload answers.
  enum class Request { produce, fetch, offset_commit };
  enum class RetriableError { not_leader, request_timed_out };
  void fail_next_requests(Request request, int count, RetriableError error);

  struct Impl;

 private:
  explicit DevBroker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrun::kafka
