#include <streamrun/operators/operators.h>

#include "common.h"

namespace streamrun::operators::detail {
namespace {

// The value `key_of(key, value)` gives becomes the key (text as it is, else its JSON); a null
// one gives `missing`.
template <typename KeyOf>
dsl::Stream key_by_value(const dsl::Stream& input, KeyOf key_of, dsl::Key missing,
                         const std::string& name) {
  return input.key_by(
      [key_of = std::move(key_of), missing = std::move(missing)](
          const dsl::Key& key, const nlohmann::json& record) -> dsl::Key {
        const auto value = key_of(key, record);
        if (value.is_null())
          return missing;
        return key_text(value);
      },
      name);
}

}  // namespace

dsl::OperatorSpec key_by_spec() {
  return {.name = "key_by",
          .kind = dsl::OperatorKind::processor,
          .summary =
              "Makes a field of the value the record's key (a missing field: a null key, "
              "which keyed operators drop); keyed operators after it repartition",
          .fields = {{"field", dsl::FieldType::string, false, std::nullopt,
                      "The field whose value becomes the key (text as is, else JSON); or give "
                      "'expr'"},
                     {"expr", dsl::FieldType::expression, false, std::nullopt,
                      "An expression whose value becomes the key, e.g. value.region .. '/' .. "
                      "value.sku"},
                     {"missing", dsl::FieldType::string, false, std::nullopt,
                      "The key of records without the field (default: null, which keyed "
                      "operators drop); lets a later operator answer them"}},
          .alternatives = {{{"field", "expr"}}},
          .example = "- key_by: {field: sku}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            const FieldOrExpression key_of(config, "field", "expr");
            const dsl::Key missing =
                config.has("missing") ? dsl::Key(config.string("missing")) : std::nullopt;
            return key_by_value(*input, key_of, missing, context.node_name);
          }};
}

}  // namespace streamrun::operators::detail

namespace streamrun::operators {

dsl::Stream key_by_field(const dsl::Stream& input, const std::string& field, dsl::Key missing,
                         const std::string& name) {
  if (field.empty())
    throw std::invalid_argument("'key_by' needs a field");
  return detail::key_by_value(
      input,
      [field](const dsl::Key&, const nlohmann::json& record) {
        const auto* found = detail::find_field(record, field);
        return found == nullptr ? nlohmann::json() : *found;
      },
      std::move(missing), name);
}

}  // namespace streamrun::operators
