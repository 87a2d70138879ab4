#include <stdexcept>

#include "common.h"

namespace streamrun::operators::detail {
namespace {

// How a field compares with the configured value. Numbers compare as numbers, text as text;
// values of different kinds are unequal and not ordered (so <, > are false).
bool compare(const nlohmann::json* field, const std::string& op, const nlohmann::json& value) {
  if (op == "exists")
    return field != nullptr && !field->is_null();
  if (op == "missing")
    return field == nullptr || field->is_null();
  if (field == nullptr)
    return op == "!=";
  const bool comparable = (field->is_number() && value.is_number()) ||
                          (field->is_string() && value.is_string()) ||
                          (field->is_boolean() && value.is_boolean());
  if (op == "==")
    return comparable && *field == value;
  if (op == "!=")
    return !comparable || *field != value;
  if (!comparable)
    return false;
  if (op == "<")
    return *field < value;
  if (op == "<=")
    return *field <= value;
  if (op == ">")
    return *field > value;
  return *field >= value;  // ">="
}

}  // namespace

dsl::OperatorSpec filter_spec() {
  return {
      .name = "filter",
      .kind = dsl::OperatorKind::processor,
      .summary =
          "Keeps the records whose field compares true with a value, or for which an "
          "expression is true (anything but nil and false)",
      .fields = {{"field", dsl::FieldType::string, false, std::nullopt,
                  "The field to test: a name, or a path like customer.tier; or give 'expr'"},
                 {"op",
                  dsl::FieldType::string,
                  false,
                  std::nullopt,
                  "How to compare the field: ==, !=, <, <=, >, >=, exists, missing (default ==)",
                  {"==", "!=", "<", "<=", ">", ">=", "exists", "missing"}},
                 {"value", dsl::FieldType::scalar, false, std::nullopt,
                  "What to compare with (a number, true/false, or text); not for exists/missing"},
                 {"expr", dsl::FieldType::expression, false, std::nullopt,
                  "Instead of field/op/value: an expression, e.g. value.qty > 0 and value.sku"}},
      .alternatives = {{{"field", "expr"}}},
      .example = "- filter: {field: qty, op: \">\", value: 0}   # or {expr: value.qty > 0}",
      .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                  std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
        if (config.has("expr")) {
          if (config.has("op") || config.has("value"))
            throw std::invalid_argument("'filter' with 'expr' takes no 'op' or 'value'");
          return input->filter(
              [expression = config.expression("expr")](const dsl::Key& key,
                                                       const nlohmann::json& record) {
                return test(expression, key, record);
              },
              context.node_name);
        }
        const auto field = config.string("field");
        const auto op = config.has("op") ? config.string("op") : std::string("==");
        const bool unary = op == "exists" || op == "missing";
        if (unary == config.has("value")) {
          throw std::invalid_argument(unary ? "'filter' with op " + op + " takes no 'value'"
                                            : "'filter' with op " + op +
                                                  " needs a 'value' to compare with");
        }
        const auto value = unary ? nlohmann::json() : config.scalar("value");
        return input->filter(
            [field, op, value](const dsl::Key&, const nlohmann::json& record) {
              return compare(find_field(record, field), op, value);
            },
            context.node_name);
      }};
}

}  // namespace streamrun::operators::detail
