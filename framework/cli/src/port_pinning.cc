#include "port_pinning.h"

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <dlfcn.h>
#include <fcntl.h>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <streamrun/base/errc.h>

namespace streamrun::cli {
namespace {

struct PinState {
  std::mutex mutex;
  std::deque<int> sockets;  // pre-bound, handed out in order
};

PinState& pins() {
  static PinState state;
  return state;
}

// Takes the next pinned socket for a bind() of `fd` to an IPv4 port-0 address, or -1.
int claim_pinned(const sockaddr* address) {
  if (address == nullptr || address->sa_family != AF_INET)
    return -1;
  const auto* in = reinterpret_cast<const sockaddr_in*>(address);
  if (in->sin_port != 0)
    return -1;
  auto& state = pins();
  std::lock_guard lock(state.mutex);
  if (state.sockets.empty())
    return -1;
  const int pinned = state.sockets.front();
  state.sockets.pop_front();
  return pinned;
}

}  // namespace

Result<ListenAddress> ListenAddress::parse(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return Error(
        errc::invalid_argument,
        fmt::format("--listen '{}': {} (expected HOST:PORT, e.g. 127.0.0.1:9092)", text, why));
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return invalid("no port");
  ListenAddress address;
  address.host = std::string(text.substr(0, colon));
  if (address.host == "localhost")
    address.host = "127.0.0.1";
  const auto port = text.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), address.port);
  if (ec != std::errc() || ptr != port.data() + port.size() || address.port < 0 ||
      address.port > 65535) {
    return invalid("port must be an integer in [0, 65535]");
  }
  in_addr parsed{};
  if (inet_pton(AF_INET, address.host.c_str(), &parsed) != 1) {
    return invalid("host must be an IPv4 address");
  }
  if ((ntohl(parsed.s_addr) >> 24) != 127) {
    return invalid("the development broker serves loopback only (127.0.0.0/8)");
  }
  return address;
}

Result<PortPins> PortPins::bind(const ListenAddress& first, int count) {
  std::vector<int> bound;
  auto release = [&] {
    for (int fd : bound)
      close(fd);
  };
  for (int i = 0; i < count; ++i) {
    const int port = first.port == 0 ? 0 : first.port + i;
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      release();
      return Error(errc::io_error, fmt::format("socket: {}", std::strerror(errno)));
    }
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, first.host.c_str(), &address.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      const int error = errno;
      close(fd);
      release();
      return Error(
          errc::unavailable,
          fmt::format("cannot listen on {}:{}: {}{}", first.host, port, std::strerror(error),
                      error == EADDRINUSE ? " (another broker or program uses it; pick "
                                            "another port with --listen)"
                                          : ""));
    }
    bound.push_back(fd);
  }
  auto& state = pins();
  std::lock_guard lock(state.mutex);
  state.sockets.assign(bound.begin(), bound.end());
  PortPins result;
  result.active_ = true;
  return result;
}

PortPins::PortPins(PortPins&& other) noexcept : active_(std::exchange(other.active_, false)) {}

PortPins::~PortPins() {
  if (!active_)
    return;
  auto& state = pins();
  std::lock_guard lock(state.mutex);
  for (int fd : state.sockets)
    close(fd);
  state.sockets.clear();
}

int PortPins::unclaimed() const {
  auto& state = pins();
  std::lock_guard lock(state.mutex);
  return static_cast<int>(state.sockets.size());
}

}  // namespace streamrun::cli

// Interposes libc's bind() for the whole process; see PortPins. Without pins it is a plain
// forward to libc.
extern "C" int bind(int fd, const sockaddr* address, socklen_t length) {
  using BindFn = int (*)(int, const sockaddr*, socklen_t);
  static const auto real_bind = reinterpret_cast<BindFn>(dlsym(RTLD_NEXT, "bind"));
  const int pinned = streamrun::cli::claim_pinned(address);
  if (pinned < 0)
    return real_bind(fd, address, length);
  // Put the pre-bound socket where the caller's fd was, keeping the caller's fd flags.
  const int status_flags = fcntl(fd, F_GETFL);
  if (dup3(pinned, fd, O_CLOEXEC) < 0) {
    const int error = errno;
    close(pinned);
    errno = error;
    return -1;
  }
  close(pinned);
  if (status_flags >= 0)
    fcntl(fd, F_SETFL, status_flags);
  return 0;
}
