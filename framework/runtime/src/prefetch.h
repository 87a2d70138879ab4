#pragma once

#include <cstdint>

#include <streamrun/kafka/client_config.h>

namespace streamrun::runtime {

// librdkafka's per-partition prefetch limits for an input budget (input.buffer.max.bytes)
// shared evenly by `partitions` source partitions: the most this instance can be assigned.
// With per-partition fetch queues librdkafka applies queued.max.messages.kbytes and
// queued.min.messages to each partition's queue, so without these a 64-partition assignment
// could prefetch 64 x 64 MiB. A partition's share goes half to records waiting in its queue
// (payload bytes, and a record count at kBytesPerQueuedRecord each: librdkafka's own overhead
// dominates small records) and half to the fetch response in flight. Keys the user set in
// `consumer` are left as they are. Returns the properties to add.
kafka::ClientProperties prefetch_limits(std::int64_t budget_bytes, int partitions,
                                        const kafka::ClientProperties& consumer);

// What one queued record is assumed to cost (payload and librdkafka's bookkeeping), bytes.
inline constexpr std::int64_t kBytesPerQueuedRecord = 256;

}  // namespace streamrun::runtime
