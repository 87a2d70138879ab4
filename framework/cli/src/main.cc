#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <streamrun/base/log.h>
#include <streamrun/config/config.h>
#include <streamrun/runtime/runtime_config.h>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "streamrun: stream processing on Kafka, with state in RocksDB.\n"
      "  streamrun FILE [--set KEY=VALUE]...   run a YAML pipeline (same as: streamrun run FILE)\n"
      "Exit status: 0 success, 1 failure (invalid file, failed run or test), 2 usage error.",
      "streamrun"};
  app.require_subcommand(1);
  app.fallthrough();  // inherited by the commands: --log-level may also follow a command
  app.set_version_flag("--version", "streamrun " STREAMRUN_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text, or json: one JSON object per line (ts, level, logger, msg) on stderr")
      ->check(CLI::IsMember({"text", "json"}));

  streamrun::cli::BrokerOptions broker_options;
  streamrun::cli::add_broker_command(app, broker_options);

  auto* config_command = app.add_subcommand(
      "config",
      "List the application properties (key, type, default, meaning) as Markdown. "
      "Kafka client properties (bootstrap.servers, sasl.*, ...) are accepted under "
      "librdkafka's own names, optionally prefixed with consumer. or producer.");

  streamrun::cli::PipelineOptions pipeline_options;
  streamrun::cli::add_pipeline_commands(app, pipeline_options);

  // `streamrun FILE` runs the pipeline: the first argument that is neither an option (nor an
  // option's value) nor a command is taken as a file for `run`.
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--log-level" || args[i] == "--log-format") {
      ++i;  // its value
      continue;
    }
    if (args[i].starts_with("-"))
      continue;
    const auto commands = app.get_subcommands([](CLI::App*) { return true; });
    const bool is_command = std::any_of(commands.begin(), commands.end(),
                                        [&](CLI::App* c) { return c->get_name() == args[i]; });
    if (!is_command) {
      // A word that is no file and looks like no file name is most likely a mistyped command.
      std::error_code ec;
      const bool looks_like_file =
          std::filesystem::exists(args[i], ec) || args[i].find_first_of("./") != std::string::npos;
      if (!looks_like_file) {
        std::vector<std::string> names;
        for (const auto* command : commands)
          names.push_back(command->get_name());
        const auto suggestion = streamrun::config::closest_match(args[i], names);
        std::fprintf(stderr,
                     "streamrun: unknown command '%s'%s; to run a pipeline: streamrun FILE "
                     "(see streamrun --help)\n",
                     args[i].c_str(),
                     suggestion ? (" (did you mean '" + *suggestion + "'?)").c_str() : "");
        return 2;
      }
      args.insert(args.begin() + static_cast<std::ptrdiff_t>(i), "run");
    }
    break;
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    // Help and --version exit 0; every usage error exits 2, as documented.
    return app.exit(e) == 0 ? 0 : 2;
  }
  streamrun::log::configure({.level = log_level, .format = log_format});

  if (app.got_subcommand("broker"))
    return streamrun::cli::run_broker(broker_options);
  if (app.got_subcommand("run"))
    return streamrun::cli::run_pipeline(pipeline_options);
  if (app.got_subcommand("lint"))
    return streamrun::cli::lint_pipelines(pipeline_options);
  if (app.got_subcommand("describe"))
    return streamrun::cli::describe_pipeline(pipeline_options);
  if (app.got_subcommand("topics"))
    return streamrun::cli::list_topics(pipeline_options);
  if (app.got_subcommand("schema"))
    return streamrun::cli::print_schema();
  if (app.got_subcommand("test"))
    return streamrun::cli::test_pipelines(pipeline_options);
  if (app.got_subcommand("operators"))
    return streamrun::cli::list_operators(pipeline_options);
  if (app.got_subcommand(config_command)) {
    std::fputs(streamrun::runtime::RuntimeProperties::definition().to_markdown().c_str(), stdout);
  }
  return 0;
}
