// SIGKILL a pipeline while it retries and dead-letters failing records, and restart it: every
// bad record ends in the dead-letter topic, every good one in the output.

#include <atomic>
#include <csignal>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/log_reader.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_process.h>
#include <streamrun/testing/child_process.h>

#include "support/crash_support.h"
#include "support/kafka_test_util.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kOrders = 20'000;
constexpr int kPartitions = 4;

struct Scenario {
  std::string application_id;
  std::vector<std::string> app_flags;
  std::function<bool(int)> is_bad;
  std::string bad_value;  // the value of a bad order
};

// Produces kOrders orders, kills the app three times while it works through them, lets a
// fourth instance finish, and checks that every good order reached `accepted`, every bad one
// the dead-letter topic, and that the committed offsets reached the end of every partition.
void run_scenario(const Scenario& scenario) {
  const auto dead_letter_topic = scenario.application_id + "-dead-letter";
  auto started = BrokerProcess::start(STREAMRUN_CLI_PATH,
                                      {{"orders", kPartitions},
                                       {"accepted", kPartitions},
                                       {dead_letter_topic, kPartitions},
                                       {scenario.application_id + "-seen-changelog", kPartitions}});
  ASSERT_TRUE(started.ok()) << started.error().message();
  auto broker = std::move(started).value();
  const auto bootstrap = broker.bootstrap_servers();
  {
    auto producer = kafka::Producer::create({{"bootstrap.servers", bootstrap}}).value();
    for (int i = 0; i < kOrders; ++i) {
      send_waiting(*producer, {"orders",
                               std::nullopt,
                               fmt::format("order-{}", i),
                               scenario.is_bad(i) ? scenario.bad_value : "ok",
                               {},
                               std::nullopt});
    }
    ASSERT_TRUE(producer->flush(60s).ok());
  }

  // Reads both outputs on its own thread, so that kills can be timed by progress.
  std::mutex mutex;
  std::set<std::string> accepted;
  std::set<std::string> dead;
  std::atomic<std::int64_t> outputs{0};
  std::atomic<bool> reading{true};
  // Each run starts from an empty state directory of its own.
  const auto state_dir = std::filesystem::temp_directory_path() /
                         fmt::format("streamrun-{}-{}", scenario.application_id, ::getpid());
  std::filesystem::remove_all(state_dir);
  std::thread reader([&] {
    auto consumer = kafka::Consumer::create({{"bootstrap.servers", bootstrap},
                                             {"group.id", "poison-verifier"},
                                             {"session.timeout.ms", "6000"}},
                                            nullptr)
                        .value();
    EXPECT_TRUE(consumer->subscribe({"accepted", dead_letter_topic}).ok());
    std::vector<kafka::Message> batch;
    while (reading) {
      batch.clear();
      if (!consumer->poll(batch, 1000, 20ms))
        continue;
      std::lock_guard lock(mutex);
      for (const auto& m : batch) {
        (m.topic() == "accepted" ? accepted : dead).insert(std::string(m.key().value_or("")));
        ++outputs;
      }
    }
  });
  StopThreadAtExit stop_reader(reading, reader);
  auto start_app = [&] {
    std::vector<std::string> args{"--bootstrap",           bootstrap,     "--application-id",
                                  scenario.application_id, "--state-dir", state_dir.string()};
    args.insert(args.end(), scenario.app_flags.begin(), scenario.app_flags.end());
    auto app = ChildProcess::spawn(STREAMRUN_POISON_APP_PATH, args);
    EXPECT_TRUE(app.ok()) << app.error().message();
    EXPECT_TRUE(app->wait_for_line("started", 30s).has_value());
    return std::move(app).value();
  };

  std::mt19937 random(4242);
  std::uniform_int_distribution<std::int64_t> share(200, kOrders / 5);
  for (int kill = 0; kill < 3; ++kill) {
    auto app = start_app();
    ASSERT_TRUE(await_count(outputs, outputs.load() + share(random)))
        << "instance " << kill << " made no progress";
    app.signal(SIGKILL);
    ASSERT_EQ(app.wait(10s), std::optional<int>(128 + SIGKILL));
  }
  auto survivor = start_app();
  std::set<std::string> want_accepted;
  std::set<std::string> want_dead;
  for (int i = 0; i < kOrders; ++i)
    (scenario.is_bad(i) ? want_dead : want_accepted).insert(fmt::format("order-{}", i));
  // Done when every order has its output and the group's committed offsets reached the end
  // of every partition: outputs alone may come from a killed instance that never committed.
  auto log_reader = kafka::LogReader::create({{"bootstrap.servers", bootstrap}}).value();
  auto group =
      kafka::Consumer::create(
          {{"bootstrap.servers", bootstrap}, {"group.id", scenario.application_id}}, nullptr)
          .value();
  std::vector<std::int64_t> ends;
  for (int p = 0; p < kPartitions; ++p) {
    auto marks = log_reader->watermarks({TopicName("orders"), PartitionId(p)}, 10s);
    ASSERT_TRUE(marks.ok()) << marks.error().message();
    ends.push_back(marks->high);
  }
  auto committed_offsets = [&] {
    std::vector<std::int64_t> offsets(kPartitions, -1);
    for (int p = 0; p < kPartitions; ++p) {
      auto committed = group->committed({{TopicName("orders"), PartitionId(p)}}, 10s);
      if (committed && committed->size() == 1)
        offsets[static_cast<std::size_t>(p)] = committed->front().offset.value();
    }
    return offsets;
  };
  auto complete = [&] {
    std::lock_guard lock(mutex);
    return accepted.size() + dead.size() >= kOrders;
  };
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  while ((!complete() || committed_offsets() != ends) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);  // observing another process's progress
  }
  survivor.signal(SIGTERM);
  EXPECT_EQ(survivor.wait(60s), std::optional<int>(0));
  stop_reader.stop();
  std::filesystem::remove_all(state_dir);
  EXPECT_EQ(accepted, want_accepted) << "every good order reached the output";
  EXPECT_EQ(dead, want_dead) << "every bad order reached the dead-letter topic";
  // Nothing held commits back: the offsets reached the end of every partition, and the
  // graceful stop left them there.
  EXPECT_EQ(committed_offsets(), ends);
}

TEST(PoisonCrashTest, KillsDuringRetriesAndDeadLetteringLoseNoRecord) {
  run_scenario({"poison-crash", {}, [](int i) { return i % 50 == 17; }, "bad"});  // 2%
}

TEST(PoisonCrashTest, KillsAmongOversizeOutputsLoseNothingAndCommitsReachTheEnd) {
  // One order in a thousand makes an output larger than the producer accepts; the task also
  // keeps state. The refused sends are dead-lettered and never hold a commit back.
  run_scenario({"oversize-crash",
                {"--oversize", "--stateful"},
                [](int i) { return i % 1000 == 501; },
                "big"});
}

}  // namespace
}  // namespace streamrun::testing
