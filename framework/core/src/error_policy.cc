#include <algorithm>
#include <cmath>
#include <string>

#include <streamrun/core/error_policy.h>
#include <streamrun/core/errors.h>

namespace streamrun {

std::chrono::milliseconds ErrorPolicy::retry_delay(int retry, std::chrono::milliseconds spent,
                                                   double unit_random) const {
  const double ceiling =
      std::min(static_cast<double>(max_backoff.count()),
               static_cast<double>(backoff.count()) * std::ldexp(1.0, std::max(0, retry - 1)));
  auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(ceiling * unit_random));
  return std::clamp(delay, std::chrono::milliseconds(0),
                    std::max(std::chrono::milliseconds(0), max_total_delay - spent));
}

std::string_view to_string(ErrorPolicy::Action action) {
  switch (action) {
    case ErrorPolicy::Action::fail:
      return "fail";
    case ErrorPolicy::Action::skip:
      return "skip";
    case ErrorPolicy::Action::dead_letter:
      return "dead_letter";
  }
  return "?";
}

RawRecord make_dead_letter(const RawRecord& failed, const OperatorFailure& failure, int attempts,
                           std::string_view application_id, std::int64_t now_ms) {
  RawRecord letter = failed;
  auto add = [&](std::string_view key, std::string value) {
    letter.headers.push_back({std::string(key), std::move(value)});
  };
  add(dead_letter_header::source_topic, failed.origin.topic);
  add(dead_letter_header::source_partition, std::to_string(failed.origin.partition));
  add(dead_letter_header::source_offset, std::to_string(failed.origin.offset));
  add(dead_letter_header::error_class, failure.error_class());
  add(dead_letter_header::error_message, failure.error_message());
  add(dead_letter_header::attempts, std::to_string(attempts));
  add(dead_letter_header::application_id, std::string(application_id));
  add(dead_letter_header::operator_name, failure.operator_name());
  add(dead_letter_header::failure_time, std::to_string(now_ms));
  return letter;
}

}  // namespace streamrun
