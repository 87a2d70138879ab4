#include <charconv>

#include <streamrun/core/serde.h>

namespace streamrun::serdes {
namespace {

template <typename Int>
Serde<Int> big_endian(std::string name) {
  return {name,
          [](const Int& value) -> std::optional<std::string> {
            std::string bytes(sizeof(Int), '\0');
            auto bits = static_cast<std::make_unsigned_t<Int>>(value);
            for (std::size_t i = 0; i < sizeof(Int); ++i) {
              bytes[sizeof(Int) - 1 - i] = static_cast<char>(bits & 0xff);
              bits >>= 8;
            }
            return bytes;
          },
          [name](std::optional<std::string_view> bytes) -> Int {
            if (!bytes || bytes->size() != sizeof(Int)) {
              throw SerdeError(name + ": expected " + std::to_string(sizeof(Int)) + " bytes, got " +
                               (bytes ? std::to_string(bytes->size()) : std::string("null")));
            }
            std::make_unsigned_t<Int> bits = 0;
            for (char c : *bytes)
              bits = (bits << 8) | static_cast<unsigned char>(c);
            return static_cast<Int>(bits);
          }};
}

}  // namespace

Serde<std::string> string() {
  return {"string", [](const std::string& value) -> std::optional<std::string> { return value; },
          [](std::optional<std::string_view> bytes) {
            return bytes ? std::string(*bytes) : std::string();
          }};
}

Serde<std::vector<std::byte>> bytes() {
  return {"bytes",
          [](const std::vector<std::byte>& value) -> std::optional<std::string> {
            return std::string(reinterpret_cast<const char*>(value.data()), value.size());
          },
          [](std::optional<std::string_view> raw) {
            std::vector<std::byte> value;
            if (raw) {
              const auto* data = reinterpret_cast<const std::byte*>(raw->data());
              value.assign(data, data + raw->size());
            }
            return value;
          }};
}

Serde<std::optional<std::string>> nullable_string() {
  return {
      "nullable_string",
      [](const std::optional<std::string>& value) -> std::optional<std::string> { return value; },
      [](std::optional<std::string_view> bytes) -> std::optional<std::string> {
        if (!bytes)
          return std::nullopt;
        return std::string(*bytes);
      }};
}

Serde<std::int32_t> int32() {
  return big_endian<std::int32_t>("int32");
}
Serde<std::int64_t> int64() {
  return big_endian<std::int64_t>("int64");
}

Serde<std::int64_t> int64_text() {
  return {
      "int64_text",
      [](const std::int64_t& value) -> std::optional<std::string> { return std::to_string(value); },
      [](std::optional<std::string_view> bytes) -> std::int64_t {
        std::int64_t value = 0;
        if (!bytes)
          throw SerdeError("int64_text: null");
        auto [ptr, ec] = std::from_chars(bytes->data(), bytes->data() + bytes->size(), value);
        if (ec != std::errc() || ptr != bytes->data() + bytes->size() || bytes->empty()) {
          throw SerdeError("int64_text: not an integer: '" + std::string(bytes->substr(0, 64)) +
                           "'");
        }
        return value;
      }};
}

}  // namespace streamrun::serdes
