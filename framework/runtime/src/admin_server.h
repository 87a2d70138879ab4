#pragma once

// The application's admin HTTP endpoint (admin.listen): /metrics (Prometheus text), /healthz
// (the process serves) and /readyz (every assigned task runs with its state restored). Served
// by cpp-httplib on threads of its own; the handlers must be safe to call from any thread.

#include <functional>
#include <memory>
#include <string>

#include <streamrun/base/result.h>

namespace streamrun::runtime {

class AdminServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    // Empty when ready; else why not, for the 503's body.
    std::function<std::string()> not_ready;
  };

  // Listens on `listen` ("HOST:PORT"). With `any_port_if_taken`, a taken port is replaced by one
  // the kernel picks (a second instance on one host with the default address); otherwise it is
  // an error (errc::unavailable) naming the address.
  [[nodiscard]] static Result<std::unique_ptr<AdminServer>> start(const std::string& listen,
                                                                  bool any_port_if_taken,
                                                                  Handlers handlers);
  // Stops serving and joins its threads.
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // "HOST:PORT" as bound (the port the kernel picked, for port 0).
  [[nodiscard]] const std::string& address() const noexcept { return address_; }

  struct Impl;

 private:
  AdminServer(std::unique_ptr<Impl> impl, std::string address);
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

// Whether HOST of "HOST:PORT" is a loopback address (127.0.0.0/8, ::1, localhost); the admin
// endpoint needs admin.allow.remote for anything else.
[[nodiscard]] bool is_loopback_listen(const std::string& listen);
// Empty when `listen` is "0" or "HOST:PORT" with PORT in [0, 65535]; else what is wrong.
[[nodiscard]] std::string invalid_admin_listen(std::string_view listen);

}  // namespace streamrun::runtime
