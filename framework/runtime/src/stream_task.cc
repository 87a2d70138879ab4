#include "stream_task.h"

#include <bit>
#include <random>
#include <thread>

#include <boost/fiber/operations.hpp>
#include <fmt/format.h>

#include <streamrun/base/errc.h>
#include <streamrun/base/log.h>

namespace streamrun::runtime {
namespace {

// The time point `wait` from now; time_point::max() for milliseconds::max().
std::chrono::steady_clock::time_point deadline_in(std::chrono::milliseconds wait) {
  if (wait == std::chrono::milliseconds::max())
    return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() + wait;
}

// buffered_channel wants a power of two and keeps one slot free.
std::size_t channel_capacity(std::size_t bound) {
  return std::bit_ceil(bound + 1);
}

}  // namespace

namespace {

// The input partitions of a task: partition p of every topic its sub-topology reads.
std::vector<TopicPartition> inputs_of(const Topology& topology, const TaskInfo& info) {
  std::vector<TopicPartition> inputs;
  for (const auto& topic : topology.source_topics(info.subtopology))
    inputs.push_back({TopicName(topic), PartitionId(info.partition)});
  return inputs;
}

std::vector<StoreChangelog> changelogs_of(const Topology& topology, const TaskInfo& info) {
  std::vector<StoreChangelog> changelogs;
  for (const auto& store : topology.stores(info.subtopology)) {
    changelogs.push_back(
        {store,
         {TopicName(changelog_topic(info.application_id, store)), PartitionId(info.partition)}});
  }
  return changelogs;
}

}  // namespace

StreamTask::StreamTask(const Topology& topology, TaskInfo info, kafka::Producer& producer,
                       std::size_t channel_bound, TaskFailureListener& failures,
                       std::unique_ptr<state::TaskState> state,
                       std::chrono::milliseconds final_commit_timeout, ChangelogOptions changelog,
                       ErrorPolicy error_policy)
    : stateful_(state != nullptr),
      state_(std::move(state)),
      changelog_options_(std::move(changelog)),
      changelogs_(state_ ? changelogs_of(topology, info) : std::vector<StoreChangelog>()),
      inputs_(inputs_of(topology, info)),
      instance_(
          topology, std::move(info), *this,
          [] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
          },
          state_ ? TaskInstance::StoreProvider([this](std::string_view name) -> KeyValueStore& {
            // Operators write through a store that also writes the changelog.
            for (const auto& store : logged_stores_) {
              if (store->name() == name)
                return *store;
            }
            std::size_t index = 0;
            while (index < changelogs_.size() && changelogs_[index].store != name)
              ++index;
            if (index == changelogs_.size())
              return state_->store(name);  // throws: not a store of this task
            logged_stores_.push_back(std::make_unique<ChangeLoggingStore>(
                state_->store(name),
                [this, index](std::string_view key, std::optional<std::string_view> value) {
                  log_change(index, key, value);
                },
                [this, index](std::string_view key, std::optional<std::string_view> value) {
                  const auto& log = changelogs_[index].topic_partition;
                  check_fits(
                      {log.topic.value(), log.partition.value(), key, value, {}, std::nullopt});
                }));
            return *logged_stores_.back();
          })
                 : TaskInstance::StoreProvider()),
      producer_(producer),
      failures_(failures),
      logger_(log::get("runtime")),
      bound_(channel_bound),
      channel_(channel_capacity(channel_bound)),
      final_commit_timeout_(final_commit_timeout) {
  failure_handling_.default_policy = std::move(error_policy);
  failure_handling_.wait = [this](std::chrono::milliseconds delay) { wait_before_retry(delay); };
  failure_handling_.unit_random = [] {
    thread_local std::mt19937_64 engine{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
  };
  failure_handling_.skipped = [this](const RawRecord& record, const OperatorFailure& failure) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    if (record_log_allowed())
      logger_->warn("task {}: skipped {}[{}] offset {}: operator '{}' failed: {}: {}", id(),
                    record.origin.topic, record.origin.partition, record.origin.offset,
                    failure.operator_name(), failure.error_class(), failure.error_message());
  };
  failure_handling_.dead_letter = [this](const RawRecord& letter, const std::string& topic) {
    write_dead_letter(letter, topic);
    // The letter says why in its headers; the log says it too, as for a skipped record.
    const auto header = [&letter](std::string_view key) {
      return find_header(letter.headers, key).value_or("");
    };
    if (record_log_allowed())
      logger_->warn("task {}: dead-lettered {}[{}] offset {} to '{}': operator '{}' failed: {}: {}",
                    id(), letter.origin.topic, letter.origin.partition, letter.origin.offset, topic,
                    header(dead_letter_header::operator_name),
                    header(dead_letter_header::error_class),
                    header(dead_letter_header::error_message));
  };
  instance_.set_drop_listener(
      [this](std::string_view node, std::string_view reason, const RecordOrigin& record) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        if (reason == detail::kLateRecord)
          late_.fetch_add(1, std::memory_order_relaxed);
        logger_->debug("task {}: operator '{}' dropped {}[{}] offset {}: {}", id(), node,
                       record.topic, record.partition, record.offset, reason);
      });
  if (instance_.has_calls())
    instance_.set_call_listener([this] { call_completed(); });
  if (stateful_) {
    stored_offsets_ = state_->committed_offsets();
    changelog_ends_.assign(changelogs_.size(), 0);
    // A store about to write to the frozen state (range scan, full cache) settles the commit.
    state_->set_before_thaw(
        [this] { settle_commit(/*final=*/false, std::chrono::steady_clock::time_point::max()); });
  } else {
    ready_ = true;
  }
}

StreamTask::~StreamTask() {
  instance_.set_call_listener(nullptr);  // clients may complete calls after this
  channel_.close();
  call_wakes_.close();
  instance_.close();
}

bool StreamTask::offer(kafka::Message& message) {
  if (depth_.load(std::memory_order_relaxed) >= bound_)
    return false;
  if (channel_.try_push(std::move(message)) != boost::fibers::channel_op_status::success) {
    return false;
  }
  const auto depth = depth_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (depth > max_depth_.load(std::memory_order_relaxed))
    max_depth_.store(depth);
  return true;
}

void StreamTask::request_stop(bool lost) {
  if (lost)
    lost_ = true;
  stop_requested_ = true;
  channel_.close();
  call_wakes_.close();
}

bool StreamTask::read_committed_state(
    const std::function<void(const state::TaskState&)>& read) const {
  if (!ready() || finished())
    return false;
  std::lock_guard lock(state_release_mutex_);
  if (!state_)
    return false;
  read(*state_);
  return true;
}

void StreamTask::release_state() {
  std::lock_guard lock(state_release_mutex_);
  state_.reset();
}

void StreamTask::run() {
  try {
    if (state_ && !restore()) {
      instance_.close();
      release_state();
      finished_ = true;
      return;
    }
    kafka::Message message(nullptr);
    const bool calls = instance_.has_calls();
    const bool punctuators = instance_.has_punctuators(PunctuationType::wall_clock);
    while (!stop_requested_ && !failed_) {
      if (calls)
        run_calls();
      if (punctuators)
        instance_.punctuate(PunctuationType::wall_clock);
      // A stateful task commits only while no call is held: its state then holds exactly the
      // records before the offsets it stores. Until then it takes no new record.
      const bool draining = calls && state_ && commit_due_ && instance_.calls_held() > 0;
      // Held calls have deadlines (timeouts, retries, the breaker's cool-down), and wake the
      // task when they complete. A commit in progress moves on with acknowledgements, which do
      // not wake it: look again every millisecond meanwhile.
      auto until = calls ? deadline_in(instance_.calls_due_in())
                         : std::chrono::steady_clock::time_point::max();
      if (punctuators)
        until = std::min(until, deadline_in(instance_.punctuation_due_in()));
      if (in_progress_)
        until = std::min(until, std::chrono::steady_clock::now() + std::chrono::milliseconds(1));
      if (calls && (draining || instance_.calls_full())) {
        bool token = false;
        if (call_wakes_.pop_wait_until(token, until) == boost::fibers::channel_op_status::closed)
          break;
      } else {
        const auto status = until == std::chrono::steady_clock::time_point::max()
                                ? channel_.pop(message)
                                : channel_.pop_wait_until(message, until);
        if (status == boost::fibers::channel_op_status::closed)
          break;
        if (status == boost::fibers::channel_op_status::success) {
          if (message.is_null()) {
            // A wake-up: a commit is due, or a call completed, while no record arrives.
          } else {
            depth_.fetch_sub(1, std::memory_order_relaxed);
            process(message);
            message = kafka::Message(nullptr);  // give the fetch buffer back early
          }
        }
      }
      if (in_progress_ && acked_below_.load(std::memory_order_acquire) >= in_progress_->awaited)
        advance_commit();
      if (state_ && commit_due_ && (!calls || instance_.calls_held() == 0)) {
        commit_due_ = false;
        begin_commit();
      }
    }
    if (calls && !failed_ && !lost_)
      drain_calls(std::chrono::steady_clock::now() + final_commit_timeout_);
    if (state_ && !lost_ && calls && instance_.calls_held() > 0) {
      // Held calls keep their records uncommitted, but their first phase is in the state:
      // committing it would apply them twice after a restore. Keep the last commit instead.
      logger_->warn(
          "task {}: {} async calls still held at stop; its state since the last commit is not "
          "committed, and whoever reads its partitions next processes those records again",
          id(), instance_.calls_held());
      lost_ = true;
    }
    if (state_ && lost_) {
      // Another member may own the partition and write its changelog already: keep nothing.
      in_progress_.reset();
      for (auto& store : logged_stores_)
        store->discard();
      state_->discard_uncommitted();
    } else if (state_ && !failed_) {
      commit_state(/*final=*/true);  // what a revoke or a stop must keep
    }
    report_unlogged_records();
    instance_.close();
    // Release the RocksDB instance (and its lock) now: this object may live on until its last
    // delivery report, and the partition may come back to this process before that.
    release_state();
  } catch (const std::exception& e) {
    // Whatever escapes (an operator's close(), a store read) fails the task visibly; the I/O
    // fiber learns of the end through finished_.
    fail(fmt::format("task {} stopped: {}", id(), e.what()));
  }
  finished_ = true;
}

bool StreamTask::await_acknowledgements(bool final,
                                        std::chrono::steady_clock::time_point deadline) {
  while (!flushed() && !failed_) {
    if (!final && stop_requested_)
      return false;  // the final commit follows
    if (final && std::chrono::steady_clock::now() > deadline) {
      logger_->warn(
          "task {}: outputs unacknowledged after {} ms; state not committed, its last "
          "records will be processed again",
          id(), final_commit_timeout_.count());
      return false;
    }
    boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
  }
  return !failed_;
}

void StreamTask::commit_state(bool final, bool force) {
  if (lost_)
    return;  // the partition may be another member's now: its changelog is not ours to write
  const auto deadline = std::chrono::steady_clock::now() + final_commit_timeout_;
  settle_commit(final, deadline);
  // Outputs and changelog entries first: an input offset may only become durable once
  // everything it produced is. The stores hold their changes back until now: one changelog
  // record per changed key.
  for (auto& store : logged_stores_)
    store->flush();
  if (!await_acknowledgements(final, deadline))
    return;
  std::map<TopicPartition, std::int64_t> processed;
  {
    std::lock_guard lock(progress_mutex_);
    processed = processed_;
  }
  if (!force && processed == durable_ && !state_->has_uncommitted())
    return;
  if (lost_)
    return;  // the partition may be another member's now: its changelog is not ours to write
  auto marker = commit_marker(processed);
  if (!changelogs_.empty()) {
    send_commit_marker(marker);
    if (!await_acknowledgements(final, deadline) || lost_)
      return;
    add_changelog_positions(marker);
  }
  write_commit(marker, std::move(processed));
}

void StreamTask::begin_commit() {
  if (lost_ || failed_ || (in_progress_ && !advance_commit()))
    return;
  for (auto& store : logged_stores_)
    store->flush();  // the interval's changelog records, before the point
  CommitInProgress commit;
  {
    std::lock_guard lock(progress_mutex_);
    commit.processed = processed_;
    commit.awaited = next_sequence_;
  }
  if (commit.processed == durable_ && !state_->has_uncommitted())
    return;
  state_->freeze();
  in_progress_ = std::move(commit);
  advance_commit();
}

bool StreamTask::advance_commit() {
  if (!in_progress_)
    return true;
  auto& commit = *in_progress_;
  if (lost_ || failed_) {
    abandon_commit();
    return true;
  }
  if (acked_below_.load(std::memory_order_acquire) < commit.awaited)
    return false;
  // Every output before the point is acknowledged, and no changelog record was sent after it
  // (log_change() settles this commit first): the changelog ends are the point's.
  if (!commit.marker_sent) {
    commit.marker = commit_marker(commit.processed);
    if (!changelogs_.empty()) {
      send_commit_marker(commit.marker);
      commit.marker_sent = true;
      commit.awaited = next_sequence_;
      return false;
    }
  } else {
    add_changelog_positions(commit.marker);
  }
  auto done = std::move(commit);
  in_progress_.reset();
  write_commit(done.marker, std::move(done.processed));
  return true;
}

void StreamTask::settle_commit(bool final, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    bool settled = false;
    try {
      settled = advance_commit();
    } catch (const std::exception& e) {
      // Settling may run inside a record's store operation: a commit that cannot go on is the
      // task's failure, not the record's (its error policy must not dead-letter it).
      abandon_commit();
      fail(fmt::format("task {}: commit failed: {}", id(), e.what()));
      throw InfrastructureError(e.what());
    }
    if (settled)
      return;
    if ((!final && stop_requested_) || (final && std::chrono::steady_clock::now() > deadline)) {
      abandon_commit();
      return;
    }
    boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
  }
}

void StreamTask::abandon_commit() {
  // Its changes stay in the state's batch and go with the next commit. A marker already sent
  // stays valid: everything before it was acknowledged, so a restore may end there.
  in_progress_.reset();
  if (state_)
    state_->thaw();
}

std::map<std::string, std::int64_t> StreamTask::commit_marker(
    const std::map<TopicPartition, std::int64_t>& processed) const {
  std::map<std::string, std::int64_t> marker;
  for (const auto& [tp, offset] : processed)
    marker.emplace(position_key(tp), offset);
  // The marker makes this commit part of the changelog: a restore ends at the last one.
  std::lock_guard lock(progress_mutex_);
  for (std::size_t i = 1; i < changelogs_.size(); ++i)
    marker[end_key(changelogs_[i].topic_partition)] = changelog_ends_[i];
  return marker;
}

void StreamTask::send_commit_marker(const std::map<std::string, std::int64_t>& marker) {
  const auto payload = encode_marker(marker);
  const kafka::HeaderView header{kCommitMarkerHeader, std::string_view("1")};
  produce({changelogs_.front().topic_partition.topic.value(),
           changelogs_.front().topic_partition.partition.value(), kCommitMarkerKey, payload,
           std::span(&header, 1), std::nullopt},
          std::size_t{0});
}

void StreamTask::add_changelog_positions(std::map<std::string, std::int64_t>& marker) const {
  std::lock_guard lock(progress_mutex_);
  for (std::size_t i = 0; i < changelogs_.size(); ++i) {
    marker[position_key(changelogs_[i].topic_partition)] = changelog_ends_[i];
    marker[end_key(changelogs_[i].topic_partition)] = changelog_ends_[i];
  }
}

void StreamTask::write_commit(const std::map<std::string, std::int64_t>& marker,
                              std::map<TopicPartition, std::int64_t> processed) {
  if (auto committed = state_->commit(marker); !committed) {
    fail(fmt::format("{}; the task stops, nothing after its last durable commit is committed",
                     committed.error().message()));
    return;
  }
  // RocksDB's estimates for /metrics, read here on the task fiber that owns the state.
  const auto figures = state_->figures();
  state_bytes_.store(figures.bytes, std::memory_order_relaxed);
  state_keys_.store(figures.keys, std::memory_order_relaxed);
  state_pending_compaction_bytes_.store(figures.pending_compaction_bytes,
                                        std::memory_order_relaxed);
  std::lock_guard lock(progress_mutex_);
  durable_ = std::move(processed);
}

bool StreamTask::restore() {
  const auto started = std::chrono::steady_clock::now();
  auto source = changelog_options_.open_source
                    ? changelog_options_.open_source()
                    : Result<std::unique_ptr<ChangelogSource>>(
                          Error(errc::invalid_argument, "no changelog source configured"));
  if (!source) {
    fail(fmt::format("task {}: cannot read its changelogs: {}", id(), source.error().message()));
    return false;
  }
  // RocksDB and the Kafka reader block: run them on a thread of their own while this fiber
  // yields to the others on its thread.
  std::atomic<bool> done{false};
  Result<RestoreOutcome> outcome = Error(errc::cancelled, "restore did not run");
  std::thread worker([&] {
    outcome = restore_task_state(*state_, changelogs_, **source, stop_requested_, *logger_);
    done = true;
  });
  while (!done)
    boost::this_fiber::sleep_for(std::chrono::milliseconds(2));
  worker.join();
  if (!outcome) {
    if (outcome.error().code() != make_error_code(errc::cancelled))
      fail(fmt::format("task {}: restoring its state failed: {}", id(), outcome.error().message()));
    return false;
  }
  restored_ = outcome->entries_applied;
  if (outcome->entries_applied > 0 || outcome->entries_discarded > 0) {
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
    logger_->info(
        "task {}: restored {} changelog entries in {} ms; {} entries after the last commit "
        "discarded",
        id(), outcome->entries_applied, millis, outcome->entries_discarded);
  }
  {
    std::lock_guard lock(progress_mutex_);
    stored_offsets_ = state_->committed_offsets();
    for (std::size_t i = 0; i < changelogs_.size(); ++i)
      changelog_ends_[i] = outcome->changelog_ends[changelogs_[i].store];
    // What the state holds is durable, and may be ahead of the group's committed offsets (a
    // process killed between its local commit and the Kafka commit): offer it for committing
    // now, or a partition with no new records would show that lag for ever.
    for (const auto& tp : inputs_) {
      if (auto it = stored_offsets_.find(position_key(tp)); it != stored_offsets_.end()) {
        processed_[tp] = it->second;
        durable_[tp] = it->second;
      }
    }
  }
  if (!outcome->to_rewrite.empty()) {
    // The discarded entries stay in the changelog: overwrite them with the restored values and
    // commit before anything else happens, so that no later restore can apply them.
    for (std::size_t i = 0; i < changelogs_.size(); ++i) {
      auto& store = state_->store(changelogs_[i].store);
      for (const auto& key : outcome->to_rewrite[changelogs_[i].store]) {
        const auto value = store.get(key);
        log_change(i, key, value ? std::optional<std::string_view>(*value) : std::nullopt);
      }
    }
    commit_state(/*final=*/false, /*force=*/true);
    if (failed_ || stop_requested_)
      return false;
  }
  logger_->debug("task {}: state ready after {} ms", id(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count());
  ready_.store(true, std::memory_order_release);
  return true;
}

void StreamTask::log_change(std::size_t store_index, std::string_view key,
                            std::optional<std::string_view> value) {
  if (lost_)
    return;  // the partition may be another member's now: its changelog is not ours to write
  if (in_progress_) {
    // A changelog record after the commit point (a store's change buffer overflowed) would
    // land before the point's marker: finish the commit first.
    settle_commit(/*final=*/false, std::chrono::steady_clock::time_point::max());
  }
  const auto& changelog = changelogs_[store_index].topic_partition;
  produce({changelog.topic.value(), changelog.partition.value(), key, value, {}, std::nullopt},
          store_index);
}

std::optional<std::int64_t> StreamTask::stored_offset(const TopicPartition& tp) const {
  // A copy: the state itself belongs to the task fiber.
  std::lock_guard lock(progress_mutex_);
  auto it = stored_offsets_.find(position_key(tp));
  if (it == stored_offsets_.end())
    return std::nullopt;
  return it->second;
}

std::map<TopicPartition, std::int64_t> StreamTask::positions() const {
  std::lock_guard lock(progress_mutex_);
  return processed_;
}

void StreamTask::process(const kafka::Message& message) {
  // A countdown, not a modulo: a division per record would cost more than the sample.
  const bool timed = sample_every_ > 0 && --until_sample_ == 0;
  std::chrono::steady_clock::time_point started;
  if (timed) {
    until_sample_ = sample_every_;
    started = std::chrono::steady_clock::now();
  }
  RawRecord raw;
  raw.key = message.key();
  raw.value = message.value();
  for (auto& header : message.headers()) {
    raw.headers.push_back({std::move(header.key), std::move(header.value)});
  }
  raw.timestamp_ms = message.timestamp_ms();
  raw.origin = {std::string(message.topic()), message.partition().value(),
                message.offset().value()};
  try {
    const auto outcome = instance_.process(raw, failure_handling_);
    if (outcome == RecordOutcome::dead_lettered)
      dead_lettered_.fetch_add(1, std::memory_order_relaxed);
  } catch (const RetryInterrupted&) {
    return;  // stopping: the record was not processed, whoever reads next starts at it
  } catch (const std::exception& e) {
    // Reached when the record's error policy says fail, or on an InfrastructureError: the task
    // fails and nothing at or after the record is committed.
    fail(fmt::format("task {} failed on {}[{}] offset {}: {}", id(), raw.origin.topic,
                     raw.origin.partition, raw.origin.offset, e.what()));
    return;
  }
  if (instance_.has_calls()) {
    taken_[message.topic_partition()] = message.offset().value() + 1;
    update_positions();
  } else {
    std::lock_guard lock(progress_mutex_);
    processed_[message.topic_partition()] = message.offset().value() + 1;
  }
  processed_count_.fetch_add(1, std::memory_order_relaxed);
  if (timed) {
    processing_latency_.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (raw.timestamp_ms > 0) {
      const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      end_to_end_latency_.observe(
          static_cast<double>(std::max<std::int64_t>(0, now_ms - raw.timestamp_ms)) / 1000.0);
    }
  }
}

void StreamTask::call_completed() {
  if (call_wake_pending_.exchange(true))
    return;  // the task has not looked since the last wake-up
  static_cast<void>(call_wakes_.try_push(true));
  static_cast<void>(channel_.try_push(kafka::Message(nullptr)));
}

void StreamTask::run_calls() {
  call_wake_pending_ = false;
  TaskInstance::CallOutcomes outcomes;
  try {
    outcomes = instance_.run_calls(failure_handling_);
  } catch (const RetryInterrupted&) {
    return;  // stopping: the record stays held, uncommitted
  } catch (const std::exception& e) {
    fail(fmt::format("task {} failed after an async call: {}", id(), e.what()));
    return;
  }
  if (outcomes.dead_lettered > 0)
    dead_lettered_.fetch_add(outcomes.dead_lettered, std::memory_order_relaxed);
  update_positions();
}

void StreamTask::update_positions() {
  const auto oldest = instance_.oldest_call_offsets();
  calls_held_.store(static_cast<std::int64_t>(instance_.calls_held()), std::memory_order_relaxed);
  calls_blocked_.store(instance_.calls_blocked(), std::memory_order_relaxed);
  std::lock_guard lock(progress_mutex_);
  for (const auto& [tp, next] : taken_)
    processed_[tp] = next;
  for (const auto& origin : oldest) {
    auto& next = processed_[{TopicName(origin.topic), PartitionId(origin.partition)}];
    next = std::min(next, origin.offset);
  }
}

void StreamTask::drain_calls(std::chrono::steady_clock::time_point deadline) {
  while (instance_.calls_held() > 0 && !failed_ && !instance_.calls_blocked() &&
         std::chrono::steady_clock::now() < deadline) {
    // Both channels are closed once stopping: wait on the clock, in short slices.
    boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
    run_calls();
  }
}

void StreamTask::wait_before_retry(std::chrono::milliseconds delay) {
  retries_.fetch_add(1, std::memory_order_relaxed);
  retrying_ = true;
  struct Reset {
    std::atomic<bool>& flag;
    ~Reset() { flag = false; }
  } reset{retrying_};
  const auto until = std::chrono::steady_clock::now() + delay;
  // Sleep on the fiber (other tasks go on), in slices so that a stop is noticed.
  while (std::chrono::steady_clock::now() < until) {
    if (stop_requested_)
      throw RetryInterrupted();
    boost::this_fiber::sleep_for(std::min<std::chrono::steady_clock::duration>(
        until - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
  }
}

namespace {

std::vector<kafka::HeaderView> header_views(const RecordHeaders& headers) {
  std::vector<kafka::HeaderView> views;
  views.reserve(headers.size());
  for (const auto& header : headers) {
    views.push_back(
        {header.key, header.value ? std::optional<std::string_view>(*header.value) : std::nullopt});
  }
  return views;
}

std::optional<std::string_view> view(const std::optional<std::string>& bytes) {
  return bytes ? std::optional<std::string_view>(*bytes) : std::nullopt;
}

}  // namespace

bool StreamTask::record_log_allowed() {
  // A burst of bad records must not flood the log (nor block on a slow one): up to
  // kRecordLogBurst lines per kRecordLogWindow, then one line with how many more there were.
  constexpr int kRecordLogBurst = 10;
  constexpr auto kRecordLogWindow = std::chrono::seconds(10);
  const auto now = std::chrono::steady_clock::now();
  if (now - record_log_window_start_ >= kRecordLogWindow) {
    report_unlogged_records();
    record_log_window_start_ = now;
    record_log_lines_ = 0;
  }
  if (record_log_lines_ < kRecordLogBurst) {
    ++record_log_lines_;
    return true;
  }
  ++records_not_logged_;
  return false;
}

void StreamTask::report_unlogged_records() {
  if (records_not_logged_ == 0)
    return;
  logger_->warn(
      "task {}: {} more records skipped or dead-lettered, not logged one by one "
      "(streamrun_records_skipped_total, streamrun_records_dead_lettered_total count them all)",
      id(), records_not_logged_);
  records_not_logged_ = 0;
}

void StreamTask::write_dead_letter(const RawRecord& letter, const std::string& topic) {
  const auto headers = header_views(letter.headers);
  // Sequenced like any output: the input offset commits only once the broker has the letter.
  produce({topic, std::nullopt, letter.key, letter.value, headers, letter.timestamp_ms},
          std::nullopt);
}

void StreamTask::check(std::string_view topic, const std::optional<std::string>& key,
                       const std::optional<std::string>& value, const RecordHeaders& headers) {
  const auto views = header_views(headers);
  check_fits({topic, std::nullopt, view(key), view(value), views});
}

void StreamTask::check_fits(const kafka::ProducerRecord& record) const {
  if (auto fits = producer_.check_size(record); !fits)
    throw std::length_error(fits.error().message());
}

void StreamTask::send(std::string_view topic, std::optional<std::string> key,
                      std::optional<std::string> value, const RecordHeaders& headers,
                      std::int64_t timestamp_ms, const RecordOrigin& /*origin*/) {
  const auto views = header_views(headers);
  produce({topic, std::nullopt, view(key), view(value), views, timestamp_ms}, std::nullopt);
  produced_.fetch_add(1, std::memory_order_relaxed);
}

void StreamTask::produce(const kafka::ProducerRecord& record,
                         std::optional<std::size_t> changelog) {
  PendingOutput* output = nullptr;
  {
    std::lock_guard lock(progress_mutex_);
    output = &pending_.emplace_back(this, next_sequence_++, changelog);
  }
  while (true) {
    reports_pending_.fetch_add(1);
    auto sent = producer_.send(record, output);
    if (sent)
      return;
    reports_pending_.fetch_sub(1);
    if (sent.error().code() != kafka::errc::queue_full) {
      // Never sent, so never to be acknowledged: give the sequence number back, or every commit
      // after it would wait for it forever. Only this fiber takes sequence numbers, so it is
      // still the last one.
      {
        std::lock_guard lock(progress_mutex_);
        --next_sequence_;
        pending_.pop_back();
      }
      if (sent.error().code() == kafka::errc::fatal)
        throw InfrastructureError(sent.error().message());
      throw std::runtime_error(sent.error().message());
    }
    // The producer's queue is full: wait for the I/O fiber to serve deliveries. Never drop.
    boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
  }
}

void StreamTask::PendingOutput::delivered(const kafka::DeliveryReport& report) noexcept {
  StreamTask* owner = task;  // `this` may be gone once acknowledged
  owner->acknowledge(*this, report);
  owner->reports_pending_.fetch_sub(1);
}

void StreamTask::acknowledge(PendingOutput& output, const kafka::DeliveryReport& report) {
  if (report.error) {
    // The sequence stays unacknowledged, so no offset after it is ever committed.
    try {
      fail(fmt::format("task {}: output to {}[{}] could not be delivered: {}", id(), report.topic,
                       report.partition.value(), report.error->message()));
    } catch (const std::exception&) {
      failed_ = true;  // the message could not be built; the task stops all the same
    }
    return;
  }
  std::lock_guard lock(progress_mutex_);
  if (output.changelog) {
    auto& end = changelog_ends_[*output.changelog];
    end = std::max(end, report.offset.value() + 1);
  }
  output.acked = true;
  std::uint64_t popped = 0;
  while (!pending_.empty() && pending_.front().acked) {
    pending_.pop_front();
    ++popped;
  }
  if (popped > 0)
    acked_below_.fetch_add(popped, std::memory_order_release);
}

void StreamTask::drop_buffered() {
  kafka::Message message;
  while (channel_.try_pop(message) == boost::fibers::channel_op_status::success) {
    if (!message.is_null())
      depth_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void StreamTask::fail(const std::string& reason) {
  if (failed_.exchange(true))
    return;
  failures_.on_task_failed(reason);  // logs it
}

void StreamTask::mark_commit_point() {
  if (stateful_) {
    commit_due_ = true;
    // Wake the task if it waits for records; if the channel is full it is busy and will see
    // the flag after its current record.
    static_cast<void>(channel_.try_push(kafka::Message()));
    return;
  }
  CommitPoint point;
  {
    std::lock_guard lock(progress_mutex_);
    point.offsets = processed_;
    point.sequence = next_sequence_;
  }
  if (!points_.empty() && points_.back().offsets == point.offsets)
    return;
  points_.push_back(std::move(point));
}

std::vector<kafka::PartitionOffset> StreamTask::take_committable() {
  if (stateful_) {
    // Only offsets stored with the state: Kafka's committed offset never runs ahead of it.
    std::map<TopicPartition, std::int64_t> durable;
    {
      std::lock_guard lock(progress_mutex_);
      durable = durable_;
    }
    std::vector<kafka::PartitionOffset> offsets;
    for (const auto& [tp, offset] : durable) {
      auto& committed = committed_[tp];
      if (offset > committed) {
        committed = offset;
        offsets.push_back({tp, Offset(offset)});
      }
    }
    return offsets;
  }
  std::uint64_t acked_below = 0;
  {
    std::lock_guard lock(progress_mutex_);
    acked_below = acked_below_;
  }
  std::optional<CommitPoint> ready;
  while (!points_.empty() && points_.front().sequence <= acked_below) {
    ready = std::move(points_.front());
    points_.pop_front();
  }
  std::vector<kafka::PartitionOffset> offsets;
  if (!ready)
    return offsets;
  for (const auto& [tp, offset] : ready->offsets) {
    auto& committed = committed_[tp];
    if (offset > committed) {
      committed = offset;
      offsets.push_back({tp, Offset(offset)});
    }
  }
  return offsets;
}

std::chrono::steady_clock::duration StreamTask::oldest_unacknowledged() const {
  std::lock_guard lock(progress_mutex_);
  if (pending_.empty())
    return {};
  return std::chrono::steady_clock::now() - pending_.front().sent_at;
}

std::string StreamTask::processed_positions() const {
  std::lock_guard lock(progress_mutex_);
  std::string text;
  for (const auto& [tp, offset] : processed_) {
    text += fmt::format("{}{} offset {}", text.empty() ? "" : ", ", to_string(tp), offset);
  }
  return text;
}

bool StreamTask::flushed() const {
  std::lock_guard lock(progress_mutex_);
  return acked_below_ == next_sequence_;
}

std::vector<kafka::PartitionOffset> StreamTask::final_offsets() {
  if (stateful_) {
    committed_.clear();  // a final commit repeats what may have been refused before
    return take_committable();
  }
  points_.clear();
  committed_.clear();  // a final commit repeats what a refused periodic commit did not store
  mark_commit_point();
  return take_committable();
}

}  // namespace streamrun::runtime
