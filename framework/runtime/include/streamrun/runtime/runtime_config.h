#pragma once

#include <cstdint>
#include <string>

#include <streamrun/config/config.h>

namespace streamrun::runtime {

// Every property the runtime reads, declared once. Kafka client properties
// (bootstrap.servers, ...) pass through to librdkafka; see kafka::client_property_schema().
struct RuntimeProperties {
  static const config::Property<std::string> application_id;
  static const config::Property<std::int64_t> num_threads;
  static const config::Property<std::int64_t> commit_interval_ms;
  static const config::Property<std::int64_t> buffered_records_per_partition;
  static const config::Property<std::int64_t> poll_batch_records;
  static const config::Property<std::int64_t> startup_timeout_ms;
  static const config::Property<std::int64_t> shutdown_timeout_ms;
  static const config::Property<std::string> log_level;
  static const config::Property<std::string> state_dir;
  static const config::Property<std::int64_t> state_memory_budget_bytes;

  // All of the above.
  static const config::ConfigDef& definition();
};

}  // namespace streamrun::runtime
