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
      .summary = "Keeps the records whose field compares true with a value",
      .fields = {{"field", dsl::FieldType::string, true, std::nullopt,
                  "The field to test: a name, or a path like customer.tier"},
                 {"op",
                  dsl::FieldType::string,
                  false,
                  "==",
                  "How to compare: ==, !=, <, <=, >, >=, exists, missing",
                  {"==", "!=", "<", "<=", ">", ">=", "exists", "missing"}},
                 {"value", dsl::FieldType::scalar, false, std::nullopt,
                  "What to compare with (a number, true/false, or text); not for exists/missing"}},
      .example = "- filter: {field: qty, op: \">\", value: 0}",
      .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                  std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
        const auto field = config.string("field");
        const auto op = config.string("op");
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
