#pragma once

// What the pipeline loader and the pipeline-test loader share in reading YAML.

#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <streamrun/dsl/registry.h>

namespace streamrun::dsl::detail {

// A place in `file`: yaml-cpp counts lines and columns from 0, messages from 1.
inline Location location_of(const std::string& file, const YAML::Mark& mark) {
  return {file, mark.line + 1, mark.column + 1};
}

// A YAML scalar (its text, after any substitution) as JSON: quoted text stays text; true,
// false, null and ~ are recognised, and so are numbers as JSON writes them; anything else is
// text.
inline nlohmann::json scalar_to_json(const YAML::Node& node, const std::string& text) {
  if (node.Tag() == "!")
    return text;  // quoted
  if (text == "true" || text == "false")
    return text == "true";
  if (text == "null" || text == "~")
    return nullptr;
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() || !parsed.is_number() ? nlohmann::json(text) : parsed;
}

// Calls report(key node, first key node) for each key a mapping repeats, anywhere in `node`.
// YAML forbids repeated keys; yaml-cpp keeps them and its lookups find the first, so a repeat
// would silently lose what the user wrote last.
template <typename Report>
void find_duplicate_keys(const YAML::Node& node, Report&& report, int depth = 0) {
  if (depth > 64)  // the loader reports nothing deeper than a pipeline can be
    return;
  if (node.IsSequence()) {
    for (const auto& item : node)
      find_duplicate_keys(item, report, depth + 1);
    return;
  }
  if (!node.IsMap())
    return;
  std::map<std::string, YAML::Node> seen;
  for (const auto& entry : node) {
    if (entry.first.IsScalar()) {
      auto [it, first] = seen.emplace(entry.first.Scalar(), entry.first);
      if (!first)
        report(entry.first, it->second);
    }
    find_duplicate_keys(entry.second, report, depth + 1);
  }
}

}  // namespace streamrun::dsl::detail
