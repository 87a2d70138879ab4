#include "signal_handling.h"

#include <unistd.h>

namespace streamrun::runtime {
namespace {

// What the handler may touch: lock-free atomics only.
std::atomic<std::atomic<bool>*> g_stop_target{nullptr};
std::atomic<int> g_signals_received{0};

void install(void (*handler)(int), struct sigaction* previous_int,
             struct sigaction* previous_term) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, previous_int);
  sigaction(SIGTERM, &action, previous_term);
}

}  // namespace

void exit_on_stop_signals() {
  install(
      [](int signo) {
        static constexpr char kMessage[] = "streamrun: stopped during start-up (nothing ran yet)\n";
        static_cast<void>(::write(STDERR_FILENO, kMessage, sizeof kMessage - 1));
        _exit(128 + signo);
      },
      nullptr, nullptr);
}

GracefulStopSignals::GracefulStopSignals(std::atomic<bool>& stop_requested) {
  g_signals_received = 0;
  g_stop_target = &stop_requested;
  install(
      [](int signo) {
        if (g_signals_received.fetch_add(1) > 0)
          _exit(128 + signo);  // second signal: now
        if (auto* target = g_stop_target.load())
          target->store(true);
      },
      &previous_int_, &previous_term_);
}

GracefulStopSignals::~GracefulStopSignals() {
  g_stop_target = nullptr;
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
}

}  // namespace streamrun::runtime
