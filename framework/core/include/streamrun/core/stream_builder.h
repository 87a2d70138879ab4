#pragma once

// The fluent C++ API. Example (compiled with the build, see cmake/StreamrunDocExamples.cmake):
//
//   StreamBuilder builder;
//   builder.stream<std::string, std::string>("orders", {serdes::string(), serdes::string()})
//       .filter([](const auto& key, const auto& value) { return !value.empty(); })
//       .map_values([](const std::string& value) { return std::int64_t(value.size()); })
//       .to("order-sizes", {serdes::string(), serdes::int64()});
//   Topology topology = builder.build();
//
// Operator functions are copied into every task, so they must not share mutable state.

#include <concepts>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <streamrun/core/async_call.h>
#include <streamrun/core/detail/async_node.h>
#include <streamrun/core/detail/nodes.h>
#include <streamrun/core/detail/window_nodes.h>
#include <streamrun/core/processor.h>
#include <streamrun/core/record.h>
#include <streamrun/core/serde.h>
#include <streamrun/core/topology.h>
#include <streamrun/core/windows.h>

namespace streamrun {

template <typename K, typename V>
class KStream;
template <typename K, typename V>
class BranchedStream;
template <typename K, typename V>
class KGroupedStream;
template <typename K, typename V>
class KTable;

class StreamBuilder {
 public:
  // A stream of the records of `topic`.
  template <typename K, typename V>
  KStream<K, V> stream(const std::string& topic, Serdes<K, V> serdes, std::string name = {}) {
    return stream<K, V>(std::vector<std::string>{topic}, std::move(serdes), std::move(name));
  }

  // One stream of several topics (all must have the same partition count):
  // builder.stream({"eu-orders", "us-orders"}, serdes).
  template <typename K, typename V>
  KStream<K, V> stream(std::initializer_list<std::string> topics, Serdes<K, V> serdes,
                       std::string name = {}) {
    return stream<K, V>(std::vector<std::string>(topics), std::move(serdes), std::move(name));
  }
  template <typename K, typename V>
  KStream<K, V> stream(std::vector<std::string> topics, Serdes<K, V> serdes,
                       std::string name = {}) {
    const int id = add_node("source", std::move(name), {}, std::move(topics),
                            [serdes = std::move(serdes)](const std::string& node_name) {
                              return std::make_unique<detail::SourceNode<K, V>>(node_name, serdes);
                            });
    return KStream<K, V>(this, id);
  }

  // The blueprint built so far; the builder can go on growing.
  [[nodiscard]] Topology build() const { return Topology(nodes_); }

  [[nodiscard]] const std::string& node_name(int id) const { return nodes_.at(id).name; }

  // A table of the latest value per key of `topic`, kept in the store `store` (a record with a
  // null value removes its key). Joined with a stream, the topic must be co-partitioned with
  // the stream's: same partition count, same key partitioner.
  template <typename K, typename V>
  KTable<K, V> table(const std::string& topic, Serdes<K, V> serdes, const std::string& store,
                     std::string name = {});

  // Declares that operator `id` owns state store `store` (names are unique per topology).
  void attach_store(int id, std::string store);
  // attach_store() for a window store.
  void attach_window_store(int id, std::string store, WindowStoreSpec spec);
  // Declares that operator `id` reads the store another operator owns: both run in one task.
  void use_store(int id, const std::string& store);
  // Records that fail in operator `id` follow `policy` instead of the pipeline's.
  void set_error_policy(int id, ErrorPolicy policy);

  // Adds an operator; `make` builds one instance of it for a task, given its name.
  // Used by KStream and by extensions (keyed operators, YAML operators).
  int add_node(std::string kind, std::string name, std::vector<int> parents,
               std::vector<std::string> topics,
               std::function<std::unique_ptr<detail::NodeInstance>(const std::string&)> make);

 private:
  std::vector<NodeSpec> nodes_;
  std::set<std::string> names_;
};

template <typename K, typename V>
class KStream {
 public:
  using key_type = K;
  using value_type = V;

  // Keeps the records for which `predicate(key, value)` is true.
  template <typename Predicate>
  KStream filter(Predicate predicate, std::string name = {}) const {
    return then<K, V>("filter", std::move(name), [predicate](Record<K, V>&& record, auto&& emit) {
      if (predicate(std::as_const(record.key), std::as_const(record.value))) {
        emit(std::move(record));
      }
    });
  }

  // Drops the records for which `predicate(key, value)` is true.
  template <typename Predicate>
  KStream filter_not(Predicate predicate, std::string name = {}) const {
    return filter([predicate](const K& key, const V& value) { return !predicate(key, value); },
                  name.empty() ? std::string() : std::move(name));
  }

  // New key and value: `fn(key, value)` returns a KeyValue<K2, V2>.
  template <typename Fn, typename KV = std::invoke_result_t<Fn, const K&, const V&>>
  KStream<typename KV::key_type, typename KV::value_type> map(Fn fn, std::string name = {}) const {
    using K2 = typename KV::key_type;
    using V2 = typename KV::value_type;
    return then<K2, V2>(
        "map", std::move(name),
        [fn](Record<K, V>&& record, auto&& emit) {
          auto kv = fn(std::as_const(record.key), std::as_const(record.value));
          emit(std::move(record).template with<K2, V2>(std::move(kv.key), std::move(kv.value)));
        },
        /*changes_key=*/true);
  }

  // New value from `fn(value)`; the key stays.
  template <typename Fn, typename V2 = std::invoke_result_t<Fn, const V&>>
  KStream<K, V2> map_values(Fn fn, std::string name = {}) const {
    return then<K, V2>("map_values", std::move(name), [fn](Record<K, V>&& record, auto&& emit) {
      auto value = fn(std::as_const(record.value));
      emit(std::move(record).template with_value<V2>(std::move(value)));
    });
  }

  // New value from `fn(key, value)`, which reads the key; the key stays.
  template <typename Fn, typename V2 = std::invoke_result_t<Fn, const K&, const V&>>
  requires std::invocable<Fn, const K&, const V&> KStream<K, V2> map_values(Fn fn,
                                                                            std::string name = {})
  const {
    return then<K, V2>("map_values", std::move(name), [fn](Record<K, V>&& record, auto&& emit) {
      auto value = fn(std::as_const(record.key), std::as_const(record.value));
      emit(std::move(record).template with_value<V2>(std::move(value)));
    });
  }

  // Zero or more records per record: `fn(key, value)` returns a std::vector<KeyValue<K2, V2>>.
  template <typename Fn, typename List = std::invoke_result_t<Fn, const K&, const V&>,
            typename KV = typename List::value_type>
  KStream<typename KV::key_type, typename KV::value_type> flat_map(Fn fn,
                                                                   std::string name = {}) const {
    using K2 = typename KV::key_type;
    using V2 = typename KV::value_type;
    return then<K2, V2>(
        "flat_map", std::move(name),
        [fn](Record<K, V>&& record, auto&& emit) {
          for (auto& kv : fn(std::as_const(record.key), std::as_const(record.value))) {
            emit(record.template with<K2, V2>(std::move(kv.key), std::move(kv.value)));
          }
        },
        /*changes_key=*/true);
  }

  // Zero or more values per record: `fn(value)` returns a std::vector<V2>; the key stays.
  template <typename Fn, typename List = std::invoke_result_t<Fn, const V&>,
            typename V2 = typename List::value_type>
  KStream<K, V2> flat_map_values(Fn fn, std::string name = {}) const {
    return then<K, V2>("flat_map_values", std::move(name),
                       [fn](Record<K, V>&& record, auto&& emit) {
                         for (auto& value : fn(std::as_const(record.value))) {
                           emit(record.template with_value<V2>(std::move(value)));
                         }
                       });
  }

  // Joins each record with the table's value for its key: `joiner(value, table_value)`. Records
  // whose key is not in the table are dropped. The stream and the table's topic must be
  // co-partitioned (checked when the application starts). After an operator that may have
  // changed the key (map, key_by, flat_map, process) the stream is repartitioned by its new
  // key first, which needs its serdes: pass them (`join(table, joiner, serdes)`); without them
  // such a join throws std::invalid_argument when the topology is built.
  template <typename VT, typename Joiner,
            typename VR = std::invoke_result_t<Joiner, const V&, const VT&>>
  KStream<K, VR> join(const KTable<K, VT>& table, Joiner joiner, std::string name = {}) const {
    return join_table</*Left=*/false, VR>("join", table, std::move(joiner), std::nullopt,
                                          std::move(name));
  }
  template <typename VT, typename Joiner,
            typename VR = std::invoke_result_t<Joiner, const V&, const VT&>>
  KStream<K, VR> join(const KTable<K, VT>& table, Joiner joiner, Serdes<K, V> serdes,
                      std::string name = {}) const {
    return join_table</*Left=*/false, VR>("join", table, std::move(joiner), std::move(serdes),
                                          std::move(name));
  }

  // Like join, but every record passes: `joiner(value, std::optional<VT>)`, nullopt when the key
  // is not in the table.
  template <typename VT, typename Joiner,
            typename VR = std::invoke_result_t<Joiner, const V&, const std::optional<VT>&>>
  KStream<K, VR> left_join(const KTable<K, VT>& table, Joiner joiner, std::string name = {}) const {
    return join_table</*Left=*/true, VR>("left_join", table, std::move(joiner), std::nullopt,
                                         std::move(name));
  }
  template <typename VT, typename Joiner,
            typename VR = std::invoke_result_t<Joiner, const V&, const std::optional<VT>&>>
  KStream<K, VR> left_join(const KTable<K, VT>& table, Joiner joiner, Serdes<K, V> serdes,
                           std::string name = {}) const {
    return join_table</*Left=*/true, VR>("left_join", table, std::move(joiner), std::move(serdes),
                                         std::move(name));
  }

  // Records that fail in the operator that made this stream (its deserialization, for a source)
  // follow `policy` instead of the pipeline's (`errors.*` properties).
  KStream on_error(ErrorPolicy policy) const {
    builder_->set_error_policy(node_, std::move(policy));
    return *this;
  }

  // Looks at each record (logging, metrics) and passes it on unchanged.
  template <typename Fn>
  KStream peek(Fn fn, std::string name = {}) const {
    return then<K, V>("peek", std::move(name), [fn](Record<K, V>&& record, auto&& emit) {
      fn(std::as_const(record.key), std::as_const(record.value));
      emit(std::move(record));
    });
  }

  // A new key from `fn(key, value)`. Before a keyed operator the records are repartitioned by
  // the new key, so that each key is handled by exactly one task.
  template <typename Fn, typename K2 = std::invoke_result_t<Fn, const K&, const V&>>
  KStream<K2, V> key_by(Fn fn, std::string name = {}) const {
    return then<K2, V>(
        "key_by", std::move(name),
        [fn](Record<K, V>&& record, auto&& emit) {
          K2 key = fn(std::as_const(record.key), std::as_const(record.value));
          V value = std::move(record.value);
          emit(std::move(record).template with<K2, V>(std::move(key), std::move(value)));
        },
        /*changes_key=*/true);
  }

  // Sets each record's timestamp (ms since the epoch) to `extractor(key, value, timestamp)`,
  // e.g. an event time from a field of the value, instead of the time Kafka stored: windows,
  // stream time, punctuators and sinks go by it from here on (Kafka Streams'
  // TimestampExtractor; use it right after the source). A negative result fails the record.
  template <typename Extractor>
  KStream with_timestamp(Extractor extractor, std::string name = {}) const {
    const int id = builder_->add_node(
        "timestamp", std::move(name), {node_}, {},
        [extractor = std::move(extractor)](const std::string& node_name) {
          return std::make_unique<detail::TimestampNode<K, V, Extractor>>(node_name, extractor);
        });
    return KStream(builder_, id, key_changed_);
  }

  // Calls another service per record without blocking the task (see async_call.h): `call(record,
  // completion)` runs on the task's fiber, starts a request on an I/O client and returns at once;
  // the client completes it later from its own thread (completion.succeed(result), reject(why)
  // or fail(why)). The result becomes the record's value. Up to options.capacity calls per task
  // are in flight; results go on in input order unless options.ordered is false. `fallback`
  // gives the value instead of a call while the endpoint's breaker is open, when
  // options.when_open is WhenOpen::fallback. Throws std::invalid_argument for invalid options.
  template <typename R>
  KStream<K, R> call_async(std::function<void(const Record<K, V>&, CallCompletion<R>)> call,
                           AsyncCallOptions options = {}, std::string name = {},
                           std::function<R(const Record<K, V>&)> fallback = {}) const {
    if (auto why = options.invalid(); !why.empty())
      throw std::invalid_argument("call_async: " + why);
    if (options.when_open == WhenOpen::fallback && !fallback)
      throw std::invalid_argument("call_async: when_open is fallback, but no fallback was given");
    const int id =
        builder_->add_node("call", std::move(name), {node_}, {},
                           [call = std::move(call), options = std::move(options),
                            fallback = std::move(fallback)](const std::string& node_name) {
                             return std::make_unique<detail::AsyncCallNode<K, V, R>>(
                                 node_name, options, call, fallback);
                           });
    return KStream<K, R>(builder_, id, key_changed_);
  }

  // A custom operator; `supplier` makes one Processor per task. `stores`: the state stores it
  // owns (ProcessorContext::store), RocksDB-backed with changelogs like the others; the records
  // must be partitioned by the key the processor keeps state by.
  template <typename KOut, typename VOut>
  KStream<KOut, VOut> process(
      std::function<std::unique_ptr<Processor<K, V, KOut, VOut>>()> supplier, std::string name = {},
      std::vector<std::string> stores = {}) const {
    const int id =
        builder_->add_node("processor", std::move(name), {node_}, {},
                           [supplier = std::move(supplier), stores](const std::string& node_name) {
                             return std::make_unique<detail::ProcessorNode<K, V, KOut, VOut>>(
                                 node_name, supplier(), stores);
                           });
    for (const auto& store : stores)
      builder_->attach_store(id, store);
    return KStream<KOut, VOut>(builder_, id, /*key_changed=*/true);  // unknown: assume it did
  }

  // Writes the records to `topic`, partitioned by the serialized key.
  void to(const std::string& topic, Serdes<K, V> serdes, std::string name = {}) const {
    builder_->add_node("sink", std::move(name), {node_}, {topic},
                       [topic, serdes = std::move(serdes)](const std::string& node_name) {
                         return std::make_unique<detail::SinkNode<K, V>>(node_name, topic, serdes);
                       });
  }

  // Writes the records to an internal topic, "<application.id>-<name>-repartition", partitioned
  // by their (new) key, and reads them back: afterwards each key is in the partition, hence the
  // task, that its key hashes to. Drops records whose key is null (they have no partition).
  // Keyed operators and joins after a key change do this themselves.
  KStream repartition(Serdes<K, V> serdes, std::string name = {}) const;

  // Groups records by key for a keyed aggregate. After an operator that may have changed the key
  // (map, flat_map, key_by, process) the records first go through an internal repartition
  // topic, "<application.id>-<name>-repartition", so that each key is aggregated by exactly
  // one task.
  KGroupedStream<K, V> group_by_key(Serdes<K, V> serdes, std::string name = {}) const;

  // Routes each record to the first branch whose predicate holds (see BranchedStream).
  BranchedStream<K, V> split(std::string name = {}) const;

  // One stream with the records of both.
  KStream merge(const KStream& other, std::string name = {}) const {
    const int id = builder_->add_node(
        "merge", std::move(name), {node_, other.node_}, {}, [](const std::string& node_name) {
          return std::make_unique<detail::PassThroughNode<K, V>>(node_name);
        });
    return KStream(builder_, id, key_changed_ || other.key_changed_);
  }

  [[nodiscard]] int node_id() const noexcept { return node_; }
  [[nodiscard]] StreamBuilder& builder() const noexcept { return *builder_; }

  // `key_changed`: an operator upstream may have changed the key since the records were last
  // partitioned by it.
  KStream(StreamBuilder* builder, int node, bool key_changed = false)
      : builder_(builder), node_(node), key_changed_(key_changed) {}
  [[nodiscard]] bool key_changed() const noexcept { return key_changed_; }

 private:
  template <typename K2, typename V2, typename Fn>
  KStream<K2, V2> then(const char* kind, std::string name, Fn fn, bool changes_key = false) const {
    const int id = builder_->add_node(
        kind, std::move(name), {node_}, {}, [fn = std::move(fn)](const std::string& node_name) {
          return std::make_unique<detail::FunctionNode<K, V, K2, V2, Fn>>(node_name, fn);
        });
    return KStream<K2, V2>(builder_, id, key_changed_ || changes_key);
  }

  template <bool Left, typename VR, typename VT, typename Joiner>
  KStream<K, VR> join_table(const char* kind, const KTable<K, VT>& table, Joiner joiner,
                            std::optional<Serdes<K, V>> serdes, std::string name) const;

  StreamBuilder* builder_;
  int node_;
  bool key_changed_ = false;
};

namespace detail {

// Sends each record to the child of the first predicate that holds, or to the default child.
template <typename K, typename V>
class SplitNode final : public Input<K, V> {
 public:
  struct Spec {
    std::vector<std::function<bool(const K&, const V&)>> predicates;
    bool has_default = false;
  };
  SplitNode(std::string name, std::shared_ptr<const Spec> spec)
      : NodeInstance(std::move(name)), spec_(std::move(spec)) {}

  void connect(NodeInstance& child) override {
    auto* typed = dynamic_cast<Input<K, V>*>(&child);
    if (typed == nullptr)
      throw std::logic_error("split '" + this->name() + "': type mismatch");
    branches_.push_back(typed);
  }

  void receive(Record<K, V>&& record) override {
    std::size_t chosen = branches_.size();
    this->guarded([&] {
      for (std::size_t i = 0; i < spec_->predicates.size(); ++i) {
        if (spec_->predicates[i](record.key, record.value)) {
          chosen = i;
          return;
        }
      }
      if (spec_->has_default)
        chosen = spec_->predicates.size();
    });
    if (chosen < branches_.size())
      branches_[chosen]->receive(std::move(record));
  }

 private:
  std::shared_ptr<const Spec> spec_;
  std::vector<Input<K, V>*> branches_;
};

}  // namespace detail

// Branching: stream.split().branch("big", is_big).branch("small", is_small).default_branch("rest")
// returns {"big": ..., "small": ..., "rest": ...}. A record goes to the first branch whose
// predicate holds; without a default branch, records that match none are dropped.
template <typename K, typename V>
class BranchedStream {
 public:
  template <typename Predicate>
  BranchedStream& branch(const std::string& branch_name, Predicate predicate) {
    spec_->predicates.emplace_back(std::move(predicate));
    add_branch(branch_name);
    return *this;
  }

  std::map<std::string, KStream<K, V>> default_branch(const std::string& branch_name = "default") {
    spec_->has_default = true;
    add_branch(branch_name);
    return branches_;
  }

  std::map<std::string, KStream<K, V>> branches() const { return branches_; }

  BranchedStream(StreamBuilder& builder, int parent, std::string name, bool key_changed)
      : builder_(&builder),
        spec_(std::make_shared<typename detail::SplitNode<K, V>::Spec>()),
        key_changed_(key_changed) {
    split_node_ = builder.add_node(
        "split", std::move(name), {parent}, {}, [spec = spec_](const std::string& node_name) {
          return std::make_unique<detail::SplitNode<K, V>>(node_name, spec);
        });
  }

 private:
  void add_branch(const std::string& branch_name) {
    if (branch_name.empty() || branches_.contains(branch_name)) {
      throw std::invalid_argument("branch names must be unique and not empty: '" + branch_name +
                                  "'");
    }
    const int id =
        builder_->add_node("branch", builder_->node_name(split_node_) + "-" + branch_name,
                           {split_node_}, {}, [](const std::string& node_name) {
                             return std::make_unique<detail::PassThroughNode<K, V>>(node_name);
                           });
    branches_.emplace(branch_name, KStream<K, V>(builder_, id, key_changed_));
  }

  StreamBuilder* builder_;
  std::shared_ptr<typename detail::SplitNode<K, V>::Spec> spec_;
  int split_node_ = 0;
  bool key_changed_ = false;
  std::map<std::string, KStream<K, V>> branches_;
};

// The result of a keyed aggregate: the latest aggregate per key. to_stream() gives the stream
// of its updates (one per input record).
template <typename K, typename V>
class KTable {
 public:
  KTable(StreamBuilder* builder, int node, std::string store, Serdes<K, V> serdes)
      : builder_(builder), node_(node), store_(std::move(store)), serdes_(std::move(serdes)) {}
  [[nodiscard]] KStream<K, V> to_stream() const { return KStream<K, V>(builder_, node_); }

  [[nodiscard]] const std::string& store() const noexcept { return store_; }
  [[nodiscard]] const Serdes<K, V>& serdes() const noexcept { return serdes_; }

 private:
  StreamBuilder* builder_;
  int node_;
  std::string store_;
  Serdes<K, V> serdes_;
};

namespace detail {

// The folds of count, reduce and aggregate, per key or per key and window:
// VA(const K&, const V&, std::optional<VA> current).
template <typename K, typename V, typename VA, typename Init, typename Adder>
auto aggregate_fold(Init init, Adder adder) {
  return [init, adder](const K& key, const V& value, std::optional<VA> current) {
    return adder(key, value, current ? std::move(*current) : init());
  };
}
template <typename K, typename V>
auto count_fold() {
  return [](const K&, const V&, std::optional<std::int64_t> current) {
    return current.value_or(0) + 1;
  };
}
template <typename K, typename V, typename Reducer>
auto reduce_fold(Reducer reducer) {
  return [reducer](const K&, const V& value, std::optional<V> current) {
    return current ? reducer(std::move(*current), value) : value;
  };
}

}  // namespace detail

// Records grouped by key and time window (KGroupedStream::windowed_by), ready for count, reduce
// or aggregate per window. Each keeps its windows in a named store and emits a window's new
// aggregate for every record it takes, keyed Windowed<K> (serdes::windowed writes such keys)
// and stamped with the window's end. Records too late for all their windows (see TimeWindows)
// are dropped and counted.
template <typename K, typename V>
class TimeWindowedKStream {
 public:
  TimeWindowedKStream(StreamBuilder* builder, int node, Serdes<K, V> serdes, TimeWindows windows)
      : builder_(builder), node_(node), serdes_(std::move(serdes)), options_{windows} {}

  // Emits each window's aggregate once, when the window closes (stream time passes its end plus
  // the grace period), instead of on every record: one final result per window (Kafka
  // Streams' suppress(untilWindowCloses) and EmitStrategy.onWindowClose()).
  // Throws std::logic_error after emit_every().
  [[nodiscard]] TimeWindowedKStream emit_on_window_close() const {
    if (options_.emit_every_ms > 0)
      throw std::logic_error("emit_on_window_close() and emit_every() exclude each other");
    auto copy = *this;
    copy.options_.emit_on_close = true;
    return copy;
  }
  // Emits the windows updated since the last emission every `interval` of wall-clock time, each
  // once with its latest aggregate, instead of on every record: fewer, coalesced updates, as
  // Kafka Streams' record cache gives at each commit. An update is marked in the store with
  // the window, so that a crash before its emission loses nothing: the restarted task emits
  // it. Throws std::invalid_argument for interval <= 0, std::logic_error after
  // emit_on_window_close().
  [[nodiscard]] TimeWindowedKStream emit_every(std::chrono::milliseconds interval) const {
    if (interval.count() <= 0)
      throw std::invalid_argument("emit_every: the interval must be > 0 ms (got " +
                                  std::to_string(interval.count()) + " ms)");
    if (options_.emit_on_close)
      throw std::logic_error("emit_on_window_close() and emit_every() exclude each other");
    auto copy = *this;
    copy.options_.emit_every_ms = interval.count();
    return copy;
  }
  // A record too late for all its windows fails instead of being dropped: its error policy
  // applies (with errors.policy=dead_letter it goes to the dead-letter topic, error class
  // streamrun::LateRecordError).
  [[nodiscard]] TimeWindowedKStream late_records_fail() const {
    auto copy = *this;
    copy.options_.late_records_fail = true;
    return copy;
  }

  // `adder(key, value, aggregate)` returns the new aggregate; each window starts at `init()`.
  template <typename Init, typename Adder, typename VA = std::invoke_result_t<Init>>
  KTable<Windowed<K>, VA> aggregate(Init init, Adder adder, const std::string& store,
                                    Serde<VA> value_serde, std::string name = {}) const {
    return fold<VA>("windowed-aggregate", store, std::move(value_serde), std::move(name),
                    detail::aggregate_fold<K, V, VA>(init, adder));
  }

  // Records per key and window.
  KTable<Windowed<K>, std::int64_t> count(const std::string& store, std::string name = {}) const {
    return fold<std::int64_t>("windowed-count", store, serdes::int64(), std::move(name),
                              detail::count_fold<K, V>());
  }

  // `reducer(aggregate, value)`; a window's first value is its first aggregate.
  template <typename Reducer>
  KTable<Windowed<K>, V> reduce(Reducer reducer, const std::string& store,
                                std::string name = {}) const {
    return fold<V>("windowed-reduce", store, serdes_.value, std::move(name),
                   detail::reduce_fold<K, V>(reducer));
  }

 private:
  template <typename VA, typename Fold>
  KTable<Windowed<K>, VA> fold(const char* kind, const std::string& store, Serde<VA> value_serde,
                               std::string name, Fold fold_fn) const {
    const int id =
        builder_->add_node(kind, std::move(name), {node_}, {},
                           [store, options = options_, key_serde = serdes_.key, value_serde,
                            fold_fn](const std::string& node_name) {
                             return std::make_unique<detail::WindowAggregateNode<K, V, VA, Fold>>(
                                 node_name, store, options, key_serde, value_serde, fold_fn);
                           });
    builder_->attach_window_store(
        id, store,
        {WindowStoreSpec::Kind::time, options_.windows.size_ms(), options_.windows.retention_ms()});
    return KTable<Windowed<K>, VA>(
        builder_, id, store,
        {serdes::windowed(serdes_.key, std::chrono::milliseconds(options_.windows.size_ms())),
         std::move(value_serde)});
  }

  StreamBuilder* builder_;
  int node_;
  Serdes<K, V> serdes_;
  detail::WindowOptions<TimeWindows> options_;
};

// Records grouped by key and session (KGroupedStream::windowed_by(SessionWindows)), ready for
// count, reduce or aggregate per session. Each keeps its sessions in a named store and, for
// every record it takes, emits the aggregate of the record's session keyed Windowed<K>
// (serdes::session_windowed writes such keys) and stamped with the session's end, and a
// tombstone (std::nullopt) for each session the record merged into it. Records too late for any
// open session (see SessionWindows) are dropped and counted.
template <typename K, typename V>
class SessionWindowedKStream {
 public:
  SessionWindowedKStream(StreamBuilder* builder, int node, Serdes<K, V> serdes,
                         SessionWindows windows)
      : builder_(builder), node_(node), serdes_(std::move(serdes)), options_{windows} {}

  // Emits each session's aggregate once, when it closes (stream time passes its end plus the
  // gap plus the grace period): one final result per session and no tombstones.
  [[nodiscard]] SessionWindowedKStream emit_on_window_close() const {
    auto copy = *this;
    copy.options_.emit_on_close = true;
    return copy;
  }
  // A record too late for any open session fails instead of being dropped: its error policy
  // applies (error class streamrun::LateRecordError).
  [[nodiscard]] SessionWindowedKStream late_records_fail() const {
    auto copy = *this;
    copy.options_.late_records_fail = true;
    return copy;
  }

  // `adder(key, value, aggregate)` returns the new aggregate; each session starts at `init()`;
  // `merger(key, older, newer)` combines the aggregates of two sessions a record bridges.
  template <typename Init, typename Adder, typename Merger,
            typename VA = std::invoke_result_t<Init>>
  KTable<Windowed<K>, std::optional<VA>> aggregate(Init init, Adder adder, Merger merger,
                                                   const std::string& store, Serde<VA> value_serde,
                                                   std::string name = {}) const {
    return fold<VA>("session-aggregate", store, std::move(value_serde), std::move(name),
                    detail::aggregate_fold<K, V, VA>(init, adder), merger);
  }

  // Records per key and session.
  KTable<Windowed<K>, std::optional<std::int64_t>> count(const std::string& store,
                                                         std::string name = {}) const {
    return fold<std::int64_t>(
        "session-count", store, serdes::int64(), std::move(name), detail::count_fold<K, V>(),
        [](const K&, std::int64_t older, std::int64_t newer) { return older + newer; });
  }

  // `reducer(aggregate, value)`; a session's first value is its first aggregate, and two
  // sessions merge as reducer(older, newer).
  template <typename Reducer>
  KTable<Windowed<K>, std::optional<V>> reduce(Reducer reducer, const std::string& store,
                                               std::string name = {}) const {
    return fold<V>("session-reduce", store, serdes_.value, std::move(name),
                   detail::reduce_fold<K, V>(reducer),
                   [reducer](const K&, V older, V newer) { return reducer(older, newer); });
  }

 private:
  template <typename VA, typename Fold, typename Merge>
  KTable<Windowed<K>, std::optional<VA>> fold(const char* kind, const std::string& store,
                                              Serde<VA> value_serde, std::string name, Fold fold_fn,
                                              Merge merge) const {
    const int id = builder_->add_node(
        kind, std::move(name), {node_}, {},
        [store, options = options_, key_serde = serdes_.key, value_serde, fold_fn,
         merge](const std::string& node_name) {
          return std::make_unique<detail::SessionAggregateNode<K, V, VA, Fold, Merge>>(
              node_name, store, options, key_serde, value_serde, fold_fn, merge);
        });
    builder_->attach_window_store(id, store,
                                  {WindowStoreSpec::Kind::session, options_.windows.gap_ms(),
                                   options_.windows.retention_ms()});
    return KTable<Windowed<K>, std::optional<VA>>(
        builder_, id, store,
        {serdes::session_windowed(serdes_.key), serdes::optional(std::move(value_serde))});
  }

  StreamBuilder* builder_;
  int node_;
  Serdes<K, V> serdes_;
  detail::WindowOptions<SessionWindows> options_;
};

// Records grouped by key, ready for count, reduce or aggregate. Each aggregate keeps its state
// in a named store.
template <typename K, typename V>
class KGroupedStream {
 public:
  KGroupedStream(StreamBuilder* builder, int node, Serdes<K, V> serdes)
      : builder_(builder), node_(node), serdes_(std::move(serdes)) {}

  // Aggregates per key and time window instead of per key (tumbling or hopping, see windows.h).
  [[nodiscard]] TimeWindowedKStream<K, V> windowed_by(TimeWindows windows) const {
    return TimeWindowedKStream<K, V>(builder_, node_, serdes_, windows);
  }
  // Aggregates per key and session (bursts of activity, see windows.h).
  [[nodiscard]] SessionWindowedKStream<K, V> windowed_by(SessionWindows windows) const {
    return SessionWindowedKStream<K, V>(builder_, node_, serdes_, windows);
  }

  // `adder(key, value, aggregate)` returns the new aggregate; a key starts at `init()`.
  template <typename Init, typename Adder, typename VA = std::invoke_result_t<Init>>
  KTable<K, VA> aggregate(Init init, Adder adder, const std::string& store, Serde<VA> value_serde,
                          std::string name = {}) const {
    return fold<VA>("aggregate", store, std::move(value_serde), std::move(name),
                    detail::aggregate_fold<K, V, VA>(init, adder));
  }

  // Records per key.
  KTable<K, std::int64_t> count(const std::string& store, std::string name = {}) const {
    return fold<std::int64_t>("count", store, serdes::int64(), std::move(name),
                              detail::count_fold<K, V>());
  }

  // `reducer(aggregate, value)`; a key's first value is its first aggregate.
  template <typename Reducer>
  KTable<K, V> reduce(Reducer reducer, const std::string& store, std::string name = {}) const {
    return fold<V>("reduce", store, serdes_.value, std::move(name),
                   detail::reduce_fold<K, V>(reducer));
  }

 private:
  template <typename VA, typename Fold>
  KTable<K, VA> fold(const char* kind, const std::string& store, Serde<VA> value_serde,
                     std::string name, Fold fold_fn) const {
    const int id = builder_->add_node(
        kind, std::move(name), {node_}, {},
        [store, key_serde = serdes_.key, value_serde, fold_fn](const std::string& node_name) {
          return std::make_unique<detail::AggregateNode<K, V, VA, Fold>>(
              node_name, store, key_serde, value_serde, fold_fn);
        });
    builder_->attach_store(id, store);
    return KTable<K, VA>(builder_, id, store, {serdes_.key, std::move(value_serde)});
  }

  StreamBuilder* builder_;
  int node_;
  Serdes<K, V> serdes_;
};

template <typename K, typename V>
KStream<K, V> KStream<K, V>::repartition(Serdes<K, V> serdes, std::string name) const {
  // Write the records out keyed by their new key and read them back: the repartition topic's
  // partitioner sends every key to one partition, hence to one task.
  if (name.empty())
    name = "repartition-" + std::to_string(node_);
  const std::string topic =
      std::string(detail::kApplicationIdPlaceholder) + "-" + name + "-repartition";
  builder_->add_node("sink", name + "-sink", {node_}, {topic},
                     [topic, serdes](const std::string& node_name) {
                       return std::make_unique<detail::SinkNode<K, V>>(node_name, topic, serdes,
                                                                       /*drop_null_keys=*/true);
                     });
  const int source =
      builder_->add_node("source", name, {}, {topic}, [serdes](const std::string& node_name) {
        return std::make_unique<detail::SourceNode<K, V>>(node_name, serdes);
      });
  return KStream<K, V>(builder_, source, /*key_changed=*/false);
}

template <typename K, typename V>
KGroupedStream<K, V> KStream<K, V>::group_by_key(Serdes<K, V> serdes, std::string name) const {
  if (!key_changed_)
    return KGroupedStream<K, V>(builder_, node_, std::move(serdes));
  const auto repartitioned = repartition(serdes, std::move(name));
  return KGroupedStream<K, V>(builder_, repartitioned.node_id(), std::move(serdes));
}

template <typename K, typename V>
KTable<K, V> StreamBuilder::table(const std::string& topic, Serdes<K, V> serdes,
                                  const std::string& store, std::string name) {
  const int id = add_node(
      "table", std::move(name), {}, {topic}, [serdes, store](const std::string& node_name) {
        return std::make_unique<detail::TableSourceNode<K, V>>(node_name, store, serdes);
      });
  attach_store(id, store);
  return KTable<K, V>(this, id, store, std::move(serdes));
}

template <typename K, typename V>
template <bool Left, typename VR, typename VT, typename Joiner>
KStream<K, VR> KStream<K, V>::join_table(const char* kind, const KTable<K, VT>& table,
                                         Joiner joiner, std::optional<Serdes<K, V>> serdes,
                                         std::string name) const {
  int input = node_;
  if (key_changed_) {
    // The records are in the partitions of their old key: looked up in this task's part of
    // the table, most would find nothing or the wrong row.
    if (!serdes) {
      throw std::invalid_argument(
          std::string(kind) + " after '" + builder_->node_name(node_) +
          "': the key may have changed since the records were partitioned (map, key_by, "
          "flat_map or process), so they must be repartitioned by the new key first; pass the "
          "stream's serdes: " +
          kind + "(table, joiner, serdes)");
    }
    const auto repartition_name =
        (name.empty() ? std::string(kind) + "-" + std::to_string(node_) : name) + "-by-key";
    input = repartition(*serdes, repartition_name).node_id();
  }
  const int id = builder_->add_node(
      kind, std::move(name), {input}, {}, [table, joiner](const std::string& node_name) {
        return std::make_unique<detail::JoinNode<K, V, VT, VR, Joiner, Left>>(
            node_name, table.store(), table.serdes(), joiner);
      });
  builder_->use_store(id, table.store());
  return KStream<K, VR>(builder_, id, /*key_changed=*/false);
}

template <typename K, typename V>
BranchedStream<K, V> KStream<K, V>::split(std::string name) const {
  return BranchedStream<K, V>(*builder_, node_, std::move(name), key_changed_);
}

}  // namespace streamrun
