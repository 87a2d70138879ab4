#pragma once

// What happens to a record that fails: it cannot be deserialized, an operator throws, or a
// serializer fails. A pipeline has one policy; an operator may override it.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <streamrun/core/record.h>

namespace streamrun {

class OperatorFailure;

struct ErrorPolicy {
  enum class Action {
    fail,         // stop the task with a clear error; nothing at or after the record commits
    skip,         // log, count, go on
    dead_letter,  // write the record to the dead-letter topic, then go on
  };
  // What to do once the retries (if any) are used up.
  Action action = Action::fail;
  // Attempts after the first; each waits a random delay in [0, min(max_backoff,
  // backoff * 2^(retry-1))] (exponential backoff with full jitter), and all together at most
  // max_total_delay.
  int retries = 0;
  std::chrono::milliseconds backoff{100};
  std::chrono::milliseconds max_backoff{10'000};
  std::chrono::milliseconds max_total_delay{60'000};
  // `${application.id}` is replaced by the application id.
  std::string dead_letter_topic = "${application.id}-dead-letter";

  [[nodiscard]] static ErrorPolicy fail() { return {}; }
  [[nodiscard]] static ErrorPolicy skip() {
    ErrorPolicy policy;
    policy.action = Action::skip;
    return policy;
  }
  [[nodiscard]] static ErrorPolicy dead_letter(std::string topic = {}) {
    ErrorPolicy policy;
    policy.action = Action::dead_letter;
    if (!topic.empty())
      policy.dead_letter_topic = std::move(topic);
    return policy;
  }
  [[nodiscard]] ErrorPolicy with_retries(int count) const {
    ErrorPolicy policy = *this;
    policy.retries = count;
    return policy;
  }

  // The delay before retry number `retry` (1-based): `unit_random` in [0, 1) scaled to
  // [0, min(max_backoff, backoff * 2^(retry-1))], and cut so that `spent` plus it stays within
  // max_total_delay.
  [[nodiscard]] std::chrono::milliseconds retry_delay(int retry, std::chrono::milliseconds spent,
                                                      double unit_random) const;
  [[nodiscard]] bool may_retry(int retries_done, std::chrono::milliseconds spent) const {
    return retries_done < retries && spent < max_total_delay;
  }
};

[[nodiscard]] std::string_view to_string(ErrorPolicy::Action action);

// Headers a dead letter gains (besides the original record's own).
namespace dead_letter_header {
inline constexpr std::string_view source_topic = "streamrun.source.topic";
inline constexpr std::string_view source_partition = "streamrun.source.partition";
inline constexpr std::string_view source_offset = "streamrun.source.offset";
inline constexpr std::string_view error_class = "streamrun.error.class";
inline constexpr std::string_view error_message = "streamrun.error.message";
inline constexpr std::string_view attempts = "streamrun.error.attempts";
inline constexpr std::string_view application_id = "streamrun.application.id";
inline constexpr std::string_view operator_name = "streamrun.operator";
inline constexpr std::string_view failure_time = "streamrun.failure.time.ms";
}  // namespace dead_letter_header

// The dead letter for `failed`: its key, value and headers as read, plus the headers above.
[[nodiscard]] RawRecord make_dead_letter(const RawRecord& failed, const OperatorFailure& failure,
                                         int attempts, std::string_view application_id,
                                         std::int64_t now_ms);

}  // namespace streamrun
