#include "inventory.h"

#include <nlohmann/json.hpp>

#include <streamrun/core/stream_builder.h>
#include <streamrun/operators/operators.h>

namespace seckill {

namespace {

// One SKU's sales in one second, as its window store keeps them: two 8-byte big-endian counts
// (a JSON document per decision would cost more than the counting).
struct Sales {
  std::int64_t orders = 0;
  std::int64_t accepted = 0;
};

streamrun::Serde<Sales> sales_serde() {
  return {"sales",
          [](const Sales& sales) -> std::optional<std::string> {
            std::string bytes;
            streamrun::detail::append_be64(bytes, static_cast<std::uint64_t>(sales.orders));
            streamrun::detail::append_be64(bytes, static_cast<std::uint64_t>(sales.accepted));
            return bytes;
          },
          [](std::optional<std::string_view> bytes) {
            if (!bytes || bytes->size() != 16)
              throw streamrun::SerdeError("sales: expected 16 bytes");
            return Sales{static_cast<std::int64_t>(streamrun::detail::read_be64(*bytes)),
                         static_cast<std::int64_t>(streamrun::detail::read_be64(bytes->substr(8)))};
          }};
}

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
      .aggregate([] { return Sales{}; },
                 [](const streamrun::dsl::Key&, const json& decision, Sales sales) {
                   ++sales.orders;
                   const auto it = decision.find("decision");
                   if (it != decision.end() && *it == "accepted")
                     ++sales.accepted;
                   return sales;
                 },
                 "sales-rate", sales_serde(), "sales-rate")
      .to_stream()
      .map(
          [](const Windowed<streamrun::dsl::Key>& key, const Sales& sales) {
            return streamrun::KeyValue<streamrun::dsl::Key, json>{
                key.key, json{{"window_start", key.window.start_ms},
                              {"window_end", key.window.end_ms},
                              {"orders", sales.orders},
                              {"accepted", sales.accepted}}};
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
