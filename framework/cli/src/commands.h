#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace streamrun::cli {

struct BrokerOptions {
  std::string listen = "127.0.0.1:9092";
  int brokers = 1;
  std::vector<std::string> topics;
  bool stop_with_parent = false;
};

void add_broker_command(CLI::App& app, BrokerOptions& options);
int run_broker(const BrokerOptions& options);

// YAML pipelines: run, lint, describe, operators.
struct PipelineOptions {
  std::string file;
  std::vector<std::string> files;
  std::vector<std::string> overrides;
  std::string format = "text";
  std::string operator_name;
  int partitions = 4;  // topics: of the pipeline's input topics
};

void add_pipeline_commands(CLI::App& app, PipelineOptions& options);
int run_pipeline(const PipelineOptions& options);
int lint_pipelines(const PipelineOptions& options);
int describe_pipeline(const PipelineOptions& options);
int list_topics(const PipelineOptions& options);
int list_operators(const PipelineOptions& options);
int test_pipelines(const PipelineOptions& options);
int print_schema();

}  // namespace streamrun::cli
