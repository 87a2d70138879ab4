#include "common.h"

namespace streamrun::operators::detail {

dsl::OperatorSpec aggregate_spec() {
  return {.name = "aggregate",
          .kind = dsl::OperatorKind::processor,
          .summary =
              "Folds the values of each key into an aggregate that starts at 'initial', with an "
              "expression over agg and value; emits the new aggregate per record (nil deletes "
              "the key)",
          .fields = aggregate_fields(
              {{"initial", dsl::FieldType::string, false, "{}",
                "The aggregate of a new key: a JSON literal (0, {}, [], \"text\")"},
               {"expr",
                dsl::FieldType::expression,
                true,
                std::nullopt,
                "The new aggregate from agg and value, e.g. "
                "{orders = agg.orders + 1, units = agg.units + value.qty}",
                {},
                {"agg", "value", "key"}},
               {"merge",
                dsl::FieldType::expression,
                false,
                std::nullopt,
                "With session_gap_ms (and needed there): the aggregate of two sessions a record "
                "bridges, from agg (the older's) and value (the newer's), e.g. "
                "{orders = agg.orders + value.orders}",
                {},
                {"agg", "value", "key"}}}),
          .example =
              "- aggregate: {initial: '{\"orders\": 0, \"units\": 0}', expr: '{orders = "
              "agg.orders + 1, units = agg.units + value.qty}', store: per-sku}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            const auto initial = nlohmann::json::parse(config.string("initial"), nullptr,
                                                       /*allow_exceptions=*/false);
            if (initial.is_discarded() || initial.is_null())
              throw std::invalid_argument(
                  "'aggregate' field 'initial' must be a JSON value "
                  "other than null, e.g. 0, {} or '{\"orders\": 0}' (got " +
                  config.string("initial") + ")");
            std::optional<dsl::Expression> merge;
            if (config.has("merge")) {
              if (!config.given("session_gap_ms"))
                throw dsl::FieldErrors(std::vector<dsl::FieldErrors::Problem>{
                    {"merge", "'merge' is used only with 'session_gap_ms'"}});
              merge = config.expression("merge");
            }
            return fold_by_expression(*input, config, context.node_name, config.expression("expr"),
                                      initial, merge);
          }};
}

}  // namespace streamrun::operators::detail
