#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace streamrun {

// A record failed inside an operator (user code threw, or a serde could not convert it). Names
// the operator and keeps the original error's class and text, which dead letters carry.
class OperatorFailure : public std::runtime_error {
 public:
  OperatorFailure(std::string operator_name, std::string error_class, std::string error_message,
                  std::exception_ptr cause);

  [[nodiscard]] const std::string& operator_name() const noexcept { return operator_name_; }
  [[nodiscard]] const std::string& error_class() const noexcept { return error_class_; }
  [[nodiscard]] const std::string& error_message() const noexcept { return error_message_; }
  [[nodiscard]] const std::exception_ptr& cause() const noexcept { return cause_; }

  // Wraps the exception being handled (call inside a catch block) as a failure of `operator_name`.
  [[nodiscard]] static OperatorFailure from_current(const std::string& operator_name);

 private:
  std::string operator_name_;
  std::string error_class_;
  std::string error_message_;
  std::exception_ptr cause_;
};

// A failure of the infrastructure under a task, not of the record it was processing: a state
// store that cannot be read or written, a producer that can no longer send (fenced, fatal
// client error). Never retried, skipped or dead-lettered: it fails the task, and nothing after
// the task's last durable commit is committed. Operators let it pass through unchanged.
class InfrastructureError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace streamrun
