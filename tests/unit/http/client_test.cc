// The HTTP client against a cpp-httplib server on loopback: answers, statuses, transport
// errors, timeouts, and many requests in flight on the one I/O thread.

#include <arpa/inet.h>
#include <atomic>
#include <future>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <streamrun/base/errc.h>
#include <streamrun/http/client.h>

namespace streamrun::http {
namespace {

using namespace std::chrono_literals;

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/hello", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("hi", "text/plain");
    });
    server_.Post("/echo", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content(request.body + "|" + request.get_header_value("Idempotency-Key"),
                           "application/json");
    });
    server_.Get("/busy", [](const httplib::Request&, httplib::Response& response) {
      response.status = 503;
    });
    server_.Get("/slow", [this](const httplib::Request&, httplib::Response& response) {
      const auto now = ++concurrent_;
      auto seen = max_concurrent_.load();
      while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(200ms);
      --concurrent_;
      response.set_content("slow", "text/plain");
    });
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    // The packaged cpp-httplib listens with a backlog of 5: on a busy machine the 40 connects at
    // once would overflow it and wait out the SYN retransmit (1 s, 3 s). Serve like
    // seckill-orders does: the system's backlog, kept-alive connections.
    server_.set_socket_options([this](socket_t sock) {
      httplib::default_socket_options(sock);
      listening_ = sock;
    });
    server_.set_keep_alive_max_count(1'000'000);
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GE(listening_, 0);
    ::listen(listening_, SOMAXCONN);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running())  // httplib 0.11 has no wait_until_ready()
      std::this_thread::sleep_for(1ms);
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable())
      thread_.join();
  }

  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  static Result<Response> call(Client& client, Request request) {
    std::promise<Result<Response>> answer;
    client.send(std::move(request), [&](Result<Response> result) { answer.set_value(result); });
    return answer.get_future().get();
  }

  httplib::Server server_;
  int port_ = 0;
  int listening_ = -1;
  std::thread thread_;
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
};

TEST_F(HttpClientTest, AnswersCarryStatusBodyAndContentType) {
  Client client;
  auto hello = call(client, {.url = url("/hello")});
  ASSERT_TRUE(hello) << hello.error().message();
  EXPECT_EQ(hello->status, 200);
  EXPECT_EQ(hello->body, "hi");
  EXPECT_EQ(hello->content_type, "text/plain");

  auto echo = call(client, {.method = "POST",
                            .url = url("/echo"),
                            .headers = {{"Idempotency-Key", "orders-3-17"}},
                            .body = R"({"sku":"A"})"});
  ASSERT_TRUE(echo) << echo.error().message();
  EXPECT_EQ(echo->body, R"({"sku":"A"}|orders-3-17)");

  auto busy = call(client, {.url = url("/busy")});
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(classify(busy->status), CallStatus::failed);
  EXPECT_EQ(classify(404), CallStatus::rejected);
  EXPECT_EQ(classify(429), CallStatus::failed);
  EXPECT_EQ(classify(204), CallStatus::ok);
}

TEST_F(HttpClientTest, NoAnswerIsAnErrorNamingTheRequest) {
  Client client;
  // A port nobody listens on: bind one, then close it.
  int closed_port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    socklen_t length = sizeof(address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    closed_port = ntohs(address.sin_port);
    ::close(fd);
  }
  const auto refused_url = "http://127.0.0.1:" + std::to_string(closed_port) + "/x";
  auto refused = call(client, {.url = refused_url});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), make_error_code(errc::unavailable));
  EXPECT_NE(refused.error().message().find("GET " + refused_url), std::string::npos)
      << refused.error().message();

  auto late = call(client, {.url = url("/slow"), .timeout = 50ms});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code(), make_error_code(errc::timed_out)) << late.error().message();

  auto bad = call(client, {.method = "BREW", .url = url("/hello")});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unsupported method"), std::string::npos);
}

TEST_F(HttpClientTest, ManyRequestsAreInFlightAtOnceOnOneThread) {
  Client client;
  constexpr int kRequests = 40;
  std::atomic<int> answered{0};
  std::promise<void> all;
  for (int i = 0; i < kRequests; ++i) {
    client.send({.url = url("/slow")}, [&](Result<Response> result) {
      EXPECT_TRUE(result && result->status == 200);
      if (++answered == kRequests)
        all.set_value();
    });
  }
  all.get_future().wait();
  // Every request waited 200 ms in the server; they overlapped rather than queued.
  EXPECT_GE(max_concurrent_.load(), kRequests / 2);
  EXPECT_EQ(client.in_flight(), 0u);
}

TEST_F(HttpClientTest, StoppingAnswersWhatIsStillOpen) {
  std::promise<Result<Response>> answer;
  {
    Client client;
    client.send({.url = url("/slow")}, [&](Result<Response> result) { answer.set_value(result); });
  }
  auto result = answer.get_future().get();
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message().find("stopped"), std::string::npos);
}

}  // namespace
}  // namespace streamrun::http
