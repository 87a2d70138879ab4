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
class RecordCollector {
 public:
  virtual ~RecordCollector() = default;
  virtual void send(std::string_view topic, std::optional<std::string> key,
                    std::optional<std::string> value, const RecordHeaders& headers,
                    std::int64_t timestamp_ms, const RecordOrigin& origin) = 0;
};

}  // namespace streamrun
