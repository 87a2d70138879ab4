#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace streamrun {

// Kafka tells a null header value from an empty one; so do we.
struct RecordHeader {
  std::string key;
  std::optional<std::string> value;
  bool operator==(const RecordHeader&) const = default;
};
using RecordHeaders = std::vector<RecordHeader>;

// The value of the last header called `name`; nullopt when there is none, or it is null.
[[nodiscard]] inline std::optional<std::string_view> find_header(const RecordHeaders& headers,
                                                                 std::string_view name) {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->key == name) {
      if (!it->value)
        return std::nullopt;
      return std::string_view(*it->value);
    }
  }
  return std::nullopt;
}

// Where a record entered the topology. Kept along the whole chain so that errors and
// dead letters can name the input record.
struct RecordOrigin {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  bool operator==(const RecordOrigin&) const = default;
};

// A typed record flowing between operators.
template <typename K, typename V>
struct Record {
  K key{};
  V value{};
  RecordHeaders headers;
  std::int64_t timestamp_ms = 0;
  RecordOrigin origin;
  // The key was null in the topic, whatever K's serde reads a null key as (serdes::string()
  // reads it as ""). Such a record was not placed in its partition by its key, so a keyed
  // operator reading it without a repartition in between drops it. Kept by operators that keep
  // the key (with_value); a new key (with) clears it. Sinks write the key as its serde says.
  bool null_key = false;

  // A record with the same headers, timestamp and origin and a new key and value.
  template <typename K2, typename V2>
  Record<K2, V2> with(K2 new_key, V2 new_value) const& {
    return {std::move(new_key), std::move(new_value), headers, timestamp_ms, origin};
  }
  template <typename K2, typename V2>
  Record<K2, V2> with(K2 new_key, V2 new_value) && {
    return {std::move(new_key), std::move(new_value), std::move(headers), timestamp_ms,
            std::move(origin)};
  }
  // The same record (key included, null or not) with a new value.
  template <typename V2>
  Record<K, V2> with_value(V2 new_value) const& {
    return {key, std::move(new_value), headers, timestamp_ms, origin, null_key};
  }
  template <typename V2>
  Record<K, V2> with_value(V2 new_value) && {
    return {std::move(key), std::move(new_value), std::move(headers),
            timestamp_ms,   std::move(origin),    null_key};
  }

  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
};

template <typename K, typename V>
struct KeyValue {
  using key_type = K;
  using value_type = V;
  K key;
  V value;
  bool operator==(const KeyValue&) const = default;
};

// Serialized form, as it comes from and goes to a topic. Views: valid during the call.
struct RawRecord {
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  RecordHeaders headers;
  std::int64_t timestamp_ms = 0;
  RecordOrigin origin;
};

}  // namespace streamrun
