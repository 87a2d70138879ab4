#include "worker_pool.h"

#include <vector>

#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/future/packaged_task.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/protected_fixedsize_stack.hpp>

#include "tsan_fibers.h"  // ThreadSanitizer builds only

namespace streamrun::runtime {
namespace {

// Operator code, serdes, logging and exception unwinding all run on fiber stacks. Boost's
// default (64 KiB, no guard page) is too small for that and overflows silently into the heap;
// these stacks are larger and end in a guard page, so an overflow is a clean crash. Only the
// pages a fiber touches are backed by memory.
constexpr std::size_t kFiberStackBytes = 1024 * 1024;

}  // namespace

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; ++i)
    launchers_.push_back(std::make_unique<Launcher>(64));
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([launcher = launchers_[static_cast<std::size_t>(i)].get()] {
#if defined(__SANITIZE_THREAD__)
      // Tells TSan about every fiber switch on this thread (docs/sanitizers.md).
      boost::fibers::use_scheduling_algorithm<tsan::TsanRoundRobin>();
#endif
      std::function<void()> job;
      // Fibers are detached so that a finished one gives its stack back at once (tasks come
      // and go with every rebalance); a count tells the thread when all have ended.
      std::size_t live = 0;
      boost::fibers::mutex mutex;
      boost::fibers::condition_variable ended;
      // The thread's main fiber waits here; launched fibers run whenever it waits.
      while (launcher->pop(job) == boost::fibers::channel_op_status::success) {
        ++live;
        boost::fibers::fiber(std::allocator_arg,
                             boost::fibers::protected_fixedsize_stack(kFiberStackBytes),
                             [job = std::move(job), &live, &mutex, &ended] {
                               job();
                               std::lock_guard lock(mutex);
                               --live;
                               ended.notify_all();
                             })
            .detach();
      }
      // The thread (and its scheduler) must not end while one of its fibers runs. The last
      // fiber ends right after notifying: nothing in it can suspend after the unlock.
      std::unique_lock lock(mutex);
      ended.wait(lock, [&] { return live == 0; });
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
