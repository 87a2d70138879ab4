#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include <streamrun/base/errc.h>
#include <streamrun/testing/child_process.h>

extern char** environ;

namespace streamrun::testing {

Result<ChildProcess> ChildProcess::spawn(const std::string& program,
                                         const std::vector<std::string>& args, bool merge_stderr) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return Error(errc::io_error, fmt::format("pipe for '{}': {}", program, std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  if (merge_stderr)
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& arg : args)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return Error(errc::io_error, fmt::format("cannot start '{}': {}", program, std::strerror(rc)));
  }
  return ChildProcess(pid, fds[0]);
}

// The child's output, read by a thread of its own into `buffer` as it comes.
struct ChildProcess::Pipe {
  explicit Pipe(int descriptor) : fd(descriptor) {}
  ~Pipe() {
    stop = true;
    if (reader.joinable())
      reader.join();
    if (fd >= 0)
      close(fd);
  }
  void read_all() {
    char chunk[4096];
    while (!stop) {
      pollfd pfd{fd, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, 100);  // to see `stop`: a grandchild may hold the pipe
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready == 0)
        continue;
      const auto n = ready < 0 ? -1 : ::read(fd, chunk, sizeof chunk);
      std::lock_guard lock(mutex);
      if (n <= 0) {
        closed = true;
        if (!buffer.empty() && buffer.back() != '\n')
          buffer += '\n';  // last line without a newline
        more.notify_all();
        return;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
      more.notify_all();
    }
  }

  int fd;
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::condition_variable more;
  std::string buffer;  // read, not taken by read_line() yet
  bool closed = false;
  std::thread reader;
};

ChildProcess::ChildProcess(pid_t pid, int stdout_fd)
    : pid_(pid), pipe_(std::make_unique<Pipe>(stdout_fd)) {
  pipe_->reader = std::thread([pipe = pipe_.get()] { pipe->read_all(); });
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pipe_(std::move(other.pipe_)),
      output_(std::move(other.output_)),
      exit_status_(other.exit_status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    this->~ChildProcess();
    new (this) ChildProcess(std::move(other));
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exit_status_) {
    ::kill(pid_, SIGKILL);
    static_cast<void>(wait(std::chrono::seconds(10)));
  }
  pipe_.reset();  // stops and joins the reader
}

std::optional<std::string> ChildProcess::read_line(std::chrono::milliseconds timeout) {
  if (!pipe_)
    return std::nullopt;
  std::unique_lock lock(pipe_->mutex);
  std::size_t newline = std::string::npos;
  const bool ready = pipe_->more.wait_for(lock, timeout, [&] {
    newline = pipe_->buffer.find('\n');
    return newline != std::string::npos || pipe_->closed;
  });
  if (!ready || newline == std::string::npos)
    return std::nullopt;
  std::string line = pipe_->buffer.substr(0, newline);
  pipe_->buffer.erase(0, newline + 1);
  lock.unlock();
  if (!output_.empty())
    output_ += '\n';
  output_ += line;
  return line;
}

std::optional<std::string> ChildProcess::wait_for_line(std::string_view needle,
                                                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return std::nullopt;
    auto line = read_line(left);
    if (!line)
      return std::nullopt;
    if (line->find(needle) != std::string::npos)
      return line;
  }
}

void ChildProcess::signal(int signo) const {
  if (pid_ > 0 && !exit_status_)
    ::kill(pid_, signo);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (exit_status_)
    return exit_status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_status_;
    }
    if (done < 0 && errno != EINTR)
      return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline)
      return std::nullopt;
    // No portable way to wait for a child with a timeout before pidfd; 5 ms granularity is
    // plenty for tests.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace streamrun::testing
