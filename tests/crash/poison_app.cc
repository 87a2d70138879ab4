// The pipeline the poison crash test kills and restarts: orders -> validate -> accepted, with
// failing records retried (slowly, so that kills land during retries) and dead-lettered.

#include <CLI/CLI.hpp>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/runtime/application.h>

int main(int argc, char** argv) {
  CLI::App cli{"Validate orders, dead-letter the bad ones (crash-test pipeline)."};
  std::string bootstrap;
  cli.add_option("--bootstrap", bootstrap)->required();
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "warn"});

  const streamrun::Serdes<std::string, std::string> strings{streamrun::serdes::string(),
                                                            streamrun::serdes::string()};
  streamrun::StreamBuilder builder;
  builder.stream("orders", strings)
      .map_values([](const std::string& order) {
        if (order.starts_with("bad"))
          throw std::invalid_argument("order '" + order + "' is malformed");
        return order + " accepted";
      })
      .to("accepted", strings);

  auto app = streamrun::runtime::Application::create(builder.build(),
                                                     {{"application.id", "poison-crash"},
                                                      {"bootstrap.servers", bootstrap},
                                                      {"errors.policy", "dead_letter"},
                                                      {"errors.retries", "3"},
                                                      {"errors.retry.backoff.ms", "20"},
                                                      {"consumer.session.timeout.ms", "6000"},
                                                      {"consumer.heartbeat.interval.ms", "500"}},
                                                     {.handle_signals = true});
  if (!app) {
    streamrun::log::get("poison-app")->error("{}", app.error().message());
    return 1;
  }
  std::puts("started");
  std::fflush(stdout);
  return (*app)->run() ? 0 : 1;
}
