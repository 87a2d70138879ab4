#pragma once

// Windowed aggregates (KGroupedStream::windowed_by): the window store's layout and the
// operator. Included by stream_builder.h; not for direct use.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <streamrun/core/detail/nodes.h>
#include <streamrun/core/windows.h>

namespace streamrun::detail {

// A window store keeps each window's aggregate in a key-value store under
//   segment (8 bytes BE) | window start (8 bytes BE) | key bytes
// where segment = start / segment interval. Expiring old windows removes whole segments (one
// range removal each, RocksDB's DeleteRange) instead of deleting window by window, and the
// windows that start at one time are one prefix (emitting them when they close is one scan).
// The store's owner keeps its stream time and what it emitted under keys beyond every segment,
// so that both survive a restart and a restore with the windows.
class WindowStoreLayout {
 public:
  explicit WindowStoreLayout(std::int64_t retention_ms)
      : retention_ms_(retention_ms), segment_ms_(std::max<std::int64_t>(retention_ms / 2, 1000)) {}

  [[nodiscard]] std::string key(std::string_view raw_key, std::int64_t start_ms) const {
    auto out = prefix(start_ms);
    out.append(raw_key);
    return out;
  }
  // What the keys of the windows starting at `start_ms` begin with.
  [[nodiscard]] std::string prefix(std::int64_t start_ms) const {
    std::string out;
    out.reserve(32);
    append_be64(out, static_cast<std::uint64_t>(start_ms / segment_ms_));
    append_be64(out, static_cast<std::uint64_t>(start_ms));
    return out;
  }
  // The key bytes of a stored window's key.
  [[nodiscard]] static std::string_view raw_key_of(std::string_view stored) {
    return stored.substr(16);
  }
  // The first segment still live at `stream_time_ms`: windows starting before it are closed.
  [[nodiscard]] std::int64_t first_live_segment(std::int64_t stream_time_ms) const {
    return std::max<std::int64_t>(0, stream_time_ms - retention_ms_) / segment_ms_;
  }
  // [from, to) of the segments before `segment`.
  [[nodiscard]] static std::pair<std::string, std::string> segments_before(std::int64_t segment) {
    std::string to;
    append_be64(to, static_cast<std::uint64_t>(segment));
    return {std::string(8, '\0'), std::move(to)};
  }

  static inline const std::string kStreamTimeKey = std::string(8, '\xff') + "stream-time";
  // With emit-on-close: the windows that start before this were emitted.
  static inline const std::string kEmittedKey = std::string(8, '\xff') + "emitted-before";

  // The window start of a stored window's key.
  [[nodiscard]] static std::int64_t start_of(std::string_view stored) {
    return static_cast<std::int64_t>(read_be64(stored.substr(8, 8)));
  }

 private:
  std::int64_t retention_ms_;
  std::int64_t segment_ms_;
};

// How a windowed aggregate treats its windows (TimeWindowedKStream).
struct WindowOptions {
  TimeWindows windows = TimeWindows::of(std::chrono::milliseconds(1000));
  // Emit each window once, when it closes, instead of every update.
  bool emit_on_close = false;
  // A record too late for all its windows fails (its error policy applies) instead of being
  // dropped.
  bool late_records_fail = false;
};

// Folds each record into the aggregate of each of its windows and emits every window's new
// aggregate (or, with emit_on_close, each window's final one once it closes), keyed Windowed<K>
// and stamped with the window's end. Stream time is the largest timestamp this operator has
// seen; a window accepts records until stream time reaches its end plus the grace period. A
// record none of whose windows is still open is late: dropped and counted (or failed, with
// late_records_fail). A record with a negative timestamp is dropped. Nulls as in AggregateNode.
template <typename K, typename V, typename VA, typename Fold>
class WindowAggregateNode final : public Input<K, V>, public Output<Windowed<K>, VA> {
 public:
  WindowAggregateNode(std::string name, std::string store_name, WindowOptions options,
                      Serde<K> key_serde, Serde<VA> value_serde, Fold fold)
      : NodeInstance(std::move(name)),
        store_name_(std::move(store_name)),
        options_(options),
        layout_(options.windows.retention_ms()),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        fold_(std::move(fold)) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    store_ = &environment.store(store_name_);
  }

  void receive(Record<K, V>&& record) override {
    std::vector<Record<Windowed<K>, VA>> out;
    this->guarded([&] {
      const auto raw_key = aggregate_key(this->environment(), this->name(), record, key_serde_);
      if (!raw_key)
        return;
      const std::int64_t time = record.timestamp_ms;
      if (time < 0) {
        this->environment().record_dropped(this->name(), "negative timestamp");
        return;
      }
      advance_stream_time(time);
      bool taken = false;
      for (const auto& window : options_.windows.windows_for(time)) {
        if (window.end_ms + options_.windows.grace_ms() <= stream_time_)
          continue;  // closed
        taken = true;
        VA aggregate =
            fold_into(*store_, layout_.key(*raw_key, window.start_ms), record, value_serde_, fold_);
        if (!options_.emit_on_close) {
          out.push_back(Record<Windowed<K>, VA>{Windowed<K>{record.key, window},
                                                std::move(aggregate), record.headers, window.end_ms,
                                                record.origin});
        }
      }
      if (!taken) {
        if (options_.late_records_fail) {
          throw LateRecordError("record at " + std::to_string(time) +
                                " ms is late: stream time is " + std::to_string(stream_time_) +
                                " ms and its windows closed (grace " +
                                std::to_string(options_.windows.grace_ms()) + " ms)");
        }
        this->environment().record_dropped(this->name(), kLateRecord);
      }
      if (options_.emit_on_close)
        emit_closed(record, out);
    });
    for (auto& windowed : out)
      this->emit(std::move(windowed));
  }

 private:
  // Moves stream time forward and removes the segments that closed. Stream time lives in the
  // store, not here: a record that fails has its store writes undone, stream time included.
  void advance_stream_time(std::int64_t time) {
    stream_time_ = read_time(WindowStoreLayout::kStreamTimeKey, -1);
    if (time > stream_time_) {
      stream_time_ = time;
      write_time(WindowStoreLayout::kStreamTimeKey, time);
    }
    // Always from segment 0: what a restore or an undone record brought back goes too. With
    // emit-on-close, a window leaves only once emitted.
    auto expire_at = stream_time_;
    if (options_.emit_on_close) {
      // The windows starting before kEmittedKey were emitted: keep the others until they are.
      expire_at = std::min(expire_at, read_time(WindowStoreLayout::kEmittedKey, 0) +
                                          options_.windows.retention_ms());
    }
    const auto first_live = layout_.first_live_segment(expire_at);
    if (first_live > expired_before_ || !expired_once_) {
      const auto [from, to] = WindowStoreLayout::segments_before(first_live);
      if (from < to)
        store_->remove_range(from, to);
      expired_before_ = first_live;
      expired_once_ = true;
    }
  }

  // Emits the windows that closed since the last ones emitted (those ending at or before stream
  // time - grace), in order of their start, then key: one scan over the store, whose keys are
  // ordered by start.
  void emit_closed(const Record<K, V>& cause, std::vector<Record<Windowed<K>, VA>>& out) {
    const auto size = options_.windows.size_ms();
    // Windows starting before `until` are closed; those starting before `from` were emitted.
    const auto until = stream_time_ - options_.windows.grace_ms() - size + 1;
    const auto from = std::max<std::int64_t>(0, read_time(WindowStoreLayout::kEmittedKey, 0));
    // Windows start at multiples of the advance: none in [from, until), nothing newly closed,
    // and no scan (a scan hands the store's cached writes to RocksDB).
    const auto advance = options_.windows.advance_ms();
    if ((from + advance - 1) / advance * advance >= until)
      return;
    store_->range(layout_.prefix(from), layout_.prefix(until),
                  [&](std::string_view key, std::string_view value) {
                    const auto start = WindowStoreLayout::start_of(key);
                    Windowed<K> windowed{key_serde_.deserialize(WindowStoreLayout::raw_key_of(key)),
                                         Window{start, start + size}};
                    out.push_back(Record<Windowed<K>, VA>{std::move(windowed),
                                                          value_serde_.deserialize(value),
                                                          {},
                                                          start + size,
                                                          cause.origin});
                    return true;
                  });
    write_time(WindowStoreLayout::kEmittedKey, until);
  }

  [[nodiscard]] std::int64_t read_time(const std::string& key, std::int64_t absent) const {
    auto stored = store_->get(key);
    return stored ? static_cast<std::int64_t>(read_be64(*stored)) : absent;
  }
  void write_time(const std::string& key, std::int64_t time) {
    std::string bytes;
    append_be64(bytes, static_cast<std::uint64_t>(time));
    store_->put(key, bytes);
  }

  std::string store_name_;
  WindowOptions options_;
  WindowStoreLayout layout_;
  Serde<K> key_serde_;
  Serde<VA> value_serde_;
  Fold fold_;
  KeyValueStore* store_ = nullptr;
  std::int64_t stream_time_ = -1;    // as of the current record
  std::int64_t expired_before_ = 0;  // segments below this were removed
  bool expired_once_ = false;
};

}  // namespace streamrun::detail
