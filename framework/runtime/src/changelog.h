#pragma once

// Changelogs: every store of a task also writes its changes to a Kafka topic
// (`<application.id>-<store>-changelog`, partition = the task's partition), so that a task that
// finds no usable local state — a new machine, a deleted or corrupt directory, a partition that
// moved — rebuilds it before processing anything.
//
// A restore must end exactly at the task's last commit: changelog entries written after it
// belong to records that will be processed again. So each commit writes a *commit marker* to
// the task's first store's changelog (the primary), carrying what the task's state records with
// it: the next input offsets and where the other stores' changelogs ended at that commit. A
// marker is acknowledged before the state commit is written locally, and Kafka's consumer
// offset only after that — the changelog is the reference, local state a cache of it.
//
// Restoring reads the primary from where local state stopped: entries between two markers are
// applied when the second marker arrives; entries after the last marker are discarded. The
// other stores are applied up to the ends named by the last marker. Keys whose discarded
// entries remain in a changelog are written again with their restored value before the task
// processes anything (compensation), so that no later restore can apply them.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/logger.h>

#include <streamrun/base/ids.h>
#include <streamrun/base/result.h>
#include <streamrun/core/kv_store.h>
#include <streamrun/kafka/client_config.h>
#include <streamrun/state/task_state.h>

namespace streamrun::runtime {

// Header that marks a changelog record as a commit marker.
inline constexpr std::string_view kCommitMarkerHeader = "streamrun.commit";
// Key of commit markers: compacted topics reject records without a key.
inline constexpr std::string_view kCommitMarkerKey = "__streamrun.commit";

[[nodiscard]] std::string changelog_topic(std::string_view application_id, std::string_view store);

// A changelog must keep the latest entry of every key for ever: cleanup.policy=compact (or
// compact,delete with retention.ms=-1); a window store's changelog (`window_retention_ms`: how
// long the store keeps a window) at least as long as the store keeps it. Anything else loses
// state to retention, so the application refuses to start, naming the topic and the fix.
// `configs`: the topic's configuration as DescribeConfigs reports it.
[[nodiscard]] Result<void> check_changelog_config(
    const std::string& topic, const std::map<std::string, std::string>& configs,
    std::optional<std::int64_t> window_retention_ms = std::nullopt);

// Keys of what a task's state stores with each commit, besides its stores' contents.
// "<topic>/<partition>": next input offset, or for a changelog, how far local state has read it.
[[nodiscard]] std::string position_key(const TopicPartition& tp);
// "end:<changelog>/<partition>": where the changelog ended at the last commit.
[[nodiscard]] std::string end_key(const TopicPartition& changelog);

// A marker's payload: "key=value" lines of the map above.
[[nodiscard]] std::string encode_marker(const std::map<std::string, std::int64_t>& entries);
[[nodiscard]] Result<std::map<std::string, std::int64_t>> decode_marker(std::string_view payload);

// One record of a changelog partition, as restore sees it.
struct ChangelogRecord {
  std::int64_t offset = 0;
  std::string key;
  std::optional<std::string> value;  // nullopt: the key was removed
  bool marker = false;
};

// Where restore reads changelogs from: Kafka in the runtime, a fake in unit tests. Calls may
// block; restore runs on a thread of its own.
class ChangelogSource {
 public:
  virtual ~ChangelogSource() = default;
  // [low, high) offsets of the partition.
  [[nodiscard]] virtual Result<std::pair<std::int64_t, std::int64_t>> bounds(
      const TopicPartition& tp) = 0;
  [[nodiscard]] virtual Result<void> seek(const TopicPartition& tp, std::int64_t offset) = 0;
  // Appends the next records of the partition last seeked (possibly none yet).
  [[nodiscard]] virtual Result<void> read(std::vector<ChangelogRecord>& out) = 0;
};

struct StoreChangelog {
  std::string store;
  TopicPartition topic_partition;
};

struct RestoreOutcome {
  std::int64_t entries_applied = 0;
  std::int64_t entries_discarded = 0;
  // Per store: keys with discarded entries still in the changelog, to write again.
  std::map<std::string, std::set<std::string>> to_rewrite;
  // Per store: where its changelog ends as of the restored commit.
  std::map<std::string, std::int64_t> changelog_ends;
};

// Brings `state` up to the last commit found in the changelogs of `stores` (the first is the
// primary, the one with markers), starting where local state stopped. Persists progress in
// chunks, so an interrupted restore resumes. Fails with errc::cancelled when `stop`
// becomes true. Fails when local state has read further than a changelog holds (the changelog
// was deleted or truncated: local state is then the only copy, and nothing is overwritten).
[[nodiscard]] Result<RestoreOutcome> restore_task_state(state::TaskState& state,
                                                        const std::vector<StoreChangelog>& stores,
                                                        ChangelogSource& source,
                                                        const std::atomic<bool>& stop,
                                                        spdlog::logger& logger);

// A store that applies each change and reports it to `log` later: flush() sends the latest
// value of every key changed since the previous flush (a key updated a thousand times between
// two commits is one changelog record). The task flushes before it writes its commit marker, so
// the changelog up to the marker is the committed state, as restore expects; entries flushed
// without a marker after them (a full buffer, a crash) are discarded by restore. Task fiber only.
class ChangeLoggingStore final : public KeyValueStore {
 public:
  using Log = std::function<void(std::string_view key, std::optional<std::string_view> value)>;
  // Throws (std::length_error) when the change could never be logged, e.g. a value larger than
  // the producer takes: checked at the write, so that the record's error policy applies to the
  // record that made it, not to whichever commit would send it.
  using Check = std::function<void(std::string_view key, std::optional<std::string_view> value)>;
  // `max_pending_bytes`: changes held back before they are flushed without waiting for a commit.
  ChangeLoggingStore(KeyValueStore& inner, Log log, Check check = {},
                     std::size_t max_pending_bytes = 4u << 20)
      : inner_(inner),
        log_(std::move(log)),
        check_(std::move(check)),
        max_pending_bytes_(max_pending_bytes) {}

  const std::string& name() const override { return inner_.name(); }
  std::optional<std::string> get(std::string_view key) const override { return inner_.get(key); }
  void put(std::string_view key, std::string_view value) override {
    if (check_)
      check_(key, value);
    inner_.put(key, value);
    hold(key, std::string(value));
  }
  void remove(std::string_view key) override {
    if (check_)
      check_(key, std::nullopt);
    inner_.remove(key);
    hold(key, std::nullopt);
  }
  void range(std::string_view from, std::string_view to, const Visitor& visit) const override {
    inner_.range(from, to, visit);
  }
  // Not logged (see KeyValueStore::remove_range); changes held for keys in the range are
  // dropped, as their values are gone.
  void remove_range(std::string_view from, std::string_view to) override;

  // Reports every held change to `log` (may throw what `log` throws; what was not reported yet
  // stays held).
  void flush();
  // Forgets the held changes: the state they belong to was discarded.
  void discard() noexcept {
    pending_.clear();
    pending_bytes_ = 0;
  }

 private:
  void hold(std::string_view key, std::optional<std::string> value);

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
      return std::hash<std::string_view>{}(key);
    }
  };
  KeyValueStore& inner_;
  Log log_;
  Check check_;
  std::size_t max_pending_bytes_;
  std::unordered_map<std::string, std::optional<std::string>, Hash, std::equal_to<>> pending_;
  std::size_t pending_bytes_ = 0;
};

}  // namespace streamrun::runtime

namespace streamrun::runtime {
// Changelogs read from Kafka, outside the consumer group.
[[nodiscard]] Result<std::unique_ptr<ChangelogSource>> open_kafka_changelog_source(
    const kafka::ClientProperties& properties);
}  // namespace streamrun::runtime
