#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace streamrun::cli {

struct BrokerOptions {
  std::string listen = "127.0.0.1:9092";
  int brokers = 1;
  std::vector<std::string> topics;
};

void add_broker_command(CLI::App& app, BrokerOptions& options);
int run_broker(const BrokerOptions& options);

}  // namespace streamrun::cli
