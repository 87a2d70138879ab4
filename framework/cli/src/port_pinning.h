#pragma once

#include <string>
#include <vector>

#include <streamrun/base/result.h>

namespace streamrun::cli {

struct ListenAddress {
  std::string host;  // dotted IPv4 loopback address
  int port = 0;      // 0: any free port

  [[nodiscard]] static Result<ListenAddress> parse(std::string_view text);
};

// librdkafka's mock cluster always binds its listeners to 127.0.0.1 on a port the kernel picks.
// To serve a fixed address, this binary defines bind(): while a PortPins object is alive, each
// bind() of an IPv4 socket to port 0 gets, in order, one of the sockets pre-bound here. Pre-binding
// means a port in use is reported before the cluster starts, instead of failing inside it.
class PortPins {
 public:
  // Binds host:port, host:port+1, ... (count sockets).
  [[nodiscard]] static Result<PortPins> bind(const ListenAddress& first, int count);
  PortPins(PortPins&& other) noexcept;
  PortPins& operator=(PortPins&&) = delete;
  ~PortPins();

  // How many pinned sockets have not been claimed by a bind() yet.
  [[nodiscard]] int unclaimed() const;

 private:
  PortPins() = default;
  bool active_ = false;
};

}  // namespace streamrun::cli
