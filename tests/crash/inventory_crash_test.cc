// The YAML inventory pipeline (`streamrun pipelines/inventory.yaml`) SIGKILLed at random moments
// and restarted: accepted orders never exceed the stock, no user gets two units of an item,
// and every order is decided — the same way each time it is decided again after a kill.

#include <csignal>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_process.h>
#include <streamrun/testing/child_process.h>

#include "support/crash_support.h"
#include "support/kafka_test_util.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kOrders = 6'000;
constexpr int kSkus = 8;
constexpr int kUnitsPerSku = 300;
constexpr int kUsers = 997;  // coprime with kSkus: every user orders every item

TEST(InventoryCrashTest, KillsNeverOversellAndEveryOrderIsDecided) {
  const auto state_dir = std::filesystem::temp_directory_path() /
                         fmt::format("streamrun-inventory-crash-{}", ::getpid());
  std::filesystem::remove_all(state_dir);
  auto started = BrokerProcess::start(
      STREAMRUN_CLI_PATH,
      {{"orders", 4}, {"stock", 4}, {"decisions", 4}, {"inventory-dead-letter", 1}});
  ASSERT_TRUE(started.ok()) << started.error().message();
  auto broker = std::move(started).value();
  const auto bootstrap = broker.bootstrap_servers();
  {
    auto producer = kafka::Producer::create({{"bootstrap.servers", bootstrap}}).value();
    for (int s = 0; s < kSkus; ++s) {
      send_waiting(*producer, {"stock",
                               std::nullopt,
                               fmt::format("sku-{}", s),
                               nlohmann::json{{"units", kUnitsPerSku}}.dump(),
                               {},
                               std::nullopt});
    }
    ASSERT_TRUE(producer->flush(60s).ok());
  }
  // Orders come in four batches, one per instance, so that every kill lands mid-stream.
  auto producer = kafka::Producer::create({{"bootstrap.servers", bootstrap}}).value();
  int produced = 0;
  auto produce_batch = [&] {
    for (const int end = produced + kOrders / 4; produced < end; ++produced) {
      const nlohmann::json order{{"order_id", std::to_string(produced)},
                                 {"user_id", fmt::format("user-{}", produced % kUsers)},
                                 {"sku", fmt::format("sku-{}", produced % kSkus)},
                                 {"qty", 1}};
      send_waiting(*producer, {"orders",
                               std::nullopt,
                               fmt::format("request-{}", produced),
                               order.dump(),
                               {},
                               std::nullopt});
    }
    ASSERT_TRUE(producer->flush(60s).ok());
  };

  // Every decision read, per order: each later decision of an order must repeat the first.
  std::mutex mutex;
  std::map<std::string, std::set<std::string>> decisions;
  std::atomic<std::int64_t> read{0};
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    auto consumer = kafka::Consumer::create({{"bootstrap.servers", bootstrap},
                                             {"group.id", "inventory-verifier"},
                                             {"session.timeout.ms", "6000"}},
                                            nullptr)
                        .value();
    EXPECT_TRUE(consumer->subscribe({"decisions"}).ok());
    std::vector<kafka::Message> batch;
    while (reading) {
      batch.clear();
      if (!consumer->poll(batch, 1000, 20ms))
        continue;
      std::lock_guard lock(mutex);
      for (const auto& m : batch) {
        const auto d = nlohmann::json::parse(m.value().value_or("{}"));
        decisions[d.value("order_id", "?")].insert(
            d.value("reason", "?") + "/" + d.value("sku", "?") + "/" + d.value("user_id", "?"));
        ++read;
      }
    }
  });
  StopThreadAtExit stop_reader(reading, reader);

  auto start = [&] {
    auto app = ChildProcess::spawn(
        STREAMRUN_CLI_PATH,
        {"--log-level", "warn", STREAMRUN_SOURCE_DIR "/pipelines/inventory.yaml", "--set",
         "bootstrap.servers=" + bootstrap, "--set", "state.dir=" + state_dir.string(), "--set",
         "consumer.session.timeout.ms=6000", "--set", "admin.timeout.ms=500"});
    EXPECT_TRUE(app.ok()) << app.error().message();
    return std::move(app).value();
  };
  std::mt19937 random(1515);
  std::uniform_int_distribution<std::int64_t> share(50, kOrders / 8);
  for (int kill = 0; kill < 3; ++kill) {
    auto app = start();
    const auto before = read.load();
    produce_batch();
    ASSERT_TRUE(await_count(read, before + share(random)))
        << "instance " << kill << " decided nothing";
    app.signal(SIGKILL);
    ASSERT_EQ(app.wait(10s), std::optional<int>(128 + SIGKILL));
  }
  auto survivor = start();
  produce_batch();
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  auto complete = [&] {
    std::lock_guard lock(mutex);
    return decisions.size() >= static_cast<std::size_t>(kOrders);
  };
  while (!complete() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);  // observing another process's output
  survivor.signal(SIGTERM);
  EXPECT_EQ(survivor.wait(60s), std::optional<int>(0));
  stop_reader.stop();
  std::filesystem::remove_all(state_dir);

  std::map<std::string, int> accepted_per_sku;
  std::set<std::string> accepted_user_sku;
  for (int i = 0; i < kOrders; ++i) {
    const auto it = decisions.find(std::to_string(i));
    ASSERT_NE(it, decisions.end()) << "order " << i << " was never decided";
    ASSERT_EQ(it->second.size(), 1u) << "order " << i << " was decided differently after a kill";
    const auto& decision = *it->second.begin();
    if (decision.starts_with("accepted/")) {
      ++accepted_per_sku[decision.substr(9, decision.find('/', 9) - 9)];
      EXPECT_TRUE(accepted_user_sku.insert(decision.substr(9)).second) << decision;
    }
  }
  for (const auto& [sku, accepted] : accepted_per_sku)
    EXPECT_LE(accepted, kUnitsPerSku) << sku << " oversold";
  std::cout << "decisions read: " << read.load() << " for " << kOrders << " orders\n";
}

}  // namespace
}  // namespace streamrun::testing
