#include <string>

#include <fmt/format.h>

#include <streamrun/base/errc.h>
#include <streamrun/base/ids.h>
#include <streamrun/base/result.h>

namespace streamrun {

Error Error::with_context(std::string_view context) const {
  return Error(code_, fmt::format("{}: {}", context, message_));
}

std::string to_string(const TopicPartition& tp) {
  return fmt::format("{}[{}]", tp.topic.value(), tp.partition.value());
}

std::string invalid_topic_name(std::string_view name) {
  constexpr std::size_t kMaxLength = 249;
  if (name.empty())
    return "is empty";
  if (name == "." || name == "..")
    return "may not be '.' or '..'";
  if (name.size() > kMaxLength)
    return fmt::format("is {} characters long; at most {} are allowed", name.size(), kMaxLength);
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool legal = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    if (!legal) {
      return fmt::format(
          "has '{}' at position {}; only letters, digits, '.', '_' and '-' are allowed", c, i + 1);
    }
  }
  return {};
}

namespace {
std::string_view describe(errc value) noexcept {
  switch (value) {
    case errc::invalid_argument:
      return "invalid argument";
    case errc::io_error:
      return "I/O error";
    case errc::timed_out:
      return "timed out";
    case errc::cancelled:
      return "cancelled";
    case errc::unavailable:
      return "unavailable";
  }
  return {};
}
}  // namespace

const std::error_category& base_category() noexcept {
  static const EnumCategory<errc> category("streamrun", describe);
  return category;
}

}  // namespace streamrun
