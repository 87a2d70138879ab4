#pragma once

// How the seckill HTTP programs (gateway, order service) serve: bind, say where, serve until
// SIGINT or SIGTERM.

#include <csignal>
#include <string>

namespace httplib {
class Server;
}

namespace seckill {

// Empty when `listen` is "HOST:PORT" with PORT 0 to 65535; else what is wrong with it.
[[nodiscard]] std::string invalid_listen(const std::string& listen);

// Blocks SIGINT and SIGTERM in the calling thread and the threads it starts afterwards (call it
// first in main()), so that serve_until_stopped() alone receives them; returns that set.
[[nodiscard]] sigset_t block_stop_signals();

// Binds `server` to `listen` (valid: see invalid_listen(); port 0: any free one), prints
// "<program>: listening on HOST:PORT" on stdout (tests and scripts wait for that line), and serves
// until a signal of `stop_signals` arrives. False, with the reason on stderr, when it cannot bind
// or serve.
[[nodiscard]] bool serve_until_stopped(httplib::Server& server, const std::string& listen,
                                       const char* program, const sigset_t& stop_signals);

}  // namespace seckill
