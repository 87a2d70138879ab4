#pragma once

// Topologies several integration tests run.

#include <streamrun/core/stream_builder.h>

namespace streamrun::testing {

// Counts records per key of "orders" (string keys and values) in the store "counts" and writes
// each new count (int64) to "counts".
inline Topology count_topology() {
  const Serdes<std::string, std::string> strings{serdes::string(), serdes::string()};
  StreamBuilder builder;
  builder.stream("orders", strings)
      .group_by_key(strings)
      .count("counts")
      .to_stream()
      .to("counts", Serdes<std::string, std::int64_t>{serdes::string(), serdes::int64()});
  return builder.build();
}

}  // namespace streamrun::testing
