#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace streamrun {

// A record that cannot be (de)serialized. A record-level failure: the runtime hands it to the
// error policy, it never crashes the application.
class SerdeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How a T becomes bytes and back. A null (absent) key or value is std::nullopt on the wire;
// each serde decides what it means for T.
template <typename T>
struct Serde {
  std::string name;
  std::function<std::optional<std::string>(const T&)> serialize;
  std::function<T(std::optional<std::string_view>)> deserialize;
};

template <typename K, typename V>
struct Serdes {
  Serde<K> key;
  Serde<V> value;
};

namespace serdes {

// UTF-8 or any bytes, as is. Null reads as the empty string.
Serde<std::string> string();
// Raw bytes, kept apart from text by type.
Serde<std::vector<std::byte>> bytes();
// Keeps null apart from empty.
Serde<std::optional<std::string>> nullable_string();
// 4 and 8 bytes big-endian, as Kafka's IntegerSerializer and LongSerializer write them.
Serde<std::int32_t> int32();
Serde<std::int64_t> int64();
// The decimal text form ("42"), common in hand-written topics and YAML pipelines.
Serde<std::int64_t> int64_text();

}  // namespace serdes
}  // namespace streamrun
