#pragma once

// Protection for calls to another service (issue 20): a circuit breaker per endpoint that stops
// calling a dependency that keeps failing, and a token-bucket rate limiter per endpoint. Both
// are shared by the tasks of one process, so both are thread-safe (a short mutex, never held
// across a wait: fibers on any worker thread may use them).

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace streamrun {

using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;

// closed (calls go through) -> open after `consecutive_failures` failures in a row, or once at
// least `minimum_calls` calls in the last `window` failed at a share of `failure_rate` or more
// -> half-open after `open_for` (up to `half_open_probes` calls go through) -> closed once all
// probes succeed, or open again (another `open_for`) as soon as one fails. Anchor:
// Resilience4j's count- and time-based breaker.
struct CircuitBreakerOptions {
  int consecutive_failures = 5;  // 0: only the failure rate opens it
  double failure_rate = 0.5;     // share of failed calls in the window, (0, 1]
  int minimum_calls = 20;        // in the window before the rate counts
  std::chrono::milliseconds window{10'000};
  std::chrono::milliseconds open_for{5'000};  // cool-down before probing
  int half_open_probes = 1;

  // Empty when valid; else what is wrong, naming the field.
  [[nodiscard]] std::string invalid() const;
};

class CircuitBreaker {
 public:
  enum class State { closed, open, half_open };
  // Told of every transition (for logs and metrics); called without the breaker's lock held,
  // on the thread whose call caused it.
  using Listener = std::function<void(State from, State to, const std::string& why)>;

  // `options` must be valid (invalid() empty); throws std::invalid_argument otherwise.
  CircuitBreaker(std::string name, CircuitBreakerOptions options,
                 SteadyClock clock = std::chrono::steady_clock::now);
  [[nodiscard]] const CircuitBreakerOptions& options() const noexcept { return options_; }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  // Whether a call may start now. While half-open, a true counts as one of the probes; the
  // caller must report its outcome (on_success / on_failure).
  [[nodiscard]] bool try_acquire();
  void on_success();
  void on_failure();
  // A call try_acquire() let through did not go out after all: gives back its probe.
  void release();

  // The state now (an open breaker whose cool-down is over reads as half-open).
  [[nodiscard]] State state();
  // While open: how long until probes may start (zero otherwise).
  [[nodiscard]] std::chrono::milliseconds retry_after();
  // Transitions so far: closed -> open, half-open -> open (a probe failed), -> closed.
  [[nodiscard]] std::int64_t times_opened() const;
  [[nodiscard]] std::int64_t times_reopened() const;
  [[nodiscard]] std::int64_t times_closed() const;

  void set_listener(Listener listener);

 private:
  struct Bucket {
    std::chrono::steady_clock::time_point start{};
    std::int64_t calls = 0;
    std::int64_t failures = 0;
  };
  struct Transition {
    State from;
    State to;
    std::string why;
  };
  // Under mutex_. Appends to `pending` what the listener must hear once the lock is released.
  void move_to(State to, std::string why, std::vector<Transition>& pending);
  void refresh(std::chrono::steady_clock::time_point now, std::vector<Transition>& pending);
  void record(bool failed, std::chrono::steady_clock::time_point now);
  void notify(const std::vector<Transition>& pending);

  const std::string name_;
  const CircuitBreakerOptions options_;
  const SteadyClock clock_;
  mutable std::mutex mutex_;
  State state_ = State::closed;
  int consecutive_ = 0;
  std::chrono::steady_clock::time_point opened_at_{};
  int probes_started_ = 0;
  int probes_succeeded_ = 0;
  std::vector<Bucket> buckets_;  // the window, in kBuckets slices
  std::int64_t opened_ = 0;
  std::int64_t reopened_ = 0;
  std::int64_t closed_ = 0;
  Listener listener_;
};

[[nodiscard]] const char* to_string(CircuitBreaker::State state) noexcept;

// A token bucket: `rate` permits per second on average, bursts of up to `burst` permits.
class RateLimiter {
 public:
  // `rate` > 0, `burst` >= 1; throws std::invalid_argument otherwise. Starts full.
  RateLimiter(double rate, double burst, SteadyClock clock = std::chrono::steady_clock::now);
  // Takes a permit and returns zero, or takes nothing and returns how long until one is free
  // (the caller waits on its fiber and asks again).
  [[nodiscard]] std::chrono::nanoseconds try_acquire();

 private:
  const double rate_;
  const double burst_;
  const SteadyClock clock_;
  std::mutex mutex_;
  double tokens_;
  std::chrono::steady_clock::time_point refilled_at_;
};

}  // namespace streamrun
