#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

namespace streamrun {

// An infrastructure failure: a machine-checkable code plus a message for humans that names what
// failed and where (key, address, topic/partition/offset).
class Error {
 public:
  Error(std::error_code code, std::string message) : code_(code), message_(std::move(message)) {}

  [[nodiscard]] const std::error_code& code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

  // Adds context in front, e.g. Error("timed out").with_context("commit orders[3]").
  [[nodiscard]] Error with_context(std::string_view context) const;

 private:
  std::error_code code_;
  std::string message_;
};

// Thrown by Result::value() on an error, and by start-up code that cannot go on.
class Failure : public std::runtime_error {
 public:
  explicit Failure(Error error) : std::runtime_error(error.message()), error_(std::move(error)) {}
  [[nodiscard]] const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

// Result of an infrastructure call: a value or an Error. [[nodiscard]] so that no error is
// dropped by accident; drop one on purpose with ignore_error("why"), which stays searchable.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  [[nodiscard]] bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  [[nodiscard]] T& value() & { return ok() ? std::get<0>(state_) : throw Failure(error()); }
  [[nodiscard]] const T& value() const& {
    return ok() ? std::get<0>(state_) : throw Failure(error());
  }
  // By value: `for (auto& x : make().value())` must not iterate a destroyed temporary.
  [[nodiscard]] T value() && {
    if (!ok())
      throw Failure(error());
    return std::get<0>(std::move(state_));
  }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  [[nodiscard]] const Error& error() const { return std::get<1>(state_); }
  void ignore_error(std::string_view /*why*/) const noexcept {}

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

  [[nodiscard]] bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  void value() const {
    if (error_)
      throw Failure(*error_);
  }
  [[nodiscard]] const Error& error() const { return *error_; }
  void ignore_error(std::string_view /*why*/) const noexcept {}

 private:
  std::optional<Error> error_;
};

inline Result<void> ok() {
  return {};
}

}  // namespace streamrun
