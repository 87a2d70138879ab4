#pragma once

#include <cstdint>
#include <string_view>

namespace streamrun {

// Kafka's default key partitioner: murmur2 of the serialized key, made positive, modulo the
// partition count — what the Java client, librdkafka's "murmur2_random" (streamrun's producer
// default) and Kafka Streams use, so that a key lands on the same partition whoever wrote it.
[[nodiscard]] std::int32_t murmur2(std::string_view data) noexcept;
[[nodiscard]] std::int32_t partition_for_key(std::string_view key,
                                             std::int32_t partitions) noexcept;

}  // namespace streamrun
