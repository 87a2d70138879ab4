#include <csignal>
#include <cstdio>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <streamrun/base/errc.h>
#include <streamrun/base/log.h>
#include <streamrun/kafka/dev_broker.h>

#include "commands.h"
#include "port_pinning.h"

namespace streamrun::cli {

void add_broker_command(CLI::App& app, BrokerOptions& options) {
  auto* broker = app.add_subcommand(
      "broker",
      "Serve the development broker (librdkafka's in-memory mock cluster) on loopback.\n"
      "Prints one line containing 'ready' and the bootstrap address once clients can connect;\n"
      "stops on SIGINT or SIGTERM. Everything is in memory: a restart starts empty.");
  broker
      ->add_option("--listen", options.listen,
                   "HOST:PORT of the first broker; broker N listens on PORT+N-1. Port 0 picks "
                   "free ports. Loopback addresses only.")
      ->capture_default_str();
  broker->add_option("--brokers", options.brokers, "Number of brokers in the cluster")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  broker->add_option("--topic", options.topics,
                     "NAME:PARTITIONS to create at start (repeatable). Other topics are created "
                     "on first use with 4 partitions.");
  broker->add_flag("--stop-with-parent", options.stop_with_parent,
                   "Stop also when the process that started this one exits (for harnesses that "
                   "may be killed before they can stop it)");
}

int run_broker(const BrokerOptions& options) {
  auto logger = log::get("broker");
  auto fail = [&](const Error& error) {
    logger->error("{}", error.message());
    return 1;
  };

  auto address = ListenAddress::parse(options.listen);
  if (!address)
    return fail(address.error());
  kafka::DevBrokerOptions broker_options{options.brokers, {}};
  for (const auto& text : options.topics) {
    auto topic = kafka::TopicSpec::parse(text);
    if (!topic)
      return fail(topic.error());
    broker_options.topics.push_back(*topic);
  }

  // Block the stop signals before librdkafka starts its threads, so that they inherit the mask
  // and only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto pins = PortPins::bind(*address, options.brokers);
  if (!pins)
    return fail(pins.error());
  auto broker = kafka::DevBroker::start(broker_options);
  if (!broker)
    return fail(broker.error());
  if (pins->unclaimed() != 0) {
    return fail(Error(errc::unavailable,
                      "the development broker did not take the pinned listeners; this "
                      "librdkafka binds differently than expected (see "
                      "docs/development-broker.md)"));
  }

  std::vector<std::string> topic_names;
  for (const auto& topic : broker_options.topics) {
    topic_names.push_back(fmt::format("{}:{}", topic.name, topic.partitions));
  }
  fmt::print("streamrun broker: {} broker(s), topics [{}]; ready on {}\n", options.brokers,
             fmt::join(topic_names, ", "), (*broker)->bootstrap_servers());
  std::fflush(stdout);

  const pid_t parent = getppid();
  int signo = 0;
  if (!options.stop_with_parent) {
    sigwait(&stop_signals, &signo);
  } else {
    // A parent that exits leaves this process to init (or a subreaper): look every 200 ms.
    const timespec tick{0, 200'000'000};
    while ((signo = sigtimedwait(&stop_signals, nullptr, &tick)) <= 0) {
      if (getppid() != parent) {
        logger->info("the process that started the broker (pid {}) exited, stopping", parent);
        return 0;
      }
    }
  }
  logger->info("{} received, stopping", signo == SIGINT ? "SIGINT" : "SIGTERM");
  return 0;
}

}  // namespace streamrun::cli
