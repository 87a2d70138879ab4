#pragma once

// Time windows over record timestamps (ms since the epoch), as in Kafka Streams: tumbling and
// hopping windows aligned to the epoch, a grace period for records that arrive out of order,
// and the windowed key an aggregate over windows produces.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <streamrun/core/serde.h>

namespace streamrun {

// A time window: [start_ms, end_ms), a record with timestamp t is in it when
// start_ms <= t < end_ms. A session window (SessionWindows): [start_ms, end_ms], the timestamps of
// its first and last record, both included (as Kafka Streams' SessionWindow).
struct Window {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  bool operator==(const Window&) const = default;
};

// The key of a windowed aggregate: the record's key and one of its windows.
template <typename K>
struct Windowed {
  K key{};
  Window window;
  bool operator==(const Windowed&) const = default;
};

// Fixed-size windows, each `size` long, one starting every `advance` (tumbling: advance ==
// size, so each record is in exactly one window; hopping: advance < size, so in size/advance
// windows). Windows start at multiples of `advance` since the epoch. A window accepts records
// until stream time (the largest timestamp its operator has seen) reaches its end plus `grace`;
// later records are dropped as late.
class TimeWindows {
 public:
  // The largest size and grace (ms, about 31,700 years): stream time plus both must stay far
  // from overflowing 64 bits.
  static constexpr std::int64_t kMaxMs = 1'000'000'000'000'000;

  // Tumbling windows of `size` with no grace. Throws std::invalid_argument for size <= 0.
  [[nodiscard]] static TimeWindows of(std::chrono::milliseconds size) {
    if (size.count() <= 0 || size.count() > kMaxMs)
      throw std::invalid_argument("window size must be in [1, " + std::to_string(kMaxMs) +
                                  "] ms (got " + std::to_string(size.count()) + " ms)");
    return TimeWindows(size.count(), size.count(), 0);
  }
  // Hopping windows: one starts every `advance`. Throws unless 0 < advance <= size.
  [[nodiscard]] TimeWindows advance_by(std::chrono::milliseconds advance) const {
    if (advance.count() <= 0 || advance.count() > size_)
      throw std::invalid_argument("window advance must be in (0, size] (got " +
                                  std::to_string(advance.count()) + " ms for size " +
                                  std::to_string(size_) + " ms)");
    return TimeWindows(size_, advance.count(), grace_);
  }
  // How long after its end a window still accepts records. Throws for grace < 0.
  [[nodiscard]] TimeWindows grace(std::chrono::milliseconds grace) const {
    if (grace.count() < 0 || grace.count() > kMaxMs)
      throw std::invalid_argument("window grace must be in [0, " + std::to_string(kMaxMs) +
                                  "] ms (got " + std::to_string(grace.count()) + " ms)");
    return TimeWindows(size_, advance_, grace.count());
  }

  [[nodiscard]] std::int64_t size_ms() const noexcept { return size_; }
  [[nodiscard]] std::int64_t advance_ms() const noexcept { return advance_; }
  [[nodiscard]] std::int64_t grace_ms() const noexcept { return grace_; }
  // How long the store keeps a window after its start: until it can no longer change.
  [[nodiscard]] std::int64_t retention_ms() const noexcept { return size_ + grace_; }

  // The windows a record with `timestamp_ms` belongs to, oldest first. Throws
  // std::invalid_argument unless 0 <= timestamp_ms <= kMaxMs.
  [[nodiscard]] std::vector<Window> windows_for(std::int64_t timestamp_ms) const {
    if (timestamp_ms < 0 || timestamp_ms > kMaxMs)
      throw std::invalid_argument("timestamp " + std::to_string(timestamp_ms) +
                                  " ms is outside [0, " + std::to_string(kMaxMs) + "]");
    std::vector<Window> windows;
    const std::int64_t last_start = timestamp_ms - timestamp_ms % advance_;
    std::int64_t start = last_start;
    while (start - advance_ >= 0 && start - advance_ > timestamp_ms - size_)
      start -= advance_;
    for (; start <= last_start; start += advance_)
      windows.push_back({start, start + size_});
    return windows;
  }

 private:
  TimeWindows(std::int64_t size, std::int64_t advance, std::int64_t grace)
      : size_(size), advance_(advance), grace_(grace) {}
  std::int64_t size_;
  std::int64_t advance_;
  std::int64_t grace_;
};

// Session windows, one per key and burst of activity: a record joins the key's session when it
// is within `gap` of it (a session [s, e] takes records in [s - gap, e + gap]) and merges the
// sessions it bridges; a key's session closes once stream time is past its end plus the gap plus
// `grace`. Sessions are not aligned: each starts and ends at a record's timestamp.
class SessionWindows {
 public:
  // Sessions of one key split where no record arrives for more than `gap`. Throws
  // std::invalid_argument for gap <= 0 or beyond TimeWindows::kMaxMs.
  [[nodiscard]] static SessionWindows with_inactivity_gap(std::chrono::milliseconds gap) {
    if (gap.count() <= 0 || gap.count() > TimeWindows::kMaxMs)
      throw std::invalid_argument("session gap must be in [1, " +
                                  std::to_string(TimeWindows::kMaxMs) + "] ms (got " +
                                  std::to_string(gap.count()) + " ms)");
    return SessionWindows(gap.count(), 0);
  }
  // How long after it could last have grown (end + gap) a session still accepts records.
  // Throws std::invalid_argument for grace < 0.
  [[nodiscard]] SessionWindows grace(std::chrono::milliseconds grace) const {
    if (grace.count() < 0 || grace.count() > TimeWindows::kMaxMs)
      throw std::invalid_argument("session grace must be in [0, " +
                                  std::to_string(TimeWindows::kMaxMs) + "] ms (got " +
                                  std::to_string(grace.count()) + " ms)");
    return SessionWindows(gap_, grace.count());
  }

  [[nodiscard]] std::int64_t gap_ms() const noexcept { return gap_; }
  [[nodiscard]] std::int64_t grace_ms() const noexcept { return grace_; }
  // How long the store keeps a session after its end: until it can no longer change.
  [[nodiscard]] std::int64_t retention_ms() const noexcept { return gap_ + grace_; }

 private:
  SessionWindows(std::int64_t gap, std::int64_t grace) : gap_(gap), grace_(grace) {}
  std::int64_t gap_;
  std::int64_t grace_;
};

// A record too late for all its windows, from an aggregate with late_records_fail(): its error
// policy applies (error class streamrun::LateRecordError).
class LateRecordError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace serdes {

// A windowed key as Kafka Streams writes it (TimeWindowedSerde): the inner key's bytes, then
// the window start as 8 bytes big-endian; the end is start + `size`. A key whose inner key
// serializes to null is written as null.
template <typename K>
Serde<Windowed<K>> windowed(Serde<K> inner, std::chrono::milliseconds size) {
  const std::int64_t size_ms = size.count();
  return Serde<Windowed<K>>{
      "windowed(" + inner.name + ")",
      [inner](const Windowed<K>& key) -> std::optional<std::string> {
        auto bytes = inner.serialize(key.key);
        if (!bytes)
          return std::nullopt;
        detail::append_be64(*bytes, static_cast<std::uint64_t>(key.window.start_ms));
        return bytes;
      },
      [inner, size_ms](std::optional<std::string_view> bytes) -> Windowed<K> {
        if (!bytes || bytes->size() < 8)
          throw SerdeError("windowed key: expected the key and an 8-byte window start, got " +
                           std::to_string(bytes ? bytes->size() : 0) + " bytes");
        Windowed<K> key;
        key.key = inner.deserialize(bytes->substr(0, bytes->size() - 8));
        key.window.start_ms =
            static_cast<std::int64_t>(detail::read_be64(bytes->substr(bytes->size() - 8)));
        key.window.end_ms = key.window.start_ms + size_ms;
        return key;
      }};
}

// A session-windowed key as Kafka Streams writes it (SessionWindowedSerde): the inner key's
// bytes, then the session's end and its start, 8 bytes big-endian each. A key whose inner key
// serializes to null is written as null.
template <typename K>
Serde<Windowed<K>> session_windowed(Serde<K> inner) {
  return Serde<Windowed<K>>{
      "session-windowed(" + inner.name + ")",
      [inner](const Windowed<K>& key) -> std::optional<std::string> {
        auto bytes = inner.serialize(key.key);
        if (!bytes)
          return std::nullopt;
        detail::append_be64(*bytes, static_cast<std::uint64_t>(key.window.end_ms));
        detail::append_be64(*bytes, static_cast<std::uint64_t>(key.window.start_ms));
        return bytes;
      },
      [inner](std::optional<std::string_view> bytes) -> Windowed<K> {
        if (!bytes || bytes->size() < 16)
          throw SerdeError(
              "session-windowed key: expected the key and an 8-byte end and start, got " +
              std::to_string(bytes ? bytes->size() : 0) + " bytes");
        const auto key_size = bytes->size() - 16;
        Windowed<K> key;
        key.key = inner.deserialize(bytes->substr(0, key_size));
        key.window.end_ms = static_cast<std::int64_t>(detail::read_be64(bytes->substr(key_size)));
        key.window.start_ms =
            static_cast<std::int64_t>(detail::read_be64(bytes->substr(key_size + 8)));
        return key;
      }};
}

}  // namespace serdes
}  // namespace streamrun
