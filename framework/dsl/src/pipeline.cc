#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <streamrun/base/ids.h>
#include <streamrun/config/config.h>
#include <streamrun/dsl/pipeline.h>

#include "yaml_support.h"

namespace streamrun::dsl {

std::string Diagnostic::to_string() const {
  return fmt::format("{}: error: {}", where.to_string(), message);
}

namespace {

// A value as a message shows it: long ones cut, so that an error stays readable.
std::string shown(const std::string& text) {
  constexpr std::size_t kMax = 60;
  if (text.size() <= kMax)
    return text;
  return fmt::format("{}... ({} characters)", text.substr(0, kMax), text.size());
}

using Environment = std::function<std::optional<std::string>(const std::string&)>;

// Collects problems and keeps going, so that a user sees all of them at once.
class Loader {
 public:
  Loader(std::string file, const Registry& registry, Environment environment)
      : file_(std::move(file)), registry_(registry), environment_(std::move(environment)) {}

  LoadResult load(const std::string& text) {
    text_ = text;
    const auto document =
        detail::load_document(text, "pipeline", [&](const YAML::Mark& mark, std::string message) {
          error(mark.pos < 0 ? Location{file_, 1, 1} : at(mark), std::move(message));
        });
    if (!document)
      return finish();
    const YAML::Node& root = *document;
    if (!root.IsMap()) {
      error({file_, 1, 1},
            "a pipeline file is a mapping with 'application', 'properties' and 'pipeline'");
      return finish();
    }
    if (!detail::check_structure(
            root, [&](const YAML::Node& node, std::string message) { error(at(node), message); }))
      return finish();
    if (root["tests"]) {
      error(at(root["tests"]),
            "this is a test file, not a pipeline: run it with `streamrun "
            "test`");
      return finish();
    }
    const std::vector<std::string> top_level{"application", "properties", "tables", "pipeline"};
    for (const auto& entry : root) {
      const auto key = entry.first.as<std::string>();
      if (std::find(top_level.begin(), top_level.end(), key) == top_level.end())
        unknown(entry.first, "top-level key", key, top_level);
    }
    const auto application = root["application"];
    if (!application) {
      error({file_, 1, 1},
            "missing 'application': the application id (names the consumer "
            "group, internal topics and the state directory)");
    } else if (auto id = scalar_text(application, "'application'")) {
      if (auto invalid = invalid_topic_name(*id); !invalid.empty()) {
        error(at(application), fmt::format("application '{}' {}", shown(*id), invalid));
      } else {
        application_id_ = *id;
        properties_.set("application.id", *id, {file_, line_of(application)});
      }
    }
    if (const auto properties = root["properties"]) {
      if (!properties.IsMap()) {
        error(at(properties), "'properties' must be a mapping of property names to values");
      } else {
        for (const auto& entry : properties) {
          const auto key = entry.first.as<std::string>();
          if (key == "application.id") {
            error(at(entry.first), "'application.id' is set by 'application'; remove it here");
            continue;
          }
          if (auto value = scalar_text(entry.second, "property '" + key + "'")) {
            const auto where = at(entry.first);
            properties_.set(key, *value, {file_, where.line, where.column});
          }
        }
      }
    }
    load_tables(root["tables"]);
    load_steps(root["pipeline"]);
    return finish();
  }

 private:
  struct Step {
    const OperatorSpec* spec;
    OperatorConfig config;
  };
  struct TableDeclaration {
    std::string name;
    std::string topic;
    std::string format;
    Location where;
  };

  // tables: {name: {topic: ..., format: json|string}}: the latest value per key of a topic,
  // kept in a store of the same name.
  void load_tables(const YAML::Node& tables) {
    if (!tables)
      return;
    if (!tables.IsMap()) {
      error(at(tables), "'tables' must be a mapping of table names to {topic, format}");
      return;
    }
    for (const auto& entry : tables) {
      const auto name = entry.first.as<std::string>();
      if (auto invalid = invalid_topic_name(name); !invalid.empty()) {
        error(at(entry.first), fmt::format("table name '{}' {} (it names a state store and its "
                                           "changelog topic)",
                                           shown(name), invalid));
        continue;
      }
      const auto& body = entry.second;
      if (!body.IsMap()) {
        error(at(body), fmt::format("table '{}' must be a mapping, e.g. {{topic: stock}}", name));
        continue;
      }
      TableDeclaration table{name, {}, "json", at(entry.first)};
      bool ok = true;
      for (const auto& field : body) {
        const auto key = field.first.as<std::string>();
        if (key != "topic" && key != "format") {
          unknown(field.first, "field", key, {"topic", "format"},
                  fmt::format(" of table '{}'", name));
          ok = false;
          continue;
        }
        auto value = scalar_text(field.second, fmt::format("'{}' of table '{}'", key, name));
        if (!value) {
          ok = false;
        } else if (key == "topic") {
          table.topic = *value;
        } else if (*value != "json" && *value != "string") {
          error(at(field.second), fmt::format("'format' of table '{}' must be json or string "
                                              "(got '{}')",
                                              name, *value));
          ok = false;
        } else {
          table.format = *value;
        }
      }
      if (ok && table.topic.empty()) {
        error(at(entry.first), fmt::format("table '{}' needs 'topic': the topic it reads", name));
        ok = false;
      }
      if (ok)
        tables_.push_back(std::move(table));
    }
  }

  Location at(const YAML::Mark& mark) const { return detail::location_of(file_, mark); }
  Location at(const YAML::Node& node) const { return at(node.Mark()); }
  static int line_of(const YAML::Node& node) { return node.Mark().line + 1; }

  void error(Location where, std::string message) {
    diagnostics_.push_back({std::move(where), std::move(message)});
  }

  void unknown(const YAML::Node& node, std::string_view what, const std::string& name,
               const std::vector<std::string>& known, std::string_view of = {}) {
    auto suggestion = config::closest_match(name, known);
    error(at(node),
          fmt::format("unknown {} '{}'{}{}", what, name, of,
                      suggestion ? fmt::format(" (did you mean '{}'?)", *suggestion)
                                 : fmt::format("; expected one of {}", fmt::join(known, ", "))));
  }

  // ${VAR} and ${VAR:default} replaced from the environment. Anything else (a "${" without a
  // name and a closing brace) stays as it is. A scan, not std::regex: libstdc++'s regex
  // recurses per character and overflows the stack on long values.
  std::optional<std::string> substitute(const YAML::Node& node, const std::string& text) {
    auto name_char = [](char c, bool first) {
      return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
             (!first && std::isdigit(static_cast<unsigned char>(c)));
    };
    std::string out;
    bool ok = true;
    std::size_t i = 0;
    while (i < text.size()) {
      const auto open = text.find("${", i);
      if (open == std::string::npos)
        break;
      std::size_t end = open + 2;
      while (end < text.size() && name_char(text[end], end == open + 2))
        ++end;
      const auto name = text.substr(open + 2, end - open - 2);
      std::optional<std::string> fallback;
      std::size_t close = end;
      if (!name.empty() && end < text.size() && text[end] == ':') {
        close = text.find('}', end);
        if (close != std::string::npos)
          fallback = text.substr(end + 1, close - end - 1);
      }
      if (name.empty() || close == std::string::npos || close >= text.size() ||
          text[close] != '}') {
        out.append(text, i, open + 2 - i);  // not a variable: keep "${" and go on after it
        i = open + 2;
        continue;
      }
      out.append(text, i, open - i);
      i = close + 1;
      if (auto value = environment_(name)) {
        out += *value;
      } else if (fallback) {
        out += *fallback;
      } else {
        error(at(node), fmt::format("environment variable '{}' is not set (write ${{{}:default}} "
                                    "to give it a default)",
                                    name, name));
        ok = false;
      }
    }
    out.append(text, std::min(i, text.size()));
    if (!ok)
      return std::nullopt;
    return out;
  }

  std::optional<std::string> scalar_text(const YAML::Node& node, const std::string& what) {
    if (!node.IsScalar()) {
      error(at(node), fmt::format("{} must be a single value, not a {}", what,
                                  node.IsMap()        ? "mapping"
                                  : node.IsSequence() ? "list"
                                                      : "null"));
      return std::nullopt;
    }
    return substitute(node, node.Scalar());
  }

  // Where in the file a place inside a scalar's text is (`line` and `column` from 1, in
  // characters), when the text is the file's characters as they are: a plain or quoted scalar on
  // one line without escapes, or a literal block (|). Otherwise (folded lines, escapes,
  // substitutions) nullopt: the caller points at the scalar and names the place within it.
  std::optional<Location> inside(const YAML::Node& node, const std::string& text, int line,
                                 int column) const {
    const auto mark = node.Mark();
    if (mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= text_.size())
      return std::nullopt;
    const auto raw = std::string_view(text_).substr(static_cast<std::size_t>(mark.pos));
    if (raw.front() == '|') {
      if (raw.size() > 1 && std::isdigit(static_cast<unsigned char>(raw[1])))
        return std::nullopt;  // an explicit indentation: content may keep leading blanks
      // Content starts on the next line, indented by the first content line's indentation.
      std::size_t offset = raw.find('\n');
      if (offset == std::string_view::npos)
        return std::nullopt;
      ++offset;
      std::size_t indent = std::string_view::npos;
      for (std::size_t at = offset; at < raw.size() && indent == std::string_view::npos;) {
        const auto end = std::min(raw.find('\n', at), raw.size());
        const auto row = raw.substr(at, end - at);
        if (row.find_first_not_of(' ') != std::string_view::npos)
          indent = row.find_first_not_of(' ');
        at = end + 1;
      }
      if (indent == std::string_view::npos)
        return std::nullopt;
      return Location{file_, mark.line + 1 + line, static_cast<int>(indent) + column};
    }
    if (line != 1 || text.find('\n') != std::string::npos)
      return std::nullopt;
    const std::size_t quote = raw.front() == '"' || raw.front() == '\'' ? 1 : 0;
    if (raw.substr(quote, text.size()) != text)
      return std::nullopt;  // folded, escaped or substituted: not the file's characters
    return Location{file_, mark.line + 1, mark.column + 1 + static_cast<int>(quote) + column - 1};
  }

  // Compiles the expression in `node` for `field`; reports where inside it it fails.
  std::optional<Expression> expression(const FieldSpec& field, const YAML::Node& node,
                                       const std::string& text, const std::string& what) {
    auto compiled = Expression::compile(text, field.names);
    if (auto* failure = std::get_if<ExpressionError>(&compiled)) {
      const auto exact = inside(node, text, failure->line, failure->column);
      error(exact ? *exact : at(node),
            fmt::format("{}: the expression does not compile: {}{}", what, failure->message,
                        exact ? std::string()
                              : fmt::format(" (line {}, column {} of the expression)",
                                            failure->line, failure->column)));
      return std::nullopt;
    }
    return std::get<Expression>(std::move(compiled));
  }

  std::optional<nlohmann::json> field_value(const FieldSpec& field, const YAML::Node& node,
                                            const std::string& op,
                                            std::map<std::string, Expression>* compiled) {
    const auto what = fmt::format("field '{}' of '{}'", field.name, op);
    auto expect = [&](std::string_view expected) {
      error(at(node), fmt::format("{} must be {}", what, expected));
      return std::nullopt;
    };
    switch (field.type) {
      case FieldType::string:
      case FieldType::integer:
      case FieldType::boolean:
      case FieldType::scalar: {
        if (!node.IsScalar()) {
          const std::string type(to_string(field.type));
          return expect(fmt::format(
              "{} {} (got {})",
              std::string_view("aeiou").find(type.front()) == std::string_view::npos ? "a" : "an",
              type,
              node.IsNull()       ? "nothing"
              : node.IsSequence() ? "a list"
                                  : "a mapping"));
        }
        auto text = substitute(node, node.Scalar());
        if (!text)
          return std::nullopt;
        auto value = detail::scalar_to_json(node, *text);
        if (field.type == FieldType::string) {
          if (!field.choices.empty() &&
              std::find(field.choices.begin(), field.choices.end(), *text) == field.choices.end()) {
            return expect(
                fmt::format("one of {} (got '{}')", fmt::join(field.choices, ", "), *text));
          }
          return nlohmann::json(*text);
        }
        if (field.type == FieldType::integer && !value.is_number_integer())
          return expect(fmt::format("an integer (got '{}')", *text));
        if (field.type == FieldType::boolean && !value.is_boolean())
          return expect(fmt::format("true or false (got '{}')", *text));
        return value;
      }
      case FieldType::table: {
        if (!node.IsScalar())
          return expect("the name of a table of 'tables'");
        const auto& name = node.Scalar();
        std::vector<std::string> names;
        for (const auto& table : tables_)
          names.push_back(table.name);
        if (names.empty()) {
          error(at(node), fmt::format("{} names table '{}', but the pipeline declares no "
                                      "tables (add a 'tables:' section)",
                                      what, name));
          return std::nullopt;
        }
        if (std::find(names.begin(), names.end(), name) == names.end()) {
          unknown(node, "table", name, names, fmt::format(" in {}", what));
          return std::nullopt;
        }
        return nlohmann::json(name);
      }
      case FieldType::string_list: {
        if (node.IsScalar()) {
          auto text = substitute(node, node.Scalar());
          return text ? std::optional(nlohmann::json::array({*text})) : std::nullopt;
        }
        if (!node.IsSequence())
          return expect("a list of values");
        nlohmann::json list = nlohmann::json::array();
        for (const auto& item : node) {
          if (!item.IsScalar())
            return expect("a list of single values");
          auto text = substitute(item, item.Scalar());
          if (!text)
            return std::nullopt;
          list.push_back(*text);
        }
        return list;
      }
      case FieldType::expression: {
        if (!node.IsScalar())
          return expect("an expression (e.g. value.qty > 0)");
        auto text = substitute(node, node.Scalar());
        if (!text)
          return std::nullopt;
        auto parsed = expression(field, node, *text, what);
        if (!parsed)
          return std::nullopt;
        compiled->emplace("", std::move(*parsed));
        return nlohmann::json(*text);
      }
      case FieldType::expression_map: {
        if (!node.IsMap())
          return expect("a mapping of names to expressions");
        nlohmann::json map = nlohmann::json::object();
        bool valid = true;
        for (const auto& entry : node) {
          const auto name = entry.first.as<std::string>();
          if (!entry.second.IsScalar()) {
            error(at(entry.second), fmt::format("{}: '{}' must be an expression", what, name));
            valid = false;
            continue;
          }
          auto text = substitute(entry.second, entry.second.Scalar());
          auto parsed =
              text ? expression(field, entry.second, *text, fmt::format("{}, '{}'", what, name))
                   : std::nullopt;
          if (!parsed) {
            valid = false;
            continue;
          }
          compiled->emplace(name, std::move(*parsed));
          map[name] = *text;
        }
        if (!valid)
          return std::nullopt;
        return map;
      }
      case FieldType::string_map: {
        if (!node.IsMap())
          return expect("a mapping of names to values");
        nlohmann::json map = nlohmann::json::object();
        for (const auto& entry : node) {
          if (entry.second.IsNull()) {  // `y: null` or `y:`: the value null
            map[entry.first.Scalar()] = "null";
            continue;
          }
          if (!entry.second.IsScalar())
            return expect("a mapping of names to single values");
          auto text = substitute(entry.second, entry.second.Scalar());
          if (!text)
            return std::nullopt;
          map[entry.first.as<std::string>()] = *text;
        }
        return map;
      }
    }
    return std::nullopt;
  }

  // "'a' or 'b'", "one of 'a', 'b' or 'c'"
  static std::string alternatives_text(const std::vector<std::string>& fields) {
    std::string text = fields.size() > 2 ? "one of " : "";
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i > 0)
        text += i + 1 == fields.size() ? " or " : ", ";
      text += "'" + fields[i] + "'";
    }
    return text;
  }

  std::optional<Step> load_step(const YAML::Node& item, std::size_t index) {
    if (!item.IsMap() || item.size() != 1) {
      error(at(item),
            "a pipeline step is one operator and its fields, e.g. "
            "'- filter: {field: qty, op: \">\", value: 0}'");
      return std::nullopt;
    }
    const auto entry = *item.begin();
    const auto op = entry.first.as<std::string>();
    const auto* spec = registry_.find(op);
    if (spec == nullptr) {
      unknown(entry.first, "operator", op, registry_.names());
      return std::nullopt;
    }
    const auto& body = entry.second;
    if (!body.IsNull() && !body.IsMap()) {
      error(at(body),
            fmt::format("the fields of '{}' must be a mapping, e.g. {}", op, spec->example));
      return std::nullopt;
    }
    nlohmann::json fields = nlohmann::json::object();
    std::map<std::string, std::map<std::string, Expression>> expressions;
    bool ok = true;
    std::vector<std::string> known;
    for (const auto& field : spec->fields)
      known.push_back(field.name);
    std::set<std::string> given;  // present, valid or not: not reported again as missing
    if (body.IsMap()) {
      for (const auto& field_entry : body) {
        const auto name = field_entry.first.as<std::string>();
        given.insert(name);
        const auto it = std::find_if(spec->fields.begin(), spec->fields.end(),
                                     [&](const FieldSpec& f) { return f.name == name; });
        if (it == spec->fields.end()) {
          unknown(field_entry.first, "field", name, known, fmt::format(" of '{}'", op));
          ok = false;
          continue;
        }
        auto value = field_value(*it, field_entry.second, op, &expressions[name]);
        if (!value) {
          ok = false;
          continue;
        }
        fields[name] = std::move(*value);
      }
    }
    for (const auto& field : spec->fields) {
      if (given.contains(field.name))
        continue;
      if (field.required) {
        error(at(entry.first), fmt::format("'{}' needs field '{}': {}", op, field.name, field.doc));
        ok = false;
      } else if (field.default_value) {
        YAML::Node default_node(*field.default_value);
        if (auto value = field_value(field, default_node, op, &expressions[field.name]))
          fields[field.name] = std::move(*value);
      }
    }
    for (const auto& group : spec->alternatives) {
      std::vector<std::string> present;
      for (const auto& name : group.fields) {
        if (given.contains(name))
          present.push_back(name);
      }
      if (present.size() > 1) {
        Location where = at(entry.first);
        for (const auto& field_entry : body) {
          if (field_entry.first.as<std::string>() == present[1])
            where = at(field_entry.first);
        }
        error(where, fmt::format("'{}' takes {}, not both", op, alternatives_text(group.fields)));
        ok = false;
      } else if (present.empty() && group.required) {
        error(at(entry.first), fmt::format("'{}' needs {}", op, alternatives_text(group.fields)));
        ok = false;
      }
    }
    if (!ok)
      return std::nullopt;
    static_cast<void>(index);
    OperatorConfig config(op, at(entry.first), fields, std::move(expressions));
    if (body.IsMap()) {
      for (const auto& field_entry : body)
        config.set_where(field_entry.first.as<std::string>(), at(field_entry.second));
    }
    return Step{spec, std::move(config)};
  }

  void load_steps(const YAML::Node& pipeline) {
    if (!pipeline) {
      error({file_, 1, 1}, "missing 'pipeline': the list of steps, from a source to a sink");
      return;
    }
    if (!pipeline.IsSequence() || pipeline.size() == 0) {
      error(at(pipeline), "'pipeline' must be a list of steps, from a source to a sink");
      return;
    }
    std::vector<Step> steps;
    std::size_t index = 0;
    for (const auto& item : pipeline) {
      if (auto step = load_step(item, index++))
        steps.push_back(std::move(*step));
    }
    if (!diagnostics_.empty())
      return;
    // Shape: a source first, a sink last, processors between.
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto kind = steps[i].spec->kind;
      const auto& where = steps[i].config.where();
      if (i == 0 && kind != OperatorKind::source) {
        error(where, fmt::format("a pipeline starts with a source (e.g. 'from'), not '{}'",
                                 steps[i].config.op()));
      } else if (i > 0 && kind == OperatorKind::source) {
        error(where, fmt::format("'{}' is a source: only the first step may be one",
                                 steps[i].config.op()));
      } else if (i + 1 < steps.size() && kind == OperatorKind::sink) {
        error(where,
              fmt::format("'{}' is a sink: only the last step may be one", steps[i].config.op()));
      }
    }
    if (steps.back().spec->kind != OperatorKind::sink) {
      error(steps.back().config.where(),
            fmt::format("the pipeline ends with '{}'; its last step must be a sink (e.g. 'to')",
                        steps.back().config.op()));
    }
    if (!diagnostics_.empty())
      return;
    std::map<std::string, Table, std::less<>> tables;
    for (const auto& table : tables_) {
      try {
        tables.emplace(table.name, builder_.table(table.topic, record_serdes(table.format),
                                                  table.name, "table-" + table.name));
      } catch (const std::invalid_argument& e) {
        error(table.where, e.what());
        return;
      }
    }
    // A step that fails to build is reported, and the steps after it are built on its input
    // as if it were not there, so that one run reports theirs too (after a source, nothing can
    // be).
    std::optional<Stream> stream;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      BuildContext context{builder_, fmt::format("{}-{}", i + 1, steps[i].config.op()), tables};
      try {
        stream = steps[i].spec->build(context, steps[i].config, stream);
      } catch (const FieldErrors& e) {
        for (const auto& problem : e.problems())
          error(steps[i].config.where(problem.field), problem.message);
      } catch (const std::invalid_argument& e) {
        error(steps[i].config.where(), e.what());
      }
      if (!stream)
        return;
    }
  }

  LoadResult finish() {
    LoadResult result;
    result.properties = properties_;
    if (!diagnostics_.empty()) {
      std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                       [](const Diagnostic& a, const Diagnostic& b) {
                         return std::pair(a.where.line, a.where.column) <
                                std::pair(b.where.line, b.where.column);
                       });
      result.diagnostics = std::move(diagnostics_);
      return result;
    }
    result.pipeline = Pipeline{application_id_, properties_, builder_.build()};
    return result;
  }

  std::string file_;
  std::string text_;
  const Registry& registry_;
  Environment environment_;
  std::vector<Diagnostic> diagnostics_;
  std::string application_id_;
  config::Properties properties_;
  std::vector<TableDeclaration> tables_;
  StreamBuilder builder_;
};

}  // namespace

LoadResult load_pipeline(const std::string& text, const std::string& file, const Registry& registry,
                         const Environment& environment) {
  Environment lookup = environment ? environment : [](const std::string& name) {
    const char* value = std::getenv(name.c_str());
    return value ? std::optional<std::string>(value) : std::nullopt;
  };
  return Loader(file, registry, lookup).load(text);
}

LoadResult load_pipeline_file(const std::filesystem::path& path, const Registry& registry) {
  std::string why_not;
  const auto text = detail::read_text(path, why_not);
  if (!text) {
    LoadResult result;
    result.diagnostics.push_back({{path.string(), 0, 0}, why_not});
    return result;
  }
  return load_pipeline(*text, path.string(), registry);
}

}  // namespace streamrun::dsl
