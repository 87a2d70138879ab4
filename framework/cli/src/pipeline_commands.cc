#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <streamrun/base/log.h>
#include <streamrun/config/config.h>
#include <streamrun/dsl/pipeline.h>
#include <streamrun/dsl/pipeline_test.h>
#include <streamrun/kafka/client_config.h>
#include <streamrun/operators/builtin.h>
#include <streamrun/runtime/application.h>
#include <streamrun/runtime/runtime_config.h>
#include <streamrun/testing/topology_test_driver.h>

#include "commands.h"

namespace streamrun::cli {
namespace {

const dsl::Registry& builtin_registry() {
  static const dsl::Registry registry = [] {
    dsl::Registry r;
    operators::register_builtin_operators(r);
    return r;
  }();
  return registry;
}

// Loads a pipeline and checks its properties as the runtime will, printing every problem;
// nullopt when there was one.
std::optional<dsl::Pipeline> load(const std::string& file) {
  auto loaded = dsl::load_pipeline_file(file, builtin_registry());
  auto diagnostics = std::move(loaded.diagnostics);
  const bool structure_ok = diagnostics.empty();
  for (const auto& problem :
       config::Config::check(loaded.properties, runtime::RuntimeProperties::definition(),
                             &kafka::client_property_schema())) {
    const auto& source = problem.source;
    if (source.origin.empty() && !structure_ok)
      continue;  // a missing application.id: the pipeline's own errors say why
    diagnostics.push_back(
        {{source.origin.empty() ? file : source.origin, source.line, source.column},
         problem.message});
  }
  std::stable_sort(diagnostics.begin(), diagnostics.end(),
                   [](const dsl::Diagnostic& a, const dsl::Diagnostic& b) {
                     return std::pair(a.where.line, a.where.column) <
                            std::pair(b.where.line, b.where.column);
                   });
  for (const auto& diagnostic : diagnostics)
    std::fprintf(stderr, "%s\n", diagnostic.to_string().c_str());
  if (!diagnostics.empty())
    return std::nullopt;
  return std::move(loaded.pipeline);
}

}  // namespace

void add_pipeline_commands(CLI::App& app, PipelineOptions& options) {
  auto* run = app.add_subcommand(
      "run",
      "Run a YAML pipeline until SIGINT/SIGTERM (also: streamrun FILE); restarted, it "
      "resumes from its committed state");
  run->add_option("file", options.file, "The pipeline file")->required();
  run->add_option("--set", options.overrides,
                  "Override a property, KEY=VALUE (repeatable; wins over the file)");

  auto* lint = app.add_subcommand(
      "lint", "Check pipeline files; exit 0 when all are valid, 1 with every error otherwise");
  lint->add_option("files", options.files, "Pipeline files")->required();

  auto* describe = app.add_subcommand("describe", "Print the topology a pipeline file builds");
  describe->add_option("file", options.file, "The pipeline file")->required();
  describe->add_option("--format", options.format, "text or mermaid")
      ->check(CLI::IsMember({"text", "mermaid"}))
      ->capture_default_str();

  auto* topics = app.add_subcommand(
      "topics",
      "Print every topic a pipeline reads or writes, one per line as NAME:PARTITIONS (what "
      "`streamrun broker --topic` takes) and its role: inputs and outputs, then the internal "
      "topics the pipeline creates at start where the cluster has an Admin API (create them "
      "beforehand where it has none, as on the development broker)");
  topics->add_option("file", options.file, "The pipeline file")->required();
  topics->add_option("--partitions", options.partitions, "Partitions of the input topics")
      ->check(CLI::Range(1, 100'000))
      ->capture_default_str();
  topics->add_option("--set", options.overrides,
                     "Override a property, KEY=VALUE (repeatable; wins over the file)");

  auto* test = app.add_subcommand(
      "test",
      "Run the tests of pipelines (YAML test files: input records and the records "
      "expected per topic) on the test driver, without a broker; prints a diff on "
      "failure; exit 0 when all pass, 1 otherwise");
  test->add_option("files", options.files, "Test files (e.g. pipelines/inventory.test.yaml)")
      ->required();

  app.add_subcommand("schema",
                     "Print a JSON Schema of pipeline files (for editors: see "
                     "docs/pipelines.md)");

  auto* list = app.add_subcommand("operators", "Describe the operators pipelines can use");
  list->add_option("name", options.operator_name, "One operator (default: all)");
}

namespace {

// The pipeline of options.file, its properties with the --set overrides on top; nullopt, having
// said why, when either is invalid, with the exit status in `status` (1: the file, 2: usage).
struct Configured {
  dsl::Pipeline pipeline;
  config::Properties properties;
};
std::optional<Configured> load_configured(const PipelineOptions& options, int& status) {
  auto pipeline = load(options.file);
  if (!pipeline) {
    status = 1;
    return std::nullopt;
  }
  auto overrides = config::Properties::from_assignments(options.overrides, "--set");
  if (!overrides) {
    std::fprintf(stderr, "%s\n", overrides.error().message().c_str());
    status = 2;
    return std::nullopt;
  }
  auto properties = pipeline->properties;
  properties.merge(*overrides);
  return Configured{std::move(*pipeline), std::move(properties)};
}

std::string status_text(const runtime::ApplicationStats& stats, double records_per_second) {
  const auto bytes = static_cast<double>(stats.state_bytes);
  const std::string state = bytes >= (1 << 30)   ? fmt::format("{:.1f} GiB", bytes / (1 << 30))
                            : bytes >= (1 << 20) ? fmt::format("{:.1f} MiB", bytes / (1 << 20))
                                                 : fmt::format("{:.0f} KiB", bytes / 1024);
  return fmt::format(
      "streamrun: {:.0f} records/s · {} processed · lag {} · dead-lettered {} · state {} · {} "
      "task{}",
      records_per_second, stats.records_processed, stats.lag_records, stats.records_dead_lettered,
      state, stats.active_tasks, stats.active_tasks == 1 ? "" : "s");
}

// Redraws status_text() every second from the application's stats, on its own thread, until
// stop().
class StatusLine {
 public:
  StatusLine(runtime::Application& app, bool enabled) {
    if (!enabled)
      return;
    thread_ = std::thread([this, &app] {
      auto last = app.stats().records_processed;
      auto last_at = std::chrono::steady_clock::now();
      std::unique_lock lock(mutex_);
      while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
        const auto stats = app.stats();
        const auto now = std::chrono::steady_clock::now();
        const double seconds = std::chrono::duration<double>(now - last_at).count();
        const double rate =
            seconds > 0 ? static_cast<double>(stats.records_processed - last) / seconds : 0;
        last = stats.records_processed;
        last_at = now;
        log::set_status_line(status_text(stats, rate));
      }
      log::set_status_line(std::nullopt);
    });
  }
  ~StatusLine() { stop(); }
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

int run_pipeline(const PipelineOptions& options) {
  int status = 0;
  auto configured = load_configured(options, status);
  if (!configured)
    return status;
  auto& [pipeline, properties] = *configured;
  auto logger = log::get("streamrun");
  auto app = runtime::Application::create(pipeline.topology, properties, {.handle_signals = true});
  if (!app) {
    logger->error("{}: cannot start: {}", options.file, app.error().message());
    return 1;
  }
  // On a terminal, a live status line under the log; plain log lines otherwise.
  StatusLine status_line(**app, isatty(STDERR_FILENO) == 1);
  auto ran = (*app)->run();
  status_line.stop();
  if (!ran) {
    logger->error("{}", ran.error().message());
    return 1;
  }
  return 0;
}

int lint_pipelines(const PipelineOptions& options) {
  int invalid = 0;
  for (const auto& file : options.files) {
    if (file.ends_with(".test.yaml")) {  // a test file: it and the pipeline it tests
      auto loaded = dsl::load_test_suite(file);
      for (const auto& diagnostic : loaded.diagnostics)
        std::fprintf(stderr, "%s\n", diagnostic.to_string().c_str());
      if (!loaded.suite || !load(loaded.suite->pipeline.string()))
        ++invalid;
      continue;
    }
    if (!load(file))
      ++invalid;
  }
  return invalid == 0 ? 0 : 1;
}

int describe_pipeline(const PipelineOptions& options) {
  auto pipeline = load(options.file);
  if (!pipeline)
    return 1;
  const auto resolved = pipeline->topology.resolved(pipeline->application_id);
  std::fputs(
      (options.format == "mermaid" ? resolved.describe_mermaid() : resolved.describe()).c_str(),
      stdout);
  return 0;
}

int list_topics(const PipelineOptions& options) {
  int status = 0;
  auto configured = load_configured(options, status);
  if (!configured)
    return status;
  auto listing = runtime::Application::topic_listing(configured->pipeline.topology,
                                                     configured->properties, options.partitions);
  if (!listing) {
    std::fprintf(stderr, "%s: %s\n", options.file.c_str(), listing.error().message().c_str());
    return 1;
  }
  std::fputs(listing->c_str(), stdout);
  return 0;
}

namespace {

std::string show(const std::optional<std::string>& key, const std::optional<std::string>& bytes) {
  return fmt::format("key={} value={}", key ? "\"" + *key + "\"" : "null", bytes ? *bytes : "null");
}

bool same_value(const std::optional<std::string>& expected,
                const std::optional<std::string>& actual) {
  if (!expected || !actual)
    return expected == actual;
  const auto a = nlohmann::json::parse(*expected, nullptr, /*allow_exceptions=*/false);
  const auto b = nlohmann::json::parse(*actual, nullptr, /*allow_exceptions=*/false);
  if (!a.is_discarded() && !b.is_discarded())
    return a == b;
  return *expected == *actual;
}

constexpr std::chrono::seconds kCallWait{30};

// `call` steps make real requests: waits until the record's calls are answered (by the wall
// clock, which the driver's clock follows, so that timeouts and retries apply), at most
// kCallWait. False when calls are still held then.
bool settle_calls(testing::TopologyTestDriver& driver) {
  using std::chrono::steady_clock;
  auto last = steady_clock::now();
  const auto deadline = last + kCallWait;
  while (driver.calls_held() > 0) {
    if (steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - last);
    last += elapsed;
    driver.advance_time(elapsed);
  }
  return true;
}

// Runs one test case; returns the lines of its diff (empty: passed).
std::vector<std::string> run_case(const dsl::Pipeline& pipeline,
                                  const dsl::PipelineTestSuite& suite,
                                  const dsl::PipelineTestCase& test_case) {
  std::vector<std::string> diff;
  testing::TopologyTestDriver driver(
      pipeline.topology,
      testing::TopologyTestDriver::Options{.application_id = pipeline.application_id,
                                           .partitions = suite.partitions});
  // The pipeline's own error policy (errors.* properties), as the runtime would apply it.
  auto config = config::Config::load(pipeline.properties, runtime::RuntimeProperties::definition(),
                                     &kafka::client_property_schema());
  if (!config) {
    diff.push_back(config.error().message());
    return diff;
  }
  const auto policy = runtime::RuntimeProperties::error_policy(*config);
  driver.set_error_policy(policy);
  // The user's topics (not the internal repartition topics, whose names hold a placeholder).
  auto user_topics = [](std::vector<std::string> topics) {
    std::erase_if(topics, [](const std::string& topic) {
      return topic.find("${application.id}") != std::string::npos;
    });
    return topics;
  };
  // Topics records can go to: the sinks', and the dead-letter topic when failures go there.
  auto written = user_topics(pipeline.topology.sink_topics());
  if (policy.action == ErrorPolicy::Action::dead_letter) {
    auto topic = policy.dead_letter_topic;
    if (const auto at = topic.find("${application.id}"); at != std::string::npos)
      topic.replace(at, std::string_view("${application.id}").size(), pipeline.application_id);
    written.push_back(topic);
  }
  const auto sources = user_topics(pipeline.topology.source_topics());
  for (const auto& record : test_case.input) {
    if (!record.wait_ms &&
        std::find(sources.begin(), sources.end(), record.topic) == sources.end()) {
      diff.push_back(fmt::format("{}: the pipeline does not read topic '{}' (it reads {})",
                                 record.where.to_string(), record.topic, fmt::join(sources, ", ")));
      return diff;
    }
  }
  for (const auto& record : test_case.input) {
    try {
      if (record.wait_ms) {
        driver.advance_time(std::chrono::milliseconds(*record.wait_ms));
        continue;
      }
      driver.pipe_raw(record.topic, {record.key, record.bytes, {}, record.timestamp_ms});
      if (!settle_calls(driver)) {
        diff.push_back(fmt::format(
            "{}: {} call(s) to other services still unanswered after {} s (a test makes its "
            "`call` steps' requests for real: is the service up?)",
            record.where.to_string(), driver.calls_held(), kCallWait.count()));
        return diff;
      }
    } catch (const std::exception& e) {
      diff.push_back(fmt::format("{}: piping to '{}' failed: {}", record.where.to_string(),
                                 record.topic, e.what()));
      return diff;
    }
  }
  for (const auto& [topic, expected] : test_case.expect) {
    const auto actual = driver.read_raw(topic);
    if (actual.empty() && std::find(written.begin(), written.end(), topic) == written.end()) {
      diff.push_back(fmt::format("  nothing writes topic '{}': the pipeline writes {}", topic,
                                 fmt::join(written, ", ")));
    }
    const auto count = std::max(expected.size(), actual.size());
    for (std::size_t i = 0; i < count; ++i) {
      if (i >= actual.size()) {
        diff.push_back(fmt::format("  {}[{}] missing:  {}", topic, i,
                                   show(expected[i].key, expected[i].bytes)));
      } else if (i >= expected.size()) {
        diff.push_back(
            fmt::format("  {}[{}] unexpected: {}", topic, i, show(actual[i].key, actual[i].value)));
      } else if (expected[i].key != actual[i].key ||
                 !same_value(expected[i].bytes, actual[i].value) ||
                 (expected[i].timestamp_given &&
                  expected[i].timestamp_ms != actual[i].timestamp_ms)) {
        // Timestamps are shown when the test gives one.
        const auto stamp = [&](std::int64_t ms) {
          return expected[i].timestamp_given ? fmt::format(" timestamp={}", ms) : std::string();
        };
        diff.push_back(fmt::format("  {}[{}] expected: {}{}\n  {}[{}] actual:   {}{}", topic, i,
                                   show(expected[i].key, expected[i].bytes),
                                   stamp(expected[i].timestamp_ms), topic, i,
                                   show(actual[i].key, actual[i].value),
                                   stamp(actual[i].timestamp_ms)));
      }
    }
  }
  return diff;
}

}  // namespace

int test_pipelines(const PipelineOptions& options) {
  int failed = 0;
  int passed = 0;
  for (const auto& file : options.files) {
    auto loaded = dsl::load_test_suite(file);
    for (const auto& diagnostic : loaded.diagnostics)
      std::fprintf(stderr, "%s\n", diagnostic.to_string().c_str());
    if (!loaded.suite) {
      ++failed;
      continue;
    }
    std::error_code ec;
    if (!std::filesystem::is_regular_file(loaded.suite->pipeline, ec)) {
      std::fprintf(stderr, "%s: error: its pipeline %s is not a file\n", file.c_str(),
                   loaded.suite->pipeline.string().c_str());
      ++failed;
      continue;
    }
    auto pipeline = load(loaded.suite->pipeline.string());
    if (!pipeline) {
      ++failed;
      continue;
    }
    for (const auto& test_case : loaded.suite->cases) {
      const auto diff = run_case(*pipeline, *loaded.suite, test_case);
      if (diff.empty()) {
        ++passed;
        fmt::print("PASS {}: {}\n", file, test_case.name);
        continue;
      }
      ++failed;
      fmt::print("FAIL {}: {} ({})\n", file, test_case.name, test_case.where.to_string());
      for (const auto& line : diff)
        fmt::print("{}\n", line);
    }
  }
  fmt::print("{} passed, {} failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

int print_schema() {
  std::fputs(dsl::pipeline_schema(builtin_registry()).c_str(), stdout);
  return 0;
}

int list_operators(const PipelineOptions& options) {
  const auto& specs = builtin_registry().specs();
  if (!options.operator_name.empty() && !specs.contains(options.operator_name)) {
    const auto suggestion =
        config::closest_match(options.operator_name, builtin_registry().names());
    std::fprintf(stderr, "unknown operator '%s'%s\n", options.operator_name.c_str(),
                 suggestion ? (" (did you mean '" + *suggestion + "'?)").c_str() : "");
    return 1;
  }
  std::fputs(dsl::describe_operators(builtin_registry(), options.operator_name).c_str(), stdout);
  return 0;
}

}  // namespace streamrun::cli
