#include <cxxabi.h>
#include <memory>
#include <typeinfo>

#include <streamrun/core/errors.h>

namespace streamrun {
namespace {

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> readable(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && readable ? std::string(readable.get()) : std::string(name);
}

}  // namespace

OperatorFailure::OperatorFailure(std::string operator_name, std::string error_class,
                                 std::string error_message, std::exception_ptr cause)
    : std::runtime_error("operator '" + operator_name + "' failed: " + error_class + ": " +
                         error_message),
      operator_name_(std::move(operator_name)),
      error_class_(std::move(error_class)),
      error_message_(std::move(error_message)),
      cause_(std::move(cause)) {}

OperatorFailure OperatorFailure::from_current(const std::string& operator_name) {
  auto current = std::current_exception();
  try {
    std::rethrow_exception(current);
  } catch (const std::exception& e) {
    return OperatorFailure(operator_name, demangle(typeid(e).name()), e.what(), current);
  } catch (...) {
    return OperatorFailure(operator_name, "unknown", "a non-standard exception was thrown",
                           current);
  }
}

}  // namespace streamrun
