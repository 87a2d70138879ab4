// State benchmarks: keyed count throughput end to end (commit every 100 ms), and how long a task
// takes to reopen 1M keys of local state and serve its first read.
//
//   build/bin/state-bench --records 500000 --keys 1000000

#include <chrono>
#include <filesystem>
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

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void keyed_count_throughput(int records, const std::filesystem::path& dir) {
  auto broker =
      streamrun::kafka::DevBroker::start({1, {{"clicks", 8}, {"click-counts", 8}}}).value();
  streamrun::bench::produce(
      broker->bootstrap_servers(), "clicks", records,
      [](int i) { return fmt::format("user-{}", (i * 7919) % 100'000); },
      [](int) { return std::string("click"); });

  const streamrun::Serdes<std::string, std::string> strings{streamrun::serdes::string(),
                                                            streamrun::serdes::string()};
  streamrun::StreamBuilder builder;
  builder.stream("clicks", strings)
      .group_by_key(strings)
      .count("clicks-per-user")
      .to_stream()
      .to("click-counts", {streamrun::serdes::string(), streamrun::serdes::int64()});
  auto app = streamrun::runtime::Application::create(
                 builder.build(), {{"application.id", "bench-count"},
                                   {"bootstrap.servers", broker->bootstrap_servers()},
                                   {"state.dir", dir.string()},
                                   {"commit.interval.ms", "100"}})
                 .value();
  const double seconds = streamrun::bench::run_until_processed(*app, records);
  fmt::print(
      "keyed count, 8 partitions, 100k keys, commit every 100 ms: {:.0f} records/s "
      "({} records in {:.2f} s, {} commits)\n",
      records / seconds, records, seconds, app->stats().commits);
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"State benchmarks: keyed count throughput and reopen time."};
  int records = 500'000;
  int keys = 1'000'000;
  cli.add_option("--records", records)->capture_default_str();
  cli.add_option("--keys", keys)->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "warn"});
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("streamrun-bench-{}", ::getpid());
  std::filesystem::remove_all(dir);
  reopen_time(keys, dir);
  keyed_count_throughput(records, dir);
  std::filesystem::remove_all(dir);
  return 0;
}
