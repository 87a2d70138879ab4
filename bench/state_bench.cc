// State benchmarks that bench/run does not cover: writing and reopening 1M keys of local state
// (to the first read), and the peak memory of restoring millions of keys written in one commit.
// Keyed count throughput, restart and restore speed are bench/run's.
//
//   build/bin/state-bench --keys 1000000
//   build/bin/state-bench --restore-memory-keys 5000000

#include <chrono>
#include <filesystem>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <streamrun/base/log.h>
#include <streamrun/state/task_state.h>

#include "changelog.h"  // the runtime's restore, timed on its own

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
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
  CLI::App cli{"State benchmarks: reopen time with 1M keys, restore memory."};
  int keys = 1'000'000;
  cli.add_option("--keys", keys)->capture_default_str();
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
  std::filesystem::remove_all(dir);
  return 0;
}
