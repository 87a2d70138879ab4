#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include <streamrun/base/log.h>
#include <streamrun/dsl/pipeline.h>
#include <streamrun/operators/builtin.h>
#include <streamrun/runtime/application.h>

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

// Loads a pipeline, printing every problem; nullopt when there was one.
std::optional<dsl::Pipeline> load(const std::string& file) {
  auto loaded = dsl::load_pipeline_file(file, builtin_registry());
  for (const auto& diagnostic : loaded.diagnostics)
    std::fprintf(stderr, "%s\n", diagnostic.to_string().c_str());
  return std::move(loaded.pipeline);
}

}  // namespace

void add_pipeline_commands(CLI::App& app, PipelineOptions& options) {
  auto* run = app.add_subcommand(
      "run",
      "Run a YAML pipeline until SIGINT/SIGTERM (also: streamrun FILE); restarted, it "
      "resumes from its committed state");
  run->add_option("file", options.file, "The pipeline file")->required()->check(CLI::ExistingFile);
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

  auto* list = app.add_subcommand("operators", "Describe the operators pipelines can use");
  list->add_option("name", options.operator_name, "One operator (default: all)");
}

int run_pipeline(const PipelineOptions& options) {
  auto pipeline = load(options.file);
  if (!pipeline)
    return 1;
  auto properties = pipeline->properties;
  auto overrides = config::Properties::from_assignments(options.overrides, "--set");
  if (!overrides) {
    std::fprintf(stderr, "%s\n", overrides.error().message().c_str());
    return 2;
  }
  properties.merge(*overrides);
  auto logger = log::get("streamrun");
  auto app = runtime::Application::create(pipeline->topology, properties, {.handle_signals = true});
  if (!app) {
    logger->error("{}: cannot start: {}", options.file, app.error().message());
    return 1;
  }
  if (auto ran = (*app)->run(); !ran) {
    logger->error("{}", ran.error().message());
    return 1;
  }
  return 0;
}

int lint_pipelines(const PipelineOptions& options) {
  int invalid = 0;
  for (const auto& file : options.files) {
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

int list_operators(const PipelineOptions& options) {
  const auto& specs = builtin_registry().specs();
  if (!options.operator_name.empty() && !specs.contains(options.operator_name)) {
    std::fprintf(stderr, "unknown operator '%s'\n", options.operator_name.c_str());
    return 1;
  }
  std::fputs(dsl::describe_operators(builtin_registry(), options.operator_name).c_str(), stdout);
  return 0;
}

}  // namespace streamrun::cli
