#pragma once

// The built-in operators for C++ topologies: the same nodes the YAML steps of the same names
// build, on the records YAML pipelines carry (dsl::Stream: a nullable string key and a JSON
// value; dsl::record_serdes("json") reads and writes them). A C++ application uses them with
// the rest of the StreamBuilder API:
//
//   streamrun::StreamBuilder builder;
//   const auto json = streamrun::dsl::record_serdes("json");
//   builder.table("stock", json, "stock");                       // the limits, by SKU
//   auto orders = builder.stream("orders", json);
//   auto by_sku = streamrun::operators::key_by_field(orders, "sku", "(no sku)");
//   auto decided = streamrun::operators::reserve(
//       by_sku, {.limit_table = "stock", .limit_field = "units", .once_per = "user_id",
//                .store = "reserved"});
//   decided.to("decisions", json);
//
// Keyed operators (dedupe, reserve) repartition first when the key changed upstream, as in
// YAML. Every function throws std::invalid_argument for options that cannot work, naming the
// option; `name` names the operator in the topology (unique, as every node name).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <streamrun/dsl/registry.h>

namespace streamrun::operators {

// key_by: the value's field `field` (a path: "a.b.c") becomes the key — text as it is, anything
// else as its JSON; records without it get `missing` (null: keyed operators drop them).
[[nodiscard]] dsl::Stream key_by_field(const dsl::Stream& input, const std::string& field,
                                       dsl::Key missing = std::nullopt,
                                       const std::string& name = "key-by");

struct DedupeOptions {
  // The field (a path) that identifies a record, e.g. order_id; a record without it passes.
  std::string field;
  // Forget an identity this many milliseconds of record time after it was first seen (> 0);
  // nullopt: never.
  std::optional<std::int64_t> ttl_ms;
  // The store of identities seen (its changelog: <application.id>-<store>-changelog).
  std::string store;
};
// dedupe: passes the first record per key and identity, drops repeats.
[[nodiscard]] dsl::Stream dedupe(const dsl::Stream& input, const DedupeOptions& options,
                                 const std::string& name = "dedupe");

struct ReserveOptions {
  // The store of the table whose row for a key gives its limit (e.g. the stock): the `store`
  // given to StreamBuilder::table.
  std::string limit_table;
  // The field of the row holding the limit; nullopt: the row is a number.
  std::optional<std::string> limit_field;
  // At most one accepted record per key and value of this field (e.g. user_id).
  std::optional<std::string> once_per;
  // Fields a record must have; a record without one is rejected as invalid.
  std::vector<std::string> required;
  // The store of units taken per key (and <store>-once for once_per).
  std::string store;
  // Also add the time of the decision (ms since the epoch, the task's clock) under this field.
  std::optional<std::string> decided_at;
};
// reserve: decides each record against its key's limit, one unit each, never more than the
// limit: adds "decision" (accepted or rejected), "reason" (accepted, sold_out, duplicate,
// invalid, unknown_item) and "remaining" (units left) to the value.
[[nodiscard]] dsl::Stream reserve(const dsl::Stream& input, const ReserveOptions& options,
                                  const std::string& name = "reserve");

}  // namespace streamrun::operators
