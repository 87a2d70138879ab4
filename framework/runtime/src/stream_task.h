#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/mutex.hpp>
#include <spdlog/logger.h>

#include <streamrun/core/topology.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/state/task_state.h>

#include "changelog.h"
#include "metrics.h"

namespace streamrun::runtime {

// How a stateful task reaches its changelogs.
struct ChangelogOptions {
  std::string application_id;
  // Opens a reader of changelog partitions for restore (called on the task's fiber).
  std::function<Result<std::unique_ptr<ChangelogSource>>()> open_source;
};

// Told when a task cannot go on.
class TaskFailureListener {
 public:
  virtual ~TaskFailureListener() = default;
  virtual void on_task_failed(const std::string& reason) = 0;
};

// One sub-topology instance for one input partition, run on its own fiber.
//
// The I/O fiber offers records (offer) into a bounded channel and reads commit progress; the
// task fiber (run) processes them one at a time, sending outputs through the shared producer.
// Commit rule (at-least-once): an input offset is committable once every output produced while
// processing the records before it has been acknowledged by the broker. Outputs carry a
// sequence number; a commit point pairs the next input offsets with the sequence number
// reached, and becomes committable when all sequence numbers below it are acknowledged — so
// commits never stall processing.
class StreamTask final : public RecordCollector {
 public:
  // `state` (null for stateless sub-topologies) holds the task's stores. A stateful task commits
  // on its own fiber: it fixes a commit point at a record boundary and goes on processing; once
  // the outputs before the point are acknowledged it writes the point's store changes and next
  // input offsets in one RocksDB write; only offsets made durable that way are handed to the
  // I/O fiber for the Kafka commit.
  StreamTask(const Topology& topology, TaskInfo info, kafka::Producer& producer,
             std::size_t channel_bound, TaskFailureListener& failures,
             std::unique_ptr<state::TaskState> state = nullptr,
             std::chrono::milliseconds final_commit_timeout = std::chrono::seconds(30),
             ChangelogOptions changelog = {}, ErrorPolicy error_policy = ErrorPolicy::fail());

  // The next offset to read for `tp` according to the task's state, if it has one. Final once
  // ready().
  [[nodiscard]] std::optional<std::int64_t> stored_offset(const TopicPartition& tp) const;
  // The task's state is restored (always true for stateless tasks): it may be given records,
  // from stored_offset() on.
  [[nodiscard]] bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }
  [[nodiscard]] std::int64_t restored() const noexcept { return restored_.load(); }
  ~StreamTask() override;

  [[nodiscard]] const TaskInfo& info() const noexcept { return instance_.info(); }
  [[nodiscard]] std::string id() const { return info().id(); }

  // --- I/O fiber side ---------------------------------------------------------------------
  // Hands a record to the task; false (record not taken) when the channel is at its bound.
  bool offer(kafka::Message& message);
  [[nodiscard]] std::size_t depth() const noexcept {
    return depth_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t bound() const noexcept { return bound_; }
  [[nodiscard]] std::size_t max_depth() const noexcept { return max_depth_.load(); }
  // Asks the task to stop after its in-flight record; buffered records are dropped (they are
  // not committed, so whoever owns the partition next reads them again). A task whose
  // partitions were lost (`lost`: another member may own them already) discards its
  // uncommitted work and writes nothing more: no commit marker, no local commit.
  void request_stop(bool lost = false);
  // Snapshots progress as a commit point (call every commit interval).
  void mark_commit_point();
  // Offsets that became committable since the last call.
  [[nodiscard]] std::vector<kafka::PartitionOffset> take_committable();
  // A commit was refused: the next take_committable() offers every committable offset again.
  void forget_committed() { committed_.clear(); }
  // After the task fiber ended: true once every output is acknowledged.
  [[nodiscard]] bool flushed() const;
  // How long the oldest unacknowledged output has waited for the broker (zero when none).
  [[nodiscard]] std::chrono::steady_clock::duration oldest_unacknowledged() const;
  // Offsets processed but not committable yet, as "topic[p] offset o" text for logs.
  [[nodiscard]] std::string processed_positions() const;
  // Every processed offset not committed yet (only meaningful once flushed()).
  [[nodiscard]] std::vector<kafka::PartitionOffset> final_offsets();
  [[nodiscard]] bool failed() const noexcept { return failed_.load(); }
  // Outputs sent whose delivery report has not been served yet. The task must outlive them:
  // their callbacks point at it.
  [[nodiscard]] std::int64_t reports_pending() const noexcept { return reports_pending_.load(); }
  // After the task fiber ended: releases the records still in the channel.
  void drop_buffered();
  [[nodiscard]] std::int64_t processed() const noexcept { return processed_count_.load(); }
  [[nodiscard]] std::int64_t skipped() const noexcept { return skipped_.load(); }
  [[nodiscard]] std::int64_t dead_lettered() const noexcept { return dead_lettered_.load(); }
  [[nodiscard]] std::int64_t retries() const noexcept { return retries_.load(); }
  // Outputs sent by sinks (not changelog entries or dead letters).
  [[nodiscard]] std::int64_t produced() const noexcept { return produced_.load(); }
  // Records operators dropped on purpose (null keys or values in keyed operators).
  [[nodiscard]] std::int64_t dropped() const noexcept { return dropped_.load(); }
  // Of those, records too late for their windows (windowed aggregates past the grace period).
  [[nodiscard]] std::int64_t late() const noexcept { return late_.load(); }
  // A record is waiting to be retried, or its async call waits for an open circuit breaker: the
  // I/O fiber pauses the task's partitions meanwhile.
  [[nodiscard]] bool retrying() const noexcept { return retrying_.load() || calls_blocked_.load(); }
  // Async calls the task holds (in flight, waiting for a retry or to be passed on in order).
  [[nodiscard]] std::int64_t calls_held() const noexcept { return calls_held_.load(); }

  // True once run() has returned.
  [[nodiscard]] bool finished() const noexcept { return finished_.load(); }

  // --- metrics (any thread) -------------------------------------------------------------------
  // Times one record in `every` (0: none) for the latency histograms. Before run().
  void set_latency_sampling(std::int64_t every) noexcept {
    sample_every_ = every;
    until_sample_ = every;
  }
  // Processing of a sampled record, from the task taking it to its outputs handed to the
  // producer; end to end, from the record's timestamp to the same moment.
  [[nodiscard]] LatencyHistogram::Snapshot processing_latency() const noexcept {
    return processing_latency_.snapshot();
  }
  [[nodiscard]] LatencyHistogram::Snapshot end_to_end_latency() const noexcept {
    return end_to_end_latency_.snapshot();
  }
  // Records into and out of each of the task's operators.
  [[nodiscard]] std::vector<TaskInstance::NodeCount> node_counts() const {
    return instance_.node_counts();
  }
  // The next offset to process per input partition (as far as the task got).
  [[nodiscard]] std::map<TopicPartition, std::int64_t> positions() const;
  // Stateful tasks, as of their last local commit (zero before it, and for stateless tasks).
  [[nodiscard]] state::TaskState::Figures state_figures() const noexcept {
    return {state_bytes_.load(std::memory_order_relaxed),
            state_keys_.load(std::memory_order_relaxed),
            state_pending_compaction_bytes_.load(std::memory_order_relaxed)};
  }

  // --- interactive queries (any thread) ----------------------------------------------------
  // Runs `read` on the task's state as of its last commit (TaskState::get_committed() and
  // range_committed() only) and returns true; false, without calling it, when the task has no
  // state to show: stateless, still restoring, or stopped. The task fiber waits to release the
  // state until `read` returns: keep it short.
  bool read_committed_state(const std::function<void(const state::TaskState&)>& read) const;

  // --- task fiber ---------------------------------------------------------------------------
  void run();

  // RecordCollector: called by the task's sink operators, on the task fiber.
  void check(std::string_view topic, const std::optional<std::string>& key,
             const std::optional<std::string>& value, const RecordHeaders& headers) override;
  void send(std::string_view topic, std::optional<std::string> key,
            std::optional<std::string> value, const RecordHeaders& headers,
            std::int64_t timestamp_ms, const RecordOrigin& origin) override;

 private:
  void process(const kafka::Message& message);
  // Async calls: settles what finished (run_calls) and moves the committable positions; a call
  // held keeps its input offset, and everything after it, uncommitted.
  void run_calls();
  void update_positions();
  // Before the final commit: lets held calls finish, until `deadline` or an open breaker.
  void drain_calls(std::chrono::steady_clock::time_point deadline);
  // Any thread: a call completed.
  void call_completed();
  // Stateful tasks: waits for acknowledgements, writes the commit marker to the changelog, then
  // makes state and offsets durable together. `force` commits even without new progress. For
  // the final commit and the restore's; the periodic commit does not wait (begin_commit()).
  void commit_state(bool final, bool force = false);
  // The periodic commit of a stateful task, in steps that never stop it: begin_commit() fixes a
  // commit point at a record boundary (sends the interval's changelog records, freezes the
  // state); advance_commit() moves it on as acknowledgements arrive — once every output before
  // the point is acknowledged it sends the commit marker, once the marker is, it writes state
  // and offsets — and returns true when no commit is in progress any more. One at a time: a
  // commit interval that ends while one is in progress is skipped.
  void begin_commit();
  bool advance_commit();
  // Settles the commit in progress before anything would change what it covers (a changelog
  // record, a write to the frozen state, the final commit): waits for it, or gives it up when
  // the task stops first or `deadline` passes (the next commit then covers its changes too).
  void settle_commit(bool final, std::chrono::steady_clock::time_point deadline);
  void abandon_commit();
  // What a commit stores besides the state: the next input offsets and where the other stores'
  // changelogs end (as acknowledged so far).
  [[nodiscard]] std::map<std::string, std::int64_t> commit_marker(
      const std::map<TopicPartition, std::int64_t>& processed) const;
  void send_commit_marker(const std::map<std::string, std::int64_t>& marker);
  // After the marker's acknowledgement: how far local state has read each changelog.
  void add_changelog_positions(std::map<std::string, std::int64_t>& marker) const;
  void write_commit(const std::map<std::string, std::int64_t>& marker,
                    std::map<TopicPartition, std::int64_t> processed);
  // Waits until every output is acknowledged; false when the task should not commit (it failed,
  // it is stopping and this is not the final commit, or the final commit's time ran out).
  bool await_acknowledgements(bool final, std::chrono::steady_clock::time_point deadline);
  // Brings the state up to the last commit in the changelogs; false when the task cannot run.
  bool restore();
  void log_change(std::size_t store_index, std::string_view key,
                  std::optional<std::string_view> value);
  // Sends one record; `changelog` is the index of the store whose changelog it belongs to.
  void produce(const kafka::ProducerRecord& record, std::optional<std::size_t> changelog);
  // Throws std::length_error (the record's error policy applies) when the producer could never
  // send `record`: too large for message.max.bytes. Outputs and changelog records alike.
  void check_fits(const kafka::ProducerRecord& record) const;
  void fail(const std::string& reason);
  // Closes the RocksDB instance (and frees its lock), waiting for a read_committed_state().
  void release_state();
  // Thrown out of a retry's wait when the task stops: the record stays unprocessed.
  struct RetryInterrupted {};
  void wait_before_retry(std::chrono::milliseconds delay);
  void write_dead_letter(const RawRecord& letter, const std::string& topic);
  // One output from its send to its delivery report. Kept in pending_, whose elements never
  // move while they wait (a deque only grows at the back and shrinks at the front), so the
  // producer reports to it directly: nothing is allocated per output.
  struct PendingOutput final : kafka::Delivery {
    PendingOutput(StreamTask* owner, std::uint64_t number, std::optional<std::size_t> store)
        : task(owner), sequence(number), changelog(store) {}
    void delivered(const kafka::DeliveryReport& report) noexcept override;
    StreamTask* task;
    std::uint64_t sequence;
    std::optional<std::size_t> changelog;  // the store whose changelog the output belongs to
    bool acked = false;
    std::chrono::steady_clock::time_point sent_at = std::chrono::steady_clock::now();
  };
  void acknowledge(PendingOutput& output, const kafka::DeliveryReport& report);

  // Whether the task has state. Fixed at construction: state_ itself is released on the task
  // fiber when it ends, while the I/O fiber still asks which commit rule applies.
  const bool stateful_;
  // Before instance_: its operators use the stores. Released on the task fiber under
  // state_release_mutex_, which read_committed_state() holds while it reads.
  std::unique_ptr<state::TaskState> state_;
  mutable std::mutex state_release_mutex_;
  ChangelogOptions changelog_options_;
  std::vector<StoreChangelog> changelogs_;  // one per store; the first carries commit markers
  std::vector<TopicPartition> inputs_;      // the partitions the task reads
  std::vector<std::unique_ptr<ChangeLoggingStore>> logged_stores_;
  TaskInstance instance_;
  kafka::Producer& producer_;
  TaskFailureListener& failures_;
  std::shared_ptr<spdlog::logger> logger_;
  // Lines about single skipped or dead-lettered records, limited (record_log_allowed()).
  [[nodiscard]] bool record_log_allowed();
  void report_unlogged_records();
  std::chrono::steady_clock::time_point record_log_window_start_{};
  int record_log_lines_ = 0;
  std::int64_t records_not_logged_ = 0;

  const std::size_t bound_;
  boost::fibers::buffered_channel<kafka::Message> channel_;
  const std::chrono::milliseconds final_commit_timeout_;
  std::atomic<std::size_t> depth_{0};
  std::atomic<std::size_t> max_depth_{0};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> lost_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> commit_due_{false};  // stateful: the I/O fiber asks for a commit
  std::atomic<std::int64_t> processed_count_{0};
  std::atomic<std::int64_t> reports_pending_{0};
  std::atomic<bool> ready_{false};
  std::atomic<bool> retrying_{false};
  std::atomic<bool> calls_blocked_{false};
  std::atomic<std::int64_t> calls_held_{0};
  std::atomic<bool> call_wake_pending_{false};
  // Wakes the task fiber when it waits for calls only (not for records).
  boost::fibers::buffered_channel<bool> call_wakes_{2};
  std::map<TopicPartition, std::int64_t> taken_;  // task fiber: after the last record taken
  std::atomic<std::int64_t> skipped_{0};
  std::atomic<std::int64_t> dead_lettered_{0};
  std::atomic<std::int64_t> retries_{0};
  std::atomic<std::int64_t> produced_{0};
  std::atomic<std::int64_t> dropped_{0};
  std::atomic<std::int64_t> late_{0};
  FailureHandling failure_handling_;
  std::atomic<std::int64_t> restored_{0};
  std::int64_t sample_every_ = 0;  // task fiber after run() starts
  std::int64_t until_sample_ = 0;
  LatencyHistogram processing_latency_;
  LatencyHistogram end_to_end_latency_;
  std::atomic<std::int64_t> state_bytes_{0};
  std::atomic<std::int64_t> state_keys_{0};
  std::atomic<std::int64_t> state_pending_compaction_bytes_{0};

  // Progress, shared between the task fiber, the I/O fiber and delivery callbacks.
  mutable std::mutex progress_mutex_;
  std::map<TopicPartition, std::int64_t> processed_;    // next offset per input partition
  std::map<TopicPartition, std::int64_t> durable_;      // stateful: offsets stored with the state
  std::map<std::string, std::int64_t> stored_offsets_;  // stateful: as of start or restore
  std::vector<std::int64_t> changelog_ends_;  // per store: after its last acknowledged entry
  std::uint64_t next_sequence_ = 0;           // of the next output
  // Every output below is acknowledged. Written under the mutex; the task fiber reads it after
  // each record while a commit is in progress.
  std::atomic<std::uint64_t> acked_below_{0};
  std::deque<PendingOutput> pending_;  // from acked_below_ on

  // Task fiber only: the periodic commit in progress (begin_commit()).
  struct CommitInProgress {
    std::map<TopicPartition, std::int64_t> processed;  // the commit point's next offsets
    std::uint64_t awaited = 0;  // outputs below this sequence number must be acknowledged
    bool marker_sent = false;
    std::map<std::string, std::int64_t> marker;
  };
  std::optional<CommitInProgress> in_progress_;

  // I/O fiber only.
  struct CommitPoint {
    std::map<TopicPartition, std::int64_t> offsets;
    std::uint64_t sequence = 0;
  };
  std::deque<CommitPoint> points_;
  std::map<TopicPartition, std::int64_t> committed_;
};

}  // namespace streamrun::runtime
