#pragma once

// Helpers the built-in operators share: JSON field paths and the serdes of YAML records.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <streamrun/dsl/registry.h>

namespace streamrun::operators::detail {

// The value at `path` ("a.b.c": nested objects), or nullptr when a part is missing.
const nlohmann::json* find_field(const nlohmann::json& value, const std::string& path);
// Sets the value at `path`, creating objects on the way; false when a part is not an object.
bool set_field(nlohmann::json& value, const std::string& path, nlohmann::json field);
// Removes the value at `path`; returns it when it was there.
std::optional<nlohmann::json> remove_field(nlohmann::json& value, const std::string& path);

// A field value as key text: strings as they are, anything else as JSON.
std::string key_text(const nlohmann::json& value);

using dsl::record_serdes;

dsl::FieldSpec format_field();

// The value of an expression over (key, value), the names of dsl::FieldSpec's default.
nlohmann::json evaluate(const dsl::Expression& expression, const dsl::Key& key,
                        const nlohmann::json& value);
bool test(const dsl::Expression& expression, const dsl::Key& key, const nlohmann::json& value);

// One of two fields that say the same thing two ways (a field path or an expression): the
// value of whichever the operator was given, or nullptr for a missing field. Throws
// std::invalid_argument unless exactly one was given.
class FieldOrExpression {
 public:
  FieldOrExpression(const dsl::OperatorConfig& config, const std::string& field_name,
                    const std::string& expression_name);
  // The field's value (nullptr when missing or null) or the expression's.
  nlohmann::json operator()(const dsl::Key& key, const nlohmann::json& value) const;

 private:
  std::optional<std::string> field_;
  std::optional<dsl::Expression> expression_;
};

// The input grouped by key for a keyed aggregate (after a key change, through a repartition
// topic). Records with a null value are dropped first: they are not values to aggregate.
KGroupedStream<dsl::Key, nlohmann::json> group_values(const dsl::Stream& input,
                                                      const std::string& node_name);

// The input folded per key (or per key and window: fold_per_key) into the step's store by an
// expression over (agg, value, key), emitting each new aggregate. A key starts at `initial`;
// without one, its first value is its first aggregate.
// With session_gap_ms, `merge` (over agg: the older session's aggregate, value: the newer's, and
// key) combines two sessions a record bridges.
dsl::Stream fold_by_expression(const dsl::Stream& input, const dsl::OperatorConfig& config,
                               const std::string& node_name, const dsl::Expression& expression,
                               std::optional<nlohmann::json> initial,
                               std::optional<dsl::Expression> merge);

// Adds a custom keyed node (`make(node name)` builds one instance per task) after `input`,
// through a repartition topic first when the key changed, so that each key is handled by the
// task of its partition. The node owns `owned` stores and reads `read` ones (tables).
dsl::Stream add_keyed_node(
    const dsl::Stream& input, const std::string& node_name, const std::string& kind,
    std::function<std::unique_ptr<streamrun::detail::NodeInstance>(const std::string&)> make,
    const std::vector<std::string>& owned, const std::vector<std::string>& read = {});

// The store field of keyed aggregates.
dsl::FieldSpec store_field();

// The fields that make a keyed aggregate windowed (window_ms, advance_ms, session_gap_ms,
// grace_ms, emit, late), each optional.
std::vector<dsl::FieldSpec> window_fields();
// The fields of a keyed aggregate: `own`, then the store field, then the window fields.
std::vector<dsl::FieldSpec> aggregate_fields(std::vector<dsl::FieldSpec> own);

// Whether the step gave any window field.
bool windowed_step(const dsl::OperatorConfig& config);

// A keyed aggregate per key, or per key and time window (window_ms) or session
// (session_gap_ms). `init` gives a key's (or window's) first aggregate; `add(key, value,
// aggregate)` the next one; `merge(key, older, newer)` combines two sessions' aggregates (needed
// with session_gap_ms). Windowed, each output is keyed by the key and its value is
// {"window_start": ms, "window_end": ms, `name`: aggregate}, an object aggregate's fields
// taking the place of `name` when `name` is empty; it is stamped with the window's end. Throws
// dsl::FieldErrors for window fields that do not fit together.
using Fold = std::function<nlohmann::json(const dsl::Key&, const nlohmann::json& value,
                                          nlohmann::json aggregate)>;
using Merge =
    std::function<nlohmann::json(const dsl::Key&, nlohmann::json older, nlohmann::json newer)>;
dsl::Stream fold_per_key(const dsl::Stream& input, const dsl::OperatorConfig& config,
                         const std::string& node_name, std::function<nlohmann::json()> init,
                         Fold add, const std::string& name, Merge merge);

// Each operator's spec, one file each.
dsl::OperatorSpec from_spec();
dsl::OperatorSpec to_spec();
dsl::OperatorSpec filter_spec();
dsl::OperatorSpec map_spec();
dsl::OperatorSpec key_by_spec();
dsl::OperatorSpec count_spec();
dsl::OperatorSpec join_spec();
dsl::OperatorSpec left_join_spec();
dsl::OperatorSpec reserve_spec();
dsl::OperatorSpec route_spec();
dsl::OperatorSpec sum_spec();
dsl::OperatorSpec reduce_spec();
dsl::OperatorSpec aggregate_spec();
dsl::OperatorSpec dedupe_spec();
dsl::OperatorSpec call_spec();

}  // namespace streamrun::operators::detail
