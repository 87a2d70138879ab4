#include "inventory.h"

#include <nlohmann/json.hpp>

#include <streamrun/core/stream_builder.h>
#include <streamrun/operators/operators.h>

namespace seckill {

streamrun::Topology inventory_topology(const Topics& topics) {
  namespace ops = streamrun::operators;
  const auto json = streamrun::dsl::record_serdes("json");
  streamrun::StreamBuilder builder;
  builder.table(topics.stock, json, "stock", "stock-table");
  auto orders = builder.stream(topics.orders, json, "orders");
  // An order without a SKU keeps a key, so that reserve answers it (invalid) instead of it
  // being dropped unanswered.
  auto by_sku = ops::key_by_field(orders, "sku", "(no sku)", "by-sku");
  // The re-keyed order may be written twice (the hop is at-least-once across a crash): decide
  // each order once.
  auto fresh = ops::dedupe(
      by_sku, {.field = "order_id", .ttl_ms = 24 * 3600 * 1000, .store = "orders-seen"}, "dedupe");
  auto decided = ops::reserve(fresh,
                              {.limit_table = "stock",
                               .limit_field = "units",
                               .once_per = "user_id",
                               .required = {"order_id", "user_id", "sku"},
                               .store = "reserved",
                               .decided_at = kDecidedAtField},
                              "reserve");
  // Keyed by order id: the answers spread over every partition (those of a hot SKU would all
  // land in one), and whoever looks an order up finds it by its id.
  ops::key_by_field(decided, "order_id", std::nullopt, "by-order")
      .map_values(
          [](nlohmann::json decision) {
            if (decision.is_object()) {
              decision.erase("qty");
              decision.erase("ts");
            }
            return decision;
          },
          "answer")
      .to(topics.decisions, json, "decisions");
  return builder.build();
}

streamrun::config::Properties inventory_defaults() {
  // Orders and decisions are small JSON documents sent in bursts: batches of them compress
  // several times over.
  return {{"application.id", "seckill"},
          {"errors.policy", "dead_letter"},
          {"producer.compression.type", "zstd"}};
}

}  // namespace seckill
