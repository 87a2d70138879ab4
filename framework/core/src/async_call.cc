#include <algorithm>
#include <atomic>
#include <deque>

#include <fmt/format.h>

#include <streamrun/base/log.h>
#include <streamrun/core/detail/async_node.h>

namespace streamrun {

std::string AsyncCallOptions::invalid() const {
  if (capacity < 1)
    return "capacity must be at least 1";
  if (timeout.count() <= 0)
    return "timeout must be positive";
  if (retries < 0)
    return "retries must not be negative";
  if (backoff.count() < 0 || max_backoff.count() < 0)
    return "backoff and max_backoff must not be negative";
  if (rate_limit < 0)
    return "rate_limit must not be negative";
  if (burst < 0)
    return "burst must not be negative";
  if (breaker) {
    if (auto why = breaker->invalid(); !why.empty())
      return "breaker: " + why;
  } else if (when_open != WhenOpen::wait) {
    return fmt::format("when_open: {} needs a breaker", to_string(when_open));
  }
  return {};
}

const char* to_string(WhenOpen action) noexcept {
  switch (action) {
    case WhenOpen::wait:
      return "wait";
    case WhenOpen::fail:
      return "fail";
    case WhenOpen::skip:
      return "skip";
    case WhenOpen::dead_letter:
      return "dead_letter";
    case WhenOpen::fallback:
      return "fallback";
  }
  return "?";
}

namespace detail {

std::uint64_t CallSlot::begin_attempt() {
  std::lock_guard lock(mutex_);
  ended_ = false;
  outcome_.reset();
  return ++attempt_;
}

bool CallSlot::complete(std::uint64_t attempt, CallStatus status, std::string message,
                        std::shared_ptr<void> result) {
  {
    std::lock_guard lock(mutex_);
    if (attempt != attempt_ || ended_)
      return false;
    ended_ = true;
    outcome_ = Outcome{status, std::move(message), std::move(result)};
  }
  waker_->wake();
  return true;
}

std::optional<CallSlot::Outcome> CallSlot::take() {
  std::lock_guard lock(mutex_);
  if (!outcome_)
    return std::nullopt;
  auto outcome = std::move(outcome_);
  outcome_.reset();
  return outcome;
}

void CallSlot::abandon() {
  std::lock_guard lock(mutex_);
  ended_ = true;
  outcome_.reset();
}

// What the tasks of one application in this process share per endpoint.
class CallEndpoint {
 public:
  CallEndpoint(std::string application_id, std::string name, const AsyncCallOptions& options,
               SteadyClock clock)
      : application_id_(std::move(application_id)), name_(std::move(name)) {
    if (options.breaker) {
      breaker_ = std::make_unique<CircuitBreaker>(name_, *options.breaker, clock);
      const std::string meanwhile = options.when_open == WhenOpen::wait
                                        ? "its calls wait (records wait in Kafka)"
                                        : fmt::format("records get when_open: {} instead of a call",
                                                      to_string(options.when_open));
      breaker_->set_listener([this, meanwhile](CircuitBreaker::State from, CircuitBreaker::State to,
                                               const std::string& why) {
        auto logger = log::get("calls");
        if (to == CircuitBreaker::State::open) {
          logger->warn("endpoint '{}': circuit breaker {} -> open: {}; {} until a probe succeeds",
                       name_, to_string(from), why, meanwhile);
        } else {
          logger->info("endpoint '{}': circuit breaker {} -> {}: {}", name_, to_string(from),
                       to_string(to), why);
        }
      });
    }
    if (options.rate_limit > 0) {
      limiter_ = std::make_unique<RateLimiter>(
          options.rate_limit, options.burst > 0 ? options.burst : std::max(1.0, options.rate_limit),
          clock);
    }
  }

  [[nodiscard]] const std::string& application_id() const noexcept { return application_id_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] CircuitBreaker* breaker() const noexcept { return breaker_.get(); }
  [[nodiscard]] RateLimiter* limiter() const noexcept { return limiter_.get(); }

  void succeeded() { ++succeeded_; }
  // Calls that succeeded and failed so far: a call that keeps failing while the others mostly
  // succeed is the record's fault, not the endpoint's.
  [[nodiscard]] std::int64_t successes() const noexcept { return succeeded_.load(); }
  [[nodiscard]] std::int64_t failures() const noexcept { return failed_.load(); }

  [[nodiscard]] CallEndpointFigures figures() const {
    CallEndpointFigures figures;
    figures.application_id = application_id_;
    figures.endpoint = name_;
    figures.has_breaker = breaker_ != nullptr;
    if (breaker_) {
      figures.state = breaker_->state();
      figures.opened = breaker_->times_opened();
      figures.reopened = breaker_->times_reopened();
      figures.closed = breaker_->times_closed();
    }
    figures.started = started_;
    figures.succeeded = succeeded_;
    figures.failed = failed_;
    figures.timed_out = timed_out_;
    figures.rejected = rejected_;
    figures.retried = retried_;
    figures.rate_limited = rate_limited_;
    figures.fallbacks = fallbacks_;
    figures.in_flight = in_flight_;
    return figures;
  }

  std::atomic<std::int64_t> started_{0};
  std::atomic<std::int64_t> failed_{0};
  std::atomic<std::int64_t> timed_out_{0};
  std::atomic<std::int64_t> rejected_{0};
  std::atomic<std::int64_t> retried_{0};
  std::atomic<std::int64_t> rate_limited_{0};
  std::atomic<std::int64_t> fallbacks_{0};
  std::atomic<std::int64_t> in_flight_{0};

 private:
  const std::string application_id_;
  const std::string name_;
  std::unique_ptr<CircuitBreaker> breaker_;
  std::unique_ptr<RateLimiter> limiter_;
  std::atomic<std::int64_t> succeeded_{0};
};

namespace {

// The endpoints in use, per application. Weak: an endpoint lives while a task uses it (its
// counters restart when every task of the application in this process went away).
struct Registry {
  std::mutex mutex;
  std::vector<std::weak_ptr<CallEndpoint>> endpoints;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

std::shared_ptr<CallEndpoint> endpoint_for(const std::string& application_id,
                                           const std::string& name, const AsyncCallOptions& options,
                                           SteadyClock clock) {
  auto& shared = registry();
  std::lock_guard lock(shared.mutex);
  std::erase_if(shared.endpoints, [](const auto& weak) { return weak.expired(); });
  for (const auto& weak : shared.endpoints) {
    if (auto endpoint = weak.lock();
        endpoint && endpoint->application_id() == application_id && endpoint->name() == name)
      return endpoint;  // the first task's options hold for the endpoint
  }
  auto endpoint = std::make_shared<CallEndpoint>(application_id, name, options, std::move(clock));
  shared.endpoints.push_back(endpoint);
  return endpoint;
}

}  // namespace

struct AsyncCallBase::Entry {
  std::shared_ptr<void> input;
  std::shared_ptr<const RawRecord> record;
  RecordOrigin origin;
  std::shared_ptr<CallSlot> slot;
  enum class Phase { waiting, in_flight, finished } phase = Phase::waiting;
  std::chrono::steady_clock::time_point ready_at{};
  std::chrono::steady_clock::time_point deadline{};
  bool through_breaker = false;  // its outcome is reported to the breaker
  int attempts = 0;
  int failures = 0;
  std::chrono::milliseconds waited{0};
  // The endpoint's successes and failures when this call first failed.
  std::int64_t successes_at_first_failure = 0;
  std::int64_t failures_at_first_failure = 0;
  bool outage = false;  // its failures were taken for an outage: logged once
  std::shared_ptr<void> result;
  Finished finished;
};

struct AsyncCallBase::Entries {
  std::deque<Entry> held;  // in input order
  std::vector<Entry> staged;
};

AsyncCallBase::AsyncCallBase(AsyncCallOptions options)
    : NodeInstance(""), options_(std::move(options)), entries_(std::make_unique<Entries>()) {
  if (auto why = options_.invalid(); !why.empty())
    throw std::invalid_argument("async call: " + why);
  retry_policy_.retries = options_.retries;
  retry_policy_.backoff = options_.backoff;
  retry_policy_.max_backoff = options_.max_backoff;
  retry_policy_.max_total_delay = std::chrono::milliseconds::max();
}

AsyncCallBase::~AsyncCallBase() {
  AsyncCallBase::close();
}

std::size_t AsyncCallBase::held() const noexcept {
  return entries_->held.size();
}

void AsyncCallBase::init(TaskEnvironment& environment) {
  NodeInstance::init(environment);
  auto clock = environment.clock();
  endpoint_ = endpoint_for(
      environment.task().application_id, options_.endpoint.empty() ? name() : options_.endpoint,
      options_, [clock] {
        return std::chrono::steady_clock::time_point(std::chrono::milliseconds(clock()));
      });
  waker_ = environment.call_waker();
}

void AsyncCallBase::close() {
  for (auto& entry : entries_->held) {
    if (entry.slot)
      entry.slot->abandon();
    if (entry.phase == Entry::Phase::in_flight && entry.through_breaker)
      endpoint_->breaker()->release();
  }
  if (endpoint_)
    endpoint_->in_flight_ -= static_cast<std::int64_t>(entries_->held.size());
  entries_->held.clear();
  entries_->staged.clear();
}

std::chrono::steady_clock::time_point AsyncCallBase::now() const {
  return std::chrono::steady_clock::time_point(std::chrono::milliseconds(environment().now_ms()));
}

void AsyncCallBase::stage(std::shared_ptr<void> input, const RecordOrigin& origin) {
  Entry entry;
  entry.input = std::move(input);
  entry.record = environment().current_record();
  entry.origin = origin;
  entry.slot = std::make_shared<CallSlot>(waker_);
  entries_->staged.push_back(std::move(entry));
}

void AsyncCallBase::discard_staged() {
  entries_->staged.clear();
}

void AsyncCallBase::commit_staged() {
  if (entries_->staged.empty())
    return;
  const auto at = now();
  for (auto& entry : entries_->staged) {
    entry.ready_at = at;
    entries_->held.push_back(std::move(entry));
  }
  endpoint_->in_flight_ += static_cast<std::int64_t>(entries_->staged.size());
  entries_->staged.clear();
}

void AsyncCallBase::poll(const std::function<double()>& unit_random) {
  const auto at = now();
  auto next = std::chrono::steady_clock::time_point::max();
  blocked_ = false;
  for (auto& entry : entries_->held) {
    if (entry.phase == Entry::Phase::in_flight) {
      if (auto outcome = entry.slot->take()) {
        settle(entry, std::move(*outcome), at, unit_random());
      } else if (at >= entry.deadline) {
        entry.slot->abandon();
        ++endpoint_->timed_out_;
        settle(entry,
               {CallStatus::failed,
                fmt::format("no answer from endpoint '{}' within {} ms (timeout)",
                            endpoint_->name(), options_.timeout.count()),
                nullptr},
               at, unit_random());
      }
    }
    if (entry.phase == Entry::Phase::waiting && entry.ready_at <= at)
      start_attempt(entry, at);
    if (entry.phase == Entry::Phase::in_flight)
      next = std::min(next, entry.deadline);
    else if (entry.phase == Entry::Phase::waiting)
      next = std::min(next, entry.ready_at);
  }
  next_deadline_ = next;
}

void AsyncCallBase::start_attempt(Entry& entry, std::chrono::steady_clock::time_point at) {
  if (auto* limiter = endpoint_->limiter()) {
    if (const auto wait = limiter->try_acquire(); wait.count() > 0) {
      ++endpoint_->rate_limited_;
      entry.ready_at = at + std::chrono::ceil<std::chrono::milliseconds>(wait);
      return;
    }
  }
  entry.through_breaker = false;
  if (auto* breaker = endpoint_->breaker()) {
    if (!breaker->try_acquire()) {
      if (options_.when_open != WhenOpen::wait) {
        ++endpoint_->fallbacks_;
        const auto kind = options_.when_open == WhenOpen::fallback ? Finished::Kind::fallback
                          : options_.when_open == WhenOpen::skip   ? Finished::Kind::skip
                          : options_.when_open == WhenOpen::fail   ? Finished::Kind::fail
                                                                   : Finished::Kind::dead_letter;
        finish_entry(entry, kind, "CircuitOpen",
                     fmt::format("circuit breaker of endpoint '{}' is open", endpoint_->name()));
        return;
      }
      // Probes start once the cool-down is over; while another call probes, look again every
      // 50 ms (the probe may be another task's).
      blocked_ = true;
      const auto cool_down = breaker->retry_after();
      entry.ready_at = at + (cool_down.count() > 0 ? cool_down : std::chrono::milliseconds(50));
      return;
    }
    entry.through_breaker = true;
  }
  const auto attempt = entry.slot->begin_attempt();
  ++entry.attempts;
  entry.phase = Entry::Phase::in_flight;
  entry.deadline = at + options_.timeout;
  ++endpoint_->started_;
  if (entry.failures > 0)
    ++endpoint_->retried_;
  try {
    start(entry.input, entry.slot, attempt);
  } catch (const OperatorFailure& failure) {
    // The call function threw: nothing went out, and it is this record's doing.
    entry.slot->abandon();
    if (entry.through_breaker)
      endpoint_->breaker()->release();
    finish_entry(entry, Finished::Kind::failure, failure.error_class(), failure.error_message());
  }
}

void AsyncCallBase::settle(Entry& entry, CallSlot::Outcome outcome,
                           std::chrono::steady_clock::time_point at, double jitter) {
  auto* breaker = entry.through_breaker ? endpoint_->breaker() : nullptr;
  switch (outcome.status) {
    case CallStatus::ok:
      if (breaker)
        breaker->on_success();
      endpoint_->succeeded();
      entry.result = std::move(outcome.result);
      finish_entry(entry, Finished::Kind::result, {}, {});
      return;
    case CallStatus::rejected:
      // The service answered: it is up, and the request is what it refuses.
      if (breaker)
        breaker->on_success();
      ++endpoint_->rejected_;
      finish_entry(entry, Finished::Kind::failure, "CallRejected", std::move(outcome.message));
      return;
    case CallStatus::failed:
      break;
  }
  if (breaker)
    breaker->on_failure();
  ++endpoint_->failed_;
  log::get("calls")->debug("endpoint '{}': the call for {}[{}] offset {} failed: {}",
                           endpoint_->name(), entry.origin.topic, entry.origin.partition,
                           entry.origin.offset, outcome.message);
  if (entry.failures++ == 0) {
    entry.successes_at_first_failure = endpoint_->successes();
    entry.failures_at_first_failure = endpoint_->failures();
  }
  entry.phase = Entry::Phase::waiting;
  if (entry.failures <= options_.retries) {
    const auto delay = retry_policy_.retry_delay(entry.failures, entry.waited, jitter);
    entry.waited += delay;
    entry.ready_at = at + delay;
    return;
  }
  // Since this call first failed, how did the endpoint's other calls fare? Its own repeated
  // failures say nothing about the endpoint.
  const auto successes = endpoint_->successes() - entry.successes_at_first_failure;
  const auto other_failures =
      endpoint_->failures() - entry.failures_at_first_failure - (entry.failures - 1);
  auto* shared_breaker = endpoint_->breaker();
  // Healthy by the breaker's own measure: the others mostly got through. Right after an outage
  // the service may answer a few calls and time out the rest (a burst of held calls at once):
  // that is not the record's fault either.
  const auto endpoint_healthy = [&] {
    return successes > 0 && static_cast<double>(other_failures) <
                                shared_breaker->options().failure_rate *
                                    static_cast<double>(successes + other_failures);
  };
  const bool record_fault =
      shared_breaker == nullptr ||
      (shared_breaker->state() == CircuitBreaker::State::closed && endpoint_healthy());
  if (record_fault) {
    finish_entry(entry, Finished::Kind::failure, "CallFailed", std::move(outcome.message));
    return;
  }
  // The endpoint failed most calls since this one first failed: an outage or an overload, not
  // this record's fault. It waits (the breaker opens meanwhile) and is tried again.
  if (!entry.outage) {
    entry.outage = true;
    log::get("calls")->warn(
        "endpoint '{}': the call for {}[{}] offset {} failed {} times ({}), and since its first "
        "failure the endpoint's other calls succeeded {} and failed {} times: taken for an "
        "outage; the record waits and is tried again",
        endpoint_->name(), entry.origin.topic, entry.origin.partition, entry.origin.offset,
        entry.failures, outcome.message, successes, other_failures);
  }
  entry.ready_at = at + retry_policy_.retry_delay(std::min(entry.failures, 30),
                                                  std::chrono::milliseconds(0), jitter);
}

void AsyncCallBase::finish_entry(Entry& entry, Finished::Kind kind, std::string error_class,
                                 std::string message) {
  entry.phase = Entry::Phase::finished;
  entry.finished = {entry.record, kind, std::move(error_class), std::move(message), entry.attempts};
}

AsyncCallBase::Entry* AsyncCallBase::next_finished_entry() const {
  auto& entries = entries_->held;  // the pointer is const here, not what it holds
  if (options_.ordered) {
    if (!entries.empty() && entries.front().phase == Entry::Phase::finished)
      return &entries.front();
    return nullptr;
  }
  for (auto& entry : entries) {
    if (entry.phase == Entry::Phase::finished)
      return &entry;
  }
  return nullptr;
}

const AsyncCallBase::Finished* AsyncCallBase::next_finished() const {
  const auto* entry = next_finished_entry();
  return entry ? &entry->finished : nullptr;
}

void AsyncCallBase::finish_next() {
  auto* entry = next_finished_entry();
  if (entry == nullptr)
    throw std::logic_error("finish_next() without a finished call");
  switch (entry->finished.kind) {
    case Finished::Kind::result:
      emit_result(entry->input, entry->result);
      return;
    case Finished::Kind::fallback:
      emit_fallback(entry->input);
      return;
    default:
      throw OperatorFailure(name(), entry->finished.error_class, entry->finished.message, nullptr);
  }
}

void AsyncCallBase::drop_next() {
  auto* entry = next_finished_entry();
  if (entry == nullptr)
    return;
  auto& held = entries_->held;
  auto it = std::find_if(held.begin(), held.end(), [&](const Entry& e) { return &e == entry; });
  held.erase(it);  // the front in order mode: a pop_front
  --endpoint_->in_flight_;
}

void AsyncCallBase::oldest_offsets(std::vector<RecordOrigin>& out) const {
  for (const auto& entry : entries_->held) {
    auto it = std::find_if(out.begin(), out.end(), [&](const RecordOrigin& origin) {
      return origin.partition == entry.origin.partition && origin.topic == entry.origin.topic;
    });
    if (it == out.end())
      out.push_back(entry.origin);
    else if (entry.origin.offset < it->offset)
      it->offset = entry.origin.offset;
  }
}

}  // namespace detail

std::vector<CallEndpointFigures> call_endpoint_figures(std::string_view application_id) {
  std::vector<std::shared_ptr<detail::CallEndpoint>> live;
  {
    auto& shared = detail::registry();
    std::lock_guard lock(shared.mutex);
    for (const auto& weak : shared.endpoints) {
      if (auto endpoint = weak.lock(); endpoint && endpoint->application_id() == application_id)
        live.push_back(std::move(endpoint));
    }
  }
  std::vector<CallEndpointFigures> figures;
  for (const auto& endpoint : live)
    figures.push_back(endpoint->figures());
  return figures;
}

}  // namespace streamrun
