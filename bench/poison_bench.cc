// Throughput with 1% poison records against a clean run, in the same process: a JSON pricing
// pipeline with errors.policy=dead_letter, where 1% of the input is not JSON at all.
//
//   build/bin/poison-bench --records 500000

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/json/json_serde.h>
#include <streamrun/kafka/dev_broker.h>
#include <streamrun/runtime/application.h>

#include "bench_support.h"

namespace {

double run(const std::string& bootstrap, const std::string& app_id, const std::string& topic,
           int records, std::int64_t& dead_lettered) {
  const streamrun::Serdes<std::string, nlohmann::json> orders{streamrun::serdes::string(),
                                                              streamrun::serdes::json()};
  streamrun::StreamBuilder builder;
  builder.stream(topic, orders)
      .map_values([](const nlohmann::json& order) {
        return std::to_string(order.at("qty").get<int>() * order.at("price").get<int>());
      })
      .to("priced", {streamrun::serdes::string(), streamrun::serdes::string()});
  auto app =
      streamrun::runtime::Application::create(builder.build(), {{"application.id", app_id},
                                                                {"bootstrap.servers", bootstrap},
                                                                {"errors.policy", "dead_letter"}})
          .value();
  const double seconds = streamrun::bench::run_until_processed(*app, records);
  dead_lettered = app->stats().records_dead_lettered;
  return records / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Throughput with 1% poison records vs a clean run."};
  int records = 500'000;
  cli.add_option("--records", records)->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "warn"});

  auto broker = streamrun::kafka::DevBroker::start({1,
                                                    {{"clean", 8},
                                                     {"poisoned", 8},
                                                     {"priced", 8},
                                                     {"bench-clean-dead-letter", 1},
                                                     {"bench-poisoned-dead-letter", 1}}})
                    .value();
  auto key = [](int i) { return fmt::format("order-{}", i); };
  auto good = [](int i) { return fmt::format(R"({{"id": {}, "qty": 2, "price": 5}})", i); };
  streamrun::bench::produce(broker->bootstrap_servers(), "clean", records, key, good);
  streamrun::bench::produce(broker->bootstrap_servers(), "poisoned", records, key, [&](int i) {
    return i % 100 == 42 ? fmt::format(R"({{"id": {}, "qty": )", i) : good(i);
  });

  std::int64_t clean_letters = 0;
  std::int64_t poisoned_letters = 0;
  const double clean =
      run(broker->bootstrap_servers(), "bench-clean", "clean", records, clean_letters);
  const double poisoned =
      run(broker->bootstrap_servers(), "bench-poisoned", "poisoned", records, poisoned_letters);
  fmt::print("clean input:        {:>9.0f} records/s ({} dead letters)\n", clean, clean_letters);
  fmt::print("1% poison records:  {:>9.0f} records/s ({} dead letters)\n", poisoned,
             poisoned_letters);
  fmt::print("ratio poisoned / clean: {:.3f}\n", poisoned / clean);
  return 0;
}
