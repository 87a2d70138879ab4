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
          .summary =
              "Reshapes JSON values: renames, drops, sets and computes fields (in that "
              "order; expressions see the value as it came in)",
          .fields = {{"rename", dsl::FieldType::string_map, false, std::nullopt,
                      "Fields to rename, old: new (paths allowed)"},
                     {"drop", dsl::FieldType::string_list, false, std::nullopt, "Fields to remove"},
                     {"set", dsl::FieldType::string_map, false, std::nullopt,
                      "Fields to set, field: value (a JSON literal, else text)"},
                     {"compute", dsl::FieldType::expression_map, false, std::nullopt,
                      "Fields to compute, field: expression over the incoming key and value "
                      "(nil removes the field)"}},
          .example =
              "- map: {rename: {qty: quantity}, drop: [internal], set: {source: web}, "
              "compute: {total: value.qty * value.price}}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            if (!config.has("rename") && !config.has("drop") && !config.has("set") &&
                !config.has("compute"))
              throw std::invalid_argument(
                  "'map' needs at least one of 'rename', 'drop', 'set' or 'compute'");
            const auto rename = config.has("rename") ? config.string_map("rename")
                                                     : std::map<std::string, std::string>{};
            const auto drop =
                config.has("drop") ? config.string_list("drop") : std::vector<std::string>{};
            std::map<std::string, nlohmann::json> set;
            if (config.has("set")) {
              for (const auto& [field, text] : config.string_map("set"))
                set[field] = literal(text);
            }
            const auto compute = config.has("compute") ? config.expression_map("compute")
                                                       : std::map<std::string, dsl::Expression>{};
            return input->map_values(
                [rename, drop, set, compute](const dsl::Key& key, const nlohmann::json& record) {
                  std::vector<std::pair<std::string, nlohmann::json>> computed;
                  for (const auto& [field, expression] : compute)
                    computed.emplace_back(field, evaluate(expression, key, record));
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
                  for (auto& [field, value] : computed) {
                    if (value.is_null())
                      remove_field(out, field);
                    else if (!set_field(out, field, std::move(value)))
                      throw std::invalid_argument("cannot set '" + field +
                                                  "': a part of it is not an object");
                  }
                  return out;
                },
                context.node_name);
          }};
}

}  // namespace streamrun::operators::detail
