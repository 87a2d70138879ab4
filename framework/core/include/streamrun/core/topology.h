#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <streamrun/core/detail/nodes.h>
#include <streamrun/core/error_policy.h>

namespace streamrun {
namespace detail {
class AsyncCallBase;
}

// One operator in the blueprint.
// A window store (KGroupedStream::windowed_by): how its entries are laid out and how long it
// keeps a window, for its changelog and for interactive queries.
struct WindowStoreSpec {
  enum class Kind { time, session };
  Kind kind = Kind::time;
  std::int64_t size_ms = 0;       // a time window's size (end = start + size); a session's gap
  std::int64_t retention_ms = 0;  // how long after its start (session: end) a window is kept
};

struct NodeSpec {
  int id = 0;
  std::string name;  // unique in the topology: "filter-1" or the user's name
  std::string kind;  // "source", "filter", "map", "sink", "processor", ...
  std::vector<int> parents;
  std::vector<std::string> topics;  // source: topics read; sink: the topic written
  std::vector<std::string> stores;  // state stores the operator uses
  std::function<std::unique_ptr<detail::NodeInstance>()> factory;
  std::optional<ErrorPolicy> error_policy;  // overrides the pipeline's for this operator
  // Window stores among `stores`: their changelogs may let older entries go, and their entries
  // are windows.
  std::map<std::string, WindowStoreSpec> window_stores;

  // Reads topics (a stream's source or a table).
  [[nodiscard]] bool is_source() const { return kind == "source" || kind == "table"; }
};

// The blueprint of a pipeline: operators and how they connect, split into sub-topologies
// (connected groups of operators; each runs as one task per input partition). Immutable and
// cheap to copy; tasks are instantiated from it.
class Topology {
 public:
  Topology() = default;
  explicit Topology(std::vector<NodeSpec> nodes);

  [[nodiscard]] const std::vector<NodeSpec>& nodes() const noexcept { return nodes_; }
  [[nodiscard]] int subtopology_count() const noexcept {
    return static_cast<int>(subtopologies_.size());
  }
  // Node ids of one sub-topology, in creation order (parents before children).
  [[nodiscard]] const std::vector<int>& subtopology(int index) const {
    return subtopologies_.at(index);
  }
  [[nodiscard]] std::vector<std::string> source_topics(int subtopology) const;
  [[nodiscard]] std::vector<std::string> source_topics() const;
  [[nodiscard]] std::vector<std::string> sink_topics() const;
  // Names of the state stores the tasks of a sub-topology need.
  [[nodiscard]] std::vector<std::string> stores(int subtopology) const;
  // Window store `store`; nullopt for other stores.
  [[nodiscard]] std::optional<WindowStoreSpec> window_store(std::string_view store) const;
  // How long window store `store` keeps a window (ms); nullopt for other stores.
  [[nodiscard]] std::optional<std::int64_t> window_retention_ms(std::string_view store) const;
  [[nodiscard]] bool stateful() const;
  // The same topology with internal topic names (${application.id}-...) made concrete.
  [[nodiscard]] Topology resolved(std::string_view application_id) const;

  // The sub-topology that reads `topic`, or -1.
  [[nodiscard]] int subtopology_of_topic(std::string_view topic) const;

  // Readable text, one line per operator with its successors.
  [[nodiscard]] std::string describe() const;
  // A Mermaid flowchart (topics as cylinders, sub-topologies as subgraphs).
  [[nodiscard]] std::string describe_mermaid() const;

 private:
  std::vector<NodeSpec> nodes_;
  std::vector<std::vector<int>> subtopologies_;
};

// How a task waits before a retry, writes a dead letter and reports a skipped record. The
// runtime waits on its fiber and writes through its producer; the test driver uses its clock
// and in-memory topics.
struct FailureHandling {
  ErrorPolicy default_policy;
  std::function<void(std::chrono::milliseconds)> wait;
  std::function<void(const RawRecord& letter, const std::string& topic)> dead_letter;
  std::function<void(const RawRecord& record, const OperatorFailure& failure)> skipped;
  std::function<double()> unit_random;  // in [0, 1)
};

// What became of a record.
enum class RecordOutcome { processed, skipped, dead_lettered };

// One sub-topology instantiated for one input partition: the operators a task runs.
class TaskInstance {
 public:
  using StoreProvider = std::function<KeyValueStore&(std::string_view name)>;
  // Told when an operator drops a record on purpose (null key or value in a keyed operator).
  using DropListener = std::function<void(std::string_view node, std::string_view reason,
                                          const RecordOrigin& record)>;

  // `topology` must be resolved for info.application_id; `stores` gives the task's stores.
  TaskInstance(const Topology& topology, TaskInfo info, RecordCollector& collector,
               std::function<std::int64_t()> clock, StoreProvider stores = {});
  ~TaskInstance();
  TaskInstance(const TaskInstance&) = delete;
  TaskInstance& operator=(const TaskInstance&) = delete;

  [[nodiscard]] const TaskInfo& info() const noexcept;

  // Runs one input record through the operators; every source reading its topic sees it. Its
  // outputs reach the collector only once it has gone through every operator. Throws
  // OperatorFailure when an operator or a serde fails on it, or the collector refuses one of
  // its outputs: the record's store writes are undone and its held outputs dropped first, and
  // the task stays usable for the next record. InfrastructureError passes through (the task
  // cannot go on).
  void process(const RawRecord& record);

  // process() under the error policies: the failing operator's own, else
  // `handling.default_policy`. Retries, then skips or dead-letters as the policy says; throws
  // the last OperatorFailure when it says fail.
  RecordOutcome process(const RawRecord& record, const FailureHandling& handling);

  // Calls close() on every operator, once.
  void close();

  // --- punctuators (ProcessorContext::schedule), on the task's fiber ---------------------------
  // Runs the punctuators of `type` that are due: by the task's clock (wall_clock) or its stream
  // time (process(record, handling) runs the stream-time ones after each record). What they
  // forward and write goes out like a record's outputs. Throws std::runtime_error naming the
  // operator when a punctuator throws (its writes and outputs undone): the task cannot go on.
  void punctuate(PunctuationType type);
  [[nodiscard]] bool has_punctuators(PunctuationType type) const;
  // How soon punctuate(wall_clock) must run at the latest, by the task's clock;
  // milliseconds::max() without wall-clock punctuators.
  [[nodiscard]] std::chrono::milliseconds punctuation_due_in() const;

  // --- async calls (KStream::call_async), on the task's fiber --------------------------------
  // A record that reaches an async call operator is processed in two phases: up to the call
  // (process() above; it starts the call) and after it (run_calls(), once the call finished;
  // the record's outputs, store changes and error policy there are a record of their own).
  [[nodiscard]] bool has_calls() const noexcept { return !calls_.empty(); }
  // Calls held by the task's operators (in flight, waiting for a retry, or finished but not yet
  // passed on).
  [[nodiscard]] std::size_t calls_held() const noexcept;
  // An operator holds `capacity` calls: take no new record until run_calls() passed some on.
  [[nodiscard]] bool calls_full() const noexcept;
  // An open circuit breaker holds calls back: the task's input should pause.
  [[nodiscard]] bool calls_blocked() const noexcept;
  // How soon run_calls() must run again at the latest (timeouts, retries, rate limits, the
  // breaker's cool-down), by the task's clock; milliseconds::max() when only a completion can
  // change anything.
  [[nodiscard]] std::chrono::milliseconds calls_due_in() const;
  // Called from any thread (a client's) when a call completes; empty to stop. Set before the
  // first record.
  void set_call_listener(std::function<void()> listener);
  // Settles completions, timeouts and retries, starts what may start, and passes finished
  // calls on, under the error policies. Throws like process(record, handling).
  struct CallOutcomes {
    std::int64_t processed = 0;
    std::int64_t skipped = 0;
    std::int64_t dead_lettered = 0;
  };
  CallOutcomes run_calls(const FailureHandling& handling);
  // Per input partition with held calls, the oldest input offset among them: a commit must not
  // pass it.
  [[nodiscard]] std::vector<RecordOrigin> oldest_call_offsets() const;

  // Records into and out of each operator so far, in the sub-topology's order. A node's input is
  // what its parents passed on (for a source: the records it read). Any thread.
  struct NodeCount {
    std::string name;
    std::int64_t in = 0;
    std::int64_t out = 0;
  };
  [[nodiscard]] std::vector<NodeCount> node_counts() const;

  // Records operators dropped on purpose so far (see DropListener).
  [[nodiscard]] std::int64_t dropped() const noexcept;
  void set_drop_listener(DropListener listener);

 private:
  class Environment;
  // The record went through (its outputs go out, its calls start) or failed (both dropped).
  void end_record();
  void roll_back_record();
  [[nodiscard]] const ErrorPolicy& policy_of(const std::string& node,
                                             const FailureHandling& handling) const;
  // Runs `attempt_once` under the failing operator's policy: retries, then skips,
  // dead-letters or throws.
  RecordOutcome under_policy(const RawRecord& record, const FailureHandling& handling,
                             const std::function<void()>& attempt_once);
  RecordOutcome give_up(const RawRecord& record, const OperatorFailure& failure, int attempts,
                        const ErrorPolicy& policy, const FailureHandling& handling);
  std::unique_ptr<Environment> environment_;
  std::vector<detail::AsyncCallBase*> calls_;
  std::vector<std::unique_ptr<detail::NodeInstance>> nodes_;
  std::vector<std::vector<std::size_t>> parents_;  // per node: indices into nodes_
  std::vector<std::pair<std::string, detail::SourceInstance*>> sources_;
  std::map<std::string, std::string, std::less<>> sink_of_topic_;  // topic -> a sink writing it
  std::map<std::string, ErrorPolicy, std::less<>> policies_;       // operator -> its own policy
  bool closed_ = false;
};

}  // namespace streamrun
