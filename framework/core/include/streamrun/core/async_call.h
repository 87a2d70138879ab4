#pragma once

// Calls to other services from a pipeline without blocking its thread (anchor: Flink's Async
// I/O). An async call operator hands each record to a call function, which starts a request on
// an I/O client (streamrun::http::Client, or any client with its own threads) and returns at
// once; the client completes the call later from its own thread. The task goes on with other
// records meanwhile, up to `capacity` calls in flight, and passes each result on (in input
// order by default) once its call finished.
//
// Delivery: at least once toward the service. A record's input offset is committed only once
// its call finished and its result went downstream; a crash or a rebalance while calls are in
// flight makes whoever reads the partition next call again. Send an idempotency key (the
// record's topic/partition/offset, or a business id) so the service can tell.
//
// Failures: a call either succeeds, is rejected (this record's fault: not retried; the
// operator's error policy applies at once) or fails (timeout, connection refused, HTTP 5xx,
// 408, 429: retried with exponential backoff and full jitter, and counted by the endpoint's
// circuit breaker). When its retries are used up, a failing call is the record's fault (its
// error policy applies: dead letter, skip or fail) only if the breaker is closed and other calls
// to the endpoint succeeded since this one first failed. Otherwise it is an outage: the call
// waits, the breaker opens, the task takes no new records (its partitions pause and records
// wait in Kafka) and probes start after the breaker's cool-down; nothing is dead-lettered
// because of an outage unless `when_open` asks for that degradation.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <streamrun/core/circuit_breaker.h>

namespace streamrun {

// How a call ended, as its client reports it.
enum class CallStatus {
  ok,
  rejected,  // the service refused this request: the record's fault, not retried
  failed,    // no usable answer (timeout, refused connection, 5xx): retried, counted as failure
};

// What a task does with calls to an endpoint while its breaker is open.
enum class WhenOpen {
  wait,         // (default) keep the records, take no new ones, probe after the cool-down
  fail,         // fail the task
  skip,         // skip the record (logged and counted)
  dead_letter,  // write the record to the operator's dead-letter topic
  fallback,     // pass on the fallback value instead of a result
};

struct AsyncCallOptions {
  // Calls to one endpoint share a circuit breaker and a rate limiter in the process (per
  // application). Empty: the operator's name.
  std::string endpoint;
  // Calls in flight per task (started, waiting for a retry, or finished but not yet passed on in
  // order). The task takes no new record while this many are.
  std::size_t capacity = 16;
  // Per call: a call without an answer by then fails (and may be retried).
  std::chrono::milliseconds timeout{5'000};
  // Results in input order (default), or as they complete.
  bool ordered = true;
  // Retries of a failed call: exponential backoff with full jitter, as ErrorPolicy's.
  int retries = 3;
  std::chrono::milliseconds backoff{100};
  std::chrono::milliseconds max_backoff{5'000};
  // nullopt: no breaker (every failure is retried, then is the record's once retries run out).
  std::optional<CircuitBreakerOptions> breaker = CircuitBreakerOptions{};
  // Calls per second to the endpoint from this process; 0: unlimited. Bursts of up to `burst`
  // (0: max(1, rate_limit)).
  double rate_limit = 0;
  double burst = 0;
  WhenOpen when_open = WhenOpen::wait;

  // Empty when valid; else what is wrong, naming the field.
  [[nodiscard]] std::string invalid() const;
};

[[nodiscard]] const char* to_string(WhenOpen action) noexcept;

namespace detail {

// One call's meeting point between the task (which starts it) and the client thread (which
// completes it). Each attempt has its own number: a completion of an attempt the task gave up
// on (timed out) is ignored.
// Wakes a task when one of its calls completes; disarmed when the task goes (client threads may
// still complete calls after that).
class CallWaker {
 public:
  void wake() {
    std::lock_guard lock(mutex_);
    if (wake_)
      wake_();
  }
  // Empty: disarmed.
  void set(std::function<void()> wake) {
    std::lock_guard lock(mutex_);
    wake_ = std::move(wake);
  }

 private:
  std::mutex mutex_;
  std::function<void()> wake_;
};

class CallSlot {
 public:
  explicit CallSlot(std::shared_ptr<CallWaker> waker) : waker_(std::move(waker)) {}

  // Task fiber: a new attempt; returns its number.
  std::uint64_t begin_attempt();
  // Any thread: the attempt ended. False when it was not the current attempt or had ended.
  bool complete(std::uint64_t attempt, CallStatus status, std::string message,
                std::shared_ptr<void> result);
  // Task fiber: the outcome of the current attempt, once it ended.
  struct Outcome {
    CallStatus status;
    std::string message;
    std::shared_ptr<void> result;
  };
  [[nodiscard]] std::optional<Outcome> take();
  // Task fiber: gives the current attempt up (timed out); a late completion is ignored.
  void abandon();

 private:
  std::mutex mutex_;
  std::uint64_t attempt_ = 0;
  bool ended_ = true;
  std::optional<Outcome> outcome_;
  std::shared_ptr<CallWaker> waker_;
};

}  // namespace detail

// Completes one call attempt, once, from any thread. Copyable; completing twice, or completing
// an attempt the task already timed out, does nothing.
template <typename R>
class CallCompletion {
 public:
  CallCompletion(std::shared_ptr<detail::CallSlot> slot, std::uint64_t attempt)
      : slot_(std::move(slot)), attempt_(attempt) {}

  void succeed(R result) const {
    slot_->complete(attempt_, CallStatus::ok, {}, std::make_shared<R>(std::move(result)));
  }
  // The service said no to this request (HTTP 4xx other than 408 and 429, an answer that cannot
  // be read): not retried; the record's error policy applies with `why` as its error message.
  void reject(std::string why) const {
    slot_->complete(attempt_, CallStatus::rejected, std::move(why), nullptr);
  }
  // No usable answer: retried, and counted by the endpoint's breaker.
  void fail(std::string why) const {
    slot_->complete(attempt_, CallStatus::failed, std::move(why), nullptr);
  }

 private:
  std::shared_ptr<detail::CallSlot> slot_;
  std::uint64_t attempt_;
};

// What the runtime shows of an endpoint (metrics, status page, logs). Any thread.
struct CallEndpointFigures {
  std::string application_id;
  std::string endpoint;
  CircuitBreaker::State state = CircuitBreaker::State::closed;
  bool has_breaker = false;
  std::int64_t started = 0;    // attempts started
  std::int64_t succeeded = 0;  // attempts that ended ok
  std::int64_t failed = 0;     // attempts that failed (timeouts included)
  std::int64_t timed_out = 0;
  std::int64_t rejected = 0;
  std::int64_t retried = 0;       // attempts after a failure
  std::int64_t rate_limited = 0;  // times a call waited for the rate limiter
  std::int64_t opened = 0;        // closed -> open
  std::int64_t reopened = 0;      // half-open -> open (a probe failed)
  std::int64_t closed = 0;        // half-open -> closed
  std::int64_t fallbacks = 0;     // records handled by `when_open` instead of a call
  std::int64_t in_flight = 0;     // calls held by tasks now
};

// Every endpoint of `application_id` used in this process so far.
[[nodiscard]] std::vector<CallEndpointFigures> call_endpoint_figures(
    std::string_view application_id);

}  // namespace streamrun
