#pragma once

// The flash-sale inventory pipeline in C++: the semantics of pipelines/inventory.yaml, built
// from the same operators (streamrun/operators/operators.h).
//
//   orders (any key) --key_by sku--> dedupe order_id --reserve against stock--> decisions
//
// Orders: {"order_id", "user_id", "sku", "qty", "ts"} (ts: ms since the epoch, when the order
// was placed). Stock: keyed by SKU, {"units": N}. Decisions, keyed by order id:
// {"order_id", "user_id", "sku", "decision": accepted|rejected,
//  "reason": accepted|sold_out|duplicate|invalid|unknown_item, "remaining", "decided_ms"}.
// An order that is not JSON fails its record: with errors.policy=dead_letter (the app's
// default) it goes to the dead-letter topic.

#include <string>

#include <streamrun/config/properties.h>
#include <streamrun/core/topology.h>

namespace seckill {

struct Topics {
  std::string orders = "orders";
  std::string stock = "stock";
  std::string decisions = "decisions";
};

// The field of a decision that holds when it was made (ms since the epoch).
inline constexpr const char* kDecidedAtField = "decided_ms";

[[nodiscard]] streamrun::Topology inventory_topology(const Topics& topics = {});

// The application's defaults: application.id "seckill", dead letters to
// "seckill-dead-letter", zstd-compressed outputs.
[[nodiscard]] streamrun::config::Properties inventory_defaults();

}  // namespace seckill
