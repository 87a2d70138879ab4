#pragma once

// ThreadSanitizer builds only (STREAMRUN_SANITIZE=thread; GCC defines __SANITIZE_THREAD__):
// tells TSan about Boost.Fiber's context switches. See docs/sanitizers.md.
//
// TSan keeps one shadow call stack and one vector clock per thread. Boost.Fiber switches stacks
// inside libboost_fiber.so / libboost_context.so, which TSan cannot see, so without this every
// fiber of a thread shares one state: stacks in reports are garbage and the shadow call stack
// is corrupted by frames pushed on one fiber and popped on another. TSan's fiber API gives each
// fiber its own state; it has to be told, right before each switch, which fiber runs next.
//
// Boost.Fiber 1.74 switches in exactly one kind of place: the scheduler asks its algorithm for
// the next ready context (algorithm::pick_next()) and resumes it at once (scheduler::suspend,
// yield, wait_until, terminate and dispatch all do `algo_->pick_next()->resume...()`), with
// only uninstrumented library code in between. So TsanRoundRobin wraps Boost's round_robin and
// calls __tsan_switch_to_fiber() in pick_next(). Two more moments need care:
//  - A finished fiber's stack is unwound and freed when its context is destroyed (the
//    dispatcher's release_terminated_(): ~context destroys the boost::context::fiber, which
//    resumes the dead stack with forced_unwind, and fiber_exit frees it from there). Frames of
//    our code are popped during that unwinding, so TSan must be on the dying fiber's state: the
//    FiberState destructor (which ~context runs first) switches to it, and the TSan fiber is
//    destroyed at the next switch away from it ("retired"). Only library code runs in between.
//  - The dispatcher returns to the main context without pick_next() when the scheduler shuts
//    down (thread exit); the dispatcher's FiberState destructor, which runs right after on the
//    main context, switches back to the thread's own TSan fiber.
//
// Every switch is a synchronizing one (flags 0): fibers of one thread run one after the other,
// so everything a fiber did happens before what the next fiber on that thread does. Hand-offs
// between threads are NOT implied by this; they are made visible where they happen (the
// spinlocks of buffered_channel are header code and instrumented; boost::fibers::mutex is
// annotated by the shim in tsan_support.cc).
//
// The functions that switch are no_sanitize_thread: an instrumented function would push its
// frame on one fiber's shadow stack and pop it from the next one's.

#if defined(__SANITIZE_THREAD__)

#include <chrono>

#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/algo/round_robin.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/properties.hpp>
#include <boost/fiber/type.hpp>

extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_set_fiber_name(void* fiber, const char* name);
}

namespace streamrun::runtime::tsan {

// Per thread: the TSan fiber of the thread itself, recorded by TsanRoundRobin's constructor,
// and the TSan fiber of a destroyed context, still current while its stack is unwound. Contexts
// get and lose their FiberState on the thread that owns them (awakened() is never called from
// another thread: Boost.Fiber queues remote wake-ups and the owner thread moves them over).
struct ThreadFibers {
  void* thread_fiber = nullptr;
  void* retired = nullptr;
};
inline thread_local ThreadFibers t_fibers;

__attribute__((no_sanitize_thread)) inline void destroy_retired_fiber() noexcept {
  if (t_fibers.retired != nullptr && t_fibers.retired != __tsan_get_current_fiber()) {
    __tsan_destroy_fiber(t_fibers.retired);
    t_fibers.retired = nullptr;
  }
}

// One per Boost.Fiber context (fiber properties live exactly as long as their context): the
// TSan fiber that stands for it. The main context is the thread itself.
class FiberState final : public boost::fibers::fiber_properties {
 public:
  __attribute__((no_sanitize_thread)) explicit FiberState(boost::fibers::context* ctx) noexcept
      : fiber_properties(ctx), thread_fiber_(t_fibers.thread_fiber) {
    if (ctx->is_context(boost::fibers::type::main_context)) {
      fiber_ = thread_fiber_;
    } else {
      fiber_ = __tsan_create_fiber(0);
      __tsan_set_fiber_name(fiber_, ctx->is_context(boost::fibers::type::dispatcher_context)
                                        ? "boost.fiber dispatcher"
                                        : "boost.fiber worker fiber");
    }
  }

  __attribute__((no_sanitize_thread)) ~FiberState() override {
    if (fiber_ == thread_fiber_)
      return;  // the main context: the thread itself
    if (ctx_->is_context(boost::fibers::type::dispatcher_context)) {
      // Destroyed by the scheduler's destructor, on the main context, which the dispatcher
      // resumed without pick_next().
      if (__tsan_get_current_fiber() != thread_fiber_)
        __tsan_switch_to_fiber(thread_fiber_, 0);
      destroy_retired_fiber();
      __tsan_destroy_fiber(fiber_);
      return;
    }
    // A worker: right after this destructor, ~context unwinds and frees its stack.
    __tsan_switch_to_fiber(fiber_, 0);
    destroy_retired_fiber();  // the one retired before, if any, is no longer current
    t_fibers.retired = fiber_;
  }

  FiberState(const FiberState&) = delete;
  FiberState& operator=(const FiberState&) = delete;

  [[nodiscard]] void* fiber() const noexcept { return fiber_; }

 private:
  void* thread_fiber_;
  void* fiber_;
};

// Boost's round_robin, plus the TSan fiber switch. Install it on a thread before that thread
// runs fibers: boost::fibers::use_scheduling_algorithm<TsanRoundRobin>().
class TsanRoundRobin final : public boost::fibers::algo::algorithm_with_properties<FiberState> {
 public:
  __attribute__((no_sanitize_thread)) TsanRoundRobin() noexcept {
    t_fibers.thread_fiber = __tsan_get_current_fiber();
  }

  __attribute__((no_sanitize_thread)) void awakened(boost::fibers::context* ctx,
                                                    FiberState&) noexcept override {
    inner_.awakened(ctx);
  }

  // The scheduler resumes the returned context right away.
  __attribute__((no_sanitize_thread)) boost::fibers::context* pick_next() noexcept override {
    boost::fibers::context* next = inner_.pick_next();
    if (next != nullptr) {
      __tsan_switch_to_fiber(properties(next).fiber(), 0);
      destroy_retired_fiber();
    }
    return next;
  }

  __attribute__((no_sanitize_thread)) bool has_ready_fibers() const noexcept override {
    return inner_.has_ready_fibers();
  }

  __attribute__((no_sanitize_thread)) void suspend_until(
      std::chrono::steady_clock::time_point const& until) noexcept override {
    inner_.suspend_until(until);
  }

  __attribute__((no_sanitize_thread)) void notify() noexcept override { inner_.notify(); }

 private:
  boost::fibers::algo::round_robin inner_;
};

}  // namespace streamrun::runtime::tsan

#endif  // __SANITIZE_THREAD__
