// seckill-inventory: the flash-sale inventory pipeline (apps/seckill/src/inventory.h) as a
// streamrun application. Run as many instances as you like with the same application.id: they
// share the partitions, and each restarts from its committed state. Stops on SIGINT/SIGTERM
// (a second signal exits at once).
//
//   seckill-inventory --bootstrap 127.0.0.1:9092 --state-dir /var/lib/seckill

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <streamrun/base/log.h>
#include <streamrun/runtime/application.h>

#include "inventory.h"

int main(int argc, char** argv) {
  CLI::App cli{
      "The flash-sale inventory pipeline: decides every order in `orders` against the stock "
      "in `stock`, never overselling and at most one unit per user per SKU, into `decisions`."};
  std::string bootstrap = "127.0.0.1:9092";
  std::string state_dir;
  std::string log_level = "info";
  seckill::Topics topics;
  std::vector<std::string> overrides;
  cli.add_option("--bootstrap", bootstrap, "bootstrap.servers")->capture_default_str();
  cli.add_option("--state-dir", state_dir, "state.dir (default: the property's default)");
  cli.add_option("--orders", topics.orders, "the topic of orders")->capture_default_str();
  cli.add_option("--stock", topics.stock, "the topic of stock per SKU")->capture_default_str();
  cli.add_option("--decisions", topics.decisions, "the topic decisions go to")
      ->capture_default_str();
  cli.add_option("--sales-rate", topics.sales_rate,
                 "the topic of sales per SKU and second (orders, accepted) goes to")
      ->capture_default_str();
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  cli.add_option("--set", overrides,
                 "any other property, KEY=VALUE (repeatable; `streamrun config` lists them)");
  int topics_partitions = 0;
  cli.add_option("--topics", topics_partitions,
                 "print every topic the pipeline uses, as NAME:PARTITIONS and its role, given "
                 "this many partitions of its input topics, and exit (create them beforehand "
                 "on a cluster without the Admin API, such as the development broker)")
      ->check(CLI::Range(1, 100'000));
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = log_level});
  auto logger = streamrun::log::get("seckill");

  auto properties = seckill::inventory_defaults();
  properties.set("bootstrap.servers", bootstrap);
  if (!state_dir.empty())
    properties.set("state.dir", state_dir);
  auto extra = streamrun::config::Properties::from_assignments(overrides, "--set");
  if (!extra) {
    logger->error("{}", extra.error().message());
    return 2;
  }
  properties.merge(*extra);

  const auto topology = seckill::inventory_topology(topics);
  if (topics_partitions > 0) {
    auto listing =
        streamrun::runtime::Application::topic_listing(topology, properties, topics_partitions);
    if (!listing) {
      logger->error("{}", listing.error().message());
      return 2;
    }
    std::fputs(listing->c_str(), stdout);
    return 0;
  }

  auto app =
      streamrun::runtime::Application::create(topology, properties, {.handle_signals = true});
  if (!app) {
    logger->error("{}", app.error().message());
    return 1;
  }
  if (auto ran = (*app)->run(); !ran) {
    logger->error("{}", ran.error().message());
    return 1;
  }
  return 0;
}
