// The counting pipeline the crash tests kill and restart: clicks -> count per user -> click-counts;
// with --windowed, clicks -> count per user and 1 s window of the clicks' timestamps, one final
// result per window -> window-counts.

#include <csignal>
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/runtime/application.h>

int main(int argc, char** argv) {
  CLI::App cli{"Count clicks per user (crash-test pipeline)."};
  std::string bootstrap;
  std::string state_dir;
  cli.add_option("--bootstrap", bootstrap)->required();
  std::string log_level = "warn";
  cli.add_option("--state-dir", state_dir)->required();
  cli.add_option("--log-level", log_level);
  std::uint64_t max_file_bytes = 0;
  cli.add_option("--max-file-bytes", max_file_bytes,
                 "simulate a full disk: writes that would grow a file beyond this fail");
  bool windowed = false;
  cli.add_flag("--windowed", windowed, "count per user and 1 s tumbling window (emit on close)");
  std::string commit_interval_ms = "100";
  cli.add_option("--commit-interval-ms", commit_interval_ms, "commit.interval.ms");
  CLI11_PARSE(cli, argc, argv);
  if (max_file_bytes > 0) {
    // The write fails with EFBIG instead of the process being killed by SIGXFSZ: what a
    // full disk looks like to RocksDB (an I/O error on write).
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{max_file_bytes, max_file_bytes};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) {
      std::perror("setrlimit");
      return 2;
    }
  }
  streamrun::log::configure({.level = log_level});

  const streamrun::Serdes<std::string, std::string> strings{streamrun::serdes::string(),
                                                            streamrun::serdes::string()};
  streamrun::StreamBuilder builder;
  if (windowed) {
    using namespace std::chrono_literals;
    builder.stream("clicks", strings)
        .group_by_key(strings)
        .windowed_by(streamrun::TimeWindows::of(1s))
        .emit_on_window_close()
        .count("clicks-per-window")
        .to_stream()
        .to("window-counts", {streamrun::serdes::windowed(streamrun::serdes::string(), 1s),
                              streamrun::serdes::int64()});
  } else {
    builder.stream("clicks", strings)
        .group_by_key(strings)
        .count("clicks-per-user")
        .to_stream()
        .to("click-counts", {streamrun::serdes::string(), streamrun::serdes::int64()});
  }

  auto app = streamrun::runtime::Application::create(
      builder.build(),
      {{"application.id", windowed ? "crash-window-counter" : "crash-counter"},
       {"admin.timeout.ms", "500"},  // the development broker has no Admin API
       {"bootstrap.servers", bootstrap},
       {"state.dir", state_dir},
       {"commit.interval.ms", commit_interval_ms},
       {"consumer.session.timeout.ms", "6000"},
       {"consumer.heartbeat.interval.ms", "500"}},
      {.handle_signals = true});
  if (!app) {
    streamrun::log::get("count-app")->error("{}", app.error().message());
    return 1;
  }
  std::puts("started");
  std::fflush(stdout);
  auto ran = (*app)->run();
  return ran ? 0 : 1;
}
