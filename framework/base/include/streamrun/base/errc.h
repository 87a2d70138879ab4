#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace streamrun {

// Errors that are not owned by one module: bad arguments, I/O and the like.
enum class errc {
  invalid_argument = 1,
  io_error,
  timed_out,
  cancelled,
  unavailable,
};

const std::error_category& base_category() noexcept;

// The error category of a module's errc enum: its name and a function that describes each
// value (an empty description for a value it does not know).
template <typename Enum>
class EnumCategory final : public std::error_category {
 public:
  using Describe = std::string_view (*)(Enum) noexcept;
  EnumCategory(const char* name, Describe describe) noexcept : name_(name), describe_(describe) {}
  const char* name() const noexcept override { return name_; }
  std::string message(int value) const override {
    const auto text = describe_(static_cast<Enum>(value));
    if (text.empty())
      return std::string(name_) + " error " + std::to_string(value);
    return std::string(text);
  }

 private:
  const char* name_;
  Describe describe_;
};
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), base_category()};
}

}  // namespace streamrun

template <>
struct std::is_error_code_enum<streamrun::errc> : std::true_type {};
