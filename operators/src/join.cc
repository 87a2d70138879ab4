#include "common.h"

namespace streamrun::operators::detail {
namespace {

dsl::OperatorSpec join_like(bool left) {
  const std::string name = left ? "left_join" : "join";
  return {
      .name = name,
      .kind = dsl::OperatorKind::processor,
      .summary = left ? "Adds the table's value for the record's key under a field (null when "
                        "the key is not in the table); repartitions first after a key change"
                      : "Adds the table's value for the record's key under a field; records "
                        "whose key is not in the table are dropped; repartitions first after a "
                        "key change",
      .fields = {{"table", dsl::FieldType::table, true, std::nullopt,
                  "The table to look the key up in (from the 'tables' section)"},
                 {"as", dsl::FieldType::string, false, std::nullopt,
                  "The field that receives the table's value (default: the table's name)"}},
      .example = "- " + name + ": {table: stock, as: stock}",
      .build = [left](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
        const auto table_name = config.string("table");
        const auto field = config.has("as") ? config.string("as") : table_name;
        const auto& table = context.tables.at(table_name);
        const auto serdes = record_serdes("json");
        if (left) {
          return input->left_join(
              table,
              [field](const nlohmann::json& value, const std::optional<nlohmann::json>& row) {
                nlohmann::json out = value.is_object() ? value : nlohmann::json{{"value", value}};
                set_field(out, field, row ? *row : nlohmann::json());
                return out;
              },
              serdes, context.node_name);
        }
        return input->join(
            table,
            [field](const nlohmann::json& value, const nlohmann::json& row) {
              nlohmann::json out = value.is_object() ? value : nlohmann::json{{"value", value}};
              set_field(out, field, row);
              return out;
            },
            serdes, context.node_name);
      }};
}

}  // namespace

dsl::OperatorSpec join_spec() {
  return join_like(/*left=*/false);
}

dsl::OperatorSpec left_join_spec() {
  return join_like(/*left=*/true);
}

}  // namespace streamrun::operators::detail
