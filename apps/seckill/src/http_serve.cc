#include "http_serve.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <pthread.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <httplib.h>

namespace seckill {

sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

namespace {

// The port of "HOST:PORT", or -1.
int port_of(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return -1;
  int port = -1;
  const auto* first = listen.data() + colon + 1;
  const auto* last = listen.data() + listen.size();
  if (auto [end, ec] = std::from_chars(first, last, port); ec != std::errc() || end != last)
    return -1;
  return port <= 65535 ? port : -1;
}

}  // namespace

std::string invalid_listen(const std::string& listen) {
  if (port_of(listen) >= 0)
    return {};
  return "--listen must be HOST:PORT, PORT 0 to 65535 (got '" + listen + "')";
}

bool serve_until_stopped(httplib::Server& server, const std::string& listen, const char* program,
                         const sigset_t& stop_signals) {
  const int wanted = port_of(listen);
  if (wanted < 0) {
    std::fprintf(stderr, "%s: %s\n", program, invalid_listen(listen).c_str());
    return false;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  // The packaged cpp-httplib listens with a backlog of 5 and closes a connection after 5
  // requests: under a burst of callers (a pipeline's calls in flight) connections would be
  // refused or time out. Keep connections (each holds a server thread while open, idle ones
  // for 5 s), and listen again with the system's backlog.
  server.set_keep_alive_max_count(1'000'000);
  // It writes a response's headers and body apart: without this, Nagle's algorithm holds the
  // body back until the caller's delayed ACK, 40 ms per call on a kept-alive connection.
  server.set_tcp_nodelay(true);
  int listening = -1;
  server.set_socket_options([&listening](socket_t sock) {
    httplib::default_socket_options(sock);
    listening = sock;
  });
  const int port = wanted == 0 ? server.bind_to_any_port(host)
                               : (server.bind_to_port(host, wanted) ? wanted : -1);
  if (port < 0) {
    std::fprintf(stderr, "%s: cannot listen on %s\n", program, listen.c_str());
    return false;
  }
  if (listening >= 0)
    ::listen(listening, SOMAXCONN);  // a listening socket takes a new backlog
  std::printf("%s: listening on %s:%d\n", program, host.c_str(), port);
  std::fflush(stdout);
  std::atomic<bool> serving_ended{false};
  std::thread signals([&] {
    int signo = 0;
    sigwait(&stop_signals, &signo);
    // A signal right after the line above may come before the server runs: stop() would miss it.
    while (!server.is_running() && !serving_ended)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    server.stop();
  });
  const bool served = server.listen_after_bind();
  serving_ended = true;
  if (!served) {
    std::fprintf(stderr, "%s: serving on %s failed\n", program, listen.c_str());
    ::kill(::getpid(), SIGTERM);  // wakes the signal thread
  }
  signals.join();
  return served;
}

}  // namespace seckill
