#pragma once

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
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), base_category()};
}

}  // namespace streamrun

template <>
struct std::is_error_code_enum<streamrun::errc> : std::true_type {};
