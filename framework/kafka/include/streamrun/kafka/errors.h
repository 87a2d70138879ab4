#pragma once

#include <system_error>

namespace streamrun::kafka {

// What callers branch on. The librdkafka error name stays in the Error message.
enum class errc {
  queue_full = 1,    // producer queue full: poll and try again, never drop
  timed_out,         // the operation did not finish in time
  unreachable,       // no broker could be reached
  invalid_config,    // librdkafka refused a property
  unknown_topic,     // topic or partition does not exist
  record_too_large,  // the record can never be delivered
  delivery_failed,   // the broker did not acknowledge the record
  commit_failed,     // offset commit was refused
  rebalance_in_progress,
  fatal,        // the client cannot continue (e.g. idempotence violated)
  closed,       // the client was closed
  port_in_use,  // development broker could not listen
  other,
};

const std::error_category& kafka_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), kafka_category()};
}

}  // namespace streamrun::kafka

template <>
struct std::is_error_code_enum<streamrun::kafka::errc> : std::true_type {};
