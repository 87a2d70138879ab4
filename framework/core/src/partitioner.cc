#include <streamrun/core/partitioner.h>

namespace streamrun {

std::int32_t murmur2(std::string_view data) noexcept {
  // Unsigned arithmetic with the wrap-around Java's int has.
  constexpr std::uint32_t kSeed = 0x9747b28c;
  constexpr std::uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto length = static_cast<std::uint32_t>(data.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  std::uint32_t h = kSeed ^ length;
  const std::uint32_t words = length / 4;
  for (std::uint32_t i = 0; i < words; ++i) {
    const std::uint32_t at = i * 4;
    std::uint32_t k = bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) |
                      (static_cast<std::uint32_t>(bytes[at + 3]) << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const std::uint32_t tail = length & ~3u;
  switch (length % 4) {
    case 3:
      h ^= static_cast<std::uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<std::uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= bytes[tail];
      h *= kM;
      break;
    default:
      break;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<std::int32_t>(h);
}

std::int32_t partition_for_key(std::string_view key, std::int32_t partitions) noexcept {
  const auto positive = static_cast<std::uint32_t>(murmur2(key)) & 0x7fffffffu;
  return static_cast<std::int32_t>(positive % static_cast<std::uint32_t>(partitions));
}

}  // namespace streamrun
