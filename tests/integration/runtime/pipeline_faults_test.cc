// Infrastructure failures are not poison: a pipeline running through a broker outage and a
// burst of retriable request errors recovers by itself and loses nothing.

#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>
#include <streamrun/testing/broker_fixture.h>

#include "../../support/kafka_test_util.h"

namespace streamrun::runtime {
namespace {

using namespace std::chrono_literals;
using kafka::DevBroker;

constexpr int kRecords = 100'000;

class PipelineFaultsTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override { return {{"in", 4}, {"out", 4}}; }
};

TEST_F(PipelineFaultsTest, OutageAndRequestErrorsMidRunLoseNothingAndNeedNoRestart) {
  auto producer = kafka::Producer::create(producer_properties()).value();
  for (int i = 0; i < kRecords; ++i) {
    testing::send_waiting(
        *producer,
        {"in", std::nullopt, fmt::format("k{}", i), std::to_string(i), {}, std::nullopt});
  }
  ASSERT_TRUE(producer->flush(60s).ok());

  const Serdes<std::string, std::string> strings{serdes::string(), serdes::string()};
  StreamBuilder builder;
  builder.stream("in", strings)
      .map_values([](const std::string& v) { return v + "!"; })
      .to("out", strings);
  auto app =
      Application::create(builder.build(),
                          {{"application.id", "faulty"},
                           {"admin.timeout.ms", "500"},  // the development broker has no Admin API
                           {"bootstrap.servers", bootstrap_servers()},
                           {"consumer.session.timeout.ms", "6000"},
                           {"consumer.heartbeat.interval.ms", "500"}})
          .value();
  std::thread runner([&] { EXPECT_TRUE(app->run().ok()) << "the pipeline never stopped"; });

  auto wait_processed = [&](std::int64_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (app->stats().records_processed < count && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);  // sampling the application's counters
    return app->stats().records_processed >= count;
  };
  ASSERT_TRUE(wait_processed(20'000));
  broker().fail_next_requests(DevBroker::Request::produce, 50,
                              DevBroker::RetriableError::not_leader);
  broker().fail_next_requests(DevBroker::Request::fetch, 20,
                              DevBroker::RetriableError::request_timed_out);
  broker().fail_next_requests(DevBroker::Request::offset_commit, 10,
                              DevBroker::RetriableError::request_timed_out);
  ASSERT_TRUE(wait_processed(40'000));
  ASSERT_TRUE(broker().set_broker_down(1).ok());
  std::this_thread::sleep_for(3s);  // the outage's length, not a wait for something
  ASSERT_TRUE(broker().set_broker_up(1).ok());

  auto reader = kafka::Consumer::create(consumer_properties("reader"), nullptr).value();
  ASSERT_TRUE(reader->subscribe({"out"}).ok());
  std::set<std::string> keys;
  testing::poll_until(
      *reader, [&] { return keys.size() >= kRecords; },
      [&](const kafka::Message& m) {
        EXPECT_EQ(m.value().value_or(""), std::string(m.key().value_or("").substr(1)) + "!");
        keys.insert(std::string(m.key().value_or("")));
      },
      180s);
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kRecords)) << "every record reached the output";
  app->stop();
  runner.join();
}

// Records the broker deleted before the application read them (retention shorter than its
// backlog) are lost to it: the application says so, with an error log and a metric, instead of
// moving on in silence. A first start, without committed offsets, moves on from nothing lost.
TEST_F(PipelineFaultsTest, RecordsDeletedBeforeTheyWereReadAreCountedAsOffsetResets) {
  const Serdes<std::string, std::string> strings{serdes::string(), serdes::string()};
  StreamBuilder builder;
  builder.stream("in", strings).to("out", strings);
  const auto topology = builder.build();
  const config::Properties properties = {{"application.id", "resets"},
                                         {"admin.timeout.ms", "500"},
                                         {"bootstrap.servers", bootstrap_servers()},
                                         {"consumer.session.timeout.ms", "6000"}};
  auto producer = kafka::Producer::create(producer_properties()).value();
  const auto produce = [&](int count, std::size_t size) {
    const std::string value(size, 'x');
    for (int i = 0; i < count; ++i)
      testing::send_waiting(*producer, {"in", 0, fmt::format("k{}", i), value, {}, std::nullopt});
    ASSERT_TRUE(producer->flush(60s).ok());
  };
  const auto run_until = [&](std::int64_t processed, bool resets) {
    auto app = Application::create(topology, properties).value();
    std::thread runner([&] { EXPECT_TRUE(app->run().ok()); });
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while ((app->stats().records_processed < processed ||
            (resets && app->stats().offset_resets == 0)) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);  // sampling the application's counters
    const auto stats = app->stats();
    app->stop();
    runner.join();
    return stats;
  };

  produce(10, 100);
  const auto first = run_until(10, false);
  EXPECT_EQ(first.records_processed, 10);
  EXPECT_EQ(first.offset_resets, 0) << "a first start loses nothing";
  // While the application is away, more than the development broker keeps (about 5 MiB per
  // partition): it deletes the oldest, the next records the application would read among them.
  produce(8'000, 1'024);
  const auto second = run_until(1, true);
  EXPECT_GE(second.offset_resets, 1);
  EXPECT_LT(second.records_processed, 8'000) << "the deleted records were not read";
}

}  // namespace
}  // namespace streamrun::runtime
