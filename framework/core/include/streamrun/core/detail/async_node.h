#pragma once

// The async call operator's instance (KStream::call_async). The bookkeeping (in-flight calls,
// retries, timeouts, breaker, rate limiter, order) is untyped and lives in async_call.cc; the
// typed subclass only starts the user's call function and emits results. Included by
// stream_builder.h; not for direct use.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <streamrun/core/async_call.h>
#include <streamrun/core/detail/nodes.h>
#include <streamrun/core/error_policy.h>

namespace streamrun::detail {

class CallEndpoint;

// Driven by TaskInstance on the task's fiber: receive() stages a record's call while the record
// goes through the operators (phase one); once the record got through, commit_staged() starts
// it at the next poll() (else discard_staged() forgets it). poll() settles completions, timeouts
// and retries; finish_next() passes a finished call's result on (phase two, a record of its own for
// error handling and held outputs).
class AsyncCallBase : public virtual NodeInstance {
 public:
  explicit AsyncCallBase(AsyncCallOptions options);
  ~AsyncCallBase() override;

  void init(TaskEnvironment& environment) override;
  void close() override;

  void commit_staged();
  void discard_staged();
  // Calls held: staged ones excluded, finished ones not yet passed on included.
  [[nodiscard]] std::size_t held() const noexcept;
  [[nodiscard]] bool full() const noexcept { return held() >= options_.capacity; }
  // Takes completions and timeouts, schedules retries (jitter from `unit_random`, in [0, 1)),
  // and starts every call that may start.
  void poll(const std::function<double()>& unit_random);
  // When poll() has work at the latest (a timeout, a retry, a rate-limit wait, the breaker's
  // cool-down), by the task's clock (TaskEnvironment::now_ms() as a time_point);
  // time_point::max() when only completions can change anything.
  [[nodiscard]] std::chrono::steady_clock::time_point next_deadline() const noexcept {
    return next_deadline_;
  }
  // An open breaker holds calls back (with when_open = wait).
  [[nodiscard]] bool blocked() const noexcept { return blocked_; }

  // A finished call ready to go on (the first one, in order mode).
  struct Finished {
    std::shared_ptr<const RawRecord> record;  // the input record, for dead letters
    enum class Kind { result, failure, skip, dead_letter, fallback, fail } kind = Kind::result;
    std::string error_class;
    std::string message;
    int attempts = 0;  // calls started for the record
  };
  [[nodiscard]] const Finished* next_finished() const;
  // Passes the next finished call on: emits its result (or fallback) downstream. Throws
  // OperatorFailure for a failed call; the caller applies the error policy and calls
  // drop_next() once the entry is settled either way.
  void finish_next();
  void drop_next();

  // The oldest input offset per input partition that still has a held call.
  void oldest_offsets(std::vector<RecordOrigin>& out) const;

  [[nodiscard]] const AsyncCallOptions& options() const noexcept { return options_; }

 protected:
  // Stages `input` (a Record<K, V> behind the pointer) for the record going through now.
  void stage(std::shared_ptr<void> input, const RecordOrigin& origin);
  // Starts the user's call for `input`; completion through `slot`, attempt `attempt`.
  virtual void start(const std::shared_ptr<void>& input, const std::shared_ptr<CallSlot>& slot,
                     std::uint64_t attempt) = 0;
  virtual void emit_result(const std::shared_ptr<void>& input,
                           const std::shared_ptr<void>& result) = 0;
  virtual void emit_fallback(const std::shared_ptr<void>& input) = 0;

 private:
  struct Entry;
  void start_attempt(Entry& entry, std::chrono::steady_clock::time_point now);
  void settle(Entry& entry, CallSlot::Outcome outcome, std::chrono::steady_clock::time_point now,
              double jitter);
  void finish_entry(Entry& entry, Finished::Kind kind, std::string error_class,
                    std::string message);
  [[nodiscard]] std::chrono::steady_clock::time_point now() const;
  Entry* next_finished_entry() const;

  const AsyncCallOptions options_;
  ErrorPolicy retry_policy_;  // the backoff schedule
  std::shared_ptr<CallEndpoint> endpoint_;
  std::shared_ptr<CallWaker> waker_;
  struct Entries;
  std::unique_ptr<Entries> entries_;
  std::uint64_t next_sequence_ = 0;
  std::chrono::steady_clock::time_point next_deadline_ =
      std::chrono::steady_clock::time_point::max();
  bool blocked_ = false;
  std::shared_ptr<const RawRecord> staged_record_;  // the record staging now, copied once
};

template <typename K, typename V, typename R>
class AsyncCallNode final : public Input<K, V>, public AsyncCallBase, public Output<K, R> {
 public:
  using CallFunction = std::function<void(const Record<K, V>&, CallCompletion<R>)>;
  using FallbackFunction = std::function<R(const Record<K, V>&)>;

  AsyncCallNode(std::string name, AsyncCallOptions options, CallFunction call,
                FallbackFunction fallback)
      : NodeInstance(std::move(name)),
        AsyncCallBase(std::move(options)),
        call_(std::move(call)),
        fallback_(std::move(fallback)) {}

  void init(TaskEnvironment& environment) override { AsyncCallBase::init(environment); }
  void close() override { AsyncCallBase::close(); }
  void connect(NodeInstance& child) override { Output<K, R>::connect(child); }

  void receive(Record<K, V>&& record) override {
    const RecordOrigin origin = record.origin;
    stage(std::make_shared<Record<K, V>>(std::move(record)), origin);
  }

 protected:
  void start(const std::shared_ptr<void>& input, const std::shared_ptr<CallSlot>& slot,
             std::uint64_t attempt) override {
    this->guarded([&] { call_(*static_cast<const Record<K, V>*>(input.get()), {slot, attempt}); });
  }
  void emit_result(const std::shared_ptr<void>& input,
                   const std::shared_ptr<void>& result) override {
    const auto& record = *static_cast<const Record<K, V>*>(input.get());
    this->emit(record.template with_value<R>(*static_cast<const R*>(result.get())));
  }
  void emit_fallback(const std::shared_ptr<void>& input) override {
    const auto& record = *static_cast<const Record<K, V>*>(input.get());
    R value{};
    this->guarded([&] { value = fallback_(record); });
    this->emit(record.template with_value<R>(std::move(value)));
  }

 private:
  CallFunction call_;
  FallbackFunction fallback_;
};

}  // namespace streamrun::detail
