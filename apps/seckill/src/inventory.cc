#include "inventory.h"

#include <nlohmann/json.hpp>

#include <streamrun/core/stream_builder.h>
#include <streamrun/operators/operators.h>

namespace seckill {

namespace {

// Orders and accepted orders per SKU and second (inventory.h). The decisions are still keyed by
// SKU here, in the task that made them: no repartition.
void sales_rate(const streamrun::dsl::Stream& decided, const std::string& topic) {
  using nlohmann::json;
  using streamrun::Windowed;
  using namespace std::chrono_literals;
  const auto serdes = streamrun::dsl::record_serdes("json");
  decided
      // Orders with an id and a SKU: the others are no sale of anything (answered invalid).
      .filter(
          [](const streamrun::dsl::Key&, const json& decision) {
            return decision.is_object() && decision.contains("order_id") &&
                   decision.contains("sku") && !decision["order_id"].is_null() &&
                   !decision["sku"].is_null();
          },
          "sales-of-skus")
      .group_by_key(serdes, "sales-by-sku")
      .windowed_by(streamrun::TimeWindows::of(1s).grace(60s))
      .emit_every(1s)
      // Kept as JSON, {"orders", "accepted"}: state queries and the status page show it as
      // it is (two binary counts measured hardly faster: bench/RESULTS.md).
      .aggregate(
          [] {
            return json{{"orders", 0}, {"accepted", 0}};
          },
          [](const streamrun::dsl::Key&, const json& decision, json sales) {
            sales["orders"] = sales["orders"].get<std::int64_t>() + 1;
            const auto it = decision.find("decision");
            if (it != decision.end() && *it == "accepted")
              sales["accepted"] = sales["accepted"].get<std::int64_t>() + 1;
            return sales;
          },
          "sales-rate", serdes.value, "sales-rate")
      .to_stream()
      .map(
          [](const Windowed<streamrun::dsl::Key>& key, json sales) {
            sales["window_start"] = key.window.start_ms;
            sales["window_end"] = key.window.end_ms;
            return streamrun::KeyValue<streamrun::dsl::Key, json>{key.key, std::move(sales)};
          },
          "sales-per-second")
      .to(topic, serdes, "sales-rate-out");
}

}  // namespace

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
  sales_rate(decided, topics.sales_rate);
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
