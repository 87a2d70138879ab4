#pragma once

// The operators a YAML pipeline can use, each described by a spec: its fields (name, type,
// default, doc), a one-line summary and an example. Validation, `streamrun operators` and the
// JSON Schema all come from the specs. Register the built-ins with
// operators::register_builtin_operators(registry); an application registers its own the same
// way and then uses them from YAML.

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <streamrun/core/stream_builder.h>
#include <streamrun/dsl/expression.h>

namespace streamrun::dsl {

// A place in a pipeline file. line and column count from 1.
struct Location {
  std::string file;
  int line = 0;
  int column = 0;
  [[nodiscard]] std::string to_string() const;  // "FILE:LINE:COL"
};

// Records in YAML pipelines: a nullable string key and a JSON value.
using Key = std::optional<std::string>;
using Stream = KStream<Key, nlohmann::json>;
using Table = KTable<Key, nlohmann::json>;

// Serdes of records in a topic of the given format: "json" (a JSON document; null stays null,
// a tombstone) or "string" (text, as a JSON string).
[[nodiscard]] Serdes<Key, nlohmann::json> record_serdes(std::string_view format);

enum class FieldType {
  string,          // a YAML scalar, taken as text
  integer,         // a whole number
  boolean,         // true or false
  scalar,          // any scalar: number, boolean or text (compared as JSON)
  string_list,     // a list of scalars, taken as text
  string_map,      // a mapping of names to scalars, taken as text
  table,           // the name of a table of the pipeline's `tables:` section
  expression,      // a Lua expression, compiled at load (dsl/expression.h)
  expression_map,  // a mapping of names to Lua expressions
};
[[nodiscard]] std::string_view to_string(FieldType type);

struct FieldSpec {
  std::string name;
  FieldType type = FieldType::string;
  bool required = false;
  std::optional<std::string> default_value;  // as YAML text
  std::string doc;
  std::vector<std::string> choices;  // allowed values of a string field (empty: any)
  // The variables an expression field sees, in the order its operator passes their values.
  std::vector<std::string> names = {"key", "value"};
};

// Thrown by an operator's build function for what is wrong with its fields, all of them at
// once: each problem is reported at its field's place in the file.
class FieldErrors : public std::invalid_argument {
 public:
  struct Problem {
    std::string field;
    std::string message;  // names the field by its YAML name
  };
  explicit FieldErrors(std::vector<Problem> problems);
  [[nodiscard]] const std::vector<Problem>& problems() const noexcept { return problems_; }

 private:
  std::vector<Problem> problems_;
};

// The validated fields of one use of an operator, with defaults filled in.
class OperatorConfig {
 public:
  // `expressions`: the compiled expression fields, by field and then name ("" for a single
  // expression, the mapping's names for an expression_map).
  OperatorConfig(std::string op, Location where, const nlohmann::json& fields,
                 std::map<std::string, std::map<std::string, Expression>> expressions = {});
  ~OperatorConfig();
  OperatorConfig(const OperatorConfig&);
  OperatorConfig& operator=(const OperatorConfig&);

  [[nodiscard]] const std::string& op() const noexcept { return op_; }
  [[nodiscard]] const Location& where() const noexcept { return where_; }
  // Where `field`'s value is in the file (where() when it was not given).
  [[nodiscard]] const Location& where(const std::string& field) const;
  void set_where(const std::string& field, Location where);
  // Whether the file gave `field` (has() is also true for a default).
  [[nodiscard]] bool given(const std::string& field) const { return field_where_.contains(field); }
  [[nodiscard]] bool has(const std::string& field) const;
  [[nodiscard]] std::string string(const std::string& field) const;
  [[nodiscard]] std::int64_t integer(const std::string& field) const;
  [[nodiscard]] bool boolean(const std::string& field) const;
  [[nodiscard]] nlohmann::json scalar(const std::string& field) const;
  [[nodiscard]] std::vector<std::string> string_list(const std::string& field) const;
  [[nodiscard]] std::map<std::string, std::string> string_map(const std::string& field) const;
  [[nodiscard]] const Expression& expression(const std::string& field) const;
  [[nodiscard]] const std::map<std::string, Expression>& expression_map(
      const std::string& field) const;

 private:
  std::string op_;
  Location where_;
  std::unique_ptr<nlohmann::json> fields_;
  std::map<std::string, std::map<std::string, Expression>> expressions_;
  std::map<std::string, Location> field_where_;
};

// What an operator's build function may use while the topology is built.
struct BuildContext {
  StreamBuilder& builder;
  // The operator's name in the topology: "<pipeline step>-<op>", unique.
  std::string node_name;
  // The pipeline's tables (its `tables:` section), by name.
  const std::map<std::string, Table, std::less<>>& tables;
};

// A source makes a stream from nothing, a processor turns its input stream into another, a
// sink ends the pipeline (returns nullopt).
enum class OperatorKind { source, processor, sink };

// Fields that say one thing in different ways (a field path or an expression): at most one of
// them may be given, and with `required` exactly one. The loader checks this with the fields.
struct Alternatives {
  std::vector<std::string> fields;
  bool required = true;
};

struct OperatorSpec {
  std::string name;
  OperatorKind kind = OperatorKind::processor;
  std::string summary;
  std::vector<FieldSpec> fields;
  std::vector<Alternatives> alternatives;
  std::string example;  // a YAML step using the operator
  // Throws std::invalid_argument naming the field for a value the field checks cannot catch.
  std::function<std::optional<Stream>(BuildContext&, const OperatorConfig&,
                                      std::optional<Stream> input)>
      build;
};

class Registry;

// The specs as text: per operator its summary, fields (type, required or default, doc) and
// example; one operator when `name` is given. What `streamrun operators` prints and
// docs/pipelines.md shows.
[[nodiscard]] std::string describe_operators(const Registry& registry, std::string_view name = {});

// A JSON Schema (draft-07) of pipeline files, generated from the specs, for editors to complete
// and check pipelines with (`streamrun schema`; docs/pipelines.md says how to wire it in).
[[nodiscard]] std::string pipeline_schema(const Registry& registry);

class Registry {
 public:
  // Throws std::logic_error when an operator of that name is registered already.
  void add(OperatorSpec spec);
  [[nodiscard]] const OperatorSpec* find(std::string_view name) const;
  [[nodiscard]] std::vector<std::string> names() const;
  [[nodiscard]] const std::map<std::string, OperatorSpec, std::less<>>& specs() const noexcept {
    return specs_;
  }

 private:
  std::map<std::string, OperatorSpec, std::less<>> specs_;
};

}  // namespace streamrun::dsl
