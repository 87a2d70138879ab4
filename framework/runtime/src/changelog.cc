#include "changelog.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include <fmt/format.h>

#include <streamrun/base/errc.h>
#include <streamrun/kafka/log_reader.h>

namespace streamrun::runtime {
namespace {

// Restore persists its progress every so many applied entries: bounds the write batch's memory
// and the work an interrupted restore repeats.
constexpr std::int64_t kPersistEvery = 20'000;

// Logs restore progress at most every few seconds.
class Progress {
 public:
  Progress(spdlog::logger& logger, std::string what, std::int64_t from, std::int64_t to)
      : logger_(logger), what_(std::move(what)), from_(from), to_(to) {}
  void at(std::int64_t offset) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(5))
      return;
    last_ = now;
    logger_.info(
        "restoring {}: offset {} of {} ({:.0f}%)", what_, offset, to_,
        to_ > from_ ? 100.0 * static_cast<double>(offset - from_) / static_cast<double>(to_ - from_)
                    : 100.0);
  }

 private:
  spdlog::logger& logger_;
  std::string what_;
  std::int64_t from_;
  std::int64_t to_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

std::optional<std::int64_t> lookup(const std::map<std::string, std::int64_t>& map,
                                   const std::string& key) {
  auto it = map.find(key);
  if (it == map.end())
    return std::nullopt;
  return it->second;
}

// Reads [from, to) of one changelog partition, handing each record to `visit`.
Result<void> read_range(ChangelogSource& source, const TopicPartition& tp, std::int64_t from,
                        std::int64_t to, const std::atomic<bool>& stop, Progress& progress,
                        const std::function<Result<void>(ChangelogRecord&)>& visit) {
  if (from >= to)
    return {};
  if (auto seeked = source.seek(tp, from); !seeked)
    return seeked.error();
  std::vector<ChangelogRecord> records;
  std::int64_t next = from;
  while (next < to) {
    if (stop)
      return Error(errc::cancelled, fmt::format("restore of {} cancelled", to_string(tp)));
    records.clear();
    if (auto read = source.read(records); !read)
      return read.error();
    for (auto& record : records) {
      if (record.offset >= to)
        return {};
      next = record.offset + 1;
      if (auto visited = visit(record); !visited)
        return visited.error();
    }
    progress.at(next);
  }
  return {};
}

// The offset of the last commit marker in [from, to) of a changelog partition, or nullopt when
// it has none. Reads backwards in growing windows: the last marker is normally within one
// commit interval of the end.
Result<std::optional<std::int64_t>> find_last_marker(ChangelogSource& source,
                                                     const TopicPartition& tp, std::int64_t from,
                                                     std::int64_t to, const std::atomic<bool>& stop,
                                                     Progress& progress) {
  std::int64_t window = 4096;
  for (std::int64_t end = to; end > from; window *= 4) {
    const std::int64_t begin = std::max(from, end - window);
    std::optional<std::int64_t> last;
    auto read = read_range(source, tp, begin, end, stop, progress,
                           [&](ChangelogRecord& record) -> Result<void> {
                             if (record.marker)
                               last = record.offset;
                             return {};
                           });
    if (!read)
      return read.error();
    if (last)
      return last;
    end = begin;
  }
  return std::optional<std::int64_t>();
}

}  // namespace

std::string changelog_topic(std::string_view application_id, std::string_view store) {
  return fmt::format("{}-{}-changelog", application_id, store);
}

Result<void> check_changelog_config(const std::string& topic,
                                    const std::map<std::string, std::string>& configs,
                                    std::optional<std::int64_t> window_retention_ms) {
  auto setting = [&](const char* key) {
    auto it = configs.find(key);
    return it == configs.end() ? std::string() : it->second;
  };
  std::string policy = setting("cleanup.policy");
  std::erase(policy, ' ');
  const bool compact_only = policy == "compact";
  const bool compact_and_delete = policy == "compact,delete" || policy == "delete,compact";
  const bool compact_forever = compact_and_delete && setting("retention.ms") == "-1";
  if (compact_only || compact_forever)
    return {};
  if (compact_and_delete && window_retention_ms) {
    std::int64_t retention = -1;
    const auto text = setting("retention.ms");
    std::from_chars(text.data(), text.data() + text.size(), retention);
    if (retention >= *window_retention_ms)
      return {};
    return Error(
        errc::invalid_argument,
        fmt::format("changelog topic '{}' of a window store has retention.ms={}, less "
                    "than the {} ms the store keeps a window: restored windows would "
                    "miss updates. Raise it (kafka-configs.sh --alter --entity-type "
                    "topics --entity-name {} --add-config retention.ms={})",
                    topic, text, *window_retention_ms, topic, *window_retention_ms + 86'400'000));
  }
  return Error(errc::invalid_argument,
               fmt::format("changelog topic '{}' has cleanup.policy={}{}: retention would delete "
                           "entries that restoring the store needs, and restored state would "
                           "silently miss keys. Make it compacted (kafka-configs.sh --alter "
                           "--entity-type topics --entity-name {} --add-config "
                           "cleanup.policy=compact), or delete it so that the application "
                           "recreates it compacted and restores from scratch",
                           topic, policy.empty() ? "(unknown)" : policy,
                           policy.find("delete") != std::string::npos
                               ? fmt::format(" (retention.ms={})", setting("retention.ms"))
                               : "",
                           topic));
}

std::string position_key(const TopicPartition& tp) {
  return fmt::format("{}/{}", tp.topic.value(), tp.partition.value());
}

std::string end_key(const TopicPartition& changelog) {
  return "end:" + position_key(changelog);
}

std::string encode_marker(const std::map<std::string, std::int64_t>& entries) {
  std::string payload;
  for (const auto& [key, value] : entries)
    payload += fmt::format("{}={}\n", key, value);
  return payload;
}

Result<std::map<std::string, std::int64_t>> decode_marker(std::string_view payload) {
  std::map<std::string, std::int64_t> entries;
  while (!payload.empty()) {
    const auto end = payload.find('\n');
    const auto line = payload.substr(0, end);
    payload = end == std::string_view::npos ? std::string_view() : payload.substr(end + 1);
    if (line.empty())
      continue;
    const auto equals = line.rfind('=');
    std::int64_t value = 0;
    const auto* first = line.data() + (equals == std::string_view::npos ? 0 : equals + 1);
    const auto* last = line.data() + line.size();
    if (equals == std::string_view::npos || std::from_chars(first, last, value).ptr != last) {
      return Error(errc::invalid_argument, fmt::format("malformed commit marker line '{}'", line));
    }
    entries[std::string(line.substr(0, equals))] = value;
  }
  return entries;
}

Result<RestoreOutcome> restore_task_state(state::TaskState& state,
                                          const std::vector<StoreChangelog>& stores,
                                          ChangelogSource& source, const std::atomic<bool>& stop,
                                          spdlog::logger& logger) {
  RestoreOutcome outcome;
  if (stores.empty())
    return outcome;
  // Every entry is written once and none read: straight to RocksDB, not through the caches.
  state.set_caching(false);
  struct CachingBack {
    state::TaskState& state;
    ~CachingBack() { state.set_caching(true); }
  } caching_back{state};
  auto meta = state.committed_offsets();
  std::map<std::string, std::int64_t> pending;  // meta to persist with the applied entries
  std::int64_t unpersisted = 0;
  auto persist = [&]() -> Result<void> {
    if (pending.empty() && !state.has_uncommitted())
      return {};
    if (auto committed = state.commit(pending); !committed)
      return committed.error();
    for (const auto& [key, value] : pending)
      meta[key] = value;
    pending.clear();
    unpersisted = 0;
    return {};
  };

  // Applies one entry of a changelog to its store; progress is persisted in batches.
  auto apply = [&](KeyValueStore& store, const TopicPartition& changelog,
                   const ChangelogRecord& record) -> Result<void> {
    if (record.value) {
      store.put(record.key, *record.value);
    } else {
      store.remove(record.key);
    }
    ++outcome.entries_applied;
    pending[position_key(changelog)] = record.offset + 1;
    if (++unpersisted >= kPersistEvery)
      return persist();
    return {};
  };

  // Where each changelog starts: where local state stopped, else the partition's first offset.
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  for (const auto& store : stores) {
    auto bounds = source.bounds(store.topic_partition);
    if (!bounds)
      return bounds.error();
    const auto [low, high] = *bounds;
    auto from = lookup(meta, position_key(store.topic_partition)).value_or(low);
    if (from > high) {
      return Error(
          state::errc::unusable,
          fmt::format(
              "changelog {} ends at offset {}, but the local state of store '{}' in '{}' has "
              "read it up to offset {}: the changelog topic was deleted, truncated or recreated "
              "(a development broker restarted empty does this), so the local state is the only "
              "copy left and is not overwritten. To keep it, restore the changelog topic. To "
              "start over, stop every instance of the application, delete '{}' and the group's "
              "committed offsets (kafka-consumer-groups.sh --delete --group <application.id>), "
              "and start again",
              to_string(store.topic_partition), high, store.store, state.directory().string(), from,
              state.directory().string()));
    }
    if (from < low) {
      logger.warn(
          "changelog {} starts at offset {}, after {} where store '{}' needs it to: entries "
          "were removed by retention; the restored state may be incomplete unless the topic is "
          "compacted",
          to_string(store.topic_partition), low, from, store.store);
      from = low;
    }
    logger.debug("store '{}': changelog {} holds [{}, {}), local state has read up to {}",
                 store.store, to_string(store.topic_partition), low, high, from);
    ranges.emplace_back(from, high);
  }

  // The primary: entries count up to its last commit marker; what follows belongs to records
  // that will be processed again. Finding that marker first lets the entries before it be
  // applied as they are read, in bounded batches, instead of held until a marker arrives.
  const auto& primary = stores.front();
  auto& primary_store = state.store(primary.store);
  {
    const auto [from, to] = ranges.front();
    Progress progress(
        logger,
        fmt::format("store '{}' from {}", primary.store, to_string(primary.topic_partition)), from,
        to);
    auto last_marker = find_last_marker(source, primary.topic_partition, from, to, stop, progress);
    if (!last_marker)
      return last_marker.error();
    const std::int64_t committed_below = *last_marker ? **last_marker + 1 : from;
    auto read =
        read_range(source, primary.topic_partition, from, to, stop, progress,
                   [&](ChangelogRecord& record) -> Result<void> {
                     if (record.offset >= committed_below) {
                       if (!record.marker) {
                         ++outcome.entries_discarded;
                         outcome.to_rewrite[primary.store].insert(std::move(record.key));
                       }
                       return {};
                     }
                     if (!record.marker)
                       return apply(primary_store, primary.topic_partition, record);
                     auto entries = decode_marker(record.value.value_or(""));
                     if (!entries) {
                       return entries.error().with_context(fmt::format(
                           "{} offset {}", to_string(primary.topic_partition), record.offset));
                     }
                     for (const auto& [key, value] : *entries)
                       pending[key] = value;
                     pending[position_key(primary.topic_partition)] = record.offset + 1;
                     pending[end_key(primary.topic_partition)] = record.offset + 1;
                     return {};
                   });
    if (!read)
      return read.error();
    if (auto persisted = persist(); !persisted)
      return persisted.error();
  }
  outcome.changelog_ends[primary.store] =
      lookup(meta, end_key(primary.topic_partition)).value_or(ranges.front().first);

  // The other stores: up to where the last commit says they ended.
  for (std::size_t i = 1; i < stores.size(); ++i) {
    const auto& store = stores[i];
    auto& kv = state.store(store.store);
    const auto [from, to] = ranges[i];
    const auto committed_end = lookup(meta, end_key(store.topic_partition)).value_or(from);
    Progress progress(
        logger, fmt::format("store '{}' from {}", store.store, to_string(store.topic_partition)),
        from, to);
    auto read = read_range(source, store.topic_partition, from, to, stop, progress,
                           [&](ChangelogRecord& record) -> Result<void> {
                             if (record.offset >= committed_end) {
                               ++outcome.entries_discarded;
                               outcome.to_rewrite[store.store].insert(std::move(record.key));
                               return {};
                             }
                             return apply(kv, store.topic_partition, record);
                           });
    if (!read)
      return read.error();
    pending[position_key(store.topic_partition)] = std::max(from, committed_end);
    pending[end_key(store.topic_partition)] = std::max(from, committed_end);
    if (auto persisted = persist(); !persisted)
      return persisted.error();
    outcome.changelog_ends[store.store] = std::max(from, committed_end);
  }
  return outcome;
}

namespace {

class KafkaChangelogSource final : public ChangelogSource {
 public:
  explicit KafkaChangelogSource(std::unique_ptr<kafka::LogReader> reader)
      : reader_(std::move(reader)) {}

  Result<std::pair<std::int64_t, std::int64_t>> bounds(const TopicPartition& tp) override {
    auto marks = reader_->watermarks(tp, std::chrono::seconds(30));
    if (!marks)
      return marks.error();
    return std::pair{marks->low, marks->high};
  }
  Result<void> seek(const TopicPartition& tp, std::int64_t offset) override {
    return reader_->assign(tp, offset);
  }
  Result<void> read(std::vector<ChangelogRecord>& out) override {
    batch_.clear();
    auto read = reader_->read(batch_, 10'000, std::chrono::milliseconds(100));
    if (!read)
      return read.error();
    for (const auto& message : batch_) {
      ChangelogRecord record;
      record.offset = message.offset().value();
      record.key = std::string(message.key().value_or(""));
      if (auto value = message.value())
        record.value = std::string(*value);
      record.marker = message.header(kCommitMarkerHeader).has_value();
      out.push_back(std::move(record));
    }
    batch_.clear();
    return {};
  }

 private:
  std::unique_ptr<kafka::LogReader> reader_;
  std::vector<kafka::Message> batch_;
};

}  // namespace

Result<std::unique_ptr<ChangelogSource>> open_kafka_changelog_source(
    const kafka::ClientProperties& properties) {
  auto reader = kafka::LogReader::create(properties);
  if (!reader)
    return reader.error();
  return std::unique_ptr<ChangelogSource>(
      std::make_unique<KafkaChangelogSource>(std::move(reader).value()));
}

}  // namespace streamrun::runtime

namespace streamrun::runtime {

void ChangeLoggingStore::hold(std::string_view key, std::optional<std::string> value) {
  const auto size = [](const std::optional<std::string>& v) { return v ? v->size() : 0; };
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    pending_bytes_ += key.size() + size(value) + 96;
    pending_.emplace(std::string(key), std::move(value));
  } else {
    pending_bytes_ += size(value);
    pending_bytes_ -= size(it->second);
    it->second = std::move(value);
  }
  if (pending_bytes_ > max_pending_bytes_)
    flush();
}

void ChangeLoggingStore::remove_range(std::string_view from, std::string_view to) {
  inner_.remove_range(from, to);
  const auto size = [](const std::optional<std::string>& v) { return v ? v->size() : 0; };
  std::erase_if(pending_, [&](const auto& entry) {
    const std::string_view key = entry.first;
    if (key < from || key >= to)
      return false;
    pending_bytes_ -= std::min(pending_bytes_, key.size() + size(entry.second) + 96);
    return true;
  });
}

void ChangeLoggingStore::flush() {
  // Reset first: if log_ throws, what stays held is sent by the next flush, not by every hold().
  pending_bytes_ = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    log_(it->first, it->second ? std::optional<std::string_view>(*it->second) : std::nullopt);
    it = pending_.erase(it);
  }
}

}  // namespace streamrun::runtime
