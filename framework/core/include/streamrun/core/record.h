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

  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const {
    for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
      if (it->key == name) {
        if (!it->value)
          return std::nullopt;
        return std::string_view(*it->value);
      }
    }
    return std::nullopt;
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
