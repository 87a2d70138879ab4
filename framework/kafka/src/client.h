#pragma once

// What producer, consumer and development broker share: building a configuration from
// properties, routing librdkafka's logs and errors to spdlog, metadata queries.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include <streamrun/base/ids.h>
#include <streamrun/base/result.h>
#include <streamrun/kafka/client_config.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/errors.h>

#include "handles.h"

namespace streamrun::kafka {

errc to_errc(rd_kafka_resp_err_t err) noexcept;
Error make_error(rd_kafka_resp_err_t err, std::string_view context);
Error make_error(ErrorHandle error, std::string_view context);

// "topic[partition]: " for an error a fetched message carries, empty when it names none.
std::string error_location(const rd_kafka_message_t* message);

PartitionListHandle to_partition_list(const std::vector<TopicPartition>& partitions);
PartitionListHandle to_partition_list(const std::vector<PartitionOffset>& offsets);
std::vector<TopicPartition> to_topic_partitions(const rd_kafka_topic_partition_list_t* list);

// State the librdkafka callbacks write to. Lives as long as the rd_kafka_t (callbacks may fire
// on librdkafka's threads, hence the mutex).
class ClientContext {
 public:
  explicit ClientContext(std::string role);

  [[nodiscard]] const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }
  [[nodiscard]] const std::string& bootstrap_servers() const noexcept { return bootstrap_; }

  // Applies `properties` on top of `defaults` and installs the log and error callbacks.
  // The context must outlive the client created from the returned conf.
  [[nodiscard]] Result<ConfHandle> make_conf(const ClientProperties& defaults,
                                             const ClientProperties& properties);

  void record_error(rd_kafka_resp_err_t err, std::string_view reason);
  // Positions moved on by auto.offset.reset because the broker no longer had them.
  void count_offset_reset() noexcept { offset_resets_.fetch_add(1, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t offset_resets() const noexcept {
    return offset_resets_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::string last_error() const;

  [[nodiscard]] Result<void> check_connection(rd_kafka_t* rk, std::chrono::milliseconds timeout);
  [[nodiscard]] Result<int> partition_count(rd_kafka_t* rk, std::string_view topic,
                                            std::chrono::milliseconds timeout);
  [[nodiscard]] Result<std::map<std::string, int>> list_topics(rd_kafka_t* rk,
                                                               std::chrono::milliseconds timeout);

 private:
  std::string role_;
  std::string bootstrap_;
  std::shared_ptr<spdlog::logger> logger_;
  mutable std::mutex mutex_;
  std::string last_error_;
  std::chrono::steady_clock::time_point last_logged_{};
  std::string last_logged_text_;
  std::atomic<std::int64_t> offset_resets_{0};
};

}  // namespace streamrun::kafka
