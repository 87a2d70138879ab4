#pragma once

#include <atomic>
#include <csignal>

namespace streamrun::runtime {

// Until an application runs nothing is in flight: SIGINT or SIGTERM ends the process at once
// (exit status 128 + signal), even when the parent started it with SIGINT ignored, as a
// non-interactive shell does for background jobs.
void exit_on_stop_signals();

// While alive, the first SIGINT or SIGTERM sets `stop_requested` (a graceful stop) and a second
// one ends the process at once; the previous handlers come back on destruction. One at a time
// per process.
class GracefulStopSignals {
 public:
  explicit GracefulStopSignals(std::atomic<bool>& stop_requested);
  ~GracefulStopSignals();
  GracefulStopSignals(const GracefulStopSignals&) = delete;
  GracefulStopSignals& operator=(const GracefulStopSignals&) = delete;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

}  // namespace streamrun::runtime
