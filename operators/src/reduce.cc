#include "common.h"

namespace streamrun::operators::detail {

dsl::OperatorSpec reduce_spec() {
  return {.name = "reduce",
          .kind = dsl::OperatorKind::processor,
          .summary =
              "Combines the values of each key with an expression over agg (the value so far) "
              "and value; a key's first value is its first agg; emits the new value per record "
              "(nil deletes the key)",
          .fields = aggregate_fields(
              {{"expr",
                dsl::FieldType::expression,
                true,
                std::nullopt,
                "The new value from agg and value, e.g. {qty = agg.qty + value.qty}",
                {},
                {"agg", "value", "key"}}}),
          .example = "- reduce: {expr: \"value.ts > agg.ts and value or agg\", store: latest}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            // Two sessions merge as their aggregates reduce (agg: the older, value: the newer).
            return fold_by_expression(*input, config, context.node_name, config.expression("expr"),
                                      std::nullopt, config.expression("expr"));
          }};
}

}  // namespace streamrun::operators::detail
