// The seckill system end to end, as its programs run: seckill-load fires a burst, the
// seckill-inventory pipeline is SIGKILLed at random moments during it and restarted each time
// (or runs as two instances, one of them killed), and seckill-check must then find every
// invariant holding: never oversold, one unit per user and SKU, every order decided, repeated
// decisions agreeing, every malformed order dead-lettered, nothing dropped from the log.
//
// CTest label "crash" (CI) kills 5 times; the "soak" binary (STREAMRUN_SOAK) 20 times over a
// larger burst.

#include <csignal>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <streamrun/runtime/application.h>
#include <streamrun/testing/broker_process.h>
#include <streamrun/testing/child_process.h>

#include "inventory.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;

#ifdef STREAMRUN_SOAK
constexpr int kKills = 20;
constexpr int kOrders = 200'000;
#else
constexpr int kKills = 5;
constexpr int kOrders = 40'000;
#endif
constexpr int kPartitions = 4;

class SeckillCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ = std::filesystem::temp_directory_path() /
                 fmt::format("seckill-crash-{}-{}", ::getpid(),
                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(state_dir_);
    // Every topic the pipeline uses, as `seckill-inventory --topics` lists them: the development
    // broker has no Admin API.
    auto listing = runtime::Application::topic_listing(seckill::inventory_topology(),
                                                       seckill::inventory_defaults(), kPartitions);
    ASSERT_TRUE(listing.ok()) << listing.error().message();
    std::vector<kafka::TopicSpec> topics;
    std::istringstream lines(*listing);
    for (std::string line; std::getline(lines, line);) {
      auto spec = kafka::TopicSpec::parse(line.substr(0, line.find('\t')));
      ASSERT_TRUE(spec.ok()) << line;
      topics.push_back(*spec);
    }
    auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, topics);
    ASSERT_TRUE(broker.ok()) << broker.error().message();
    broker_.emplace(std::move(broker).value());
    auto stock = run({SECKILL_LOAD_PATH,
                      {"--bootstrap", bootstrap(), "--orders", "0", "--skus", "20", "--units",
                       "300", "--hot-units", "2000"}});
    ASSERT_EQ(stock, 0) << "loading the stock failed";
  }
  void TearDown() override { std::filesystem::remove_all(state_dir_); }

  const std::string& bootstrap() const { return broker_->bootstrap_servers(); }

  struct Command {
    std::string program;
    std::vector<std::string> args;
  };
  // Runs a program to its end; its exit status.
  static std::optional<int> run(const Command& command,
                                std::chrono::seconds timeout = std::chrono::seconds(600)) {
    auto child = ChildProcess::spawn(command.program, command.args);
    if (!child.ok())
      return std::nullopt;
    while (auto line = child->read_line(timeout))
      std::cout << *line << "\n";
    return child->wait(timeout);
  }

  ChildProcess start_pipeline(const std::string& instance) {
    auto app = ChildProcess::spawn(
        SECKILL_INVENTORY_PATH,
        {"--bootstrap", bootstrap(), "--state-dir", (state_dir_ / instance).string(), "--set",
         "consumer.session.timeout.ms=6000", "--set", "admin.timeout.ms=500"},
        /*merge_stderr=*/true);
    EXPECT_TRUE(app.ok()) << app.error().message();
    return std::move(app).value();
  }

  // A burst in the background: 1 % malformed, 2 % repeated orders, half on the hot SKU.
  ChildProcess start_burst(int orders, int rate) {
    auto load =
        ChildProcess::spawn(SECKILL_LOAD_PATH, {"--bootstrap", bootstrap(), "--no-stock",
                                                "--orders", std::to_string(orders), "--skus", "20",
                                                "--rate", std::to_string(rate), "--users", "5000"});
    EXPECT_TRUE(load.ok()) << load.error().message();
    return std::move(load).value();
  }

  void expect_checker_passes() {
    // With the sales per SKU and second: counted in the deciding task's state, they must add
    // up to the decisions after every kill (invariant 7).
    auto check =
        ChildProcess::spawn(SECKILL_CHECK_PATH, {"--bootstrap", bootstrap(), "--wait", "300",
                                                 "--idle", "90", "--sales-rate", "sales-rate"});
    ASSERT_TRUE(check.ok());
    while (auto line = check->read_line(400s))
      std::cout << *line << "\n";  // the checker's table, in the test's log
    const auto status = check->wait(10s);
    EXPECT_EQ(status, std::optional<int>(0)) << "seckill-check found a broken invariant (above)";
  }

  std::filesystem::path state_dir_;
  std::optional<BrokerProcess> broker_;
};

TEST_F(SeckillCrashTest, KilledAtRandomMomentsDuringTheBurstItNeverOversellsAndAnswersAll) {
  // The burst outlasts the kills (a restart waits for the group to drop the killed member,
  // several seconds on the development broker); each instance lives 0.3 to 2 s once it has its
  // tasks, so every kill lands while orders arrive.
  auto load = start_burst(kOrders, kOrders / (kKills * 8));
  std::mt19937 random(20261130);
  std::uniform_int_distribution<int> lifetime_ms(300, 2'000);
  for (int kill = 0; kill < kKills; ++kill) {
    auto pipeline = start_pipeline("single");
    ASSERT_TRUE(pipeline.wait_for_line("started for", 60s).has_value())
        << "instance " << kill << " never got a task";
    std::this_thread::sleep_for(std::chrono::milliseconds(lifetime_ms(random)));
    pipeline.signal(SIGKILL);
    ASSERT_EQ(pipeline.wait(10s), std::optional<int>(128 + SIGKILL));
  }
  ASSERT_EQ(load.wait(600s), std::optional<int>(0)) << load.output();
  auto survivor = start_pipeline("single");
  expect_checker_passes();
  survivor.signal(SIGTERM);
  EXPECT_EQ(survivor.wait(90s), std::optional<int>(0));
}

#ifndef STREAMRUN_SOAK
TEST_F(SeckillCrashTest, TwoInstancesShareTheLoadAndOneIsKilled) {
  auto first = start_pipeline("first");
  auto second = start_pipeline("second");
  ASSERT_TRUE(first.wait_for_line("started for", 60s).has_value());
  ASSERT_TRUE(second.wait_for_line("started for", 60s).has_value())
      << "the second instance never got a partition";
  auto load = start_burst(kOrders, kOrders / 4);
  std::this_thread::sleep_for(1500ms);
  first.signal(SIGKILL);
  ASSERT_EQ(first.wait(10s), std::optional<int>(128 + SIGKILL));
  ASSERT_EQ(load.wait(600s), std::optional<int>(0)) << load.output();
  // The survivor takes the killed instance's partitions over once the group notices (the
  // session timeout), restores their state from the changelogs and answers the rest.
  expect_checker_passes();
  second.signal(SIGTERM);
  EXPECT_EQ(second.wait(90s), std::optional<int>(0));
}
#endif

}  // namespace
}  // namespace streamrun::testing
