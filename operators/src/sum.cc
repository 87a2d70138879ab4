#include <stdexcept>

#include "common.h"

namespace streamrun::operators::detail {
namespace {
// Integers stay integers; any other number makes the sum a double.
nlohmann::json plus(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number_integer() && b.is_number_integer())
    return a.get<std::int64_t>() + b.get<std::int64_t>();
  return a.get<double>() + b.get<double>();
}
}  // namespace

dsl::OperatorSpec sum_spec() {
  return {.name = "sum",
          .kind = dsl::OperatorKind::processor,
          .summary =
              "Adds up a number per key (a field or an expression) in a state store and emits "
              "the new sum per record; a record without the number adds nothing, one whose "
              "number is not a number fails",
          .fields = aggregate_fields(
              {{"field", dsl::FieldType::string, false, std::nullopt,
                "The field to add up (a name or a path); or give 'expr'"},
               {"expr", dsl::FieldType::expression, false, std::nullopt,
                "An expression whose value to add up, e.g. value.qty * value.price"}}),
          .alternatives = {{{"field", "expr"}}},
          .example = "- sum: {field: qty, store: units-per-sku}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            const FieldOrExpression number(config, "field", "expr");
            return fold_per_key(
                *input, config, context.node_name, [] { return nlohmann::json(0); },
                [number](const dsl::Key& key, const nlohmann::json& value, nlohmann::json total) {
                  const auto add = number(key, value);
                  if (add.is_null())
                    return total;
                  if (!add.is_number())
                    throw std::invalid_argument("sum: " + add.dump() + " is not a number");
                  return plus(total, add);
                },
                "sum",
                [](const dsl::Key&, nlohmann::json older, nlohmann::json newer) {
                  return plus(older, newer);
                });
          }};
}

}  // namespace streamrun::operators::detail
