// The pipeline the poison crash test kills and restarts: orders -> validate -> accepted, with
// failing records retried (slowly, so that kills land during retries) and dead-lettered.

#include <CLI/CLI.hpp>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/runtime/application.h>

int main(int argc, char** argv) {
  CLI::App cli{"Validate orders, dead-letter the bad ones (crash-test pipeline)."};
  std::string bootstrap;
  std::string application_id = "poison-crash";
  bool oversize = false;
  bool stateful = false;
  cli.add_option("--bootstrap", bootstrap)->required();
  cli.add_option("--application-id", application_id);
  std::string state_dir = "/tmp/streamrun";
  cli.add_option("--state-dir", state_dir, "state.dir (with --stateful)");
  cli.add_flag("--oversize", oversize,
               "orders marked 'big' become outputs larger than the producer accepts (instead of "
               "'bad' orders failing validation)");
  cli.add_flag("--stateful", stateful, "also count orders per key in a store");
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "warn"});

  const streamrun::Serdes<std::string, std::string> strings{streamrun::serdes::string(),
                                                            streamrun::serdes::string()};
  streamrun::StreamBuilder builder;
  auto orders = builder.stream("orders", strings);
  orders
      .map_values([oversize](const std::string& order) {
        if (order.starts_with("bad"))
          throw std::invalid_argument("order '" + order + "' is malformed");
        if (oversize && order.starts_with("big"))
          return std::string(1'100'000, 'x');  // over message.max.bytes: refused when sent
        return order + " accepted";
      })
      .to("accepted", strings);
  if (stateful)
    orders.group_by_key(strings).count("seen");

  auto app = streamrun::runtime::Application::create(
      builder.build(),
      {{"application.id", application_id},
       {"state.dir", state_dir},
       {"admin.timeout.ms", "500"},  // the development broker has no Admin API
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
