#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <streamrun/base/ids.h>
#include <streamrun/base/result.h>
#include <streamrun/kafka/client_config.h>
#include <streamrun/kafka/message.h>

namespace streamrun::kafka {

// The offsets bounding what a partition holds: [low, high).
struct Watermarks {
  std::int64_t low = 0;
  std::int64_t high = 0;
};

// Reads partitions from given offsets, outside any consumer group and without committing —
// what restoring state from a changelog needs. Calls block (up to their timeout), so use it
// from a thread of its own, not from a fiber. Not thread-safe.
class LogReader {
 public:
  // `properties` are client properties (bootstrap.servers, security, ...); group and commit
  // settings are ignored.
  [[nodiscard]] static Result<std::unique_ptr<LogReader>> create(ClientProperties properties);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  [[nodiscard]] Result<Watermarks> watermarks(const TopicPartition& partition,
                                              std::chrono::milliseconds timeout);
  // Reads `partition` from `offset` on; replaces what was assigned before.
  [[nodiscard]] Result<void> assign(const TopicPartition& partition, std::int64_t offset);
  // Appends up to `max_records` records to `out`, waiting at most `timeout` for the first.
  [[nodiscard]] Result<std::size_t> read(std::vector<Message>& out, std::size_t max_records,
                                         std::chrono::milliseconds timeout);

  struct Impl;

 private:
  explicit LogReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrun::kafka
