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
//
// Beside the decisions, the sales per SKU and second of the orders' time (1 s tumbling windows
// by the orders' timestamps, a minute of grace) go to `sales-rate`, keyed by SKU:
// {"window_start", "window_end", "orders", "accepted"} (orders decided, orders accepted: units
// sold). Each second that changed is written once a second (of the clock) with its latest
// figures, so the last record per SKU and window_start is that second's total. Counted in the
// task that decides, with its state, each order counts once, crashes included.

#include <string>

#include <streamrun/config/properties.h>
#include <streamrun/core/topology.h>

namespace seckill {

struct Topics {
  std::string orders = "orders";
  std::string stock = "stock";
  std::string decisions = "decisions";
  std::string sales_rate = "sales-rate";
};

// The field of a decision that holds when it was made (ms since the epoch).
inline constexpr const char* kDecidedAtField = "decided_ms";

[[nodiscard]] streamrun::Topology inventory_topology(const Topics& topics = {});

// The application's defaults: application.id "seckill", dead letters to
// "seckill-dead-letter", zstd-compressed outputs.
[[nodiscard]] streamrun::config::Properties inventory_defaults();

}  // namespace seckill
