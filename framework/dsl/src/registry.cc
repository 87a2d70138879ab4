#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <streamrun/dsl/registry.h>
#include <streamrun/json/json_serde.h>

namespace streamrun::dsl {

Serdes<Key, nlohmann::json> record_serdes(std::string_view format) {
  if (format == "string") {
    return {serdes::nullable_string(),
            {"string",
             [](const nlohmann::json& value) -> std::optional<std::string> {
               if (value.is_null())
                 return std::nullopt;
               return value.is_string() ? value.get<std::string>() : value.dump();
             },
             [](std::optional<std::string_view> bytes) -> nlohmann::json {
               if (!bytes)
                 return nullptr;
               return std::string(*bytes);
             }}};
  }
  auto json = serdes::json();
  return {serdes::nullable_string(),
          {"json",
           [json](const nlohmann::json& value) -> std::optional<std::string> {
             if (value.is_null())
               return std::nullopt;
             return json.serialize(value);
           },
           json.deserialize}};
}

std::string Location::to_string() const {
  if (line == 0)
    return file;  // the file as a whole (e.g. it cannot be read)
  return fmt::format("{}:{}:{}", file, line, column);
}

std::string_view to_string(FieldType type) {
  switch (type) {
    case FieldType::string:
      return "string";
    case FieldType::integer:
      return "integer";
    case FieldType::boolean:
      return "boolean";
    case FieldType::scalar:
      return "scalar";
    case FieldType::string_list:
      return "list of strings";
    case FieldType::string_map:
      return "mapping of strings";
    case FieldType::table:
      return "table name";
    case FieldType::expression:
      return "expression";
    case FieldType::expression_map:
      return "mapping of expressions";
  }
  return "?";
}

OperatorConfig::OperatorConfig(std::string op, Location where, const nlohmann::json& fields,
                               std::map<std::string, std::map<std::string, Expression>> expressions)
    : op_(std::move(op)),
      where_(std::move(where)),
      fields_(std::make_unique<nlohmann::json>(fields)),
      expressions_(std::move(expressions)) {}
OperatorConfig::~OperatorConfig() = default;

const Location& OperatorConfig::where(const std::string& field) const {
  const auto it = field_where_.find(field);
  return it == field_where_.end() ? where_ : it->second;
}

void OperatorConfig::set_where(const std::string& field, Location where) {
  field_where_.insert_or_assign(field, std::move(where));
}

namespace {
std::string joined(const std::vector<FieldErrors::Problem>& problems) {
  std::string text;
  for (const auto& problem : problems)
    text += (text.empty() ? "" : "; ") + problem.message;
  return text;
}
}  // namespace

FieldErrors::FieldErrors(std::vector<Problem> problems)
    : std::invalid_argument(joined(problems)), problems_(std::move(problems)) {}
OperatorConfig::OperatorConfig(const OperatorConfig& other)
    : op_(other.op_),
      where_(other.where_),
      fields_(std::make_unique<nlohmann::json>(*other.fields_)),
      expressions_(other.expressions_),
      field_where_(other.field_where_) {}
OperatorConfig& OperatorConfig::operator=(const OperatorConfig& other) {
  if (this != &other) {
    op_ = other.op_;
    where_ = other.where_;
    fields_ = std::make_unique<nlohmann::json>(*other.fields_);
    expressions_ = other.expressions_;
    field_where_ = other.field_where_;
  }
  return *this;
}

bool OperatorConfig::has(const std::string& field) const {
  return fields_->contains(field) && !(*fields_)[field].is_null();
}

namespace {

// A field the loader validated has the right JSON type; anything else is a bug in a build
// function asking for a field its spec does not declare.
const nlohmann::json& field_of(const nlohmann::json& fields, const std::string& op,
                               const std::string& field) {
  auto it = fields.find(field);
  if (it == fields.end() || it->is_null())
    throw std::logic_error("operator '" + op + "' has no value for field '" + field + "'");
  return *it;
}

}  // namespace

std::string OperatorConfig::string(const std::string& field) const {
  return field_of(*fields_, op_, field).get<std::string>();
}
std::int64_t OperatorConfig::integer(const std::string& field) const {
  return field_of(*fields_, op_, field).get<std::int64_t>();
}
bool OperatorConfig::boolean(const std::string& field) const {
  return field_of(*fields_, op_, field).get<bool>();
}
nlohmann::json OperatorConfig::scalar(const std::string& field) const {
  return field_of(*fields_, op_, field);
}
std::vector<std::string> OperatorConfig::string_list(const std::string& field) const {
  return field_of(*fields_, op_, field).get<std::vector<std::string>>();
}
std::map<std::string, std::string> OperatorConfig::string_map(const std::string& field) const {
  return field_of(*fields_, op_, field).get<std::map<std::string, std::string>>();
}

const std::map<std::string, Expression>& OperatorConfig::expression_map(
    const std::string& field) const {
  static_cast<void>(field_of(*fields_, op_, field));
  auto it = expressions_.find(field);
  if (it == expressions_.end())
    throw std::logic_error("field '" + field + "' of operator '" + op_ + "' is not an expression");
  return it->second;
}
const Expression& OperatorConfig::expression(const std::string& field) const {
  const auto& compiled = expression_map(field);
  auto it = compiled.find("");
  if (it == compiled.end())
    throw std::logic_error("field '" + field + "' of operator '" + op_ + "' is not an expression");
  return it->second;
}

std::string describe_operators(const Registry& registry, std::string_view name) {
  std::string out;
  for (const auto& [op, spec] : registry.specs()) {
    if (!name.empty() && op != name)
      continue;
    out += fmt::format("{}: {}\n", op, spec.summary);
    for (const auto& field : spec.fields) {
      out += fmt::format("  {} ({}{}{}): {}\n", field.name, to_string(field.type),
                         field.required ? ", required" : "",
                         field.default_value ? ", default " + *field.default_value : "", field.doc);
    }
    out += fmt::format("  example: {}\n\n", spec.example);
  }
  return out;
}

namespace {

nlohmann::json field_schema(const FieldSpec& field) {
  nlohmann::json schema;
  switch (field.type) {
    case FieldType::table:
      schema["type"] = "string";
      break;
    case FieldType::string:
    case FieldType::expression:
      // Any scalar is taken as its text (`initial: 0`, `expr: true`), as the loader does.
      if (!field.choices.empty())
        schema["enum"] = field.choices;
      else
        schema["type"] = nlohmann::json::array({"string", "number", "boolean"});
      break;
    case FieldType::integer:
      schema["type"] = "integer";
      break;
    case FieldType::boolean:
      schema["type"] = "boolean";
      break;
    case FieldType::scalar:
      schema["type"] = nlohmann::json::array({"string", "number", "boolean"});
      break;
    case FieldType::string_list:
      schema["oneOf"] = nlohmann::json::array(
          {{{"type", "string"}}, {{"type", "array"}, {"items", {{"type", "string"}}}}});
      break;
    case FieldType::expression_map:
      schema["type"] = "object";
      schema["additionalProperties"] = {
          {"type", nlohmann::json::array({"string", "number", "boolean"})}};
      break;
    case FieldType::string_map:
      schema["type"] = "object";
      schema["additionalProperties"] = {
          {"type", nlohmann::json::array({"string", "number", "boolean"})}};
      break;
  }
  schema["description"] = field.doc;
  if (field.default_value)
    schema["default"] = *field.default_value;
  return schema;
}

}  // namespace

std::string pipeline_schema(const Registry& registry) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& [name, spec] : registry.specs()) {
    nlohmann::json properties = nlohmann::json::object();
    nlohmann::json required = nlohmann::json::array();
    for (const auto& field : spec.fields) {
      properties[field.name] = field_schema(field);
      if (field.required)
        required.push_back(field.name);
    }
    nlohmann::json body = {
        {"type", "object"}, {"properties", properties}, {"additionalProperties", false}};
    if (!required.empty())
      body["required"] = required;
    // Alternatives: never two of them; with `required`, one of them.
    nlohmann::json all_of = nlohmann::json::array();
    for (const auto& group : spec.alternatives) {
      for (std::size_t i = 0; i < group.fields.size(); ++i) {
        for (std::size_t j = i + 1; j < group.fields.size(); ++j)
          all_of.push_back({{"not", {{"required", {group.fields[i], group.fields[j]}}}}});
      }
      if (group.required) {
        nlohmann::json any_of = nlohmann::json::array();
        for (const auto& field : group.fields)
          any_of.push_back({{"required", {field}}});
        all_of.push_back({{"anyOf", any_of}});
      }
    }
    if (!all_of.empty())
      body["allOf"] = all_of;
    steps.push_back({{"type", "object"},
                     {"description", spec.summary},
                     {"properties", {{name, body}}},
                     {"required", {name}},
                     {"additionalProperties", false}});
  }
  const nlohmann::json scalar = {{"type", nlohmann::json::array({"string", "number", "boolean"})}};
  const nlohmann::json schema = {
      {"$schema", "http://json-schema.org/draft-07/schema#"},
      {"title", "streamrun pipeline"},
      {"type", "object"},
      {"required", {"application", "pipeline"}},
      {"additionalProperties", false},
      {"properties",
       {{"application",
         {{"type", "string"},
          {"pattern", "^[a-zA-Z0-9._-]{1,249}$"},
          {"description", "The application id: consumer group, internal topics, state directory"}}},
        {"properties",
         {{"type", "object"},
          {"additionalProperties", scalar},
          {"description", "Runtime and Kafka client properties (docs/runtime.md)"}}},
        {"tables",
         {{"type", "object"},
          {"description", "Tables by name: the latest value per key of a topic"},
          {"additionalProperties",
           {{"type", "object"},
            {"required", {"topic"}},
            {"additionalProperties", false},
            {"properties",
             {{"topic", {{"type", "string"}}},
              {"format", {{"type", "string"}, {"enum", {"json", "string"}}}}}}}}}},
        {"pipeline",
         {{"type", "array"},
          {"minItems", 2},
          {"description", "Steps from a source to a sink, each '- operator: {fields}'"},
          {"items", {{"oneOf", steps}}}}}}}};
  return schema.dump(2) + "\n";
}

void Registry::add(OperatorSpec spec) {
  if (!spec.build)
    throw std::logic_error("operator '" + spec.name + "' has no build function");
  const auto name = spec.name;
  if (!specs_.emplace(name, std::move(spec)).second)
    throw std::logic_error("operator '" + name + "' is registered twice");
}

const OperatorSpec* Registry::find(std::string_view name) const {
  auto it = specs_.find(name);
  return it == specs_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> names;
  for (const auto& [name, spec] : specs_)
    names.push_back(name);
  return names;
}

}  // namespace streamrun::dsl
