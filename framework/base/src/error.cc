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
