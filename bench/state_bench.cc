// State benchmarks: keyed count throughput end to end (commit every 100 ms, changelog written),
// how long a task takes to reopen 1M keys of local state and serve its first read, and how fast
// a task with no local state restores 1M keys from its changelog.
//
//   build/bin/state-bench --records 500000 --keys 1000000

#include <chrono>
#include <filesystem>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/kafka/dev_broker.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>
#include <streamrun/state/task_state.h>

#include "bench_support.h"
#include "changelog.h"  // the runtime's restore, timed on its own

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// clicks -> count per user (store "clicks-per-user") -> click-counts.
streamrun::Topology counting_topology() {
  const streamrun::Serdes<std::string, std::string> strings{streamrun::serdes::string(),
                                                            streamrun::serdes::string()};
  streamrun::StreamBuilder builder;
  builder.stream("clicks", strings)
      .group_by_key(strings)
      .count("clicks-per-user")
      .to_stream()
      .to("click-counts", {streamrun::serdes::string(), streamrun::serdes::int64()});
  return builder.build();
}

void keyed_count_throughput(int records, int buffered, const std::filesystem::path& dir) {
  // The development broker has no Admin API: internal topics are created with it.
  auto broker =
      streamrun::kafka::DevBroker::start(
          {1, {{"clicks", 8}, {"click-counts", 8}, {"bench-count-clicks-per-user-changelog", 8}}})
          .value();
  streamrun::bench::produce(
      broker->bootstrap_servers(), "clicks", records,
      [](int i) { return fmt::format("user-{}", (i * 7919) % 100'000); },
      [](int) { return std::string("click"); });

  auto app =
      streamrun::runtime::Application::create(
          counting_topology(), {{"application.id", "bench-count"},
                                {"bootstrap.servers", broker->bootstrap_servers()},
                                {"state.dir", dir.string()},
                                {"commit.interval.ms", "100"},
                                {"buffered.records.per.partition", std::to_string(buffered)}})
          .value();
  const double seconds = streamrun::bench::run_until_processed(*app, records);
  fmt::print(
      "keyed count, 8 partitions, 100k keys, commit every 100 ms, {} records buffered per "
      "partition: {:.0f} records/s ({} records in {:.2f} s, {} commits)\n",
      buffered, records / seconds, records, seconds, app->stats().commits);
}

void reopen_time(int keys, const std::filesystem::path& dir) {
  using streamrun::state::StateEnvironment;
  using streamrun::state::TaskState;
  auto environment = StateEnvironment::create({dir / "reopen", "reopen", 256u << 20}).value();
  const auto write_start = Clock::now();
  {
    auto state = TaskState::open(environment, "0_0", {"counts"}).value();
    auto& store = state->store("counts");
    for (int i = 0; i < keys; ++i) {
      store.put(fmt::format("user-{:08}", i), std::to_string(i));
      if (i % 10'000 == 9'999)
        state->commit({{"clicks/0", i + 1}}).value();
    }
    state->commit({{"clicks/0", keys}}).value();
  }
  const double write_seconds = seconds_since(write_start);
  const auto open_start = Clock::now();
  auto state = TaskState::open(environment, "0_0", {"counts"}).value();
  const auto value = state->store("counts").get(fmt::format("user-{:08}", keys / 2));
  const double open_seconds = seconds_since(open_start);
  fmt::print("local state: wrote {} keys in {:.2f} s ({:.0f} keys/s, committed every 10k)\n", keys,
             write_seconds, keys / write_seconds);
  fmt::print("reopen with {} keys to first read: {:.3f} s (value found: {})\n", keys, open_seconds,
             value.has_value());
}

// A restart of an application whose task has 1M keys of local state: how long from the task's
// assignment to its first processed record (opening the state, reading the changelog's tail),
// and from run() to that record (the consumer group's join included).
void restart_to_first_record(int keys, const std::filesystem::path& dir) {
  const std::string app_id = "bench-restart";
  auto broker =
      streamrun::kafka::DevBroker::start(
          {1, {{"clicks", 1}, {"click-counts", 1}, {app_id + "-clicks-per-user-changelog", 1}}})
          .value();
  {
    // The state a previous run left: 1M counts, input consumed up to offset 0.
    using streamrun::state::StateEnvironment;
    using streamrun::state::TaskState;
    auto environment =
        StateEnvironment::create({dir / "restart" / app_id, app_id, 256u << 20}).value();
    auto state = TaskState::open(environment, "0_0", {"clicks-per-user"}).value();
    auto& store = state->store("clicks-per-user");
    for (int i = 0; i < keys; ++i) {
      store.put(fmt::format("user-{:08}", i), streamrun::serdes::int64().serialize(1).value());
      if (i % 10'000 == 9'999)
        state->commit({{"clicks/0", 0}}).value();
    }
    state->commit({{"clicks/0", 0}}).value();
  }
  streamrun::bench::produce(
      broker->bootstrap_servers(), "clicks", 1, [](int) { return std::string("user-00000007"); },
      [](int) { return std::string("click"); });
  auto app = streamrun::runtime::Application::create(
                 counting_topology(), {{"application.id", app_id},
                                       {"bootstrap.servers", broker->bootstrap_servers()},
                                       {"state.dir", (dir / "restart").string()}})
                 .value();
  const auto start = Clock::now();
  std::thread runner([&] { app->run().value(); });
  while (app->stats().records_processed == 0)
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // sampling another thread
  const auto first = Clock::now();
  const auto task_start_ms = app->stats().max_task_start_ms;
  app->stop();
  runner.join();
  fmt::print(
      "restart with {} keys of local state: task ready {} ms after its assignment (state "
      "opened, changelog tail read); first record {:.3f} s after run() (group join included)\n",
      keys, task_start_ms, std::chrono::duration<double>(first - start).count());
}

void restore_speed(int keys, const std::filesystem::path& dir) {
  namespace runtime = streamrun::runtime;
  // Spread over partitions: the development broker keeps only about 5 MiB per partition.
  constexpr int kPartitions = 8;
  const std::string changelog = "bench-restore-counts-changelog";
  auto broker = streamrun::kafka::DevBroker::start({1, {{changelog, kPartitions}}}).value();
  streamrun::bench::produce(
      broker->bootstrap_servers(), changelog, keys,
      [](int i) { return fmt::format("user-{:08}", i); }, [](int i) { return std::to_string(i); });
  {
    // The commit markers that make every entry before them part of the restored state.
    auto producer =
        streamrun::kafka::Producer::create({{"bootstrap.servers", broker->bootstrap_servers()}})
            .value();
    const streamrun::kafka::HeaderView header{runtime::kCommitMarkerHeader, std::string_view("1")};
    for (int p = 0; p < kPartitions; ++p) {
      const auto payload = runtime::encode_marker({{fmt::format("clicks/{}", p), 1}});
      producer
          ->send({changelog, p, runtime::kCommitMarkerKey, payload, std::span(&header, 1),
                  std::nullopt})
          .value();
    }
    producer->flush(10s).value();
  }
  using streamrun::state::StateEnvironment;
  using streamrun::state::TaskState;
  auto environment = StateEnvironment::create({dir / "restore", "bench", 256u << 20}).value();
  auto source =
      runtime::open_kafka_changelog_source({{"bootstrap.servers", broker->bootstrap_servers()}})
          .value();
  std::atomic<bool> stop{false};
  std::int64_t restored = 0;
  const auto start = Clock::now();
  // One task after the other, on one thread: the speed of a single task's restore.
  for (int p = 0; p < kPartitions; ++p) {
    auto state = TaskState::open(environment, fmt::format("0_{}", p), {"counts"}).value();
    restored +=
        runtime::restore_task_state(
            *state, {{"counts", {streamrun::TopicName(changelog), streamrun::PartitionId(p)}}},
            *source, stop, *streamrun::log::get("bench"))
            .value()
            .entries_applied;
  }
  const double seconds = seconds_since(start);
  fmt::print("restore from the changelog: {} keys in {:.2f} s ({:.0f} keys/s, one thread)\n",
             restored, seconds, restored / seconds);
}

// A changelog partition made up as it is read: `entries` puts of distinct keys, then one commit
// marker. Nothing is stored, so the process's memory is the restore's own.
class GeneratedChangelog final : public streamrun::runtime::ChangelogSource {
 public:
  explicit GeneratedChangelog(std::int64_t entries) : entries_(entries) {}
  streamrun::Result<std::pair<std::int64_t, std::int64_t>> bounds(
      const streamrun::TopicPartition&) override {
    return std::pair<std::int64_t, std::int64_t>{0, entries_ + 1};
  }
  streamrun::Result<void> seek(const streamrun::TopicPartition&, std::int64_t offset) override {
    next_ = offset;
    return {};
  }
  streamrun::Result<void> read(std::vector<streamrun::runtime::ChangelogRecord>& out) override {
    for (int i = 0; i < 10'000 && next_ <= entries_; ++i, ++next_) {
      if (next_ == entries_) {
        out.push_back({next_, std::string(streamrun::runtime::kCommitMarkerKey),
                       streamrun::runtime::encode_marker({{"clicks/0", 1}}), true});
      } else {
        out.push_back({next_, fmt::format("user-{:08}", next_), std::to_string(next_), false});
      }
    }
    return {};
  }

 private:
  std::int64_t entries_;
  std::int64_t next_ = 0;
};

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// One task restores `keys` entries written in a single commit (the worst case: everything
// since the last marker), with the default memory budget. Prints the process's peak RSS.
void restore_memory(int keys, const std::filesystem::path& dir) {
  using streamrun::state::StateEnvironment;
  using streamrun::state::TaskState;
  auto environment = StateEnvironment::create({dir / "memory", "bench", 256u << 20}).value();
  auto state = TaskState::open(environment, "0_0", {"counts"}).value();
  GeneratedChangelog source(keys);
  std::atomic<bool> stop{false};
  const long before = peak_rss_kib();
  const auto start = Clock::now();
  const auto outcome =
      streamrun::runtime::restore_task_state(
          *state,
          {{"counts", {streamrun::TopicName("bench-counts-changelog"), streamrun::PartitionId(0)}}},
          source, stop, *streamrun::log::get("bench"))
          .value();
  const double seconds = seconds_since(start);
  fmt::print(
      "restore of {} keys in one commit, one task: {:.1f} s; peak RSS {:.0f} MiB (before the "
      "restore {:.0f} MiB; state memory budget 256 MiB)\n",
      outcome.entries_applied, seconds, peak_rss_kib() / 1024.0, before / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"State benchmarks: keyed count throughput, reopen time, restore speed."};
  int records = 500'000;
  int keys = 1'000'000;
  cli.add_option("--records", records)->capture_default_str();
  cli.add_option("--keys", keys)->capture_default_str();
  int buffered = 1000;
  cli.add_option("--buffered-records", buffered, "buffered.records.per.partition")
      ->capture_default_str();
  int memory_keys = 0;
  cli.add_option("--restore-memory-keys", memory_keys,
                 "only measure the peak memory of restoring this many keys written in one commit");
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "warn"});
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("streamrun-bench-{}", ::getpid());
  std::filesystem::remove_all(dir);
  if (memory_keys > 0) {
    restore_memory(memory_keys, dir);
    std::filesystem::remove_all(dir);
    return 0;
  }
  reopen_time(keys, dir);
  restore_speed(keys, dir);
  restart_to_first_record(keys, dir);
  keyed_count_throughput(records, buffered, dir);
  std::filesystem::remove_all(dir);
  return 0;
}
