#pragma once

#include <cstdint>
#include <string>

#include <streamrun/config/config.h>
#include <streamrun/core/error_policy.h>

namespace streamrun::runtime {

// Every property the runtime reads, declared once. Kafka client properties
// (bootstrap.servers, ...) pass through to librdkafka; see kafka::client_property_schema().
struct RuntimeProperties {
  static const config::Property<std::string> application_id;
  static const config::Property<std::int64_t> num_threads;
  static const config::Property<std::int64_t> commit_interval_ms;
  static const config::Property<std::int64_t> buffered_records_per_partition;
  static const config::Property<std::int64_t> poll_batch_records;
  static const config::Property<bool> input_partition_queues;
  static const config::Property<std::int64_t> input_buffer_max_bytes;
  static const config::Property<std::int64_t> startup_timeout_ms;
  static const config::Property<std::int64_t> shutdown_timeout_ms;
  static const config::Property<std::int64_t> admin_timeout_ms;
  static const config::Property<std::string> log_level;
  static const config::Property<std::string> state_dir;
  static const config::Property<std::int64_t> state_memory_budget_bytes;
  static const config::Property<std::string> errors_policy;
  static const config::Property<std::int64_t> errors_retries;
  static const config::Property<std::int64_t> errors_retry_backoff_ms;
  static const config::Property<std::int64_t> errors_retry_backoff_max_ms;
  static const config::Property<std::int64_t> errors_retry_max_delay_ms;
  static const config::Property<std::string> errors_dead_letter_topic;
  static const config::Property<std::string> admin_listen;
  static const config::Property<bool> admin_allow_remote;
  static const config::Property<std::string> application_server;
  static const config::Property<std::int64_t> metrics_latency_sample_records;

  // admin.listen's default; when it is taken (a second instance on the host), the endpoint
  // serves on a port the kernel picks and logs it.
  static constexpr const char* kDefaultAdminListen = "127.0.0.1:9095";

  // All of the above.
  static const config::ConfigDef& definition();

  // The pipeline's error policy from the errors.* properties.
  [[nodiscard]] static ErrorPolicy error_policy(const config::Config& config);
};

}  // namespace streamrun::runtime
