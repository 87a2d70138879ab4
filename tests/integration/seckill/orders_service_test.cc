// seckill-orders as the pipeline will see it: idempotent confirmations, 400s naming the field,
// and the faults it can be told to inject (down, failing, slow).

#include "../../support/orders_service.h"

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

class OrdersServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = OrdersService::start();
    ASSERT_TRUE(service_.has_value());
  }

  httplib::Client client() const { return service_->client(); }
  httplib::Result confirm(const std::string& order_id, const std::string& key) const {
    return client().Post("/confirmations", {{"Idempotency-Key", key}},
                         json{{"order_id", order_id}, {"user_id", "ann"}, {"sku", "sku-1"}}.dump(),
                         "application/json");
  }
  void chaos(const json& settings) const { service_->chaos(settings); }

  std::optional<OrdersService> service_;
};

TEST_F(OrdersServiceTest, ConfirmationsAreIdempotent) {
  auto first = confirm("o-1", "key-1");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  const auto confirmation = json::parse(first->body);
  EXPECT_EQ(confirmation["repeat"], false);
  auto again = confirm("o-1", "key-1");  // a retried call
  ASSERT_TRUE(again);
  EXPECT_EQ(json::parse(again->body)["confirmation"], confirmation["confirmation"]);
  EXPECT_EQ(json::parse(again->body)["repeat"], true);
  auto looked_up = client().Get("/confirmations/o-1");
  ASSERT_TRUE(looked_up);
  EXPECT_EQ(json::parse(looked_up->body)["confirmation"], confirmation["confirmation"]);
  EXPECT_EQ(client().Get("/confirmations/o-2")->status, 404);
  auto reused = confirm("o-2", "key-1");
  ASSERT_TRUE(reused);
  EXPECT_EQ(reused->status, 400);
  EXPECT_THAT(reused->body, HasSubstr("was used for order 'o-1'"));
  const auto stats = json::parse(client().Get("/stats")->body);
  EXPECT_EQ(stats["confirmed"], 1);
  EXPECT_EQ(stats["repeats"], 1);
  EXPECT_EQ(stats["calls"], 3);
}

TEST_F(OrdersServiceTest, RequestsThatAreNotConfirmationsGet400NamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"not json", "JSON object"},
      {R"({"user_id": "ann", "sku": "s"})", "'order_id' is missing"},
      {R"({"order_id": 7, "user_id": "ann", "sku": "s"})", "'order_id' must be a non-empty string"},
  };
  for (const auto& [body, reason] : cases) {
    auto answer = client().Post("/confirmations", body, "application/json");
    ASSERT_TRUE(answer) << body;
    EXPECT_EQ(answer->status, 400) << body;
    EXPECT_THAT(answer->body, HasSubstr(reason)) << body;
  }
  for (const auto* bad : {R"({"fail_share": 2})", R"({"down_for_ms": -1})", R"({"colour": 1})"}) {
    auto answer = client().Post("/chaos", bad, "application/json");
    ASSERT_TRUE(answer) << bad;
    EXPECT_EQ(answer->status, 400) << bad;
  }
}

TEST_F(OrdersServiceTest, InjectedOutageFailuresAndSlowness) {
  chaos({{"down_for_ms", 400}});
  auto down = confirm("o-1", "k-1");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 503);
  EXPECT_TRUE(down->has_header("Retry-After"));
  // Back once the outage is over (a client retrying, as the pipeline will).
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    status = confirm("o-1", "k-1")->status;
    if (status != 200)
      std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200);

  chaos({{"fail_share", 1.0}});
  EXPECT_EQ(confirm("o-2", "k-2")->status, 500);
  chaos({{"fail_share", 0.0}, {"slow_share", 1.0}, {"slow_ms", 300}});
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(confirm("o-2", "k-2")->status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms) << "the injected delay";
  const auto stats = json::parse(client().Get("/stats")->body);
  EXPECT_GE(stats["failed"].get<int>(), 2);
  EXPECT_EQ(stats["confirmed"], 2);
}

}  // namespace
}  // namespace streamrun::testing
