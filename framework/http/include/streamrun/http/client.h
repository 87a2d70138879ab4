#pragma once

// An asynchronous HTTP client for calls from pipelines (issue 20): libcurl's multi interface on
// one I/O thread of its own, so that any number of requests are in flight without a thread
// each, and no task's fiber ever waits for the network. Connections are kept alive and reused
// per host.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <streamrun/base/result.h>
#include <streamrun/core/async_call.h>

namespace streamrun::http {

struct Request {
  std::string method = "GET";  // GET, POST, PUT, PATCH, DELETE
  std::string url;             // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent when not empty (and for POST, PUT and PATCH)
  // The whole exchange, connecting included; past it the request fails with errc::timed_out.
  std::chrono::milliseconds timeout{5'000};
};

struct Response {
  int status = 0;
  std::string body;
  std::string content_type;  // empty when the server sent none
};

struct ClientOptions {
  // Connections per host at most (0: no limit); requests beyond wait in the client for a
  // connection to come free (their timeout runs meanwhile). Kept alive and reused. A server that
  // serves each connection on a thread of its own (cpp-httplib) needs at least this many.
  long max_host_connections = 64;
  // Responses larger than this fail (bytes).
  std::size_t max_response_bytes = 16 * 1024 * 1024;
};

class Client {
 public:
  // Called on the client's I/O thread, once per request: the response (any status), or an
  // Error naming the URL when there was none (refused, unresolvable, timed out, too large, or
  // the client stopped first). Keep it short: it holds up every other request's I/O.
  using Callback = std::function<void(Result<Response>)>;

  explicit Client(ClientOptions options = {});
  // Stops the I/O thread; requests still open get an Error ("client stopped").
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any thread. Never blocks: the request is handed to the I/O thread.
  void send(Request request, Callback done);

  // Requests handed over and not answered yet.
  [[nodiscard]] std::size_t in_flight() const noexcept;

  // One client for the whole process (created on first use), for operators that have no
  // owner to hold one.
  [[nodiscard]] static std::shared_ptr<Client> shared();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// How an async call should take an HTTP status: 2xx ok; 408, 429 and 5xx failed (the service's
// trouble: retried, counted by the breaker); any other status rejected (this request's fault).
[[nodiscard]] CallStatus classify(int status) noexcept;

// What an answer that is not a success says, for a completion's message: "HTTP 503 from POST
// http://host/path: <the body's first 200 bytes>", or the transport error.
[[nodiscard]] std::string describe_failure(const Result<Response>& answer, std::string_view what);

// Completes an async call from an HTTP answer (a Client callback's argument): no answer, 408,
// 429 and 5xx fail it (retried, counted by the breaker); other statuses but 2xx reject it (the
// record's fault); a 2xx succeeds with `read(response)`, and a throw from `read` rejects it.
// `what` names the request ("POST http://...") in messages.
template <typename R, typename Read>
void complete(const CallCompletion<R>& completion, const Result<Response>& answer,
              std::string_view what, Read&& read) {
  const auto status = answer ? classify(answer->status) : CallStatus::failed;
  if (status == CallStatus::failed) {
    completion.fail(describe_failure(answer, what));
  } else if (status == CallStatus::rejected) {
    completion.reject(describe_failure(answer, what));
  } else {
    try {
      completion.succeed(read(answer.value()));
    } catch (const std::exception& e) {
      completion.reject(std::string(what) + ": cannot read the answer: " + e.what());
    }
  }
}

}  // namespace streamrun::http
