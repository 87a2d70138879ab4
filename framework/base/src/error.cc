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
class BaseCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "streamrun"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
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
    return "unknown error " + std::to_string(value);
  }
};
}  // namespace

const std::error_category& base_category() noexcept {
  static const BaseCategory category;
  return category;
}

}  // namespace streamrun
