// Async calls on a real consumer group against the real seckill-orders service: many calls
// overlap without blocking a worker thread, and an outage of the service pauses the pipeline
// instead of dead-lettering its records; the breaker opens and closes once.

#include <map>
#include <regex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/core/stream_builder.h>
#include <streamrun/http/client.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_fixture.h>

#include "../../support/kafka_test_util.h"
#include "../../support/orders_service.h"
#include "../../support/running_app.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr int kPartitions = 4;

Serdes<std::string, std::string> strings() {
  return {serdes::string(), serdes::string()};
}

class CallsTest : public BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"accepted", kPartitions},
            {"confirmed", kPartitions},
            {"side", kPartitions},
            {"side-out", kPartitions},
            {"dead", kPartitions}};
  }

  void start_service(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--threads", "256"});
    service_ = OrdersService::start(extra);
    ASSERT_TRUE(service_.has_value());
  }

  [[nodiscard]] json service_stats() const { return service_->stats(); }
  void chaos(const json& settings) const { service_->chaos(settings); }

  // accepted -> confirm (POST /confirmations) -> confirmed; side -> side-out, a plain
  // sub-topology that shares the worker threads.
  [[nodiscard]] Topology topology(std::size_t capacity) const {
    auto client = http::Client::shared();
    const auto url = service_->url() + "/confirmations";
    AsyncCallOptions options;
    options.endpoint = "orders";
    options.capacity = capacity;
    options.timeout = 2s;
    options.breaker->open_for = 2s;
    StreamBuilder builder;
    builder.stream<std::string, std::string>("accepted", strings())
        .call_async<std::string>(
            [client, url](const Record<std::string, std::string>& order,
                          CallCompletion<std::string> done) {
              client->send({.method = "POST",
                            .url = url,
                            .headers = {{"Idempotency-Key", order.key}},
                            .body = order.value,
                            .timeout = 2s},
                           [done, url](Result<http::Response> answer) {
                             http::complete(done, answer, "POST " + url,
                                            [](const http::Response& r) { return r.body; });
                           });
            },
            options, "confirm")
        .to("confirmed", strings());
    builder.stream<std::string, std::string>("side", strings()).to("side-out", strings());
    return builder.build();
  }

  [[nodiscard]] config::Properties properties(const std::string& application) const {
    return {{"application.id", application},
            {"bootstrap.servers", bootstrap_servers()},
            {"admin.timeout.ms", "500"},
            {"admin.listen", "127.0.0.1:0"},
            // One worker thread: a call that blocked it would stop every task.
            {"num.threads", "1"},
            {"errors.policy", "dead_letter"},
            {"errors.dead.letter.topic", "dead"},
            {"consumer.session.timeout.ms", "6000"},
            {"consumer.heartbeat.interval.ms", "500"},
            {"consumer.fetch.wait.max.ms", "10"}};
  }

  void produce(const std::string& topic, int from, int count) {
    auto producer = kafka::Producer::create(producer_properties()).value();
    for (int i = from; i < from + count; ++i) {
      const auto id = fmt::format("o-{}", i);
      const auto value =
          json{{"order_id", id}, {"user_id", fmt::format("u-{}", i)}, {"sku", "sku-1"}}.dump();
      send_waiting(*producer, {topic, std::nullopt, id, value, {}, std::nullopt});
    }
    ASSERT_TRUE(producer->flush(30s).ok());
  }

  // Reads `topics` until `done` holds or `limit` passes; returns keys per topic.
  std::map<std::string, std::set<std::string>> read_until(
      kafka::Consumer& reader, std::map<std::string, std::set<std::string>>& keys,
      const std::function<bool()>& done, std::chrono::seconds limit) {
    poll_until(
        reader, done,
        [&](const kafka::Message& m) {
          keys[std::string(m.topic())].insert(std::string(m.key().value_or("")));
        },
        limit);
    return keys;
  }

  static double metric(const std::string& text, const std::string& series) {
    for (std::size_t at = text.find(series); at != std::string::npos;
         at = text.find(series, at + 1)) {
      if (at > 0 && text[at - 1] != '\n')
        continue;
      return std::stod(text.substr(at + series.size() + 1));
    }
    ADD_FAILURE() << "no series " << series;
    return -1;
  }
  static std::string scrape(const std::string& admin) {
    httplib::Client client("http://" + admin);
    auto answer = client.Get("/metrics");
    EXPECT_TRUE(answer && answer->status == 200);
    return answer ? answer->body : "";
  }

  std::optional<OrdersService> service_;
};

TEST_F(CallsTest, CallsOverlapAndNoWorkerThreadBlocks) {
  constexpr int kOrders = 100'000;
  start_service({"--slow-share", "0.1", "--slow-ms", "20"});
  produce("accepted", 0, kOrders);
  RunningApp app(topology(64), properties("confirmer-overlap"));
  auto reader = kafka::Consumer::create(consumer_properties("verifier"), nullptr).value();
  ASSERT_TRUE(reader->subscribe({"confirmed", "side-out"}).ok());
  std::map<std::string, std::set<std::string>> keys;
  // While the calls run, a plain sub-topology on the same single worker thread keeps going.
  read_until(
      *reader, keys, [&] { return keys["confirmed"].size() >= 1000; }, 120s);
  ASSERT_GE(keys["confirmed"].size(), 1000u);
  produce("side", 0, 1000);
  read_until(
      *reader, keys, [&] { return keys["side-out"].size() >= 1000; }, 60s);
  EXPECT_EQ(keys["side-out"].size(), 1000u);
  EXPECT_LT(keys["confirmed"].size(), static_cast<std::size_t>(kOrders))
      << "the side records should have gone through while calls were still running";
  read_until(
      *reader, keys, [&] { return keys["confirmed"].size() >= kOrders; }, 300s);
  EXPECT_EQ(keys["confirmed"].size(), static_cast<std::size_t>(kOrders));
  const auto stats = service_stats();
  EXPECT_EQ(stats["confirmed"], kOrders);
  // Four tasks with 64 calls each (over at most 64 connections): the service saw many at once,
  // not one per task.
  EXPECT_GE(stats["max_in_flight"].get<int>(), 32) << stats.dump();
  EXPECT_TRUE(app.stop().ok());
}

TEST_F(CallsTest, AnOutagePausesThePipelineAndLosesOrDeadLettersNothing) {
  constexpr int kOrders = 20'000;
  constexpr int kBefore = 5'000;
  start_service();
  produce("accepted", 0, kBefore);
  RunningApp app(topology(64), properties("confirmer-outage"));
  const auto admin = app.admin_address();
  auto reader = kafka::Consumer::create(consumer_properties("verifier"), nullptr).value();
  ASSERT_TRUE(reader->subscribe({"confirmed", "side-out", "dead"}).ok());
  std::map<std::string, std::set<std::string>> keys;
  read_until(
      *reader, keys, [&] { return keys["confirmed"].size() >= kBefore; }, 120s);
  ASSERT_EQ(keys["confirmed"].size(), static_cast<std::size_t>(kBefore));

  // The service goes down for 20 s while the rest of the orders arrive.
  chaos({{"down_for_ms", 20'000}});
  const auto down_at = std::chrono::steady_clock::now();
  produce("accepted", kBefore, kOrders - kBefore);
  // The breaker opens; the other sub-topology is not held up by the waiting calls.
  produce("side", 0, 1000);
  read_until(
      *reader, keys, [&] { return keys["side-out"].size() >= 1000; }, 60s);
  EXPECT_EQ(keys["side-out"].size(), 1000u);
  EXPECT_LT(std::chrono::steady_clock::now() - down_at, 15s);
  const auto during = scrape(admin);
  EXPECT_GE(metric(during, R"(streamrun_call_breaker_state{endpoint="orders"})"), 1)
      << "the breaker should be open or probing during the outage";
  EXPECT_LT(keys["confirmed"].size(), static_cast<std::size_t>(kOrders));

  read_until(
      *reader, keys, [&] { return keys["confirmed"].size() >= kOrders; }, 180s);
  EXPECT_EQ(keys["confirmed"].size(), static_cast<std::size_t>(kOrders)) << "records lost";
  EXPECT_TRUE(keys["dead"].empty()) << keys["dead"].size() << " records dead-lettered";
  EXPECT_EQ(service_stats()["confirmed"], kOrders);
  const auto after = scrape(admin);
  EXPECT_EQ(
      metric(after, R"(streamrun_call_breaker_transitions_total{endpoint="orders",to="open"})"), 1);
  EXPECT_EQ(
      metric(after, R"(streamrun_call_breaker_transitions_total{endpoint="orders",to="closed"})"),
      1);
  EXPECT_EQ(metric(after, R"(streamrun_call_breaker_state{endpoint="orders"})"), 0);
  EXPECT_EQ(metric(after, R"(streamrun_records_dead_lettered_total)"), 0);
  EXPECT_TRUE(app.stop().ok());
}

}  // namespace
}  // namespace streamrun::testing
