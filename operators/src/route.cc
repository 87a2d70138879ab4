#include "common.h"

namespace streamrun::operators::detail {

dsl::OperatorSpec route_spec() {
  return {
      .name = "route",
      .kind = dsl::OperatorKind::sink,
      .summary =
          "Writes each record to the topic its field's (or expression's) value selects, or to "
          "the default topic (without one, records that match no case are dropped)",
      .fields = {{"field", dsl::FieldType::string, false, std::nullopt,
                  "The field whose value selects the topic (text as is, else JSON); or give "
                  "'expr'"},
                 {"expr", dsl::FieldType::expression, false, std::nullopt,
                  "An expression whose value selects the topic, e.g. value.total > 100 and "
                  "'big' or 'small'"},
                 {"cases", dsl::FieldType::string_map, true, std::nullopt,
                  "value: topic, one per case"},
                 {"default", dsl::FieldType::string, false, std::nullopt,
                  "The topic of records that match no case"},
                 format_field()},
      .alternatives = {{{"field", "expr"}}},
      .example = "- route: {field: tier, cases: {gold: priority-orders}, default: orders-out}",
      .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                  std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
        const FieldOrExpression selector(config, "field", "expr");
        const auto serdes = record_serdes(config.string("format"));
        auto split = input->split(context.node_name);
        std::vector<std::pair<std::string, std::string>> branches;  // branch -> topic
        int n = 0;
        for (const auto& [value, topic] : config.string_map("cases")) {
          const auto branch = "case" + std::to_string(++n);
          split.branch(
              branch, [selector, value = value](const dsl::Key& key, const nlohmann::json& record) {
                const auto found = selector(key, record);
                return !found.is_null() && key_text(found) == value;
              });
          branches.emplace_back(branch, topic);
        }
        auto streams = config.has("default") ? split.default_branch("default") : split.branches();
        if (config.has("default"))
          branches.emplace_back("default", config.string("default"));
        for (const auto& [branch, topic] : branches)
          streams.at(branch).to(topic, serdes, context.node_name + "-" + branch + "-to");
        return std::nullopt;
      }};
}

}  // namespace streamrun::operators::detail
