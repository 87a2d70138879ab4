#include "prefetch.h"

#include <algorithm>
#include <string>

namespace streamrun::runtime {

kafka::ClientProperties prefetch_limits(std::int64_t budget_bytes, int partitions,
                                        const kafka::ClientProperties& consumer) {
  const std::int64_t share = budget_bytes / std::max(partitions, 1);
  const std::int64_t queued = share / 2;
  // librdkafka's own ranges: queued.max.messages.kbytes 1..2097151, queued.min.messages
  // 1..10000000; a fetch response of at least 1 KiB, at most its 1 MiB default.
  const kafka::ClientProperties limits{
      {"queued.max.messages.kbytes",
       std::to_string(std::clamp<std::int64_t>(queued / 1024, 1, 2'097'151))},
      {"queued.min.messages",
       std::to_string(std::clamp<std::int64_t>(queued / kBytesPerQueuedRecord, 1, 10'000'000))},
      {"max.partition.fetch.bytes",
       std::to_string(std::clamp<std::int64_t>(share - queued, 1024, 1 << 20))},
  };
  kafka::ClientProperties added;
  for (const auto& [key, value] : limits) {
    if (!consumer.contains(key))
      added.emplace(key, value);
  }
  return added;
}

}  // namespace streamrun::runtime
