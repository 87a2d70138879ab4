#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include <streamrun/core/circuit_breaker.h>

namespace streamrun {

namespace {

// The window is kept as this many slices, each counting its calls and failures; the oldest
// slice is dropped as time moves on (a rolling window without a record per call).
constexpr int kBuckets = 10;

}  // namespace

std::string CircuitBreakerOptions::invalid() const {
  if (consecutive_failures < 0)
    return fmt::format("consecutive_failures = {}: must be 0 (off) or more", consecutive_failures);
  if (!(failure_rate > 0 && failure_rate <= 1))
    return fmt::format("failure_rate = {}: must be in (0, 1]", failure_rate);
  if (minimum_calls < 1)
    return fmt::format("minimum_calls = {}: must be 1 or more", minimum_calls);
  if (window.count() < kBuckets)
    return fmt::format("window = {} ms: must be at least {} ms", window.count(), kBuckets);
  if (open_for.count() < 1)
    return fmt::format("open_for = {} ms: must be at least 1 ms", open_for.count());
  if (half_open_probes < 1)
    return fmt::format("half_open_probes = {}: must be 1 or more", half_open_probes);
  return {};
}

const char* to_string(CircuitBreaker::State state) noexcept {
  switch (state) {
    case CircuitBreaker::State::closed:
      return "closed";
    case CircuitBreaker::State::open:
      return "open";
    case CircuitBreaker::State::half_open:
      return "half-open";
  }
  return "?";
}

CircuitBreaker::CircuitBreaker(std::string name, CircuitBreakerOptions options, SteadyClock clock)
    : name_(std::move(name)), options_(options), clock_(std::move(clock)), buckets_(kBuckets) {
  if (auto why = options_.invalid(); !why.empty())
    throw std::invalid_argument(fmt::format("circuit breaker '{}': {}", name_, why));
}

void CircuitBreaker::move_to(State to, std::string why, std::vector<Transition>& pending) {
  if (to == state_)
    return;
  pending.push_back({state_, to, std::move(why)});
  const State from = state_;
  state_ = to;
  consecutive_ = 0;
  probes_started_ = 0;
  probes_succeeded_ = 0;
  if (to == State::open) {
    opened_at_ = clock_();
    ++(from == State::closed ? opened_ : reopened_);
  }
  if (to == State::closed) {
    ++closed_;
    // A fresh start: the failures that opened it are not held against the recovered service.
    std::fill(buckets_.begin(), buckets_.end(), Bucket{});
  }
}

void CircuitBreaker::refresh(std::chrono::steady_clock::time_point now,
                             std::vector<Transition>& pending) {
  if (state_ == State::open && now - opened_at_ >= options_.open_for) {
    move_to(State::half_open,
            fmt::format("{} ms passed since it opened: probing", options_.open_for.count()),
            pending);
  }
}

void CircuitBreaker::record(bool failed, std::chrono::steady_clock::time_point now) {
  const auto slice = options_.window / kBuckets;
  const auto index = (now.time_since_epoch() / slice) % kBuckets;
  auto& bucket = buckets_[static_cast<std::size_t>(index)];
  const auto start = std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          (now.time_since_epoch() / slice) * slice));
  if (bucket.start != start)
    bucket = Bucket{start, 0, 0};
  ++bucket.calls;
  bucket.failures += failed ? 1 : 0;
}

bool CircuitBreaker::try_acquire() {
  std::vector<Transition> pending;
  bool allowed = false;
  {
    std::lock_guard lock(mutex_);
    refresh(clock_(), pending);
    switch (state_) {
      case State::closed:
        allowed = true;
        break;
      case State::open:
        allowed = false;
        break;
      case State::half_open:
        allowed = probes_started_ < options_.half_open_probes;
        probes_started_ += allowed ? 1 : 0;
        break;
    }
  }
  notify(pending);
  return allowed;
}

void CircuitBreaker::release() {
  std::lock_guard lock(mutex_);
  if (state_ == State::half_open && probes_started_ > 0)
    --probes_started_;
}

void CircuitBreaker::on_success() {
  std::vector<Transition> pending;
  {
    std::lock_guard lock(mutex_);
    const auto now = clock_();
    refresh(now, pending);
    if (state_ == State::half_open) {
      if (++probes_succeeded_ >= options_.half_open_probes) {
        move_to(State::closed, fmt::format("{} probe call(s) succeeded", options_.half_open_probes),
                pending);
      }
    } else if (state_ == State::closed) {
      consecutive_ = 0;
      record(false, now);
    }
  }
  notify(pending);
}

void CircuitBreaker::on_failure() {
  std::vector<Transition> pending;
  {
    std::lock_guard lock(mutex_);
    const auto now = clock_();
    refresh(now, pending);
    if (state_ == State::half_open) {
      move_to(State::open, "a probe call failed", pending);
    } else if (state_ == State::closed) {
      ++consecutive_;
      record(true, now);
      std::int64_t calls = 0;
      std::int64_t failures = 0;
      for (const auto& bucket : buckets_) {
        if (now - bucket.start < options_.window) {
          calls += bucket.calls;
          failures += bucket.failures;
        }
      }
      if (options_.consecutive_failures > 0 && consecutive_ >= options_.consecutive_failures) {
        move_to(State::open, fmt::format("{} calls in a row failed", consecutive_), pending);
      } else if (calls >= options_.minimum_calls &&
                 static_cast<double>(failures) >=
                     options_.failure_rate * static_cast<double>(calls)) {
        move_to(State::open,
                fmt::format("{} of the last {} calls failed (within {} ms)", failures, calls,
                            options_.window.count()),
                pending);
      }
    }
  }
  notify(pending);
}

CircuitBreaker::State CircuitBreaker::state() {
  std::vector<Transition> pending;
  State now_state;
  {
    std::lock_guard lock(mutex_);
    refresh(clock_(), pending);
    now_state = state_;
  }
  notify(pending);
  return now_state;
}

std::chrono::milliseconds CircuitBreaker::retry_after() {
  std::lock_guard lock(mutex_);
  if (state_ != State::open)
    return std::chrono::milliseconds(0);
  const auto left = options_.open_for - (clock_() - opened_at_);
  return std::max(std::chrono::milliseconds(0), std::chrono::ceil<std::chrono::milliseconds>(left));
}

std::int64_t CircuitBreaker::times_opened() const {
  std::lock_guard lock(mutex_);
  return opened_;
}

std::int64_t CircuitBreaker::times_reopened() const {
  std::lock_guard lock(mutex_);
  return reopened_;
}

std::int64_t CircuitBreaker::times_closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

void CircuitBreaker::set_listener(Listener listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

void CircuitBreaker::notify(const std::vector<Transition>& pending) {
  if (pending.empty())
    return;
  Listener listener;
  {
    std::lock_guard lock(mutex_);
    listener = listener_;
  }
  if (!listener)
    return;
  for (const auto& transition : pending)
    listener(transition.from, transition.to, transition.why);
}

RateLimiter::RateLimiter(double rate, double burst, SteadyClock clock)
    : rate_(rate), burst_(burst), clock_(std::move(clock)), tokens_(burst), refilled_at_(clock_()) {
  if (!(rate > 0) || !(burst >= 1)) {
    throw std::invalid_argument(
        fmt::format("rate limiter: rate = {} permits/s must be above 0 and burst = {} at least 1",
                    rate, burst));
  }
}

std::chrono::nanoseconds RateLimiter::try_acquire() {
  std::lock_guard lock(mutex_);
  const auto now = clock_();
  const double elapsed = std::chrono::duration<double>(now - refilled_at_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  refilled_at_ = now;
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return std::chrono::nanoseconds(0);
  }
  const double seconds = (1 - tokens_) / rate_;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(seconds * 1e9)));
}

}  // namespace streamrun
