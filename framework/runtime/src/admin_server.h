#pragma once

// The application's admin HTTP endpoint (admin.listen): /metrics (Prometheus text), /healthz
// (the process serves), /readyz (every assigned task runs with its state restored), /state/...
// (interactive queries of the state stores), / (the status page) and /api/status (its figures).
// Served by cpp-httplib on threads of its own; the handlers must be safe to call from any thread.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <streamrun/base/result.h>

namespace streamrun::runtime {

// An answer to a request.
struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class AdminServer {
 public:
  using Params = std::multimap<std::string, std::string>;
  struct Handlers {
    std::function<std::string()> metrics;
    // Empty when ready; else why not, for the 503's body.
    std::function<std::string()> not_ready;
    // GET /state/<store>[/<key>] (percent-decoded) with the query's parameters; GET /state: an
    // empty store.
    std::function<HttpAnswer(const std::string& store, const std::optional<std::string>& key,
                             const Params& params)>
        state;
    // GET /api/status: what the status page shows, as JSON.
    std::function<std::string()> status;
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
// The address others reach a server bound to `bound` ("HOST:PORT") at: itself, except that a
// wildcard host (0.0.0.0, ::) becomes this host's name.
[[nodiscard]] std::string advertised_address(const std::string& bound);
// Empty when `listen` is "0" or "HOST:PORT" with PORT in [0, 65535]; else what is wrong.
[[nodiscard]] std::string invalid_admin_listen(std::string_view listen);

}  // namespace streamrun::runtime
