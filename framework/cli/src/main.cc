#include <cstdio>

#include <CLI/CLI.hpp>

#include <streamrun/base/log.h>
#include <streamrun/runtime/runtime_config.h>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"streamrun: stream processing on Kafka, with state in RocksDB"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  streamrun::cli::BrokerOptions broker_options;
  streamrun::cli::add_broker_command(app, broker_options);

  auto* config_command = app.add_subcommand(
      "config",
      "List the application properties (key, type, default, meaning) as Markdown. "
      "Kafka client properties (bootstrap.servers, sasl.*, ...) are accepted under "
      "librdkafka's own names, optionally prefixed with consumer. or producer.");

  CLI11_PARSE(app, argc, argv);
  streamrun::log::configure({.level = log_level});

  if (app.got_subcommand("broker"))
    return streamrun::cli::run_broker(broker_options);
  if (app.got_subcommand(config_command)) {
    std::fputs(streamrun::runtime::RuntimeProperties::definition().to_markdown().c_str(), stdout);
  }
  return 0;
}
