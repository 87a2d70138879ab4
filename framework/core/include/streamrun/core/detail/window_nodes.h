#pragma once

// Windowed aggregates (KGroupedStream::windowed_by): the window store's layout and the
// operator. Included by stream_builder.h; not for direct use.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <streamrun/core/detail/nodes.h>
#include <streamrun/core/windows.h>

namespace streamrun::detail {

// What the window stores of time and session windows share. Their keys begin with a segment
// number (8 bytes BE): a window's start (time windows) or a session's end (sessions) divided
// by the segment interval. Expiring old windows removes whole segments (one range removal
// each, RocksDB's DeleteRange) instead of deleting window by window. The store's owner keeps
// its stream time and what it emitted under keys beyond every segment, so that both survive a
// restart and a restore with the windows.
class SegmentedLayout {
 public:
  explicit SegmentedLayout(std::int64_t retention_ms)
      : retention_ms_(retention_ms), segment_ms_(std::max<std::int64_t>(retention_ms / 2, 1000)) {}

  [[nodiscard]] std::int64_t segment_of(std::int64_t time_ms) const {
    return time_ms / segment_ms_;
  }
  [[nodiscard]] std::int64_t segment_start(std::int64_t segment) const {
    return segment * segment_ms_;
  }
  // The first segment still live at `stream_time_ms`: the windows of earlier ones are closed.
  [[nodiscard]] std::int64_t first_live_segment(std::int64_t stream_time_ms) const {
    return segment_of(std::max<std::int64_t>(0, stream_time_ms - retention_ms_));
  }
  // [from, to) of the segments before `segment`.
  [[nodiscard]] static std::pair<std::string, std::string> segments_before(std::int64_t segment) {
    std::string to;
    append_be64(to, static_cast<std::uint64_t>(segment));
    return {std::string(8, '\0'), std::move(to)};
  }

  static inline const std::string kStreamTimeKey = std::string(8, '\xff') + "stream-time";
  // With emit-on-close: the windows that close before this were emitted (time windows: by
  // start, sessions: by end).
  static inline const std::string kEmittedKey = std::string(8, '\xff') + "emitted-before";

 protected:
  static void append_time(std::string& out, std::int64_t time_ms) {
    append_be64(out, static_cast<std::uint64_t>(time_ms));
  }
  [[nodiscard]] static std::int64_t time_at(std::string_view bytes, std::size_t at) {
    return static_cast<std::int64_t>(read_be64(bytes.substr(at, 8)));
  }

 private:
  std::int64_t retention_ms_;
  std::int64_t segment_ms_;
};

// A time window store keeps each window's aggregate under
//   segment (by start) | window start (8 bytes BE) | key bytes
// so that the windows starting at one time are one prefix (emitting them when they close is
// one scan).
class WindowStoreLayout : public SegmentedLayout {
 public:
  using SegmentedLayout::SegmentedLayout;

  [[nodiscard]] std::string key(std::string_view raw_key, std::int64_t start_ms) const {
    auto out = prefix(start_ms);
    out.append(raw_key);
    return out;
  }
  // What the keys of the windows starting at `start_ms` begin with.
  [[nodiscard]] std::string prefix(std::int64_t start_ms) const {
    std::string out;
    out.reserve(32);
    append_time(out, segment_of(start_ms));
    append_time(out, start_ms);
    return out;
  }
  // The key bytes of a stored window's key.
  [[nodiscard]] static std::string_view raw_key_of(std::string_view stored) {
    return stored.substr(16);
  }
  // The window start of a stored window's key.
  [[nodiscard]] static std::int64_t start_of(std::string_view stored) { return time_at(stored, 8); }

  // With emit_every: the windows updated since the last emission are marked under
  //   kUpdatedPrefix | start | key bytes
  // beyond every segment (a mark outlives its window's segment; emitting skips it then).
  static inline const std::string kUpdatedPrefix = std::string(8, '\xfe');
  [[nodiscard]] static std::string updated_key(std::string_view raw_key, std::int64_t start_ms) {
    auto out = kUpdatedPrefix;
    append_time(out, start_ms);
    out.append(raw_key);
    return out;
  }
  // The window start and key bytes of an update mark.
  [[nodiscard]] static std::pair<std::int64_t, std::string_view> updated(std::string_view mark) {
    return {time_at(mark, 8), mark.substr(16)};
  }
};

// A session store keeps each session's aggregate under
//   segment (by end) | 0x00 | key size (4 bytes BE) | key bytes | end | start
// so that a key's sessions in one segment are one prefix, ordered by end (finding the sessions
// a record joins is one short scan per live segment). With emit-on-close, an index entry
//   segment (by end) | 0x01 | end | start | key bytes
// per session orders them by end, for emitting those that closed.
class SessionStoreLayout : public SegmentedLayout {
 public:
  using SegmentedLayout::SegmentedLayout;

  // What the keys of `raw_key`'s sessions in `segment` begin with.
  [[nodiscard]] static std::string key_prefix(std::int64_t segment, std::string_view raw_key) {
    std::string out;
    out.reserve(29 + raw_key.size());
    append_time(out, segment);
    out.push_back('\0');
    const auto size = static_cast<std::uint32_t>(raw_key.size());
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((size >> shift) & 0xff));
    out.append(raw_key);
    return out;
  }
  [[nodiscard]] std::string key(std::string_view raw_key, const Window& session) const {
    auto out = key_prefix(segment_of(session.end_ms), raw_key);
    append_time(out, session.end_ms);
    append_time(out, session.start_ms);
    return out;
  }
  // Whether a stored key is a session's (not an index entry, nor the owner's bookkeeping).
  [[nodiscard]] static bool is_session(std::string_view stored) {
    return stored.size() >= 29 && stored[0] != '\xff' && stored[0] != '\xfe' && stored[8] == '\0';
  }
  // The key bytes of a stored session's key.
  [[nodiscard]] static std::string_view raw_key_of(std::string_view stored) {
    std::size_t size = 0;
    for (std::size_t i = 9; i < 13; ++i)
      size = (size << 8) | static_cast<unsigned char>(stored[i]);
    return stored.substr(13, size);
  }
  // The session a stored session's key names.
  [[nodiscard]] static Window session_of(std::string_view stored) {
    return {time_at(stored, stored.size() - 8), time_at(stored, stored.size() - 16)};
  }

  // The index entry of a session (emit-on-close).
  [[nodiscard]] std::string index_key(std::string_view raw_key, const Window& session) const {
    auto out = index_prefix(session.end_ms);
    append_time(out, session.start_ms);
    out.append(raw_key);
    return out;
  }
  // What the index entries of the sessions ending at `end_ms` begin with.
  [[nodiscard]] std::string index_prefix(std::int64_t end_ms) const {
    return index_prefix(segment_of(end_ms), end_ms);
  }
  // The same within `segment`: [index_prefix(s, a), index_prefix(s, b)) are the entries of the
  // sessions in segment s ending in [a, b), whatever segments a and b are in.
  [[nodiscard]] static std::string index_prefix(std::int64_t segment, std::int64_t end_ms) {
    std::string out;
    append_time(out, segment);
    out.push_back('\x01');
    append_time(out, end_ms);
    return out;
  }
  // The session and key bytes of an index entry.
  [[nodiscard]] static std::pair<Window, std::string_view> indexed(std::string_view entry) {
    return {{time_at(entry, 17), time_at(entry, 9)}, entry.substr(25)};
  }
};

// Windows end (and sessions take records) up to size, gap and grace after a record's
// timestamp, each at most TimeWindows::kMaxMs: a timestamp beyond kMaxMs (about the year 33658)
// fails its record rather than overflow them.
inline void check_timestamp(std::int64_t time_ms) {
  if (time_ms > TimeWindows::kMaxMs)
    throw std::invalid_argument("record timestamp " + std::to_string(time_ms) +
                                " ms is beyond what windows take (at most " +
                                std::to_string(TimeWindows::kMaxMs) + " ms)");
}

// How a windowed aggregate treats its windows (TimeWindows or SessionWindows).
template <typename Windows>
struct WindowOptions {
  Windows windows;
  // Emit each window once, when it closes, instead of every update.
  bool emit_on_close = false;
  // > 0 (time windows only): emit the windows updated since the last emission every this many
  // ms of wall-clock time, each once with its latest aggregate, instead of every update.
  std::int64_t emit_every_ms = 0;
  // A record too late for all its windows fails (its error policy applies) instead of being
  // dropped.
  bool late_records_fail = false;
};

// A windowed aggregate's stream time — the largest timestamp it has seen — and the expiry of
// its store's closed segments. Both live in the store, not in memory: a record that fails has
// its store writes undone, stream time included, and a restore brings them back.
class WindowClock {
 public:
  WindowClock(std::int64_t retention_ms, bool emit_on_close)
      : layout_(retention_ms), retention_ms_(retention_ms), emit_on_close_(emit_on_close) {}

  void attach(KeyValueStore& store) { store_ = &store; }

  // Moves stream time to `time_ms` if later, removes the segments that closed and returns
  // stream time. Before removing segments, calls `before_expiry(t)`: the windows in segments
  // before time t (by start, or a session's end) are about to go.
  std::int64_t advance(std::int64_t time_ms,
                       const std::function<void(std::int64_t)>& before_expiry = {}) {
    stream_time_ = read_time(SegmentedLayout::kStreamTimeKey, -1);
    if (time_ms > stream_time_) {
      stream_time_ = time_ms;
      write_time(SegmentedLayout::kStreamTimeKey, time_ms);
    }
    // Always from segment 0: what a restore or an undone record brought back goes too. With
    // emit-on-close, a window leaves only once emitted.
    auto expire_at = stream_time_;
    if (emit_on_close_)
      expire_at = std::min(expire_at, emitted_before() + retention_ms_);
    const auto first_live = layout_.first_live_segment(expire_at);
    if (first_live > expired_before_ || !expired_once_) {
      const auto [from, to] = SegmentedLayout::segments_before(first_live);
      if (before_expiry)
        before_expiry(layout_.segment_start(first_live));
      if (from < to)
        store_->remove_range(from, to);
      expired_before_ = first_live;
      expired_once_ = true;
    }
    return stream_time_;
  }

  [[nodiscard]] std::int64_t stream_time() const noexcept { return stream_time_; }
  [[nodiscard]] std::int64_t emitted_before() const {
    return std::max<std::int64_t>(0, read_time(SegmentedLayout::kEmittedKey, 0));
  }
  void set_emitted_before(std::int64_t time_ms) {
    write_time(SegmentedLayout::kEmittedKey, time_ms);
  }

  // The error of a record too late for its windows (late_records_fail); `closed`: why they
  // are, e.g. "its windows closed (grace 0 ms)".
  [[nodiscard]] LateRecordError late(std::int64_t time_ms, const std::string& closed) const {
    return LateRecordError("record at " + std::to_string(time_ms) + " ms is late: stream time is " +
                           std::to_string(stream_time_) + " ms and " + closed);
  }

 private:
  [[nodiscard]] std::int64_t read_time(const std::string& key, std::int64_t absent) const {
    auto stored = store_->get(key);
    return stored ? static_cast<std::int64_t>(read_be64(*stored)) : absent;
  }
  void write_time(const std::string& key, std::int64_t time) {
    std::string bytes;
    append_be64(bytes, static_cast<std::uint64_t>(time));
    store_->put(key, bytes);
  }

  SegmentedLayout layout_;
  std::int64_t retention_ms_;
  bool emit_on_close_;
  KeyValueStore* store_ = nullptr;
  std::int64_t stream_time_ = -1;    // as of the current record
  std::int64_t expired_before_ = 0;  // segments below this were removed
  bool expired_once_ = false;
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
  WindowAggregateNode(std::string name, std::string store_name, WindowOptions<TimeWindows> options,
                      Serde<K> key_serde, Serde<VA> value_serde, Fold fold)
      : NodeInstance(std::move(name)),
        store_name_(std::move(store_name)),
        options_(options),
        layout_(options.windows.retention_ms()),
        clock_(options.windows.retention_ms(), options.emit_on_close),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        fold_(std::move(fold)) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    store_ = &environment.store(store_name_);
    clock_.attach(*store_);
    if (options_.emit_every_ms > 0) {
      environment.schedule(this->name(), std::chrono::milliseconds(options_.emit_every_ms),
                           PunctuationType::wall_clock, [this](std::int64_t) { emit_updated(); });
    }
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
      check_timestamp(time);
      // With emit_every, the updates still to emit of windows about to expire go now.
      const auto stream_time = clock_.advance(time, [&](std::int64_t expiring_before) {
        if (options_.emit_every_ms > 0)
          collect_updated(expiring_before, out);
      });
      bool taken = false;
      for (const auto& window : options_.windows.windows_for(time)) {
        if (window.end_ms + options_.windows.grace_ms() <= stream_time)
          continue;  // closed
        taken = true;
        VA aggregate =
            fold_into(*store_, layout_.key(*raw_key, window.start_ms), record, value_serde_, fold_);
        if (options_.emit_every_ms > 0) {
          store_->put(WindowStoreLayout::updated_key(*raw_key, window.start_ms), {});
        } else if (!options_.emit_on_close) {
          out.push_back(Record<Windowed<K>, VA>{Windowed<K>{record.key, window},
                                                std::move(aggregate), record.headers, window.end_ms,
                                                record.origin});
        }
      }
      if (!taken) {
        if (options_.late_records_fail)
          throw clock_.late(time, "its windows closed (grace " +
                                      std::to_string(options_.windows.grace_ms()) + " ms)");
        this->environment().record_dropped(this->name(), kLateRecord);
      }
      if (options_.emit_on_close)
        emit_closed(record, out);
    });
    for (auto& windowed : out)
      this->emit(std::move(windowed));
  }

 private:
  // Emits the windows that closed since the last ones emitted (those ending at or before stream
  // time - grace), in order of their start, then key: one scan over the store, whose keys are
  // ordered by start.
  void emit_closed(const Record<K, V>& cause, std::vector<Record<Windowed<K>, VA>>& out) {
    const auto size = options_.windows.size_ms();
    // Windows starting before `until` are closed; those starting before `from` were emitted.
    const auto until = clock_.stream_time() - options_.windows.grace_ms() - size + 1;
    const auto from = clock_.emitted_before();
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
    clock_.set_emitted_before(until);
  }

  // With emit_every: emits each window marked as updated with its current aggregate, in order
  // of start and key, and clears the marks. The marks are store entries: committed with the
  // updates, so a crash before the emission leaves it to the restarted task.
  void emit_updated() {
    std::vector<Record<Windowed<K>, VA>> out;
    collect_updated(std::nullopt, out);
    for (auto& windowed : out)
      this->emit(std::move(windowed));
  }
  // The updates of the windows marked as updated that start before `before` (all: nullopt),
  // their marks cleared.
  void collect_updated(std::optional<std::int64_t> before,
                       std::vector<Record<Windowed<K>, VA>>& out) {
    const auto size = options_.windows.size_ms();
    std::vector<std::string> marks;
    std::string to(8, '\xff');
    if (before) {
      to = WindowStoreLayout::kUpdatedPrefix;
      append_be64(to, static_cast<std::uint64_t>(*before));
    }
    store_->range(
        WindowStoreLayout::kUpdatedPrefix, to, [&](std::string_view mark, std::string_view) {
          marks.emplace_back(mark);
          const auto [start, raw_key] = WindowStoreLayout::updated(mark);
          if (auto aggregate = read_stored(*store_, layout_.key(raw_key, start), value_serde_)) {
            out.push_back(Record<Windowed<K>, VA>{
                Windowed<K>{key_serde_.deserialize(raw_key), Window{start, start + size}},
                std::move(*aggregate),
                {},
                start + size,
                {}});
          }
          return true;
        });
    for (const auto& mark : marks)
      store_->remove(mark);
  }

  std::string store_name_;
  WindowOptions<TimeWindows> options_;
  WindowStoreLayout layout_;
  WindowClock clock_;
  Serde<K> key_serde_;
  Serde<VA> value_serde_;
  Fold fold_;
  KeyValueStore* store_ = nullptr;
};

// Folds each record into its key's session (see SessionWindows): the record joins the sessions
// of its key that are still open and within the gap of its timestamp, which merge into one
// (`merge(key, older, newer)` combines their aggregates, oldest first) before the record is
// folded in. Emits the merged session's aggregate keyed Windowed<K> and stamped with the
// session's end, and a tombstone (std::nullopt) for each session merged away; with
// emit_on_close, instead, each session's final aggregate once it closes (stream time past its
// end plus gap plus grace). A record that opens a session already closed is late, as in
// WindowAggregateNode; so are nulls and negative timestamps.
template <typename K, typename V, typename VA, typename Fold, typename Merge>
class SessionAggregateNode final : public Input<K, V>,
                                   public Output<Windowed<K>, std::optional<VA>> {
 public:
  using Out = Record<Windowed<K>, std::optional<VA>>;

  SessionAggregateNode(std::string name, std::string store_name,
                       WindowOptions<SessionWindows> options, Serde<K> key_serde,
                       Serde<VA> value_serde, Fold fold, Merge merge)
      : NodeInstance(std::move(name)),
        store_name_(std::move(store_name)),
        options_(options),
        layout_(options.windows.retention_ms()),
        clock_(options.windows.retention_ms(), options.emit_on_close),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        fold_(std::move(fold)),
        merge_(std::move(merge)) {}

  void init(TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    store_ = &environment.store(store_name_);
    clock_.attach(*store_);
  }

  void receive(Record<K, V>&& record) override {
    std::vector<Out> out;
    this->guarded([&] {
      const auto raw_key = aggregate_key(this->environment(), this->name(), record, key_serde_);
      if (!raw_key)
        return;
      const std::int64_t time = record.timestamp_ms;
      if (time < 0) {
        this->environment().record_dropped(this->name(), "negative timestamp");
        return;
      }
      check_timestamp(time);
      const auto stream_time = clock_.advance(time);
      const auto gap = options_.windows.gap_ms();
      // Sessions ending before this are closed: final, never merged into again.
      const auto open_from = stream_time - gap - options_.windows.grace_ms();
      auto joined = sessions_joined(*raw_key, time, std::max(time - gap, open_from));
      Window merged{time, time};
      for (const auto& session : joined) {
        merged.start_ms = std::min(merged.start_ms, session.window.start_ms);
        merged.end_ms = std::max(merged.end_ms, session.window.end_ms);
      }
      if (merged.end_ms < open_from) {
        if (options_.late_records_fail)
          throw clock_.late(time, "a session there would be closed (gap " + std::to_string(gap) +
                                      " ms, grace " + std::to_string(options_.windows.grace_ms()) +
                                      " ms)");
        this->environment().record_dropped(this->name(), kLateRecord);
        return;
      }
      std::optional<VA> current;
      for (auto& session : joined) {
        VA aggregate = decode(session.value);
        current = current ? merge_(record.key, std::move(*current), std::move(aggregate))
                          : std::move(aggregate);
        store_->remove(session.key);
        if (options_.emit_on_close)
          store_->remove(layout_.index_key(*raw_key, session.window));
        else if (!(session.window == merged))
          out.push_back(Out{Windowed<K>{record.key, session.window}, std::nullopt, record.headers,
                            session.window.end_ms, record.origin});
      }
      VA aggregate = fold_(record.key, record.value, std::move(current));
      if (auto raw_aggregate = value_serde_.serialize(aggregate)) {
        store_->put(layout_.key(*raw_key, merged), *raw_aggregate);
        if (options_.emit_on_close)
          store_->put(layout_.index_key(*raw_key, merged), {});
      }
      if (!options_.emit_on_close) {
        out.push_back(Out{Windowed<K>{record.key, merged}, std::move(aggregate), record.headers,
                          merged.end_ms, record.origin});
      } else {
        emit_closed(record, open_from, out);
      }
    });
    for (auto& session : out)
      this->emit(std::move(session));
  }

 private:
  struct Stored {
    std::string key;
    Window window;
    std::string value;
  };

  // `raw_key`'s sessions ending at or after `from` that a record at `time` joins (those starting
  // within the gap after it), oldest first.
  std::vector<Stored> sessions_joined(const std::string& raw_key, std::int64_t time,
                                      std::int64_t from) const {
    std::vector<Stored> joined;
    from = std::max<std::int64_t>(from, 0);
    const auto last_start = time + options_.windows.gap_ms();
    for (auto segment = layout_.segment_of(from);
         segment <= layout_.segment_of(clock_.stream_time()); ++segment) {
      auto begin = SessionStoreLayout::key_prefix(segment, raw_key);
      // The key's sessions in this segment, from the first ending at `from` (keys end in
      // end | start, 16 bytes).
      auto end = begin + std::string(17, '\xff');
      append_be64(begin, static_cast<std::uint64_t>(from));
      bool past = false;
      store_->range(begin, end, [&](std::string_view key, std::string_view value) {
        const auto window = SessionStoreLayout::session_of(key);
        // Sessions never overlap: ordered by end, they are ordered by start.
        if (window.start_ms > last_start) {
          past = true;
          return false;
        }
        joined.push_back(Stored{std::string(key), window, std::string(value)});
        return true;
      });
      if (past)
        break;
    }
    return joined;
  }

  // Emits the sessions that closed (ending before `open_from`) since those last emitted, in
  // order of their end: one scan of the index per segment they end in.
  void emit_closed(const Record<K, V>& cause, std::int64_t open_from, std::vector<Out>& out) {
    const auto from = clock_.emitted_before();
    if (open_from <= from)
      return;
    for (auto segment = layout_.segment_of(from); segment <= layout_.segment_of(open_from - 1);
         ++segment) {
      store_->range(SessionStoreLayout::index_prefix(segment, from),
                    SessionStoreLayout::index_prefix(segment, open_from),
                    [&](std::string_view entry, std::string_view) {
                      const auto [window, raw_key] = SessionStoreLayout::indexed(entry);
                      const auto raw = store_->get(layout_.key(raw_key, window));
                      if (raw) {
                        out.push_back(Out{Windowed<K>{key_serde_.deserialize(raw_key), window},
                                          decode(*raw),
                                          {},
                                          window.end_ms,
                                          cause.origin});
                      }
                      return true;
                    });
    }
    clock_.set_emitted_before(open_from);
  }

  [[nodiscard]] VA decode(std::string_view raw) const {
    return decode_stored(*store_, raw, value_serde_);
  }

  std::string store_name_;
  WindowOptions<SessionWindows> options_;
  SessionStoreLayout layout_;
  WindowClock clock_;
  Serde<K> key_serde_;
  Serde<VA> value_serde_;
  Fold fold_;
  Merge merge_;
  KeyValueStore* store_ = nullptr;
};

}  // namespace streamrun::detail
