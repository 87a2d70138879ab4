#pragma once

// seckill-orders (apps/seckill) as a child process, for the tests that call it: started on a
// free port, with its /stats and /chaos. Needs SECKILL_ORDERS_PATH.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/testing/child_process.h>

namespace streamrun::testing {

class OrdersService {
 public:
  // Starts it on 127.0.0.1 with `extra` arguments (--slow-share, --threads, ...); nullopt, with
  // a test failure saying why, when it does not start within 30 s.
  static std::optional<OrdersService> start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = ChildProcess::spawn(SECKILL_ORDERS_PATH, args);
    if (!process.ok()) {
      ADD_FAILURE() << process.error().message();
      return std::nullopt;
    }
    const auto line = process->wait_for_line("listening on", std::chrono::seconds(30));
    if (!line) {
      ADD_FAILURE() << "seckill-orders did not start: " << process->output();
      return std::nullopt;
    }
    const int port = std::stoi(line->substr(line->rfind(':') + 1));
    return OrdersService(std::move(process).value(), port);
  }

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Waits up to 30 s for an answer.
  [[nodiscard]] httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }
  // GET /stats; an empty object, with a test failure, when it does not answer 200.
  [[nodiscard]] nlohmann::json stats() const {
    auto answer = client().Get("/stats");
    EXPECT_TRUE(answer && answer->status == 200) << "GET /stats did not answer 200";
    return answer && answer->status == 200 ? nlohmann::json::parse(answer->body)
                                           : nlohmann::json::object();
  }
  // POST /chaos with `settings` (fail_share, slow_share, slow_ms, down_for_ms); must answer 200.
  void chaos(const nlohmann::json& settings) const {
    auto answer = client().Post("/chaos", settings.dump(), "application/json");
    ASSERT_TRUE(answer);
    ASSERT_EQ(answer->status, 200) << answer->body;
  }

 private:
  OrdersService(ChildProcess process, int port) : process_(std::move(process)), port_(port) {}
  ChildProcess process_;
  int port_;
};

}  // namespace streamrun::testing
