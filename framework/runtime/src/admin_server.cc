#include "admin_server.h"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <httplib.h>

#include <streamrun/base/errc.h>

#include "status_page.h"

namespace streamrun::runtime {

namespace {

struct HostPort {
  std::string host;
  int port = 0;
};

// "HOST:PORT", "[V6]:PORT"; nullopt when malformed.
std::optional<HostPort> split(std::string_view listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return std::nullopt;
  std::string_view host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  // A host name or address only: "http://h:1" would make redirects to "http://http://h:1".
  if (host.empty() || host.find_first_of("/?#@ \t") != std::string_view::npos)
    return std::nullopt;
  const auto port_text = listen.substr(colon + 1);
  int port = -1;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535)
    return std::nullopt;
  return HostPort{std::string(host), port};
}

}  // namespace

std::string invalid_admin_listen(std::string_view listen) {
  if (listen == "0" || split(listen))
    return {};
  return "must be HOST:PORT (port 0 to 65535; port 0: any free port) or 0 (no admin endpoint)";
}

bool is_loopback_listen(const std::string& listen) {
  const auto parts = split(listen);
  if (!parts)
    return false;
  return parts->host == "localhost" || parts->host == "::1" || parts->host.starts_with("127.");
}

std::string advertised_address(const std::string& bound) {
  const auto parts = split(bound);
  if (!parts || (parts->host != "0.0.0.0" && parts->host != "::" && !parts->host.empty()))
    return bound;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0)
    return bound;
  return fmt::format("{}:{}", name, parts->port);
}

struct AdminServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> listen_returned{false};
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl, std::string address)
    : impl_(std::move(impl)), address_(std::move(address)) {}

AdminServer::~AdminServer() {
  impl_->server.stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

Result<std::unique_ptr<AdminServer>> AdminServer::start(const std::string& listen,
                                                        bool any_port_if_taken, Handlers handlers) {
  const auto parts = split(listen);
  if (!parts) {
    return Error(errc::invalid_argument,
                 fmt::format("admin.listen '{}' {}", listen, invalid_admin_listen(listen)));
  }
  auto impl = std::make_unique<Impl>();
  auto& server = impl->server;
  // Two threads: a scrape and a health probe at once; more would only compete with the tasks.
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // cpp-httplib's default also sets SO_REUSEPORT, with which a second instance binds the same
  // port and the kernel splits the scrapes between them: a taken port must be seen as taken.
  server.set_socket_options([](socket_t socket) {
    int yes = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.Get("/metrics",
             [metrics = handlers.metrics](const httplib::Request&, httplib::Response& response) {
               response.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
             });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz", [not_ready = handlers.not_ready](const httplib::Request&,
                                                         httplib::Response& response) {
    const auto why = not_ready();
    response.status = why.empty() ? 200 : 503;
    response.set_content(why.empty() ? "ready\n" : why + "\n", "text/plain");
  });
  const auto send = [](httplib::Response& response, HttpAnswer answer) {
    response.status = answer.status;
    for (auto& [name, value] : answer.headers)
      response.set_header(name, value);
    response.set_content(std::move(answer.body), answer.content_type);
  };
  server.Get(
      R"(/state/([^/]+)(?:/(.+))?)",
      [state = handlers.state, send](const httplib::Request& request, httplib::Response& response) {
        std::optional<std::string> key;
        if (request.matches[2].matched)
          key = request.matches[2].str();
        send(response, state(request.matches[1].str(), key, request.params));
      });
  // GET /state: the stores there are to ask.
  server.Get(R"(/state/?)", [state = handlers.state, send](const httplib::Request& request,
                                                           httplib::Response& response) {
    send(response, state("", std::nullopt, request.params));
  });
  server.Get("/api/status",
             [status = handlers.status](const httplib::Request&, httplib::Response& response) {
               response.set_header("Cache-Control", "no-store");
               response.set_content(status(), "application/json");
             });
  server.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(status_page_html()), "text/html; charset=utf-8");
  });
  // What httplib leaves without a body (an unknown path, another method): say what is served.
  server.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty())
      return;
    response.set_content(
        fmt::format(
            "{} {}: not served here. GET: / (status page), /api/status, /metrics, "
            "/healthz, /readyz, /state, /state/<store>/<key>, /state/<store>?prefix=|from=&to="
            "&limit= (docs/operations.md)\n",
            request.method, request.path),
        "text/plain");
  });
  int port = parts->port;
  bool bound = port == 0 ? (port = server.bind_to_any_port(parts->host)) > 0
                         : server.bind_to_port(parts->host, port);
  int bind_errno = bound ? 0 : errno;
  if (!bound && any_port_if_taken && parts->port != 0) {
    bound = (port = server.bind_to_any_port(parts->host)) > 0;
    bind_errno = bound ? 0 : errno;
  }
  if (!bound) {
    return Error(errc::unavailable,
                 fmt::format("cannot serve the admin endpoint on {}: {} (set admin.listen to a "
                             "free HOST:PORT, or 0 for none)",
                             listen, std::strerror(bind_errno)));
  }
  const std::string address = parts->host.find(':') != std::string::npos
                                  ? fmt::format("[{}]:{}", parts->host, port)
                                  : fmt::format("{}:{}", parts->host, port);
  impl->thread = std::thread([&server, &returned = impl->listen_returned] {
    server.listen_after_bind();
    returned = true;
  });
  // stop() does nothing before the server runs: wait for it, so that the destructor can end it.
  while (!server.is_running() && !impl->listen_returned)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl), address));
}

}  // namespace streamrun::runtime
