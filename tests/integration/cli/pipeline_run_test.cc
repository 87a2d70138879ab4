// `streamrun pipelines/inventory.yaml` as a user runs it: against a broker in its own process,
// fed with orders, stopped with SIGINT and started again.

#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_process.h>
#include <streamrun/testing/child_process.h>

#include "support/kafka_test_util.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kSkus = 5;
constexpr int kUnitsPerSku = 20;
constexpr int kUsers = 97;  // coprime with kSkus: every user orders every item

class PipelineRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ = std::filesystem::temp_directory_path() /
                 fmt::format("streamrun-pipeline-run-{}", ::getpid());
    std::filesystem::remove_all(state_dir_);
    auto started = BrokerProcess::start(
        STREAMRUN_CLI_PATH,
        {{"orders", 4}, {"stock", 4}, {"decisions", 4}, {"inventory-dead-letter", 1}});
    ASSERT_TRUE(started.ok()) << started.error().message();
    broker_ = std::make_unique<BrokerProcess>(std::move(started).value());
    producer_ = kafka::Producer::create({{"bootstrap.servers", bootstrap()}}).value();
  }
  void TearDown() override {
    std::filesystem::remove_all(state_dir_);
    producer_.reset();
    broker_.reset();
  }
  const std::string& bootstrap() const { return broker_->bootstrap_servers(); }

  void send(const std::string& topic, const std::string& key, const std::string& value) {
    send_waiting(*producer_, {topic, std::nullopt, key, value, {}, std::nullopt});
  }

  void produce_orders(int first, int count) {
    for (int i = first; i < first + count; ++i) {
      const nlohmann::json order{{"order_id", std::to_string(i)},
                                 {"user_id", fmt::format("user-{}", i % kUsers)},
                                 {"sku", fmt::format("sku-{}", i % kSkus)},
                                 {"qty", 1},
                                 {"ts", i}};
      send("orders", fmt::format("request-{}", i), order.dump());
    }
    ASSERT_TRUE(producer_->flush(30s).ok());
  }

  ChildProcess start_pipeline() {
    auto app = ChildProcess::spawn(
        STREAMRUN_CLI_PATH,
        {STREAMRUN_SOURCE_DIR "/pipelines/inventory.yaml", "--set",
         "bootstrap.servers=" + bootstrap(), "--set", "state.dir=" + state_dir_.string(), "--set",
         "consumer.session.timeout.ms=6000", "--set", "admin.timeout.ms=500"});
    EXPECT_TRUE(app.ok()) << app.error().message();
    return std::move(app).value();
  }

  // Reads `decisions` from the start until every order in [0, orders) has one.
  std::map<std::string, std::set<std::string>> read_decisions(int orders) {
    auto consumer = kafka::Consumer::create({{"bootstrap.servers", bootstrap()},
                                             {"group.id", fmt::format("reader-{}", ++readers_)},
                                             {"session.timeout.ms", "6000"}},
                                            nullptr)
                        .value();
    EXPECT_TRUE(consumer->subscribe({"decisions"}).ok());
    std::map<std::string, std::set<std::string>> reasons;  // order -> the reasons given
    poll_until(
        *consumer, [&] { return reasons.size() >= static_cast<std::size_t>(orders); },
        [&](const kafka::Message& m) {
          const auto decision = nlohmann::json::parse(m.value().value_or("{}"));
          reasons[decision.value("order_id", "?")].insert(decision.value("reason", "?") + "/" +
                                                          decision.value("sku", "?") + "/" +
                                                          decision.value("user_id", "?"));
        },
        90s);
    return reasons;
  }

  std::filesystem::path state_dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<kafka::Producer> producer_;
  int readers_ = 0;
};

TEST_F(PipelineRunTest, InventoryDecidesEveryOrderOnceAcrossARestartWithoutOverselling) {
  for (int s = 0; s < kSkus; ++s)
    send("stock", fmt::format("sku-{}", s), nlohmann::json{{"units", kUnitsPerSku}}.dump());
  send("orders", "bad-1", "this is not JSON");
  produce_orders(0, 300);

  auto first = start_pipeline();
  ASSERT_GE(read_decisions(300).size(), 300u);
  first.signal(SIGINT);
  ASSERT_EQ(first.wait(60s), std::optional<int>(0)) << "Ctrl-C stops the pipeline cleanly";

  produce_orders(300, 200);
  auto second = start_pipeline();
  const auto reasons = read_decisions(500);
  second.signal(SIGINT);
  ASSERT_EQ(second.wait(60s), std::optional<int>(0));

  std::map<std::string, int> accepted_per_sku;
  std::set<std::string> accepted_user_sku;
  for (int i = 0; i < 500; ++i) {
    const auto it = reasons.find(std::to_string(i));
    ASSERT_NE(it, reasons.end()) << "order " << i << " was never decided";
    ASSERT_EQ(it->second.size(), 1u) << "order " << i << " was decided twice differently";
    const auto& decision = *it->second.begin();
    if (decision.starts_with("accepted/")) {
      const auto sku = decision.substr(9, decision.find('/', 9) - 9);
      ++accepted_per_sku[sku];
      EXPECT_TRUE(accepted_user_sku.insert(decision.substr(9)).second)
          << "a user got a second unit of an item: " << decision;
    }
  }
  for (const auto& [sku, accepted] : accepted_per_sku)
    EXPECT_EQ(accepted, kUnitsPerSku) << sku << ": all the stock sold, never more";
  EXPECT_EQ(accepted_per_sku.size(), static_cast<std::size_t>(kSkus));
}

}  // namespace
}  // namespace streamrun::testing
