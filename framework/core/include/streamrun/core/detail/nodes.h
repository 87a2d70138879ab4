#pragma once

// The machinery behind the fluent API: typed operator instances wired into a chain per task.
// Included by stream_builder.h; not for direct use.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include <streamrun/core/errors.h>
#include <streamrun/core/kv_store.h>
#include <streamrun/core/processor.h>
#include <streamrun/core/record.h>
#include <streamrun/core/record_collector.h>
#include <streamrun/core/serde.h>

namespace streamrun::detail {

class CallWaker;

// The reason a windowed aggregate drops a late record with (TaskEnvironment::record_dropped):
// metrics count such drops apart.
inline constexpr std::string_view kLateRecord = "late: its windows are closed";

// What every operator instance of a task can reach.
class TaskEnvironment {
 public:
  virtual ~TaskEnvironment() = default;
  [[nodiscard]] virtual const TaskInfo& task() const = 0;
  [[nodiscard]] virtual std::int64_t now_ms() const = 0;
  // The largest timestamp of the input records the task has taken, ms; -1 before the first.
  [[nodiscard]] virtual std::int64_t stream_time_ms() const = 0;
  // A timestamp extractor (KStream::with_timestamp) took over: stream time goes by the
  // timestamps it gives (observe_timestamp), no longer by the input records'.
  virtual void use_extracted_timestamps() = 0;
  virtual void observe_timestamp(std::int64_t timestamp_ms) = 0;
  // A punctuator of operator `node` (ProcessorContext::schedule).
  virtual void schedule(std::string_view node, std::chrono::milliseconds interval,
                        PunctuationType type, std::function<void(std::int64_t)> punctuator) = 0;
  // The clock behind now_ms() (the wall clock, or the test driver's), to share with what
  // outlives the task.
  [[nodiscard]] virtual std::function<std::int64_t()> clock() const = 0;
  // The input record being processed, as read (async calls keep it for dead letters).
  [[nodiscard]] virtual std::shared_ptr<const RawRecord> current_record() = 0;
  // Wakes the task when one of its async calls completes (any thread).
  [[nodiscard]] virtual std::shared_ptr<CallWaker> call_waker() = 0;
  [[nodiscard]] virtual RecordCollector& collector() = 0;
  // The task's instance of a store the topology declared.
  [[nodiscard]] virtual KeyValueStore& store(std::string_view name) = 0;
  // An operator dropped a record on purpose (a keyed operator got a null key, an aggregation a
  // null value): counted in the task's metrics and logged at debug level.
  virtual void record_dropped(std::string_view node, std::string_view reason) = 0;
};

template <typename T>
inline constexpr bool kIsOptional = false;
template <typename T>
inline constexpr bool kIsOptional<std::optional<T>> = true;

// Whether a typed value stands for null: an empty std::optional. Other types cannot be null;
// their serde decides what a null on the wire reads as (serdes::string(): "").
template <typename T>
[[nodiscard]] bool is_null(const T& value) {
  if constexpr (kIsOptional<T>) {
    return !value.has_value();
  } else {
    static_cast<void>(value);
    return false;
  }
}

// Topic names that start with this are internal to the application and are prefixed with its
// application.id when the topology runs (repartition and changelog topics).
inline constexpr std::string_view kApplicationIdPlaceholder = "${application.id}";

inline std::string resolve_topic(std::string_view topic, std::string_view application_id) {
  if (!topic.starts_with(kApplicationIdPlaceholder))
    return std::string(topic);
  return std::string(application_id) + std::string(topic.substr(kApplicationIdPlaceholder.size()));
}

// One operator of one task.
class NodeInstance {
 public:
  explicit NodeInstance(std::string name) : name_(std::move(name)) {}
  virtual ~NodeInstance() = default;
  NodeInstance(const NodeInstance&) = delete;
  NodeInstance& operator=(const NodeInstance&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // Records this node passed on: emitted to its children, or written by a sink (a record tried
  // again after a failure counts again). Counted on the task's fiber, read from any thread.
  [[nodiscard]] std::int64_t records_out() const noexcept {
    return out_.load(std::memory_order_relaxed);
  }
  // Adds `child` downstream; throws std::logic_error when the types do not line up (a bug in
  // the builder, never a user error).
  virtual void connect(NodeInstance& child) = 0;
  virtual void init(TaskEnvironment& environment) { environment_ = &environment; }
  virtual void close() {}

 protected:
  [[nodiscard]] TaskEnvironment& environment() const { return *environment_; }
  // One writer (the task's fiber): a load and a store, not a locked read-modify-write.
  void count_out() noexcept {
    out_.store(out_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // Runs `body`, turning any exception it throws into an OperatorFailure naming this node
  // (an OperatorFailure from further downstream and an InfrastructureError pass through
  // unchanged).
  template <typename Body>
  void guarded(Body&& body) {
    try {
      body();
    } catch (const OperatorFailure&) {
      throw;
    } catch (const InfrastructureError&) {
      throw;  // not the record's fault: fails the task
    } catch (...) {
      throw OperatorFailure::from_current(name_);
    }
  }

 private:
  std::string name_;
  TaskEnvironment* environment_ = nullptr;
  std::atomic<std::int64_t> out_{0};
};

// A node that takes records of type <K, V>.
template <typename K, typename V>
class Input : public virtual NodeInstance {
 public:
  Input() : NodeInstance("") {}
  virtual void receive(Record<K, V>&& record) = 0;
};

// A node that emits records of type <K, V> to its children.
template <typename K, typename V>
class Output : public virtual NodeInstance {
 public:
  Output() : NodeInstance("") {}

  void connect(NodeInstance& child) override {
    auto* typed = dynamic_cast<Input<K, V>*>(&child);
    if (typed == nullptr) {
      throw std::logic_error("cannot connect '" + name() + "' to '" + child.name() +
                             "': record types differ");
    }
    children_.push_back(typed);
  }

 protected:
  void emit(Record<K, V>&& record) {
    this->count_out();
    if (children_.empty())
      return;
    for (std::size_t i = 0; i + 1 < children_.size(); ++i) {
      Record<K, V> copy = record;
      children_[i]->receive(std::move(copy));
    }
    children_.back()->receive(std::move(record));
  }

 private:
  std::vector<Input<K, V>*> children_;
};

// Entry of a sub-topology: turns a raw record into a typed one.
class SourceInstance : public virtual NodeInstance {
 public:
  SourceInstance() : NodeInstance("") {}
  virtual void receive_raw(const RawRecord& raw) = 0;
};

template <typename K, typename V>
class SourceNode final : public SourceInstance, public Output<K, V> {
 public:
  SourceNode(std::string name, Serdes<K, V> serdes)
      : NodeInstance(std::move(name)), serdes_(std::move(serdes)) {}

  void receive_raw(const RawRecord& raw) override {
    Record<K, V> record;
    guarded([&] {
      record.key = serdes_.key.deserialize(raw.key);
      record.value = serdes_.value.deserialize(raw.value);
    });
    record.null_key = !raw.key.has_value();
    record.headers = raw.headers;
    record.timestamp_ms = raw.timestamp_ms;
    record.origin = raw.origin;
    this->emit(std::move(record));
  }

 private:
  Serdes<K, V> serdes_;
};

// Writes records to a topic. A repartition sink (`drop_null_keys`) drops records whose key is
// null: the keyed operator after it would drop them anyway, and a null key has no partition.
template <typename K, typename V>
class SinkNode final : public Input<K, V> {
 public:
  SinkNode(std::string name, std::string topic, Serdes<K, V> serdes, bool drop_null_keys = false)
      : NodeInstance(std::move(name)),
        topic_(std::move(topic)),
        serdes_(std::move(serdes)),
        drop_null_keys_(drop_null_keys) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    topic_ = resolve_topic(topic_, environment.task().application_id);
  }

  void connect(NodeInstance& child) override {
    throw std::logic_error("sink '" + this->name() + "' cannot have child '" + child.name() + "'");
  }

  void receive(Record<K, V>&& record) override {
    this->guarded([&] {
      auto key = serdes_.key.serialize(record.key);
      if (!key && drop_null_keys_) {
        this->environment().record_dropped(this->name(), "null key before a keyed operator");
        return;
      }
      auto value = serdes_.value.serialize(record.value);
      this->environment().collector().send(topic_, std::move(key), std::move(value), record.headers,
                                           record.timestamp_ms, record.origin);
      this->count_out();
    });
  }

 private:
  std::string topic_;
  Serdes<K, V> serdes_;
  bool drop_null_keys_;
};

// A stateless operator defined by a function of (record, emit).
template <typename KIn, typename VIn, typename KOut, typename VOut, typename Fn>
class FunctionNode final : public Input<KIn, VIn>, public Output<KOut, VOut> {
 public:
  FunctionNode(std::string name, Fn fn) : NodeInstance(std::move(name)), fn_(std::move(fn)) {}

  void receive(Record<KIn, VIn>&& record) override {
    this->guarded([&] {
      fn_(std::move(record), [this](Record<KOut, VOut>&& out) { this->emit(std::move(out)); });
    });
  }

 private:
  Fn fn_;
};

// Sets each record's timestamp from its key and value (KStream::with_timestamp).
template <typename K, typename V, typename Extractor>
class TimestampNode final : public Input<K, V>, public Output<K, V> {
 public:
  TimestampNode(std::string name, Extractor extractor)
      : NodeInstance(std::move(name)), extractor_(std::move(extractor)) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    environment.use_extracted_timestamps();
  }

  void receive(Record<K, V>&& record) override {
    this->guarded([&] {
      const std::int64_t timestamp =
          extractor_(std::as_const(record.key), std::as_const(record.value), record.timestamp_ms);
      if (timestamp < 0) {
        throw std::invalid_argument("the timestamp extractor gave " + std::to_string(timestamp) +
                                    " ms: timestamps must not be negative");
      }
      record.timestamp_ms = timestamp;
      this->environment().observe_timestamp(timestamp);
    });
    this->emit(std::move(record));
  }

 private:
  Extractor extractor_;
};

// Runs a user Processor; the node is its context.
template <typename KIn, typename VIn, typename KOut, typename VOut>
class ProcessorNode final : public Input<KIn, VIn>,
                            public Output<KOut, VOut>,
                            private ProcessorContext<KOut, VOut> {
 public:
  ProcessorNode(std::string name, std::unique_ptr<Processor<KIn, VIn, KOut, VOut>> processor,
                std::vector<std::string> stores = {})
      : NodeInstance(std::move(name)),
        processor_(std::move(processor)),
        stores_(std::move(stores)) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    this->guarded([&] { processor_->init(*this); });
  }
  void close() override {
    this->guarded([&] { processor_->close(); });
  }

  void receive(Record<KIn, VIn>&& record) override {
    this->guarded([&] { processor_->process(std::move(record)); });
  }

 private:
  void forward(Record<KOut, VOut> record) override { this->emit(std::move(record)); }
  const TaskInfo& task() const override { return this->environment().task(); }
  std::int64_t now_ms() const override { return this->environment().now_ms(); }
  std::int64_t stream_time_ms() const override { return this->environment().stream_time_ms(); }
  void schedule(std::chrono::milliseconds interval, PunctuationType type,
                std::function<void(std::int64_t)> punctuator) override {
    this->environment().schedule(this->name(), interval, type, std::move(punctuator));
  }
  KeyValueStore& raw_store(std::string_view name) override {
    if (std::find(stores_.begin(), stores_.end(), name) == stores_.end()) {
      throw std::invalid_argument("processor '" + this->name() + "' did not declare store '" +
                                  std::string(name) +
                                  "' (KStream::process(supplier, name, stores))");
    }
    return this->environment().store(name);
  }

  std::unique_ptr<Processor<KIn, VIn, KOut, VOut>> processor_;
  std::vector<std::string> stores_;
};

// A value read from `store`, decoded; a value the serde cannot read is reported as the store's.
template <typename V>
V decode_stored(const KeyValueStore& store, std::string_view stored, const Serde<V>& value_serde) {
  try {
    return value_serde.deserialize(stored);
  } catch (const SerdeError& e) {
    throw SerdeError("store '" + store.name() + "': stored value unreadable: " + e.what());
  }
}

// The value `store` holds under `raw_key`, decoded (decode_stored).
template <typename V>
std::optional<V> read_stored(const KeyValueStore& store, std::string_view raw_key,
                             const Serde<V>& value_serde) {
  auto stored = store.get(raw_key);
  if (!stored)
    return std::nullopt;
  return decode_stored(store, *stored, value_serde);
}

// The serialized key a keyed aggregate folds `record` under; nullopt when the record has a null
// key or value, which is reported as dropped (as in Kafka Streams).
template <typename K, typename V>
std::optional<std::string> aggregate_key(TaskEnvironment& environment, const std::string& node,
                                         const Record<K, V>& record, const Serde<K>& key_serde) {
  auto raw_key = record.null_key ? std::nullopt : key_serde.serialize(record.key);
  if (!raw_key) {
    environment.record_dropped(node, "null key");
    return std::nullopt;
  }
  if (is_null(record.value)) {
    environment.record_dropped(node, "null value");
    return std::nullopt;
  }
  return raw_key;
}

// Folds `record` into the aggregate `store` holds under `raw_key` and stores the result (an
// aggregate that serializes to null removes the key); returns it.
template <typename K, typename V, typename VA, typename Fold>
VA fold_into(KeyValueStore& store, const std::string& raw_key, const Record<K, V>& record,
             const Serde<VA>& value_serde, const Fold& fold) {
  std::optional<VA> current = read_stored(store, raw_key, value_serde);
  VA aggregate = fold(record.key, record.value, std::move(current));
  if (auto raw_aggregate = value_serde.serialize(aggregate))
    store.put(raw_key, *raw_aggregate);
  else
    store.remove(raw_key);
  return aggregate;
}

// A keyed aggregate: folds each record into the current aggregate of its key — kept in a store
// under the serialized key — and emits the new aggregate.
// Fold: VA(const K&, const V&, std::optional<VA> current).
//
// As in Kafka Streams, a record whose key is null (it was null in the topic, or serializes to
// null) or whose value is null (an empty std::optional) is dropped and counted. An aggregate that
// serializes to null (an adder returning an empty std::optional) deletes the key: the store forgets
// it, the changelog and downstream get a tombstone, and the key's next record starts from the
// initializer.
template <typename K, typename V, typename VA, typename Fold>
class AggregateNode final : public Input<K, V>, public Output<K, VA> {
 public:
  AggregateNode(std::string name, std::string store_name, Serde<K> key_serde, Serde<VA> value_serde,
                Fold fold)
      : NodeInstance(std::move(name)),
        store_name_(std::move(store_name)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        fold_(std::move(fold)) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    store_ = &environment.store(store_name_);
  }

  void receive(Record<K, V>&& record) override {
    std::optional<Record<K, VA>> out;
    this->guarded([&] {
      const auto raw_key = aggregate_key(this->environment(), this->name(), record, key_serde_);
      if (!raw_key)
        return;
      VA aggregate = fold_into(*store_, *raw_key, record, value_serde_, fold_);
      out = std::move(record).template with_value<VA>(std::move(aggregate));
    });
    if (out)
      this->emit(std::move(*out));
  }

 private:
  std::string store_name_;
  Serde<K> key_serde_;
  Serde<VA> value_serde_;
  Fold fold_;
  KeyValueStore* store_ = nullptr;
};

// Reads a table's topic: keeps the latest value per key in its store (as the topic's bytes) and
// passes updates on; a null value removes the key and is not passed on. A record with a null
// key cannot belong to any key: it is dropped and counted, as in Kafka Streams.
template <typename K, typename V>
class TableSourceNode final : public SourceInstance, public Output<K, V> {
 public:
  TableSourceNode(std::string name, std::string store_name, Serdes<K, V> serdes)
      : NodeInstance(std::move(name)),
        store_name_(std::move(store_name)),
        serdes_(std::move(serdes)) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    store_ = &environment.store(store_name_);
  }

  void receive_raw(const RawRecord& raw) override {
    Record<K, V> record;
    bool removed = false;
    if (!raw.key) {
      environment().record_dropped(name(), "null key");
      return;
    }
    guarded([&] {
      record.key = serdes_.key.deserialize(raw.key);
      const std::string raw_key(*raw.key);
      if (!raw.value) {
        store_->remove(raw_key);
        removed = true;
        return;
      }
      // Decoded first: a value the serde cannot read never enters the table.
      record.value = serdes_.value.deserialize(raw.value);
      store_->put(raw_key, *raw.value);
    });
    if (removed)
      return;
    record.headers = raw.headers;
    record.timestamp_ms = raw.timestamp_ms;
    record.origin = raw.origin;
    this->emit(std::move(record));
  }

 private:
  std::string store_name_;
  Serdes<K, V> serdes_;
  KeyValueStore* store_ = nullptr;
};

// Looks each record's key up in a table's store and emits `joiner(value, table value)`; an
// inner join drops records whose key is absent, a left join passes std::nullopt. A null key
// matches nothing (not even the empty key): an inner join drops the record (counted), a left
// join passes it with std::nullopt.
template <typename K, typename V, typename VT, typename VR, typename Joiner, bool Left>
class JoinNode final : public Input<K, V>, public Output<K, VR> {
 public:
  JoinNode(std::string name, std::string store_name, Serdes<K, VT> table_serdes, Joiner joiner)
      : NodeInstance(std::move(name)),
        store_name_(std::move(store_name)),
        table_serdes_(std::move(table_serdes)),
        joiner_(std::move(joiner)) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    store_ = &environment.store(store_name_);
  }

  void receive(Record<K, V>&& record) override {
    std::optional<Record<K, VR>> out;
    this->guarded([&] {
      const auto raw_key = record.null_key ? std::nullopt : table_serdes_.key.serialize(record.key);
      const std::optional<VT> table_value =
          raw_key ? read_stored(*store_, *raw_key, table_serdes_.value) : std::nullopt;
      if constexpr (!Left) {
        if (!raw_key) {
          this->environment().record_dropped(this->name(), "null key");
          return;
        }
      }
      if constexpr (Left) {
        VR joined = joiner_(std::as_const(record.value), std::as_const(table_value));
        out = std::move(record).template with_value<VR>(std::move(joined));
      } else {
        if (!table_value)
          return;
        VR joined = joiner_(std::as_const(record.value), std::as_const(*table_value));
        out = std::move(record).template with_value<VR>(std::move(joined));
      }
    });
    if (out)
      this->emit(std::move(*out));
  }

 private:
  std::string store_name_;
  Serdes<K, VT> table_serdes_;
  Joiner joiner_;
  KeyValueStore* store_ = nullptr;
};

// Several parents, one stream: passes records through.
template <typename K, typename V>
class PassThroughNode final : public Input<K, V>, public Output<K, V> {
 public:
  explicit PassThroughNode(std::string name) : NodeInstance(std::move(name)) {}
  void receive(Record<K, V>&& record) override { this->emit(std::move(record)); }
};

}  // namespace streamrun::detail
