#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <streamrun/core/kv_store.h>
#include <streamrun/core/record.h>
#include <streamrun/core/serde.h>

namespace streamrun {

// Which task an operator instance belongs to: one input partition of one sub-topology.
struct TaskInfo {
  std::string application_id;
  int subtopology = 0;
  std::int32_t partition = 0;

  // "0_3": sub-topology 0, partition 3 (the form logs, metrics and state directories use).
  [[nodiscard]] std::string id() const {
    return std::to_string(subtopology) + "_" + std::to_string(partition);
  }
};

// What drives a punctuator (ProcessorContext::schedule).
enum class PunctuationType {
  // The task's stream time: the largest record timestamp it has seen. Moves only as records
  // arrive; a jump over several intervals punctuates once, as in Kafka Streams.
  stream_time,
  // The task's clock (the wall clock; the test driver's clock in tests), whether records arrive
  // or not.
  wall_clock,
};

// A task's store seen through serdes. A value the serde cannot read throws SerdeError naming
// the store. Task fiber only; cheap to copy (it refers to the task's store).
template <typename K, typename V>
class TypedStore {
 public:
  TypedStore(KeyValueStore& store, Serdes<K, V> serdes)
      : store_(&store), serdes_(std::move(serdes)) {}

  [[nodiscard]] std::optional<V> get(const K& key) const {
    const auto raw_key = serdes_.key.serialize(key);
    if (!raw_key)
      return std::nullopt;
    auto stored = store_->get(*raw_key);
    if (!stored)
      return std::nullopt;
    return decode(*stored);
  }
  // A value that serializes to null removes the key.
  void put(const K& key, const V& value) {
    const auto raw_key = serdes_.key.serialize(key);
    if (!raw_key)
      throw SerdeError("store '" + store_->name() + "': a null key cannot be stored");
    if (auto raw_value = serdes_.value.serialize(value))
      store_->put(*raw_key, *raw_value);
    else
      store_->remove(*raw_key);
  }
  void remove(const K& key) {
    if (const auto raw_key = serdes_.key.serialize(key))
      store_->remove(*raw_key);
  }
  // Visits every entry in the serialized keys' byte order until `visit` returns false.
  void for_each(const std::function<bool(const K&, const V&)>& visit) const {
    store_->range({}, {}, [&](std::string_view key, std::string_view value) {
      return visit(serdes_.key.deserialize(key), decode(value));
    });
  }
  [[nodiscard]] const std::string& name() const { return store_->name(); }

 private:
  V decode(std::string_view bytes) const {
    try {
      return serdes_.value.deserialize(bytes);
    } catch (const SerdeError& e) {
      throw SerdeError("store '" + store_->name() + "': stored value unreadable: " + e.what());
    }
  }
  KeyValueStore* store_;
  Serdes<K, V> serdes_;
};

// What an operator may do besides computing: pass records on (with the timestamp and headers
// the Record carries: set them to forward new ones), ask which task it is in and what time it
// is, use the stores it declared, and schedule punctuators. Commits, retries, metrics and error
// handling are the runtime's and are not reachable from here. Task fiber only.
template <typename K, typename V>
class ProcessorContext {
 public:
  virtual ~ProcessorContext() = default;
  virtual void forward(Record<K, V> record) = 0;
  [[nodiscard]] virtual const TaskInfo& task() const = 0;
  // The task's clock, ms since the epoch (the test driver's clock in tests).
  [[nodiscard]] virtual std::int64_t now_ms() const = 0;
  // The largest record timestamp the task has seen, ms; -1 before its first record.
  [[nodiscard]] virtual std::int64_t stream_time_ms() const = 0;
  // Calls `punctuator(time_ms)` every `interval` of `type` time, first one interval after the
  // task's first record (stream time) or after this call (wall clock); time_ms is the stream
  // time or the clock's time then. Call it from init(). What a punctuator forwards and writes
  // to stores goes out like a record's outputs; when it throws, the task fails (there is no
  // record to retry or dead-letter). Throws std::invalid_argument for interval <= 0.
  virtual void schedule(std::chrono::milliseconds interval, PunctuationType type,
                        std::function<void(std::int64_t time_ms)> punctuator) = 0;
  // A store the processor declared (KStream::process(supplier, name, stores)), typed by
  // `serdes`. Throws std::invalid_argument for a store it did not declare.
  template <typename SK, typename SV>
  [[nodiscard]] TypedStore<SK, SV> store(std::string_view name, Serdes<SK, SV> serdes) {
    return TypedStore<SK, SV>(raw_store(name), std::move(serdes));
  }
  // The same store as bytes.
  [[nodiscard]] virtual KeyValueStore& raw_store(std::string_view name) = 0;
};

// A custom operator. One instance per task, used from one fiber at a time: no locks needed.
// Throwing from process() is a record-level failure that the runtime's error policy handles.
template <typename KIn, typename VIn, typename KOut = KIn, typename VOut = VIn>
class Processor {
 public:
  using Context = ProcessorContext<KOut, VOut>;
  virtual ~Processor() = default;
  virtual void init(Context& context) { context_ = &context; }
  virtual void process(Record<KIn, VIn> record) = 0;
  virtual void close() {}

 protected:
  [[nodiscard]] Context& context() const { return *context_; }

 private:
  Context* context_ = nullptr;
};

}  // namespace streamrun
