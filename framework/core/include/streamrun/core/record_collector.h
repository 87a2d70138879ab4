#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <streamrun/core/record.h>

namespace streamrun {

// Where sink operators send serialized records: the runtime's producer, or the test driver's
// in-memory topics. send() never drops: when the output queue is full it waits (the runtime
// yields the task's fiber) until there is room.
//
// A task holds back a record's outputs until the record has gone through every operator, and
// only then calls send() for each: the outputs of a failed attempt (later retried, skipped or
// dead-lettered) are never seen downstream. check() is called as each output is produced.
class RecordCollector {
 public:
  virtual ~RecordCollector() = default;
  // Throws (a record-level error) when send() would refuse this output however long it waited,
  // e.g. because it is larger than the producer accepts. Default: accepts everything.
  virtual void check(std::string_view topic, const std::optional<std::string>& key,
                     const std::optional<std::string>& value, const RecordHeaders& headers) {
    static_cast<void>(topic);
    static_cast<void>(key);
    static_cast<void>(value);
    static_cast<void>(headers);
  }
  // Throws InfrastructureError when the output can never be sent because the client cannot go
  // on (fatal producer error); any other exception is a refusal of this output.
  virtual void send(std::string_view topic, std::optional<std::string> key,
                    std::optional<std::string> value, const RecordHeaders& headers,
                    std::int64_t timestamp_ms, const RecordOrigin& origin) = 0;
};

}  // namespace streamrun
