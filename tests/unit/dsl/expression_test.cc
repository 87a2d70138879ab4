#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <streamrun/dsl/expression.h>

namespace streamrun::dsl {
namespace {

using nlohmann::json;

Expression compiled(const std::string& source, std::vector<std::string> names = {"key", "value"}) {
  auto result = Expression::compile(source, std::move(names));
  if (auto* error = std::get_if<ExpressionError>(&result))
    throw std::runtime_error(error->message);
  return std::get<Expression>(std::move(result));
}

ExpressionError error_of(const std::string& source) {
  auto result = Expression::compile(source, {"key", "value"});
  EXPECT_TRUE(std::holds_alternative<ExpressionError>(result)) << source;
  return std::holds_alternative<ExpressionError>(result) ? std::get<ExpressionError>(result)
                                                         : ExpressionError{};
}

json eval(const Expression& expression, const json& value, const json& key = "k") {
  const json* arguments[] = {&key, &value};
  return expression.evaluate(arguments);
}

TEST(ExpressionTest, ReadsFieldsOfTheValueAndTheKey) {
  const json order = {{"sku", "A"}, {"qty", 3}, {"price", 2.5}, {"tags", {"x", "y"}}};
  EXPECT_EQ(eval(compiled("value.qty * value.price"), order), 7.5);
  EXPECT_EQ(eval(compiled("value.qty + 1"), order), 4);  // integers stay integers
  EXPECT_EQ(eval(compiled("key .. ':' .. value.sku"), order), "k:A");
  EXPECT_EQ(eval(compiled("value.tags[2]"), order), "y");  // arrays count from 1
  EXPECT_EQ(eval(compiled("#value.tags"), order), 2);
  EXPECT_EQ(eval(compiled("string.lower(value.sku)"), order), "a");
  EXPECT_EQ(eval(compiled("value.missing"), order), nullptr);
}

TEST(ExpressionTest, TablesComeBackAsArraysOrObjects) {
  EXPECT_EQ(eval(compiled("{1, 2, 3}"), {}), json::array({1, 2, 3}));
  EXPECT_EQ(eval(compiled("{total = value.a + value.b, ok = true}"), {{"a", 1}, {"b", 2}}),
            json({{"total", 3}, {"ok", true}}));
  EXPECT_EQ(eval(compiled("value"), {{"a", {{"b", 1}}}}), json({{"a", {{"b", 1}}}}));
  EXPECT_EQ(eval(compiled("{}"), {}), json::object());
}

TEST(ExpressionTest, ABlockOfStatementsEndsWithReturn) {
  const auto expression = compiled(
      "local total = 0\n"
      "for _, line in ipairs(value.lines) do total = total + line.qty end\n"
      "return total");
  EXPECT_EQ(eval(expression, {{"lines", {{{"qty", 2}}, {{"qty", 5}}}}}), 7);
}

TEST(ExpressionTest, TestIsLuaTruth) {
  const auto expression = compiled("value.x");
  const json key = "k";
  for (const auto& [value, expected] :
       std::vector<std::pair<json, bool>>{{{{"x", 0}}, true},
                                          {{{"x", ""}}, true},
                                          {{{"x", false}}, false},
                                          {json::object(), false},
                                          {{{"x", nullptr}}, false}}) {
    const json* arguments[] = {&key, &value};
    EXPECT_EQ(expression.test(arguments), expected) << value.dump();
  }
}

TEST(ExpressionTest, CompileErrorsNameTheLineAndColumnInsideTheExpression) {
  auto error = error_of("value.qty >> > 0");
  EXPECT_EQ(error.line, 1);
  EXPECT_EQ(error.column, 14);  // the lone >
  EXPECT_EQ(error.message, "unexpected symbol near '>'");

  error = error_of("value.qty > 0 and (value.sku");
  EXPECT_EQ(error.line, 1);
  EXPECT_EQ(error.column, 29);  // just past the end
  EXPECT_EQ(error.message, "')' expected near <eof>");

  error = error_of("local x = 1\nreturn x +* 2");
  EXPECT_EQ(error.line, 2);
  EXPECT_EQ(error.column, 11);

  error = error_of("value.a and value.b and and value.c");  // the second 'and' of two
  EXPECT_EQ(error.column, 25);
  EXPECT_EQ(error.message, "unexpected symbol near 'and'");

  EXPECT_EQ(error_of("  ").message, "an empty expression");
}

// The message of the failure of `source` on `value`.
std::string failure(const std::string& source, const json& value = json::object()) {
  const auto expression = compiled(source);
  try {
    (void)eval(expression, value);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no failure";
}

TEST(ExpressionTest, RuntimeFailuresNameTheExpression) {
  EXPECT_EQ(failure("value.qty + 1", {{"qty", "many"}}),
            "expression `value.qty + 1` failed: attempt to add a 'string' with a 'number'");
  EXPECT_EQ(failure("qty > 0"),
            "expression `qty > 0` failed: unknown name 'qty' (fields of the record are "
            "value.qty)");
}

TEST(ExpressionTest, ExpressionsCannotReachOutsideOrKeepState) {
  EXPECT_NE(failure("io.open('/etc/passwd')").find("unknown name 'io'"), std::string::npos);
  EXPECT_NE(failure("os.execute('true')").find("unknown name 'os'"), std::string::npos);
  EXPECT_NE(failure("load('return 1')").find("unknown name 'load'"), std::string::npos);
  EXPECT_NE(failure("require('os')").find("unknown name 'require'"), std::string::npos);
  EXPECT_NE(failure("seen = true\nreturn seen").find("line 1: cannot set global 'seen'"),
            std::string::npos);
  EXPECT_NE(failure("string.seen = 1").find("cannot change 'seen': libraries are read-only"),
            std::string::npos);
  EXPECT_NE(failure("string.upper = nil").find("read-only"), std::string::npos);
  EXPECT_NE(failure("math.pi = 3").find("read-only"), std::string::npos);
  EXPECT_NE(failure("rawset(string, 'x', 1)").find("unknown name 'rawset'"), std::string::npos);
  EXPECT_NE(failure("getmetatable('').__index.upper").find("unknown name 'getmetatable'"),
            std::string::npos);
  EXPECT_EQ(eval(compiled("string.upper(value.s) .. ('x'):rep(2)"), {{"s", "a"}}), "Axx");
}

TEST(ExpressionTest, RunawayExpressionsFailTheirRecordOnly) {
  EXPECT_NE(failure("while true do end").find("ran more than"), std::string::npos);
  EXPECT_NE(failure("string.rep('x', 1 << 30)").find("used more than 64 MiB of memory"),
            std::string::npos);
  // A limit cannot be caught: pcall is not there to catch it.
  EXPECT_NE(failure("local f = function() while true do end end\n"
                    "while true do pcall(f) end")
                .find("unknown name 'pcall'"),
            std::string::npos);
  EXPECT_NE(failure("local t = {}\nt.self = t\nreturn t").find("nested deeper than"),
            std::string::npos);
  EXPECT_NE(failure("print").find("unknown name 'print'"), std::string::npos);
  EXPECT_NE(failure("string.len").find("not a JSON value"), std::string::npos);
  EXPECT_NE(failure("0/0").find("inf or nan"), std::string::npos);
  // The thread's state is still usable afterwards.
  EXPECT_EQ(eval(compiled("value.n * 2"), {{"n", 21}}), 42);
}

TEST(ExpressionTest, ThreadsEvaluateOneExpressionAtOnce) {
  const auto expression = compiled("value.n * value.n");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const int n = t * 10000 + i;
        if (eval(expression, {{"n", n}}) != static_cast<std::int64_t>(n) * n)
          ++wrong;
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace streamrun::dsl
