#include <charconv>
#include <unordered_map>

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_buffer_manager.h>

#include <streamrun/base/errc.h>
#include <streamrun/base/log.h>
#include <streamrun/core/errors.h>
#include <streamrun/state/task_state.h>

namespace streamrun::state {
namespace {

constexpr const char* kMetaFamily = "__streamrun_meta";
constexpr const char* kApplicationKey = "application.id";
constexpr const char* kTaskKey = "task.id";
constexpr std::string_view kOffsetPrefix = "offset/";

std::string_view describe(errc value) noexcept {
  switch (value) {
    case errc::unusable:
      return "state directory unusable";
    case errc::io_error:
      return "state write failed";
    case errc::unknown_store:
      return "unknown store";
  }
  return {};
}

struct DbDeleter {
  void operator()(rocksdb::DB* db) const noexcept { delete db; }
};
using DbHandle = std::unique_ptr<rocksdb::DB, DbDeleter>;

}  // namespace

const std::error_category& state_category() noexcept {
  static const EnumCategory<errc> category("streamrun.state", describe);
  return category;
}

struct StateEnvironment::Impl {
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers;
};

StateEnvironment::StateEnvironment(Options options, std::unique_ptr<Impl> impl)
    : options_(std::move(options)), impl_(std::move(impl)) {}
StateEnvironment::~StateEnvironment() = default;

Result<std::shared_ptr<StateEnvironment>> StateEnvironment::create(Options options) {
  std::error_code ec;
  std::filesystem::create_directories(options.directory, ec);
  if (ec) {
    return Error(errc::io_error, fmt::format("cannot create state directory '{}': {}",
                                             options.directory.string(), ec.message()));
  }
  auto impl = std::make_unique<Impl>();
  impl->cache = rocksdb::NewLRUCache(options.memory_budget_bytes);
  // Memtables are charged to the same cache, so block cache + write buffers stay in the budget.
  impl->write_buffers =
      std::make_shared<rocksdb::WriteBufferManager>(options.memory_budget_bytes / 4, impl->cache);
  return std::shared_ptr<StateEnvironment>(
      new StateEnvironment(std::move(options), std::move(impl)));
}

namespace {
class RocksStore;
}  // namespace

struct TaskState::Impl {
  std::shared_ptr<StateEnvironment> environment;  // outlives the DB: it owns cache and buffers
  std::filesystem::path directory;
  std::string task_id;
  DbHandle db;
  rocksdb::DBOptions db_options;  // as opened (reads from the batch alone need them)
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // owned; destroyed before the DB
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::WriteBatchWithIndex batch{rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true};
  std::map<std::string, std::int64_t> offsets;
  std::map<std::string, std::unique_ptr<RocksStore>, std::less<>> stores;
  bool created = false;  // the directory was new: no state at all
  // freeze(): the batch holds exactly what the next commit() makes durable.
  bool frozen = false;
  std::function<void()> before_thaw;

  // A store is about to write to the batch: a frozen commit point must be settled first.
  void thaw_for_write() {
    if (!frozen)
      return;
    if (before_thaw)
      before_thaw();
    frozen = false;
  }

  // Hands every store's cached writes to `batch`.
  void flush_caches();
  [[nodiscard]] bool caches_dirty() const;
  void clear_caches();

  ~Impl();

  [[noreturn]] void fail_read(const std::string& store, const rocksdb::Status& status) const {
    throw InfrastructureError(fmt::format("state store '{}' of task {} in '{}': read failed: {}",
                                          store, task_id, directory.string(), status.ToString()));
  }
};

namespace {

// Reads see the task's uncommitted writes first, then the database.
//
// In front of both sits a record cache (as Kafka Streams' per-store cache): the values read and
// written since the last commit, by key. A put only updates the cache; the latest value of each
// changed key goes into the indexed batch when the task commits (or scans, or the cache is
// full), so a key updated a thousand times between commits costs one batch entry and one
// memtable insert, and reads of recently used keys never reach RocksDB. What is observable does
// not change: every read sees every write before it, commit() makes exactly the same state
// durable, discard_uncommitted() forgets the same writes.
class RocksStore final : public KeyValueStore {
 public:
  RocksStore(std::string name, TaskState::Impl& state, rocksdb::ColumnFamilyHandle* family,
             std::size_t cache_bytes)
      : name_(std::move(name)), state_(state), family_(family), cache_capacity_(cache_bytes) {}

  const std::string& name() const override { return name_; }
  [[nodiscard]] rocksdb::ColumnFamilyHandle* family() const noexcept { return family_; }

  std::optional<std::string> get(std::string_view key) const override {
    if (auto it = cache_.find(key); it != cache_.end())
      return it->second.value;
    if (!caching_)
      return read(key);
    auto value = read(key);
    remember(key, value, /*dirty=*/false);
    return value;
  }

  void put(std::string_view key, std::string_view value) override {
    if (!caching_) {
      put_to_batch(rocksdb::Slice(key.data(), key.size()), value);
      return;
    }
    remember(key, std::string(value), /*dirty=*/true);
  }

  void remove(std::string_view key) override {
    if (!caching_) {
      state_.batch.Delete(family_, rocksdb::Slice(key.data(), key.size())).PermitUncheckedError();
      return;
    }
    remember(key, std::nullopt, /*dirty=*/true);
  }

  void range(std::string_view from, std::string_view to, const Visitor& visit) const override {
    flush();  // the iterator sees the batch and the database, not the cache
    std::unique_ptr<rocksdb::Iterator> it(state_.batch.NewIteratorWithBase(
        family_, state_.db->NewIterator(rocksdb::ReadOptions(), family_)));
    for (it->Seek(rocksdb::Slice(from.data(), from.size())); it->Valid(); it->Next()) {
      const auto key = it->key();
      const std::string_view key_view(key.data(), key.size());
      if (!to.empty() && key_view >= to)
        break;
      if (removed(key_view) && !in_batch(key_view))
        continue;  // the database's entry, removed by a range since the last commit
      const auto value = it->value();
      if (!visit(key_view, std::string_view(value.data(), value.size())))
        break;
    }
    if (!it->status().ok())
      state_.fail_read(name_, it->status());
  }

  // The indexed batch cannot hold a range deletion (RocksDB answers NotSupported), so: its own
  // entries in the range are deleted one by one (only what was written since the last commit),
  // the range deletion goes into the batch's write batch behind the index (the commit applies
  // it in order: later writes in the range survive it), and until the commit reads skip the
  // database's entries in the range.
  void remove_range(std::string_view from, std::string_view to) override {
    detail::check_range(from, to);
    if (from == to)
      return;
    state_.thaw_for_write();
    flush();
    for (auto it = cache_.begin(); it != cache_.end();) {
      if (it->first >= from && it->first < to) {
        cached_bytes_ -= charge(it->first, it->second.value);
        it = cache_.erase(it);  // dirty_ is empty after flush()
      } else {
        ++it;
      }
    }
    std::vector<std::string> written;
    std::unique_ptr<rocksdb::WBWIIterator> entries(state_.batch.NewIterator(family_));
    for (entries->Seek(rocksdb::Slice(from.data(), from.size())); entries->Valid();
         entries->Next()) {
      const auto entry = entries->Entry();
      const std::string_view key(entry.key.data(), entry.key.size());
      if (key >= to)
        break;
      if (entry.type != rocksdb::kDeleteRecord)
        written.emplace_back(key);
    }
    for (const auto& key : written)
      state_.batch.Delete(family_, key).PermitUncheckedError();
    state_.batch.GetWriteBatch()
        ->DeleteRange(family_, rocksdb::Slice(from.data(), from.size()),
                      rocksdb::Slice(to.data(), to.size()))
        .PermitUncheckedError();
    removed_.emplace_back(from, to);
  }
  // The last commit made the range removals durable, or they were discarded.
  void forget_removed() noexcept { removed_.clear(); }

  // Writes the cached changes into the batch; the cache keeps them as read values.
  void flush() const {
    if (dirty_.empty())
      return;
    state_.thaw_for_write();
    for (auto* node : dirty_) {
      const rocksdb::Slice key(node->first.data(), node->first.size());
      auto& entry = node->second;
      if (entry.value) {
        put_to_batch(key, *entry.value);
      } else {
        state_.batch.Delete(family_, key).PermitUncheckedError();
      }
      entry.dirty = false;
    }
    dirty_.clear();
  }
  [[nodiscard]] bool dirty() const noexcept { return !dirty_.empty(); }
  void clear() {
    dirty_.clear();
    cache_.clear();
    cached_bytes_ = 0;
  }
  // Off: reads and writes go straight to the batch and the database (a restore writes each key
  // once and reads none: caching would only copy them twice).
  void set_caching(bool on) {
    flush();
    clear();
    caching_ = on;
  }

 private:
  struct Entry {
    std::optional<std::string> value;  // nullopt: absent (never written, or removed)
    bool dirty = false;                // changed since the last flush
  };
  // What an entry is charged: its key and value and the hash node around them.
  std::optional<std::string> read(std::string_view key) const {
    std::string value;
    if (removed(key)) {
      // Only a write since the removal counts (GetFromBatch: NotFound when absent or deleted).
      return in_batch(key, &value) ? std::optional<std::string>(std::move(value)) : std::nullopt;
    }
    const auto status =
        state_.batch.GetFromBatchAndDB(state_.db.get(), rocksdb::ReadOptions(), family_,
                                       rocksdb::Slice(key.data(), key.size()), &value);
    if (status.IsNotFound())
      return std::nullopt;
    if (!status.ok())
      state_.fail_read(name_, status);
    return value;
  }
  [[nodiscard]] bool removed(std::string_view key) const noexcept {
    return std::any_of(removed_.begin(), removed_.end(),
                       [&](const auto& range) { return key >= range.first && key < range.second; });
  }
  bool in_batch(std::string_view key, std::string* value = nullptr) const {
    std::string ignored;
    const auto status =
        state_.batch.GetFromBatch(family_, state_.db_options,
                                  rocksdb::Slice(key.data(), key.size()), value ? value : &ignored);
    if (!status.ok() && !status.IsNotFound())
      state_.fail_read(name_, status);
    return status.ok();
  }
  void put_to_batch(const rocksdb::Slice& key, std::string_view value) const {
    state_.batch.Put(family_, key, rocksdb::Slice(value.data(), value.size()))
        .PermitUncheckedError();  // an in-memory batch: fails only on absurd sizes
  }

  static std::size_t charge(std::string_view key, const std::optional<std::string>& value) {
    return key.size() + (value ? value->size() : 0) + 96;
  }

  void remember(std::string_view key, std::optional<std::string> value, bool dirty) const {
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      if (cached_bytes_ + charge(key, value) > cache_capacity_)
        make_room();
      cached_bytes_ += charge(key, value);
      it = cache_.emplace(std::string(key), Entry{}).first;
    } else {
      cached_bytes_ += charge(key, value);
      cached_bytes_ -= charge(key, it->second.value);
    }
    it->second.value = std::move(value);
    if (dirty && !it->second.dirty) {
      it->second.dirty = true;
      dirty_.push_back(&*it);
    }
    if (cached_bytes_ > cache_capacity_)
      make_room();  // an entry that grew: this one goes to the batch with the others
  }

  // A full cache hands its changes to the batch and starts again: simpler than LRU, and a
  // stream of distinct keys gains nothing from a cache anyway.
  void make_room() const {
    flush();
    cache_.clear();
    cached_bytes_ = 0;
  }

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
      return std::hash<std::string_view>{}(key);
    }
  };
  std::string name_;
  TaskState::Impl& state_;
  rocksdb::ColumnFamilyHandle* family_;
  std::size_t cache_capacity_;
  // Mutable: a read fills the cache. The store is used from the task's fiber only.
  mutable std::unordered_map<std::string, Entry, Hash, std::equal_to<>> cache_;
  mutable std::size_t cached_bytes_ = 0;
  // The entries with dirty set (a hash map's nodes stay where they are until erased, and
  // entries are only ever erased all at once).
  mutable std::vector<std::pair<const std::string, Entry>*> dirty_;
  bool caching_ = true;
  // Ranges removed since the last commit: [from, to).
  std::vector<std::pair<std::string, std::string>> removed_;
};

rocksdb::ColumnFamilyOptions family_options(const StateEnvironment& environment) {
  rocksdb::ColumnFamilyOptions options;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = environment.impl().cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Streaming state is written far more than it is scanned: modest memtables, flushed often,
  // compacted in the background.
  options.write_buffer_size = 16u << 20;
  options.max_write_buffer_number = 3;
  options.level_compaction_dynamic_level_bytes = true;
  const auto supported = rocksdb::GetSupportedCompressions();
  if (std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end()) {
    options.compression = rocksdb::kLZ4Compression;
  }
  return options;
}

}  // namespace

TaskState::Impl::~Impl() {
  stores.clear();
  if (db) {
    for (auto* handle : handles)
      db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  db.reset();
}

void TaskState::Impl::flush_caches() {
  for (auto& [name, store] : stores)
    store->flush();
}

bool TaskState::Impl::caches_dirty() const {
  return std::any_of(stores.begin(), stores.end(),
                     [](const auto& entry) { return entry.second->dirty(); });
}

void TaskState::Impl::clear_caches() {
  for (auto& [name, store] : stores)
    store->clear();
}

TaskState::TaskState(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TaskState::~TaskState() = default;

Result<void> TaskState::wipe(const StateEnvironment& environment, const std::string& task_id) {
  const auto path = environment.options().directory / task_id;
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) {
    return Error(errc::io_error, fmt::format("cannot remove state directory '{}': {}",
                                             path.string(), ec.message()));
  }
  return {};
}

Result<std::unique_ptr<TaskState>> TaskState::open(std::shared_ptr<StateEnvironment> environment,
                                                   const std::string& task_id,
                                                   const std::vector<std::string>& store_names) {
  auto impl = std::make_unique<Impl>();
  impl->directory = environment->options().directory / task_id;
  impl->task_id = task_id;
  const auto where = impl->directory.string();
  auto unusable = [&](const std::string& why) {
    return Error(errc::unusable,
                 fmt::format("state directory '{}' of task {}: {}", where, task_id, why));
  };

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.write_buffer_manager = environment->impl().write_buffers;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 2;
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;

  const auto options = family_options(*environment);
  std::vector<std::string> families = {rocksdb::kDefaultColumnFamilyName, kMetaFamily};
  for (const auto& name : store_names)
    families.push_back(name);
  // An existing database must be opened with every family it has.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, where, &existing).ok()) {
    for (const auto& name : existing) {
      if (std::find(families.begin(), families.end(), name) == families.end()) {
        families.push_back(name);
      }
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : families)
    descriptors.emplace_back(name, options);

  rocksdb::DB* raw = nullptr;
  const auto status = rocksdb::DB::Open(db_options, where, descriptors, &impl->handles, &raw);
  if (!status.ok()) {
    // I/O errors (a full disk, a lock still held by this or another process) say nothing about
    // the data: only corruption makes the directory unusable (and worth rebuilding).
    if (status.IsIOError()) {
      return Error(errc::io_error, fmt::format("state directory '{}' of task {}: {}", where,
                                               task_id, status.ToString()));
    }
    return unusable(status.ToString());
  }
  impl->db.reset(raw);
  impl->db_options = db_options;
  impl->meta = impl->handles[1];

  // Whose state is this? A directory copied from another application or task must not be used.
  const auto& application_id = environment->options().application_id;
  std::string owner;
  std::string owner_task;
  const auto identity_read =
      impl->db->Get(rocksdb::ReadOptions(), impl->meta, kApplicationKey, &owner);
  if (!identity_read.ok() && !identity_read.IsNotFound())
    return unusable(identity_read.ToString());
  const bool known = identity_read.ok();
  impl->created = !known;
  if (known) {
    static_cast<void>(impl->db->Get(rocksdb::ReadOptions(), impl->meta, kTaskKey, &owner_task));
    if (owner != application_id) {
      return unusable(
          fmt::format("it belongs to application '{}', not '{}'", owner, application_id));
    }
    if (owner_task != task_id) {
      return unusable(fmt::format("it belongs to task {}", owner_task));
    }
  } else {
    rocksdb::WriteBatch identity;
    identity.Put(impl->meta, kApplicationKey, application_id).PermitUncheckedError();
    identity.Put(impl->meta, kTaskKey, task_id).PermitUncheckedError();
    rocksdb::WriteOptions sync;
    sync.sync = true;
    if (auto written = impl->db->Write(sync, &identity); !written.ok()) {
      return Error(errc::io_error,
                   fmt::format("state directory '{}': {}", where, written.ToString()));
    }
  }

  std::unique_ptr<rocksdb::Iterator> it(impl->db->NewIterator(rocksdb::ReadOptions(), impl->meta));
  for (it->Seek(rocksdb::Slice(kOffsetPrefix.data(), kOffsetPrefix.size())); it->Valid();
       it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(kOffsetPrefix))
      break;
    std::int64_t offset = 0;
    const auto value = it->value();
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), offset);
    if (ec != std::errc() || ptr != value.data() + value.size()) {
      return unusable(fmt::format("stored offset '{}' is not a number", key));
    }
    impl->offsets.emplace(std::string(key.substr(kOffsetPrefix.size())), offset);
  }
  if (!it->status().ok())
    return unusable(it->status().ToString());

  for (std::size_t i = 0; i < families.size(); ++i) {
    if (i < 2)
      continue;
    if (std::find(store_names.begin(), store_names.end(), families[i]) == store_names.end())
      continue;
    impl->stores.emplace(
        families[i], std::make_unique<RocksStore>(families[i], *impl, impl->handles[i],
                                                  environment->options().cache_bytes_per_store));
  }
  impl->environment = std::move(environment);
  return std::unique_ptr<TaskState>(new TaskState(std::move(impl)));
}

KeyValueStore& TaskState::store(std::string_view name) {
  auto it = impl_->stores.find(name);
  if (it == impl_->stores.end()) {
    throw std::invalid_argument(
        fmt::format("task {} has no state store '{}'", impl_->task_id, name));
  }
  return *it->second;
}

const std::map<std::string, std::int64_t>& TaskState::committed_offsets() const noexcept {
  return impl_->offsets;
}

Result<void> TaskState::commit(const std::map<std::string, std::int64_t>& offsets) {
  if (!impl_->frozen)
    impl_->flush_caches();
  for (const auto& [key, offset] : offsets) {
    impl_->batch.Put(impl_->meta, std::string(kOffsetPrefix) + key, std::to_string(offset))
        .PermitUncheckedError();
  }
  // The write-ahead log is written (not fsynced) before Write() returns: a killed process loses
  // nothing; a machine that loses power recovers a consistent, older commit and replays from
  // its offsets (and the changelog covers the loss of the machine itself).
  const auto status = impl_->db->Write(rocksdb::WriteOptions(), impl_->batch.GetWriteBatch());
  if (!status.ok()) {
    return Error(errc::io_error,
                 fmt::format("commit of task {} state in '{}' failed: {}", impl_->task_id,
                             impl_->directory.string(), status.ToString()));
  }
  impl_->batch.Clear();
  impl_->frozen = false;
  for (auto& [name, store] : impl_->stores)
    store->forget_removed();
  for (const auto& [key, offset] : offsets)
    impl_->offsets[key] = offset;
  return {};
}

void TaskState::freeze() {
  impl_->flush_caches();
  impl_->frozen = true;
}

void TaskState::thaw() noexcept {
  impl_->frozen = false;
}

bool TaskState::frozen() const noexcept {
  return impl_->frozen;
}

void TaskState::set_before_thaw(std::function<void()> before_thaw) {
  impl_->before_thaw = std::move(before_thaw);
}

void TaskState::discard_uncommitted() {
  // Cached reads may show discarded writes (they were read from the batch): forget them all.
  impl_->clear_caches();
  impl_->batch.Clear();
  impl_->frozen = false;
  for (auto& [name, store] : impl_->stores)
    store->forget_removed();
}

void TaskState::set_caching(bool on) {
  for (auto& [name, store] : impl_->stores)
    store->set_caching(on);
}

bool TaskState::has_uncommitted() const noexcept {
  return impl_->batch.GetWriteBatch()->Count() > 0 || impl_->caches_dirty();
}

std::int64_t StateEnvironment::cache_usage_bytes() const {
  return static_cast<std::int64_t>(impl_->cache->GetUsage());
}

TaskState::Figures TaskState::figures() const {
  Figures figures;
  for (auto* handle : impl_->handles) {
    std::uint64_t value = 0;
    if (impl_->db->GetIntProperty(handle, rocksdb::DB::Properties::kEstimateLiveDataSize, &value))
      figures.bytes += static_cast<std::int64_t>(value);
    if (impl_->db->GetIntProperty(handle, rocksdb::DB::Properties::kCurSizeAllMemTables, &value))
      figures.bytes += static_cast<std::int64_t>(value);
    if (impl_->db->GetIntProperty(handle, rocksdb::DB::Properties::kEstimateNumKeys, &value))
      figures.keys += static_cast<std::int64_t>(value);
    if (impl_->db->GetIntProperty(handle, rocksdb::DB::Properties::kEstimatePendingCompactionBytes,
                                  &value))
      figures.pending_compaction_bytes += static_cast<std::int64_t>(value);
  }
  return figures;
}

namespace {

Error committed_read_failed(const TaskState::Impl& impl, std::string_view store,
                            const rocksdb::Status& status) {
  return Error(errc::io_error,
               fmt::format("state store '{}' of task {} in '{}': read failed: {}", store,
                           impl.task_id, impl.directory.string(), status.ToString()));
}

}  // namespace

// Reads go to the DB (thread-safe) through the store's column family handle, which lives as
// long as the TaskState: nothing a task fiber changes (caches, batch) is touched.
Result<std::optional<std::string>> TaskState::get_committed(std::string_view store,
                                                            std::string_view key) const {
  const auto it = impl_->stores.find(store);
  if (it == impl_->stores.end())
    return Error(errc::unknown_store,
                 fmt::format("task {} has no state store '{}'", impl_->task_id, store));
  std::string value;
  const auto status = impl_->db->Get(rocksdb::ReadOptions(), it->second->family(),
                                     rocksdb::Slice(key.data(), key.size()), &value);
  if (status.IsNotFound())
    return std::optional<std::string>();
  if (!status.ok())
    return committed_read_failed(*impl_, store, status);
  return std::optional<std::string>(std::move(value));
}

Result<TaskState::Entries> TaskState::range_committed(std::string_view store, std::string_view from,
                                                      std::string_view to,
                                                      std::size_t limit) const {
  const auto it = impl_->stores.find(store);
  if (it == impl_->stores.end())
    return Error(errc::unknown_store,
                 fmt::format("task {} has no state store '{}'", impl_->task_id, store));
  Entries result;
  std::unique_ptr<rocksdb::Iterator> cursor(
      impl_->db->NewIterator(rocksdb::ReadOptions(), it->second->family()));
  for (cursor->Seek(rocksdb::Slice(from.data(), from.size())); cursor->Valid(); cursor->Next()) {
    const auto key = cursor->key();
    const std::string_view key_view(key.data(), key.size());
    if (!to.empty() && key_view >= to)
      break;
    if (result.entries.size() == limit) {
      result.more = true;
      break;
    }
    result.entries.emplace_back(std::string(key_view), cursor->value().ToString());
  }
  if (!cursor->status().ok())
    return committed_read_failed(*impl_, store, cursor->status());
  return result;
}

const std::filesystem::path& TaskState::directory() const noexcept {
  return impl_->directory;
}

bool TaskState::created() const noexcept {
  return impl_->created;
}

}  // namespace streamrun::state
