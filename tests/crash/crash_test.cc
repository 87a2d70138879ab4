// SIGKILL a stateful counting pipeline at random moments and restart it: the counts in its output
// must equal the exact counts of the input — nothing applied twice, nothing lost.

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/serde.h>
#include <streamrun/core/windows.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_process.h>

#include "support/kafka_test_util.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;

// The development broker has no Admin API: the changelogs are created with the broker.
constexpr const char* kChangelog = "crash-counter-clicks-per-user-changelog";
constexpr const char* kWindowChangelog = "crash-window-counter-clicks-per-window-changelog";

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ =
        std::filesystem::temp_directory_path() / fmt::format("streamrun-crash-{}", ::getpid());
    std::filesystem::remove_all(state_dir_);
    auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, {{"clicks", 4},
                                                            {"click-counts", 4},
                                                            {kChangelog, 4},
                                                            {"window-counts", 4},
                                                            {kWindowChangelog, 4}});
    ASSERT_TRUE(broker.ok()) << broker.error().message();
    broker_ = std::make_unique<BrokerProcess>(std::move(broker).value());
  }
  void TearDown() override {
    broker_.reset();
    std::filesystem::remove_all(state_dir_);
  }

  // Clicks number `first` to `first + records - 1`; click i is by user (i * 7919) % 1000.
  std::map<std::string, std::int64_t> produce(int records, int first = 0) {
    auto producer = kafka::Producer::create({{"bootstrap.servers", broker_->bootstrap_servers()}});
    EXPECT_TRUE(producer.ok());
    std::map<std::string, std::int64_t> expected;
    for (int i = first; i < first + records; ++i) {
      const auto user = fmt::format("user-{}", (i * 7919) % 1000);
      ++expected[user];
      send_waiting(**producer, {"clicks", std::nullopt, user, "click", {}, std::nullopt});
    }
    EXPECT_TRUE((*producer)->flush(60s).ok());
    return expected;
  }

  // Waits until `watcher` has seen `count` more outputs than now.
  template <typename Watcher>
  static bool await_outputs(const Watcher& watcher, std::int64_t count) {
    const auto target = watcher.seen() + count;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (watcher.seen() < target && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);  // observing another process's output
    }
    return watcher.seen() >= target;
  }

  void expect_exact(const std::map<std::string, std::int64_t>& expected,
                    const std::map<std::string, std::int64_t>& counts, std::string_view what) {
    std::int64_t total = 0;
    std::int64_t wanted = 0;
    int wrong = 0;
    for (const auto& [user, count] : expected) {
      wanted += count;
      total += counts.contains(user) ? counts.at(user) : 0;
      if (!counts.contains(user) || counts.at(user) != count)
        ++wrong;
    }
    EXPECT_EQ(wrong, 0) << "users whose final count is not their exact number of clicks";
    EXPECT_EQ(total, wanted) << "clicks counted in all, " << what;
  }

  // `logs`: the instance's info-level log is readable through its stdout.
  ChildProcess start_app(const std::filesystem::path& state_dir, bool logs = false,
                         std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args{"--bootstrap", broker_->bootstrap_servers(), "--state-dir",
                                  state_dir.string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    if (logs) {
      args.insert(args.end(), {"--log-level", "info"});
    }
    auto app = ChildProcess::spawn(STREAMRUN_COUNT_APP_PATH, args, /*merge_stderr=*/logs);
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
    explicit OutputWatcher(const std::string& bootstrap,
                           const std::string& topic = "click-counts") {
      auto consumer = kafka::Consumer::create({{"bootstrap.servers", bootstrap},
                                               {"group.id", "crash-watch"},
                                               {"session.timeout.ms", "6000"}},
                                              nullptr);
      EXPECT_TRUE(consumer.ok());
      consumer_ = std::move(consumer).value();
      EXPECT_TRUE(consumer_->subscribe({topic}).ok());
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

  // Before restart number `wipe_before` (1-based), the state directory is deleted, as if the
  // instance came back on a new machine: that restart restores from the changelog.
  void run_kills(int records, int kills, int wipe_before) {
    std::map<std::string, std::int64_t> expected;
    // Each instance gets a fresh chunk of clicks and is killed after it has written a random
    // share of the chunk's updates, so kills land mid-stream (between a record's processing,
    // its output, the state commit and the Kafka commit) however fast the pipeline is.
    const int chunk = records / (kills + 1);
    const auto produce_chunk = [&](int index) {
      const int first = index * chunk;
      for (const auto& [user, count] : produce(index == kills ? records - first : chunk, first))
        expected[user] += count;
    };
    OutputWatcher watcher(broker_->bootstrap_servers());
    std::mt19937 random(12345);
    std::uniform_int_distribution<std::int64_t> share(1, chunk);
    for (int kill = 0; kill < kills; ++kill) {
      if (kill == wipe_before)
        std::filesystem::remove_all(state_dir_);
      produce_chunk(kill);
      auto app = start_app(state_dir_);
      ASSERT_TRUE(await_outputs(watcher, share(random)))
          << "instance " << kill << " made no progress";
      app.signal(SIGKILL);
      ASSERT_EQ(app.wait(10s), std::optional<int>(128 + SIGKILL));
    }
    produce_chunk(kills);
    auto survivor = start_app(state_dir_);
    const auto counts = final_counts(expected, 180s);
    survivor.signal(SIGTERM);
    EXPECT_EQ(survivor.wait(60s), std::optional<int>(0));

    expect_exact(expected, counts, fmt::format("over {} SIGKILLs", kills));
    // More outputs than inputs means some were produced again after a kill: the kills did land
    // while records were being processed.
    std::cout << records << " clicks, " << outputs_ << " count updates written, " << kills
              << " SIGKILLs\n";
  }

  // Windowed counts (count_app --windowed): click i is by user (i * 7919) % 20 at 10 ms * i,
  // so each user has about 5 clicks per second. The final count of each user and second must
  // be exact, however often it is written again after a kill.
  void run_windowed_kills(int records, int kills, int wipe_before) {
    constexpr std::int64_t kStart = 1'700'000'000'000;
    std::map<std::pair<std::string, std::int64_t>, std::int64_t> expected;
    const int chunk = records / (kills + 1);
    auto producer =
        kafka::Producer::create({{"bootstrap.servers", broker_->bootstrap_servers()}}).value();
    const auto produce_chunk = [&](int index) {
      const int first = index * chunk;
      const int last = index == kills ? records : first + chunk;
      for (int i = first; i < last; ++i) {
        const auto user = fmt::format("user-{}", (i * 7919) % 20);
        const std::int64_t at = kStart + 10LL * i;
        ++expected[{user, at - at % 1000}];
        send_waiting(*producer, {"clicks", std::nullopt, user, "click", {}, at});
      }
      if (index == kills) {
        // One record per partition far ahead: it closes every window before it.
        for (std::int32_t p = 0; p < 4; ++p)
          send_waiting(*producer,
                       {"clicks", p, "closer", "click", {}, kStart + 10LL * records + 60'000});
      }
      ASSERT_TRUE(producer->flush(60s).ok());
    };
    const auto windowed_keys = serdes::windowed(serdes::string(), 1s);
    OutputWatcher watcher(broker_->bootstrap_servers(), "window-counts");
    std::mt19937 random(2026);
    // About 20 users' windows close per second of clicks, 100 clicks: kill after a random share.
    std::uniform_int_distribution<std::int64_t> share(1, chunk / 10);
    // Commits a second apart: a kill loses up to a second of emitted windows, written again.
    const auto start = [&] {
      return start_app(state_dir_, false, {"--windowed", "--commit-interval-ms", "1000"});
    };
    for (int kill = 0; kill < kills; ++kill) {
      if (kill == wipe_before)
        std::filesystem::remove_all(state_dir_);
      produce_chunk(kill);
      auto app = start();
      ASSERT_TRUE(await_outputs(watcher, share(random)))
          << "instance " << kill << " made no progress";
      app.signal(SIGKILL);
      ASSERT_EQ(app.wait(10s), std::optional<int>(128 + SIGKILL));
    }
    produce_chunk(kills);
    auto survivor = start();

    auto consumer = kafka::Consumer::create({{"bootstrap.servers", broker_->bootstrap_servers()},
                                             {"group.id", "window-verifier"},
                                             {"session.timeout.ms", "6000"}},
                                            nullptr)
                        .value();
    ASSERT_TRUE(consumer->subscribe({"window-counts"}).ok());
    std::map<std::pair<std::string, std::int64_t>, std::set<std::int64_t>> written;
    std::int64_t outputs = 0;
    poll_until(
        *consumer, [&] { return written.size() >= expected.size(); },
        [&](const kafka::Message& m) {
          ++outputs;
          const auto key = windowed_keys.deserialize(m.key());
          written[{key.key, key.window.start_ms}].insert(serdes::int64().deserialize(m.value()));
        },
        180s);
    survivor.signal(SIGTERM);
    EXPECT_EQ(survivor.wait(60s), std::optional<int>(0));

    int missing = 0;
    int wrong = 0;
    for (const auto& [window, count] : expected) {
      const auto it = written.find(window);
      if (it == written.end())
        ++missing;
      else if (it->second != std::set<std::int64_t>{count})
        ++wrong;
    }
    EXPECT_EQ(missing, 0) << "windows never emitted, of " << expected.size();
    EXPECT_EQ(wrong, 0) << "windows emitted with a count other than their exact one";
    EXPECT_EQ(written.size(), expected.size()) << "windows nobody clicked in were emitted";
    std::cout << records << " clicks, " << expected.size() << " windows, " << outputs
              << " final counts written, " << kills << " SIGKILLs\n";
  }

  std::filesystem::path state_dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::int64_t outputs_ = 0;
};

#ifndef STREAMRUN_SOAK
// CTest label "crash": the short version that CI runs.
TEST_F(CrashTest, CountsStayExactAcrossThreeSigkillsAndALostStateDirectory) {
  run_kills(50'000, 3, /*wipe_before=*/2);
}

// A windowed count with one final result per window, killed three times, once losing its
// state directory: every window's final count is exact, restored from the changelog.
TEST_F(CrashTest, WindowedFinalCountsStayExactAcrossThreeSigkillsAndALostStateDirectory) {
  run_windowed_kills(40'000, 3, /*wipe_before=*/2);
}

// Two instances share the partitions; one is killed. The survivor takes its partitions over
// once the group notices, restores their state from the changelogs (it never had it
// locally) and carries on counting exactly.
TEST_F(CrashTest, SurvivorRestoresAKilledInstancesPartitionsAndCountsExactly) {
  auto expected = produce(20'000);
  OutputWatcher watcher(broker_->bootstrap_servers());
  auto first = start_app(state_dir_ / "first");
  ASSERT_TRUE(await_outputs(watcher, 2'000)) << "the first instance made no progress";
  auto second = start_app(state_dir_ / "second", /*logs=*/true);
  ASSERT_TRUE(second.wait_for_line("started for", 60s).has_value())
      << "the second instance never got a partition";
  for (const auto& [user, count] : produce(20'000))
    expected[user] += count;
  ASSERT_TRUE(await_outputs(watcher, 2'000)) << "the two instances made no progress";
  first.signal(SIGKILL);
  ASSERT_EQ(first.wait(10s), std::optional<int>(128 + SIGKILL));

  for (const auto& [user, count] : produce(20'000))
    expected[user] += count;
  const auto counts = final_counts(expected, 180s);
  expect_exact(expected, counts, "after one of two instances was killed");
  // The survivor got the killed instance's partitions: it logs a task start for each, and
  // restored them — it had no local state for them.
  bool restored = false;
  while (auto line = second.read_line(2s)) {
    if (line->find("restored") != std::string::npos)
      restored = true;
  }
  EXPECT_TRUE(restored) << "the survivor never restored state from a changelog";
  second.signal(SIGTERM);
  EXPECT_EQ(second.wait(60s), std::optional<int>(0));
}

// A state write that fails (here: a 64 KiB file-size limit, which RocksDB sees as a failed write
// as it would a full disk) stops the pipeline with an error naming the task and the directory,
// and commits nothing that is not durable: a restart with room to write counts exactly. Each
// commit writes the keys changed since the last one to the write-ahead log; the clicks arrive in
// chunks, a commit or more each, until the log outgrows the limit.
TEST_F(CrashTest, FailedStateWriteStopsThePipelineAndLosesNothing) {
  auto expected = produce(10'000);
  {
    auto app = start_app(state_dir_, /*logs=*/true,
                         {"--max-file-bytes", "65536", "--commit-interval-ms", "1"});
    std::optional<std::string> error;
    for (int chunk = 0; chunk < 100 && !error; ++chunk) {
      error = app.wait_for_line("commit of task", 1s);
      if (!error) {
        for (const auto& [user, count] : produce(2'000, 10'000 + chunk * 2'000))
          expected[user] += count;
      }
    }
    ASSERT_TRUE(error.has_value()) << "the failed write was not reported";
    EXPECT_THAT(*error, ::testing::HasSubstr(state_dir_.string()));
    EXPECT_THAT(*error, ::testing::HasSubstr("File too large"));
    while (app.read_line(5s)) {
    }
    EXPECT_EQ(app.wait(60s), std::optional<int>(1)) << "the pipeline stops with a failure";
  }
  auto app = start_app(state_dir_);
  const auto counts = final_counts(expected, 180s);
  expect_exact(expected, counts, "after a failed state write");
  app.signal(SIGTERM);
  EXPECT_EQ(app.wait(60s), std::optional<int>(0));
}
#else
// CTest label "soak" (its own binary, not run by CI): 200k records, 10 kills.
TEST_F(CrashTest, CountsStayExactAcrossTenSigkillsOf200kRecordsAndALostStateDirectory) {
  run_kills(200'000, 10, /*wipe_before=*/6);
}
#endif

}  // namespace
}  // namespace streamrun::testing
