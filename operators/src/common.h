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

}  // namespace streamrun::operators::detail
