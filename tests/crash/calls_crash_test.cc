// The confirmer (pipelines/confirm-orders.yaml) SIGKILLed while its calls to seckill-orders are
// in flight, and restarted each time: no accepted order is skipped (every one ends up in
// `confirmations`), nothing is dead-lettered, and a call repeated after a kill carries the same
// Idempotency-Key, so the service confirms each order once (it counts the repeats).

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_process.h>
#include <streamrun/testing/child_process.h>

#include "../support/kafka_test_util.h"
#include "../support/orders_service.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr int kOrders = 20'000;
constexpr int kKills = 3;
constexpr int kPartitions = 4;

class CallsCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker =
        BrokerProcess::start(STREAMRUN_CLI_PATH, {{"decisions", kPartitions},
                                                  {"confirmations", kPartitions},
                                                  {"confirmer-dead-letter", kPartitions}});
    ASSERT_TRUE(broker.ok()) << broker.error().message();
    broker_.emplace(std::move(broker).value());
    // A fifth of the calls take 100 ms: at any moment many are in flight.
    service_ = OrdersService::start({"--slow-share", "0.2", "--slow-ms", "100"});
    ASSERT_TRUE(service_.has_value());
    ::setenv("ORDERS_URL", service_->url().c_str(), 1);
  }

  [[nodiscard]] json stats() const { return service_->stats(); }

  ChildProcess start_confirmer() {
    auto app = ChildProcess::spawn(
        STREAMRUN_CLI_PATH,
        {STREAMRUN_CONFIRM_PIPELINE, "--set", "bootstrap.servers=" + broker_->bootstrap_servers(),
         "--set", "consumer.session.timeout.ms=6000", "--set", "admin.timeout.ms=500", "--set",
         "admin.listen=0", "--set", "consumer.fetch.wait.max.ms=10"},
        /*merge_stderr=*/true);
    EXPECT_TRUE(app.ok()) << app.error().message();
    return std::move(app).value();
  }

  std::optional<BrokerProcess> broker_;
  std::optional<OrdersService> service_;
};

TEST_F(CallsCrashTest, KilledWithCallsInFlightItSkipsNoOrderAndTheServiceConfirmsEachOnce) {
  {
    kafka::ClientProperties producer{{"bootstrap.servers", broker_->bootstrap_servers()}};
    auto out = kafka::Producer::create(producer).value();
    for (int i = 0; i < kOrders; ++i) {
      const auto id = fmt::format("o-{}", i);
      const auto decision = json{{"order_id", id},       {"user_id", fmt::format("u-{}", i)},
                                 {"sku", "sku-1"},       {"decision", "accepted"},
                                 {"reason", "accepted"}, {"remaining", 0}};
      send_waiting(*out, {"decisions", std::nullopt, id, decision.dump(), {}, std::nullopt});
    }
    ASSERT_TRUE(out->flush(30s).ok());
  }
  for (int kill = 0; kill < kKills; ++kill) {
    const auto calls_before = stats().value("calls", 0);
    auto confirmer = start_confirmer();
    // Kill it once this instance has called (some hundreds of calls more) and the service is
    // serving some of its calls right now.
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    bool in_flight = false;
    while (!in_flight && std::chrono::steady_clock::now() < deadline) {
      const auto now = stats();
      in_flight =
          now.value("calls", 0) > calls_before + 200 * (kill + 1) && now.value("in_flight", 0) > 0;
      if (!in_flight)
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(in_flight) << "the confirmer never had a call in flight; its output:\n"
                           << confirmer.output();
    confirmer.signal(SIGKILL);
    EXPECT_EQ(confirmer.wait(30s), std::optional<int>(128 + SIGKILL));
    std::cout << "kill " << kill + 1 << ": " << stats().dump() << "\n";
  }
  auto confirmer = start_confirmer();

  kafka::ClientProperties reader_properties{{"bootstrap.servers", broker_->bootstrap_servers()},
                                            {"group.id", "verifier"},
                                            {"auto.offset.reset", "earliest"}};
  auto reader = kafka::Consumer::create(reader_properties, nullptr).value();
  ASSERT_TRUE(reader->subscribe({"confirmations", "confirmer-dead-letter"}).ok());
  std::set<std::string> confirmed;
  std::int64_t dead = 0;
  poll_until(
      *reader, [&] { return confirmed.size() >= kOrders; },
      [&](const kafka::Message& m) {
        if (m.topic() == "confirmer-dead-letter") {
          ++dead;
          return;
        }
        const auto value = json::parse(m.value().value_or("null"));
        EXPECT_TRUE(value.contains("confirmation")) << value.dump();
        confirmed.insert(value.value("order_id", ""));
      },
      300s);
  EXPECT_EQ(confirmed.size(), static_cast<std::size_t>(kOrders)) << "orders skipped";
  EXPECT_EQ(dead, 0);
  const auto final_stats = stats();
  std::cout << "service: " << final_stats.dump() << "\n";
  EXPECT_EQ(final_stats["confirmed"], kOrders) << "an order confirmed twice, or not at all";
  confirmer.signal(SIGTERM);
  EXPECT_EQ(confirmer.wait(60s), std::optional<int>(0)) << confirmer.output();
}

}  // namespace
}  // namespace streamrun::testing
