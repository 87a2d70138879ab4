#include "worker_pool.h"

#include <boost/fiber/fiber.hpp>
#include <boost/fiber/future/packaged_task.hpp>

namespace streamrun::runtime {

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; ++i)
    launchers_.push_back(std::make_unique<Launcher>(64));
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([launcher = launchers_[static_cast<std::size_t>(i)].get()] {
      std::function<void()> job;
      // The thread's main fiber waits here; launched fibers run whenever it waits.
      while (launcher->pop(job) == boost::fibers::channel_op_status::success) {
        boost::fibers::fiber(std::move(job)).detach();
      }
    });
  }
}

WorkerPool::~WorkerPool() {
  for (auto& launcher : launchers_)
    launcher->close();
  for (auto& thread : threads_)
    thread.join();
}

boost::fibers::future<void> WorkerPool::launch(int index, std::function<void()> job) {
  boost::fibers::packaged_task<void()> task(std::move(job));
  auto future = task.get_future();
  auto shared = std::make_shared<boost::fibers::packaged_task<void()>>(std::move(task));
  launchers_[static_cast<std::size_t>(index % size())]->push([shared] { (*shared)(); });
  return future;
}

}  // namespace streamrun::runtime
