#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <streamrun/base/result.h>
#include <streamrun/core/kv_store.h>

namespace streamrun::state {

enum class errc {
  unusable = 1,  // the directory belongs to another application or task, or is corrupt
  io_error,      // a write failed (disk full, read-only file system, ...)
  unknown_store,
};
const std::error_category& state_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), state_category()};
}

// What every task's state shares: where it lives and how much memory RocksDB may use.
// Create one per application and keep it alive longer than every TaskState opened with it.
class StateEnvironment {
 public:
  struct Options {
    std::filesystem::path directory;  // state.dir/<application.id>
    std::string application_id;
    // Block cache and memtables of all tasks together.
    std::size_t memory_budget_bytes = 256u << 20;
    // Each store's record cache (recently read and written values, and the writes since the
    // last commit, before they enter RocksDB), bytes.
    std::size_t cache_bytes_per_store = 4u << 20;
  };
  [[nodiscard]] static Result<std::shared_ptr<StateEnvironment>> create(Options options);
  ~StateEnvironment();

  [[nodiscard]] const Options& options() const noexcept { return options_; }

  // What the shared block cache holds (memtables included: they are charged to it), bytes. Any
  // thread.
  [[nodiscard]] std::int64_t cache_usage_bytes() const;

  struct Impl;
  [[nodiscard]] Impl& impl() const noexcept { return *impl_; }

 private:
  StateEnvironment(Options options, std::unique_ptr<Impl> impl);
  Options options_;
  std::unique_ptr<Impl> impl_;
};

// The state of one task: its stores and the input offsets its state reflects.
//
// Writes go to each store's record cache and from there to an indexed batch (at commit, on a
// range scan, or when the cache is full), which reads see; commit() writes the batch and the
// offsets in one atomic RocksDB write (WAL written, not fsynced: a killed process loses nothing; a
// power loss may roll back to an older, still consistent commit). After a crash the task reopens
// its directory and finds the state exactly as of its last commit, with the offsets to resume from
// — so no input is ever applied twice. Used from the task's fiber only.
class TaskState {
 public:
  // Opens (creating if needed) `<environment dir>/<task_id>` with the given stores. Fails with
  // errc::unusable when the directory belongs to another application or task, or is corrupt —
  // the caller may then wipe it (wipe()) and rebuild — and with errc::io_error when it cannot
  // be read or locked (never wipe then: another instance may be using it).
  [[nodiscard]] static Result<std::unique_ptr<TaskState>> open(
      std::shared_ptr<StateEnvironment> environment, const std::string& task_id,
      const std::vector<std::string>& store_names);
  // Removes a task's directory.
  [[nodiscard]] static Result<void> wipe(const StateEnvironment& environment,
                                         const std::string& task_id);
  ~TaskState();
  TaskState(const TaskState&) = delete;
  TaskState& operator=(const TaskState&) = delete;

  [[nodiscard]] KeyValueStore& store(std::string_view name);

  // Input offsets stored by the last commit, keyed "topic/partition" (the next offset to read).
  [[nodiscard]] const std::map<std::string, std::int64_t>& committed_offsets() const noexcept;

  // Makes every change since the last commit durable, together with `offsets` (merged into the
  // stored ones). On error nothing of this commit is durable and the changes stay pending.
  // When frozen (freeze()), exactly the changes made before freeze() become durable and the
  // state thaws; later changes stay in the record caches for the next commit.
  [[nodiscard]] Result<void> commit(const std::map<std::string, std::int64_t>& offsets);

  // A commit point that does not stop the task: fixes what the next commit() makes durable (the
  // changes so far) while the caller goes on writing, so that it can wait for its outputs to be
  // acknowledged before committing. Until commit() or thaw(), later writes stay in the stores'
  // record caches; a store that must write to the batch anyway (a range scan, a full cache)
  // first calls `before_thaw`, which should commit() or thaw(); if it leaves the state frozen
  // the state thaws itself, and the next commit covers both sets of changes.
  void freeze();
  // Gives up the frozen commit point: the next commit() covers every change.
  void thaw() noexcept;
  [[nodiscard]] bool frozen() const noexcept;
  // See freeze(). Called on the task's fiber, from inside a store operation.
  void set_before_thaw(std::function<void()> before_thaw);

  // Throws away the changes since the last commit (and a frozen commit point).
  void discard_uncommitted();

  [[nodiscard]] bool has_uncommitted() const noexcept;
  // Whether the stores' record caches are used (on by default). A restore, which writes every
  // key once and reads none, turns them off meanwhile.
  void set_caching(bool on);
  [[nodiscard]] const std::filesystem::path& directory() const noexcept;
  // True when open() found no state and started an empty one.
  [[nodiscard]] bool created() const noexcept;

  // RocksDB's own estimates, over all stores: the state's size (live data in files plus
  // memtables), its keys, and bytes compaction is behind by
  // (rocksdb.estimate-pending-compaction-bytes).
  struct Figures {
    std::int64_t bytes = 0;
    std::int64_t keys = 0;
    std::int64_t pending_compaction_bytes = 0;
  };
  [[nodiscard]] Figures figures() const;

  // --- reads for other threads (interactive queries) ------------------------------------------
  // The state as of the last commit(): RocksDB alone, without the record caches and the batch,
  // so never a change that a crash could still take back. Any thread, concurrently with the
  // task's fiber; the caller keeps the TaskState alive meanwhile. Fails with errc::unknown_store
  // for a store the task does not have, errc::io_error when RocksDB cannot read.
  [[nodiscard]] Result<std::optional<std::string>> get_committed(std::string_view store,
                                                                 std::string_view key) const;
  // Up to `limit` entries with from <= key < to (empty `to`: no upper bound), in byte order.
  // `more` is set when entries beyond the limit exist.
  struct Entries {
    std::vector<std::pair<std::string, std::string>> entries;
    bool more = false;
  };
  [[nodiscard]] Result<Entries> range_committed(std::string_view store, std::string_view from,
                                                std::string_view to, std::size_t limit) const;

  struct Impl;

 private:
  explicit TaskState(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrun::state

template <>
struct std::is_error_code_enum<streamrun::state::errc> : std::true_type {};
