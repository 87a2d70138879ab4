#include <stdexcept>

#include "common.h"

namespace streamrun::operators::detail {
namespace {

// A value given as text in YAML: a JSON literal (number, true/false, null, "quoted", {...})
// when it parses as one, else the text itself.
nlohmann::json literal(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? nlohmann::json(text) : parsed;
}

}  // namespace

dsl::OperatorSpec map_spec() {
  return {.name = "map",
          .kind = dsl::OperatorKind::processor,
          .summary = "Reshapes JSON values: renames, drops and sets fields (in that order)",
          .fields = {{"rename", dsl::FieldType::string_map, false, std::nullopt,
                      "Fields to rename, old: new (paths allowed)"},
                     {"drop", dsl::FieldType::string_list, false, std::nullopt, "Fields to remove"},
                     {"set", dsl::FieldType::string_map, false, std::nullopt,
                      "Fields to set, field: value (a JSON literal, else text)"}},
          .example = "- map: {rename: {qty: quantity}, drop: [internal], set: {source: web}}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            if (!config.has("rename") && !config.has("drop") && !config.has("set"))
              throw std::invalid_argument("'map' needs at least one of 'rename', 'drop' or 'set'");
            const auto rename = config.has("rename") ? config.string_map("rename")
                                                     : std::map<std::string, std::string>{};
            const auto drop =
                config.has("drop") ? config.string_list("drop") : std::vector<std::string>{};
            std::map<std::string, nlohmann::json> set;
            if (config.has("set")) {
              for (const auto& [field, text] : config.string_map("set"))
                set[field] = literal(text);
            }
            return input->map_values(
                [rename, drop, set](const nlohmann::json& record) {
                  nlohmann::json out = record;
                  for (const auto& [from, to] : rename) {
                    if (auto moved = remove_field(out, from))
                      set_field(out, to, std::move(*moved));
                  }
                  for (const auto& field : drop)
                    remove_field(out, field);
                  for (const auto& [field, value] : set) {
                    if (!set_field(out, field, value))
                      throw std::invalid_argument("cannot set '" + field +
                                                  "': a part of it is not an object");
                  }
                  return out;
                },
                context.node_name);
          }};
}

}  // namespace streamrun::operators::detail
