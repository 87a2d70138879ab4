#include <csignal>

#include <fmt/format.h>

#include <streamrun/base/errc.h>
#include <streamrun/testing/broker_process.h>

namespace streamrun::testing {

Result<BrokerProcess> BrokerProcess::start(const std::string& streamrun_binary,
                                           const std::vector<kafka::TopicSpec>& topics, int brokers,
                                           const std::string& listen) {
  // --stop-with-parent: a test or benchmark killed before its destructor runs leaves no broker.
  std::vector<std::string> args = {
      "broker", "--listen", listen, "--brokers", std::to_string(brokers), "--stop-with-parent"};
  for (const auto& topic : topics) {
    args.push_back("--topic");
    args.push_back(fmt::format("{}:{}", topic.name, topic.partitions));
  }
  auto process = ChildProcess::spawn(streamrun_binary, args);
  if (!process)
    return process.error();
  // Not just "ready": an error such as "Address already in use" contains it too.
  auto line = process->wait_for_line("; ready on ", std::chrono::seconds(30));
  if (!line) {
    return Error(
        errc::unavailable,
        fmt::format("'{} broker' did not print a ready line within 30 s (exit status {})",
                    streamrun_binary, process->wait(std::chrono::milliseconds(100)).value_or(-1)));
  }
  // The ready line ends with the bootstrap address.
  const auto space = line->rfind(' ');
  return BrokerProcess(std::move(process).value(), line->substr(space + 1));
}

BrokerProcess::~BrokerProcess() {
  if (!stopped_ && process_.pid() > 0)
    static_cast<void>(stop());
}

std::optional<int> BrokerProcess::stop() {
  stopped_ = true;
  process_.signal(SIGTERM);
  return process_.wait(std::chrono::seconds(30));
}

}  // namespace streamrun::testing
