// ThreadSanitizer support library: built and linked ONLY when STREAMRUN_SANITIZE=thread
// (cmake/StreamrunTsan.cmake), into every streamrun executable and test. Never part of a
// release build. See docs/sanitizers.md.
//
// It is a shared library that every TSan binary lists before libc, and it is compiled WITHOUT
// -fsanitize=thread: it only forwards to functions TSan intercepts or to TSan's annotation
// API, and some of it runs while TSan initializes.
//
// 1. C11 threads. librdkafka 2.0.2 creates its threads and locks with C11 <threads.h>
//    (thrd_create, mtx_lock, cnd_wait, call_once; `nm -D librdkafka.so.1`). In glibc >= 2.34
//    those call the pthread implementation internally, not through the PLT, and GCC 12's TSan
//    has no interceptors for them: librdkafka's threads would run without TSan thread state
//    (crashing in TSan's runtime) and its mutexes would synchronize nothing TSan can see.
//    Defining the C11 functions here, on top of pthread_* (which TSan does intercept), fixes
//    both. glibc defines mtx_t / cnd_t / once_flag as the pthread objects of the same size,
//    so the storage is reinterpreted, exactly as glibc itself does.
//
// 2. boost::fibers::mutex. Its lock()/unlock() live in libboost_fiber.so (not instrumented)
//    and synchronize through atomics TSan cannot see. Fiber futures (shared_state) and fiber
//    condition variables rely on it for every hand-off between threads. The wrappers below
//    take the place of those three exported functions (same mangled names; libboost_fiber.so
//    calls them through its PLT too), call the real ones, and tell TSan:
//    acquire(mutex) after locking, release(mutex) before unlocking. Likewise the two
//    context functions that unlock a header-locked spinlock inside the library.
//
// 3. TSan's default options and the reviewed suppressions (tests/tsan.supp, compiled in).

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
}

namespace {

int c11_result(int pthread_error) {
  switch (pthread_error) {
    case 0:
      return thrd_success;
    case ENOMEM:
      return thrd_nomem;
    case ETIMEDOUT:
      return thrd_timedout;
    case EBUSY:
      return thrd_busy;
    default:
      return thrd_error;
  }
}

// librdkafka's mutexes and condition variables live in objects librdkafka allocates, hands to
// other threads and frees under its own (invisible) atomic reference counts. TSan would check
// the mutex object's memory itself (init/destroy against lock) and report every such hand-off.
// The calls below are made from our executable, so `called_from_lib:librdkafka.so.1`
// (tests/tsan.supp) does not cover them: ignore their memory accesses here in the same way.
// Only plain memory accesses are ignored; the lock/unlock/wait synchronization is still seen.
template <typename Call>
int ignoring_object_accesses(Call call) {
  __tsan_ignore_thread_begin();
  const int result = call();
  __tsan_ignore_thread_end();
  return result;
}

pthread_mutex_t* as_pthread(mtx_t* mutex) {
  return reinterpret_cast<pthread_mutex_t*>(mutex);
}
pthread_cond_t* as_pthread(cnd_t* cond) {
  return reinterpret_cast<pthread_cond_t*>(cond);
}

static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t));
static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t));
static_assert(sizeof(once_flag) == sizeof(pthread_once_t));
static_assert(sizeof(thrd_t) == sizeof(pthread_t));

struct C11Start {
  thrd_start_t function;
  void* argument;
};

void* run_c11_thread(void* start_argument) {
  const C11Start start = *static_cast<C11Start*>(start_argument);
  free(start_argument);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.function(start.argument)));
}

[[noreturn]] void missing(const char* symbol) {
  fprintf(stderr, "streamrun tsan support: cannot find %s: %s\n", symbol, dlerror());
  abort();
}

template <typename Function>
Function next_definition(const char* symbol) {
  void* found = dlsym(RTLD_NEXT, symbol);
  if (found == nullptr)
    missing(symbol);
  return reinterpret_cast<Function>(found);
}

}  // namespace

extern "C" {

// ---- 1. C11 threads on pthreads -----------------------------------------------------------

int thrd_create(thrd_t* thread, thrd_start_t function, void* argument) {
  auto* start = static_cast<C11Start*>(malloc(sizeof(C11Start)));
  if (start == nullptr)
    return thrd_nomem;
  *start = {function, argument};
  const int error = pthread_create(thread, nullptr, run_c11_thread, start);
  if (error != 0)
    free(start);
  return error == EAGAIN ? thrd_nomem : c11_result(error);
}

int thrd_join(thrd_t thread, int* result) {
  void* value = nullptr;
  const int error = pthread_join(thread, &value);
  if (error == 0 && result != nullptr)
    *result = static_cast<int>(reinterpret_cast<intptr_t>(value));
  return c11_result(error);
}

int thrd_detach(thrd_t thread) {
  return c11_result(pthread_detach(thread));
}

[[noreturn]] void thrd_exit(int result) {
  pthread_exit(reinterpret_cast<void*>(static_cast<intptr_t>(result)));
}

thrd_t thrd_current(void) {
  return pthread_self();
}

void thrd_yield(void) {
  sched_yield();
}

int mtx_init(mtx_t* mutex, int type) {
  pthread_mutexattr_t attributes;
  pthread_mutexattr_init(&attributes);
  if ((type & mtx_recursive) != 0)
    pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
  const int error =
      ignoring_object_accesses([&] { return pthread_mutex_init(as_pthread(mutex), &attributes); });
  pthread_mutexattr_destroy(&attributes);
  return c11_result(error);
}

int mtx_lock(mtx_t* mutex) {
  return c11_result(
      ignoring_object_accesses([&] { return pthread_mutex_lock(as_pthread(mutex)); }));
}

int mtx_trylock(mtx_t* mutex) {
  return c11_result(
      ignoring_object_accesses([&] { return pthread_mutex_trylock(as_pthread(mutex)); }));
}

int mtx_timedlock(mtx_t* __restrict mutex, const struct timespec* __restrict deadline) {
  return c11_result(ignoring_object_accesses(
      [&] { return pthread_mutex_timedlock(as_pthread(mutex), deadline); }));
}

int mtx_unlock(mtx_t* mutex) {
  return c11_result(
      ignoring_object_accesses([&] { return pthread_mutex_unlock(as_pthread(mutex)); }));
}

void mtx_destroy(mtx_t* mutex) {
  ignoring_object_accesses([&] { return pthread_mutex_destroy(as_pthread(mutex)); });
}

int cnd_init(cnd_t* cond) {
  return c11_result(
      ignoring_object_accesses([&] { return pthread_cond_init(as_pthread(cond), nullptr); }));
}

int cnd_signal(cnd_t* cond) {
  return c11_result(
      ignoring_object_accesses([&] { return pthread_cond_signal(as_pthread(cond)); }));
}

int cnd_broadcast(cnd_t* cond) {
  return c11_result(
      ignoring_object_accesses([&] { return pthread_cond_broadcast(as_pthread(cond)); }));
}

int cnd_wait(cnd_t* cond, mtx_t* mutex) {
  return c11_result(ignoring_object_accesses(
      [&] { return pthread_cond_wait(as_pthread(cond), as_pthread(mutex)); }));
}

int cnd_timedwait(cnd_t* __restrict cond, mtx_t* __restrict mutex,
                  const struct timespec* __restrict deadline) {
  return c11_result(ignoring_object_accesses(
      [&] { return pthread_cond_timedwait(as_pthread(cond), as_pthread(mutex), deadline); }));
}

void cnd_destroy(cnd_t* cond) {
  ignoring_object_accesses([&] { return pthread_cond_destroy(as_pthread(cond)); });
}

void call_once(once_flag* flag, void (*function)(void)) {
  pthread_once(reinterpret_cast<pthread_once_t*>(flag), function);
}

// ---- 2. boost::fibers::mutex, made visible ------------------------------------------------
// Member functions are called with `this` as the first argument (Itanium C++ ABI).

#define STREAMRUN_FIBER_MUTEX_LOCK "_ZN5boost6fibers5mutex4lockEv"
#define STREAMRUN_FIBER_MUTEX_TRY_LOCK "_ZN5boost6fibers5mutex8try_lockEv"
#define STREAMRUN_FIBER_MUTEX_UNLOCK "_ZN5boost6fibers5mutex6unlockEv"

void streamrun_tsan_fiber_mutex_lock(void* self) __asm__(STREAMRUN_FIBER_MUTEX_LOCK);
bool streamrun_tsan_fiber_mutex_try_lock(void* self) __asm__(STREAMRUN_FIBER_MUTEX_TRY_LOCK);
void streamrun_tsan_fiber_mutex_unlock(void* self) __asm__(STREAMRUN_FIBER_MUTEX_UNLOCK);

void streamrun_tsan_fiber_mutex_lock(void* self) {
  static const auto real = next_definition<void (*)(void*)>(STREAMRUN_FIBER_MUTEX_LOCK);
  real(self);  // may suspend this fiber; TSan's fiber state follows (tsan_fibers.h)
  __tsan_acquire(self);
}

bool streamrun_tsan_fiber_mutex_try_lock(void* self) {
  static const auto real = next_definition<bool (*)(void*)>(STREAMRUN_FIBER_MUTEX_TRY_LOCK);
  const bool locked = real(self);
  if (locked)
    __tsan_acquire(self);
  return locked;
}

void streamrun_tsan_fiber_mutex_unlock(void* self) {
  static const auto real = next_definition<void (*)(void*)>(STREAMRUN_FIBER_MUTEX_UNLOCK);
  __tsan_release(self);
  real(self);
}

// Boost.Fiber's header code (buffered_channel, condition_variable_any::wait) locks its
// detail::spinlock inline, which TSan sees, but parks the fiber with context::suspend(lk) or
// context::wait_until(tp, lk), and those unlock that spinlock inside libboost_fiber.so, which
// TSan does not see: the next locker, on another thread, would not be ordered after what this
// fiber did under the lock (the channel's slots and wait queue). Release the spinlock's
// address (the atomic the header code acquires) before handing over.
// unique_lock<spinlock_ttas> holds the spinlock's address as its first member (libstdc++).

#define STREAMRUN_CONTEXT_SUSPEND_LK \
  "_ZN5boost6fibers7context7suspendERSt11unique_lockINS0_6detail13spinlock_ttasEE"
#define STREAMRUN_CONTEXT_WAIT_UNTIL_LK                                                       \
  "_ZN5boost6fibers7context10wait_untilERKNSt6chrono10time_pointINS2_3_V212steady_clockENS2_" \
  "8durationIlSt5ratioILl1ELl1000000000EEEEEERSt11unique_lockINS0_6detail13spinlock_ttasEE"

void streamrun_tsan_context_suspend(void* self, void* lock) __asm__(STREAMRUN_CONTEXT_SUSPEND_LK);
bool streamrun_tsan_context_wait_until(void* self, const void* deadline,
                                       void* lock) __asm__(STREAMRUN_CONTEXT_WAIT_UNTIL_LK);

void streamrun_tsan_context_suspend(void* self, void* lock) {
  static const auto real = next_definition<void (*)(void*, void*)>(STREAMRUN_CONTEXT_SUSPEND_LK);
  __tsan_release(*static_cast<void**>(lock));
  real(self, lock);
}

bool streamrun_tsan_context_wait_until(void* self, const void* deadline, void* lock) {
  static const auto real =
      next_definition<bool (*)(void*, const void*, void*)>(STREAMRUN_CONTEXT_WAIT_UNTIL_LK);
  __tsan_release(*static_cast<void**>(lock));
  return real(self, deadline, lock);
}

// ---- 3. Options and suppressions ----------------------------------------------------------
// TSAN_OPTIONS in the environment still applies on top of these.

const char* __tsan_default_options(void) {
  return "second_deadlock_stack=1:history_size=4";
}

const char* __tsan_default_suppressions(void) {
  extern const char streamrun_tsan_suppressions[];
  return streamrun_tsan_suppressions;
}

}  // extern "C"
