#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/future.hpp>

namespace streamrun::runtime {

// A fixed set of threads, each running its own fiber scheduler (round robin). launch() starts a
// fiber on a chosen thread; fibers never migrate, so placement is explicit and one
// application's pool never runs another's fibers. Fiber primitives (channels, mutexes,
// condition variables, futures) work across the threads.
//
// Lifecycle: threads start in the constructor. Every launched fiber must have finished before
// the destructor runs (wait on the futures launch() returns).
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  [[nodiscard]] int size() const noexcept { return static_cast<int>(threads_.size()); }

  // Runs `job` as a fiber on thread `index % size()`; the future is ready when it returns
  // (or holds what it threw).
  boost::fibers::future<void> launch(int index, std::function<void()> job);

 private:
  using Launcher = boost::fibers::buffered_channel<std::function<void()>>;
  std::vector<std::unique_ptr<Launcher>> launchers_;
  std::vector<std::thread> threads_;
};

}  // namespace streamrun::runtime
