// SIGKILL a stateful counting pipeline at random moments and restart it: the counts in its output
// must equal the exact counts of the input — nothing applied twice, nothing lost.

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <streamrun/core/serde.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_process.h>

#include "support/kafka_test_util.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ =
        std::filesystem::temp_directory_path() / fmt::format("streamrun-crash-{}", ::getpid());
    std::filesystem::remove_all(state_dir_);
    auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, {{"clicks", 4}, {"click-counts", 4}});
    ASSERT_TRUE(broker.ok()) << broker.error().message();
    broker_ = std::make_unique<BrokerProcess>(std::move(broker).value());
  }
  void TearDown() override {
    broker_.reset();
    std::filesystem::remove_all(state_dir_);
  }

  std::map<std::string, std::int64_t> produce(int records) {
    auto producer = kafka::Producer::create({{"bootstrap.servers", broker_->bootstrap_servers()}});
    EXPECT_TRUE(producer.ok());
    std::map<std::string, std::int64_t> expected;
    for (int i = 0; i < records; ++i) {
      const auto user = fmt::format("user-{}", (i * 7919) % 1000);
      ++expected[user];
      send_waiting(**producer, {"clicks", std::nullopt, user, "click", {}, std::nullopt});
    }
    EXPECT_TRUE((*producer)->flush(60s).ok());
    return expected;
  }

  ChildProcess start_app() {
    auto app = ChildProcess::spawn(
        STREAMRUN_COUNT_APP_PATH,
        {"--bootstrap", broker_->bootstrap_servers(), "--state-dir", state_dir_.string()});
    EXPECT_TRUE(app.ok()) << app.error().message();
    EXPECT_TRUE(app->wait_for_line("started", 30s).has_value());
    return std::move(app).value();
  }

  // The highest count seen per user in click-counts, read until it matches `expected`.
  std::map<std::string, std::int64_t> final_counts(
      const std::map<std::string, std::int64_t>& expected, std::chrono::seconds timeout) {
    auto consumer = kafka::Consumer::create({{"bootstrap.servers", broker_->bootstrap_servers()},
                                             {"group.id", "crash-verifier"},
                                             {"session.timeout.ms", "6000"}},
                                            nullptr);
    EXPECT_TRUE(consumer.ok());
    EXPECT_TRUE((*consumer)->subscribe({"click-counts"}).ok());
    std::map<std::string, std::int64_t> highest;
    outputs_ = 0;
    poll_until(
        **consumer, [&] { return highest == expected; },
        [&](const kafka::Message& m) {
          ++outputs_;
          auto& count = highest[std::string(m.key().value_or(""))];
          count = std::max(count, serdes::int64().deserialize(m.value()));
        },
        timeout);
    return highest;
  }

  // Counts the updates written to click-counts, on its own thread, so that a kill can be timed
  // to land while the pipeline is producing them.
  class OutputWatcher {
   public:
    explicit OutputWatcher(const std::string& bootstrap) {
      auto consumer = kafka::Consumer::create({{"bootstrap.servers", bootstrap},
                                               {"group.id", "crash-watch"},
                                               {"session.timeout.ms", "6000"}},
                                              nullptr);
      EXPECT_TRUE(consumer.ok());
      consumer_ = std::move(consumer).value();
      EXPECT_TRUE(consumer_->subscribe({"click-counts"}).ok());
      thread_ = std::thread([this] {
        std::vector<kafka::Message> batch;
        while (running_) {
          batch.clear();
          if (consumer_->poll(batch, 1000, 20ms))
            seen_ += static_cast<std::int64_t>(batch.size());
        }
      });
    }
    ~OutputWatcher() {
      running_ = false;
      thread_.join();
    }
    std::int64_t seen() const { return seen_.load(); }

   private:
    std::unique_ptr<kafka::Consumer> consumer_;
    std::atomic<bool> running_{true};
    std::atomic<std::int64_t> seen_{0};
    std::thread thread_;
  };

  void run_kills(int records, int kills) {
    const auto expected = produce(records);
    OutputWatcher watcher(broker_->bootstrap_servers());
    std::mt19937 random(12345);
    // Each instance is killed after it has written a random share of the updates, so kills
    // land mid-stream: between a record's processing, its output, the state commit and the
    // Kafka commit.
    std::uniform_int_distribution<std::int64_t> share(1, records / (kills + 1));
    for (int kill = 0; kill < kills; ++kill) {
      const auto target = watcher.seen() + share(random);
      auto app = start_app();
      const auto deadline = std::chrono::steady_clock::now() + 120s;
      while (watcher.seen() < target && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);  // observing another process's output
      }
      ASSERT_GE(watcher.seen(), target) << "instance " << kill << " made no progress";
      app.signal(SIGKILL);
      ASSERT_EQ(app.wait(10s), std::optional<int>(128 + SIGKILL));
    }
    auto survivor = start_app();
    const auto counts = final_counts(expected, 180s);
    survivor.signal(SIGTERM);
    EXPECT_EQ(survivor.wait(60s), std::optional<int>(0));

    std::int64_t total = 0;
    int wrong = 0;
    for (const auto& [user, count] : expected) {
      total += counts.contains(user) ? counts.at(user) : 0;
      if (!counts.contains(user) || counts.at(user) != count)
        ++wrong;
    }
    EXPECT_EQ(wrong, 0) << "users whose final count is not their exact number of clicks";
    EXPECT_EQ(total, records) << "clicks counted in all, over " << kills << " SIGKILLs";
    // More outputs than inputs means some were produced again after a kill: the kills did land
    // while records were being processed.
    std::cout << records << " clicks, " << outputs_ << " count updates written, " << kills
              << " SIGKILLs\n";
  }

  std::filesystem::path state_dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::int64_t outputs_ = 0;
};

#ifndef STREAMRUN_SOAK
// CTest label "crash": the short version that CI runs.
TEST_F(CrashTest, CountsStayExactAcrossThreeSigkills) {
  run_kills(50'000, 3);
}
#else
// CTest label "soak" (its own binary, not run by CI): 200k records, 10 kills.
TEST_F(CrashTest, CountsStayExactAcrossTenSigkillsOf200kRecords) {
  run_kills(200'000, 10);
}
#endif

}  // namespace
}  // namespace streamrun::testing
