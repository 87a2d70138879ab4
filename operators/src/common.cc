#include "common.h"

#include <fmt/format.h>

namespace streamrun::operators::detail {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos)
      return parts;
    start = dot + 1;
  }
}

}  // namespace

const nlohmann::json* find_field(const nlohmann::json& value, const std::string& path) {
  const nlohmann::json* at = &value;
  for (const auto& part : split_path(path)) {
    if (!at->is_object())
      return nullptr;
    auto it = at->find(part);
    if (it == at->end())
      return nullptr;
    at = &*it;
  }
  return at;
}

bool set_field(nlohmann::json& value, const std::string& path, nlohmann::json field) {
  nlohmann::json* at = &value;
  const auto parts = split_path(path);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (at->is_null())
      *at = nlohmann::json::object();
    if (!at->is_object())
      return false;
    at = &(*at)[parts[i]];
  }
  if (at->is_null())
    *at = nlohmann::json::object();
  if (!at->is_object())
    return false;
  (*at)[parts.back()] = std::move(field);
  return true;
}

std::optional<nlohmann::json> remove_field(nlohmann::json& value, const std::string& path) {
  const auto parts = split_path(path);
  nlohmann::json* at = &value;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!at->is_object() || !at->contains(parts[i]))
      return std::nullopt;
    at = &(*at)[parts[i]];
  }
  if (!at->is_object() || !at->contains(parts.back()))
    return std::nullopt;
  auto removed = std::move((*at)[parts.back()]);
  at->erase(parts.back());
  return removed;
}

std::string key_text(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

dsl::FieldSpec format_field() {
  return {"format",
          dsl::FieldType::string,
          false,
          "json",
          "How values are encoded: json (a JSON document) or string (text)",
          {"json", "string"}};
}

nlohmann::json evaluate(const dsl::Expression& expression, const dsl::Key& key,
                        const nlohmann::json& value) {
  const nlohmann::json key_value = key ? nlohmann::json(*key) : nlohmann::json();
  const nlohmann::json* arguments[] = {&key_value, &value};
  return expression.evaluate(arguments);
}

bool test(const dsl::Expression& expression, const dsl::Key& key, const nlohmann::json& value) {
  const nlohmann::json key_value = key ? nlohmann::json(*key) : nlohmann::json();
  const nlohmann::json* arguments[] = {&key_value, &value};
  return expression.test(arguments);
}

FieldOrExpression::FieldOrExpression(const dsl::OperatorConfig& config,
                                     const std::string& field_name,
                                     const std::string& expression_name) {
  if (config.has(field_name) == config.has(expression_name)) {
    throw std::invalid_argument(
        fmt::format("'{}' takes one of '{}' (a field) or '{}' (an "
                    "expression), {}",
                    config.op(), field_name, expression_name,
                    config.has(field_name) ? "not both" : "and has neither"));
  }
  if (config.has(field_name))
    field_ = config.string(field_name);
  else
    expression_ = config.expression(expression_name);
}

nlohmann::json FieldOrExpression::operator()(const dsl::Key& key,
                                             const nlohmann::json& value) const {
  if (expression_)
    return evaluate(*expression_, key, value);
  const auto* found = find_field(value, *field_);
  return found != nullptr ? *found : nlohmann::json();
}

KGroupedStream<dsl::Key, nlohmann::json> group_values(const dsl::Stream& input,
                                                      const std::string& node_name) {
  return input
      .filter([](const dsl::Key&, const nlohmann::json& value) { return !value.is_null(); },
              node_name + "-values")
      .group_by_key(record_serdes("json"), node_name + "-by-key");
}

dsl::Stream fold_by_expression(const dsl::Stream& input, const std::string& node_name,
                               const std::string& store, const dsl::Expression& expression,
                               std::optional<nlohmann::json> initial) {
  const bool first_is_aggregate = !initial;
  return group_values(input, node_name)
      .aggregate([initial] { return initial.value_or(nlohmann::json()); },
                 [expression, first_is_aggregate](const dsl::Key& key, const nlohmann::json& value,
                                                  const nlohmann::json& agg) {
                   if (first_is_aggregate && agg.is_null())
                     return value;  // the key's first value
                   const nlohmann::json key_value = key ? nlohmann::json(*key) : nullptr;
                   const nlohmann::json* arguments[] = {&agg, &value, &key_value};
                   return expression.evaluate(arguments);
                 },
                 store, record_serdes("json").value, node_name)
      .to_stream();
}

dsl::Stream add_keyed_node(
    const dsl::Stream& input, const std::string& node_name, const std::string& kind,
    std::function<std::unique_ptr<streamrun::detail::NodeInstance>(const std::string&)> make,
    const std::vector<std::string>& owned, const std::vector<std::string>& read) {
  dsl::Stream stream = input;
  if (stream.key_changed())
    stream = stream.repartition(record_serdes("json"), node_name + "-by-key");
  auto& builder = stream.builder();
  const int id = builder.add_node(kind, node_name, {stream.node_id()}, {}, std::move(make));
  for (const auto& store : owned)
    builder.attach_store(id, store);
  for (const auto& store : read)
    builder.use_store(id, store);
  return dsl::Stream(&builder, id);
}

dsl::FieldSpec store_field() {
  return {"store", dsl::FieldType::string, true, std::nullopt,
          "The state store (and changelog topic <application>-<store>-changelog)"};
}

}  // namespace streamrun::operators::detail
