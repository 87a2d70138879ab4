#pragma once

// GoogleTest fixture with a development broker in the test's own process, on a free port.
// Each test gets a fresh, empty cluster; topics come from topics() or create_topic().

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <streamrun/kafka/client_config.h>
#include <streamrun/kafka/dev_broker.h>

namespace streamrun::testing {

class BrokerFixture : public ::testing::Test {
 protected:
  // Override to create topics before the test body runs.
  virtual std::vector<kafka::TopicSpec> topics() const { return {}; }
  virtual int broker_count() const { return 1; }

  void SetUp() override {
    auto started = kafka::DevBroker::start({broker_count(), topics()});
    ASSERT_TRUE(started.ok()) << started.error().message();
    broker_ = std::move(started).value();
  }

  void TearDown() override { broker_.reset(); }

  kafka::DevBroker& broker() { return *broker_; }
  const std::string& bootstrap_servers() const { return broker_->bootstrap_servers(); }

  void create_topic(const std::string& name, int partitions) {
    auto created = broker_->create_topic({name, partitions});
    ASSERT_TRUE(created.ok()) << created.error().message();
  }

  // Client properties that talk to this broker, with timeouts suited to tests: the mock holds
  // a JoinGroup for session.timeout.ms - 1 s, so a short session keeps rebalances quick.
  kafka::ClientProperties producer_properties() const {
    return {{"bootstrap.servers", bootstrap_servers()}};
  }
  kafka::ClientProperties consumer_properties(const std::string& group) const {
    return {{"bootstrap.servers", bootstrap_servers()},
            {"group.id", group},
            {"session.timeout.ms", "6000"},
            {"heartbeat.interval.ms", "500"}};
  }

 private:
  std::unique_ptr<kafka::DevBroker> broker_;
};

}  // namespace streamrun::testing
