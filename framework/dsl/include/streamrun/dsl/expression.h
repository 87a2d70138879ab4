#pragma once

// Expressions of YAML pipelines, in Lua 5.4: `value.qty > 0`, `value.price * value.qty`,
// `string.lower(value.sku)`. An expression is compiled once, when the pipeline loads, and then
// evaluated per record with no parsing. It sees the names its operator gives it (usually `key`
// and `value`; `agg` too in reduce and aggregate), JSON values as Lua values (objects and arrays
// as tables, arrays from 1, null as nil), and the string, math, table and utf8 libraries; it
// cannot read files, run programs, set globals or keep anything from one record to the next.
// A runaway expression (more than kMaxInstructions steps or kMaxMemory bytes) fails its record.
//
// Thread-safety: an Expression may be evaluated from any number of threads and fibers at once;
// each thread keeps its own Lua state, and an evaluation never yields.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace streamrun::dsl {

// Where an expression failed to compile: line and column inside its source, from 1.
struct ExpressionError {
  int line = 1;
  int column = 1;
  std::string message;  // Lua's, without its chunk prefix, e.g. "unexpected symbol near '>'"
};

class Expression {
 public:
  static constexpr std::int64_t kMaxInstructions = 10'000'000;
  static constexpr std::size_t kMaxMemory = 64u << 20;  // bytes per thread's Lua state

  // Compiles `source`: a Lua expression (`value.qty > 0`) or a block of statements ending in
  // `return` (for anything longer). `names` are the variables it sees, in the order evaluate()
  // is given their values.
  [[nodiscard]] static std::variant<Expression, ExpressionError> compile(
      const std::string& source, std::vector<std::string> names);

  // The value of the expression, one argument per name (nullptr: nil). Lua tables come back as
  // JSON arrays when their keys are 1..n, else as objects ({} is an empty object). Throws
  // std::runtime_error naming the expression when it fails (a record-level failure: the error
  // policy handles it).
  [[nodiscard]] nlohmann::json evaluate(std::span<const nlohmann::json* const> arguments) const;
  // Whether the value is true as Lua sees it: anything but nil and false (0 and "" are true).
  [[nodiscard]] bool test(std::span<const nlohmann::json* const> arguments) const;

  [[nodiscard]] const std::string& source() const noexcept;
  [[nodiscard]] const std::vector<std::string>& names() const noexcept;

  struct Compiled;  // the source and its bytecode (expression.cc)

 private:
  explicit Expression(std::shared_ptr<const Compiled> compiled) : compiled_(std::move(compiled)) {}
  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace streamrun::dsl
