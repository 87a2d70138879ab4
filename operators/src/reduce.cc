#include "common.h"

namespace streamrun::operators::detail {

dsl::OperatorSpec reduce_spec() {
  return {.name = "reduce",
          .kind = dsl::OperatorKind::processor,
          .summary =
              "Combines the values of each key with an expression over agg (the value so far) "
              "and value; a key's first value is its first agg; emits the new value per record "
              "(nil deletes the key)",
          .fields = {{"expr",
                      dsl::FieldType::expression,
                      true,
                      std::nullopt,
                      "The new value from agg and value, e.g. {qty = agg.qty + value.qty}",
                      {},
                      {"agg", "value", "key"}},
                     store_field()},
          .example = "- reduce: {expr: \"value.ts > agg.ts and value or agg\", store: latest}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            const auto expression = config.expression("expr");
            return group_values(*input, context.node_name)
                .aggregate([] { return nlohmann::json(); },
                           [expression](const dsl::Key& key, const nlohmann::json& value,
                                        nlohmann::json agg) {
                             if (agg.is_null())
                               return value;  // the key's first value
                             const nlohmann::json key_value = key ? nlohmann::json(*key) : nullptr;
                             const nlohmann::json* arguments[] = {&agg, &value, &key_value};
                             return expression.evaluate(arguments);
                           },
                           config.string("store"), record_serdes("json").value, context.node_name)
                .to_stream();
          }};
}

}  // namespace streamrun::operators::detail
