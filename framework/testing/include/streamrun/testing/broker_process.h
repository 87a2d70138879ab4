#pragma once

#include <string>
#include <vector>

#include <streamrun/base/result.h>
#include <streamrun/kafka/dev_broker.h>
#include <streamrun/testing/child_process.h>

namespace streamrun::testing {

// `streamrun broker` in its own process, for tests whose clients must not share the broker's
// process (crash tests kill the pipeline, not the broker). Stopped with SIGTERM on destruction.
class BrokerProcess {
 public:
  // `streamrun_binary`: path of the streamrun executable. `listen`: "127.0.0.1:PORT"; port 0
  // lets the broker pick a free one.
  [[nodiscard]] static Result<BrokerProcess> start(const std::string& streamrun_binary,
                                                   const std::vector<kafka::TopicSpec>& topics,
                                                   int brokers = 1,
                                                   const std::string& listen = "127.0.0.1:0");
  BrokerProcess(BrokerProcess&&) noexcept = default;
  BrokerProcess& operator=(BrokerProcess&&) noexcept = default;
  ~BrokerProcess();

  [[nodiscard]] const std::string& bootstrap_servers() const noexcept { return bootstrap_; }
  [[nodiscard]] ChildProcess& process() noexcept { return process_; }

  // SIGTERM and wait; returns the exit status.
  [[nodiscard]] std::optional<int> stop();

 private:
  BrokerProcess(ChildProcess process, std::string bootstrap)
      : process_(std::move(process)), bootstrap_(std::move(bootstrap)) {}

  ChildProcess process_;
  std::string bootstrap_;
  bool stopped_ = false;
};

}  // namespace streamrun::testing
