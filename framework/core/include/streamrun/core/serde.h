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

// `inner`, with null on the wire as std::nullopt (a tombstone) in both directions.
template <typename T>
Serde<std::optional<T>> optional(Serde<T> inner) {
  return Serde<std::optional<T>>{
      "optional(" + inner.name + ")",
      [inner](const std::optional<T>& value) -> std::optional<std::string> {
        return value ? inner.serialize(*value) : std::nullopt;
      },
      [inner](std::optional<std::string_view> bytes) -> std::optional<T> {
        if (!bytes)
          return std::nullopt;
        return inner.deserialize(bytes);
      }};
}

}  // namespace serdes

namespace detail {
// 8 bytes big-endian, as serdes::int64() writes them, for layouts built by hand (windowed keys,
// window stores).
inline void append_be64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((value >> shift) & 0xff));
}
// The first 8 bytes of `bytes` (fewer: those there are) as big-endian.
[[nodiscard]] inline std::uint64_t read_be64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8 && i < bytes.size(); ++i)
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}
}  // namespace detail
}  // namespace streamrun
