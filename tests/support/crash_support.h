#pragma once

// Helpers shared by the crash tests: observing another process's progress through a counter
// fed by a reader thread, and stopping that thread however a test ends.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace streamrun::testing {

// Waits until `counter` reaches `target` or `timeout` passes; true when it did. Sleeps 1 ms
// between looks: the counter is another process's output, seen through a reader thread.
inline bool await_count(const std::atomic<std::int64_t>& counter, std::int64_t target,
                        std::chrono::seconds timeout = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (counter.load() < target && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return counter.load() >= target;
}

// Clears `running` and joins `thread` when the scope ends (a failed assertion returns early),
// or earlier through stop().
class StopThreadAtExit {
 public:
  StopThreadAtExit(std::atomic<bool>& running, std::thread& thread)
      : running_(running), thread_(thread) {}
  ~StopThreadAtExit() { stop(); }
  StopThreadAtExit(const StopThreadAtExit&) = delete;
  StopThreadAtExit& operator=(const StopThreadAtExit&) = delete;
  void stop() {
    running_ = false;
    if (thread_.joinable())
      thread_.join();
  }

 private:
  std::atomic<bool>& running_;
  std::thread& thread_;
};

}  // namespace streamrun::testing
