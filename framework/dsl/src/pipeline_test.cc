#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <streamrun/dsl/pipeline_test.h>

#include "yaml_support.h"

namespace streamrun::dsl {
namespace {

class SuiteLoader {
 public:
  explicit SuiteLoader(std::filesystem::path path) : path_(std::move(path)) {}

  TestSuiteLoadResult load() {
    TestSuiteLoadResult result;
    std::string why_not;
    const auto text = detail::read_text(path_, why_not);
    if (!text) {
      error({path_.string(), 0, 0}, why_not);
      return finish();
    }
    const auto document = detail::load_document(
        *text, "test suite", [&](const YAML::Mark& mark, std::string message) {
          error(mark.pos < 0 ? Location{path_.string(), 1, 1} : at(mark), std::move(message));
        });
    if (!document)
      return finish();
    const YAML::Node& root = *document;
    if (!root.IsMap()) {
      error({path_.string(), 1, 1}, "a test file is a mapping with 'pipeline' and 'tests'");
      return finish();
    }
    if (!detail::check_structure(
            root, [&](const YAML::Node& node, std::string message) { error(at(node), message); }))
      return finish();
    if (root["application"] && !root["tests"]) {
      error({path_.string(), 1, 1},
            "this is a pipeline, not a test file: check it with "
            "`streamrun lint`, run it with `streamrun run`; its tests "
            "go in a file like NAME.test.yaml (docs/pipelines.md)");
      return finish();
    }
    for (const auto& entry : root) {
      const auto key = entry.first.as<std::string>();
      if (key != "pipeline" && key != "partitions" && key != "tests")
        error(at(entry.first), fmt::format("unknown top-level key '{}'; expected pipeline, "
                                           "partitions or tests",
                                           key));
    }
    PipelineTestSuite suite;
    if (auto pipeline = root["pipeline"]; pipeline && pipeline.IsScalar()) {
      suite.pipeline = path_.parent_path() / pipeline.Scalar();
    } else {
      error(pipeline ? at(pipeline) : Location{path_.string(), 1, 1},
            "'pipeline' must name the pipeline file to test (relative to this file)");
    }
    if (auto partitions = root["partitions"]) {
      if (!partitions.IsMap()) {
        error(at(partitions), "'partitions' must map topics to partition counts");
      } else {
        for (const auto& entry : partitions) {
          const auto count = entry.second.IsScalar()
                                 ? detail::scalar_to_json(entry.second, entry.second.Scalar())
                                 : nlohmann::json();
          if (count.is_number_integer() && count.get<std::int64_t>() >= 1 &&
              count.get<std::int64_t>() <= 100'000) {
            suite.partitions[entry.first.Scalar()] =
                static_cast<std::int32_t>(count.get<std::int64_t>());
          } else {
            error(at(entry.second), "a partition count must be a whole number from 1 to 100000");
          }
        }
      }
    }
    const auto tests = root["tests"];
    if (!tests || !tests.IsSequence() || tests.size() == 0) {
      error(tests ? at(tests) : Location{path_.string(), 1, 1},
            "'tests' must be a list of tests, each with name, input and expect");
      return finish();
    }
    for (const auto& test : tests)
      load_case(test, suite);
    if (diagnostics_.empty())
      result.suite = std::move(suite);
    result.diagnostics = std::move(diagnostics_);
    return result;
  }

 private:
  Location at(const YAML::Mark& mark) const { return detail::location_of(path_.string(), mark); }
  Location at(const YAML::Node& node) const { return at(node.Mark()); }
  void error(Location where, std::string message) {
    diagnostics_.push_back({std::move(where), std::move(message)});
  }
  TestSuiteLoadResult finish() {
    TestSuiteLoadResult result;
    result.diagnostics = std::move(diagnostics_);
    return result;
  }

  // A YAML value as JSON (quoted text stays text).
  static nlohmann::json to_json(const YAML::Node& node) {
    if (node.IsMap()) {
      auto object = nlohmann::json::object();
      for (const auto& entry : node)
        object[entry.first.as<std::string>()] = to_json(entry.second);
      return object;
    }
    if (node.IsSequence()) {
      auto array = nlohmann::json::array();
      for (const auto& item : node)
        array.push_back(to_json(item));
      return array;
    }
    if (!node.IsScalar())
      return nullptr;
    return detail::scalar_to_json(node, node.Scalar());
  }

  std::optional<TestRecordSpec> record(const YAML::Node& node, bool input) {
    if (!node.IsMap()) {
      error(at(node), "a record is a mapping: {key, value} or {key, text}");
      return std::nullopt;
    }
    TestRecordSpec spec;
    spec.where = at(node);
    for (const auto& entry : node) {
      const auto field = entry.first.as<std::string>();
      const auto& value = entry.second;
      // The text of a scalar field; reported (and nullopt) otherwise.
      auto text = [&]() -> std::optional<std::string> {
        if (value.IsScalar())
          return value.Scalar();
        error(at(value), fmt::format("'{}' of a record must be a single value", field));
        return std::nullopt;
      };
      if (field == "topic" && input) {
        spec.topic = text().value_or("");
      } else if (field == "key") {
        if (!value.IsNull())
          spec.key = text();
      } else if (field == "value") {
        auto json = to_json(value);
        if (!json.is_null())
          spec.bytes = json.dump();
      } else if (field == "text") {
        spec.bytes = text();
      } else if (field == "timestamp") {
        const auto time =
            value.IsScalar() ? detail::scalar_to_json(value, value.Scalar()) : nlohmann::json();
        spec.timestamp_given = true;
        if (time.is_number_integer() && time.get<std::int64_t>() >= 0)
          spec.timestamp_ms = time.get<std::int64_t>();
        else
          error(at(value),
                "'timestamp' of a record must be milliseconds since the epoch (a "
                "whole number, 0 or more)");
      } else if (field == "wait_ms" && input) {
        const auto wait =
            value.IsScalar() ? detail::scalar_to_json(value, value.Scalar()) : nlohmann::json();
        if (wait.is_number_integer() && wait.get<std::int64_t>() >= 0)
          spec.wait_ms = wait.get<std::int64_t>();
        else
          error(at(value), "'wait_ms' must be milliseconds (a whole number, 0 or more)");
        if (!spec.wait_ms)
          spec.wait_ms = 0;  // reported; a wait all the same, which needs no topic
      } else {
        error(at(entry.first), fmt::format("unknown field '{}' of a record; expected {}key, "
                                           "value, text or timestamp{}",
                                           field, input ? "topic, " : "",
                                           input ? " (or wait_ms alone)" : ""));
      }
    }
    if (spec.wait_ms) {
      if (node.size() != 1) {
        error(spec.where, "{wait_ms: N} moves the clock on: it takes no other field");
        return std::nullopt;
      }
      return spec;
    }
    if (input && spec.topic.empty()) {
      error(spec.where, "an input record needs 'topic'");
      return std::nullopt;
    }
    return spec;
  }

  void load_case(const YAML::Node& test, PipelineTestSuite& suite) {
    if (!test.IsMap()) {
      error(at(test), "a test is a mapping with name, input and expect");
      return;
    }
    PipelineTestCase test_case;
    test_case.where = at(test);
    if (test["name"] && !test["name"].IsScalar())
      error(at(test["name"]), "a test's 'name' must be a single value");
    test_case.name = test["name"] && test["name"].IsScalar()
                         ? test["name"].Scalar()
                         : fmt::format("test at line {}", test_case.where.line);
    if (const auto input = test["input"]; input && input.IsSequence()) {
      for (const auto& item : input) {
        if (auto spec = record(item, /*input=*/true))
          test_case.input.push_back(std::move(*spec));
      }
    } else {
      error(input ? at(input) : test_case.where, "'input' must be a list of records to pipe");
    }
    if (const auto expect = test["expect"]; expect && expect.IsMap()) {
      for (const auto& entry : expect) {
        auto& records = test_case.expect[entry.first.as<std::string>()];
        if (entry.second.IsNull())
          continue;  // expects nothing written there
        if (!entry.second.IsSequence()) {
          error(at(entry.second), "the records expected in a topic are a list");
          continue;
        }
        for (const auto& item : entry.second) {
          if (auto spec = record(item, /*input=*/false))
            records.push_back(std::move(*spec));
        }
      }
    } else {
      error(expect ? at(expect) : test_case.where,
            "'expect' must map each topic to the records expected in it");
    }
    suite.cases.push_back(std::move(test_case));
  }

  std::filesystem::path path_;
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace

TestSuiteLoadResult load_test_suite(const std::filesystem::path& path) {
  return SuiteLoader(path).load();
}

}  // namespace streamrun::dsl
