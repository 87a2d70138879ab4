#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <streamrun/base/result.h>

namespace streamrun::testing {

// A program started by a test, with its stdout readable line by line (stderr is inherited so
// that its logs land in the test's output, unless merged). A thread reads the output as it
// comes, so that a child writing more than a pipe holds never blocks on a test that reads
// only the start. The destructor kills it (SIGKILL) if still running.
class ChildProcess {
 public:
  // `merge_stderr`: read stderr through the same pipe (to assert on error messages).
  [[nodiscard]] static Result<ChildProcess> spawn(const std::string& program,
                                                  const std::vector<std::string>& args,
                                                  bool merge_stderr = false);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  // Next line of stdout without the newline; nullopt at end of output or after the timeout.
  [[nodiscard]] std::optional<std::string> read_line(std::chrono::milliseconds timeout);

  // Reads stdout until a line contains `needle`; returns that line.
  [[nodiscard]] std::optional<std::string> wait_for_line(std::string_view needle,
                                                         std::chrono::milliseconds timeout);

  void signal(int signo) const;

  // Waits for the process to end; returns its exit status (128 + signal when killed), or
  // nullopt on timeout.
  [[nodiscard]] std::optional<int> wait(std::chrono::milliseconds timeout);

  // Everything read from stdout so far, lines joined with '\n'.
  [[nodiscard]] const std::string& output() const noexcept { return output_; }

 private:
  struct Pipe;
  ChildProcess(pid_t pid, int stdout_fd);

  pid_t pid_ = -1;
  std::unique_ptr<Pipe> pipe_;  // read by its own thread
  std::string output_;
  std::optional<int> exit_status_;
};

}  // namespace streamrun::testing
