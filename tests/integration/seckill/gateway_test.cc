// seckill-gateway as a client sees it: 400 naming the field for bodies that are not orders, 202
// with the order id once Kafka has the order, the decision on GET once the pipeline wrote it,
// and 503 with Retry-After — within bounded memory — while the broker is down.

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_process.h>
#include <streamrun/testing/child_process.h>

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr int kMaxInFlight = 8;  // fewer than the clients below

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, {{"orders", 4}, {"decisions", 4}});
    ASSERT_TRUE(broker.ok()) << broker.error().message();
    broker_.emplace(std::move(broker).value());
    auto gateway = ChildProcess::spawn(
        SECKILL_GATEWAY_PATH,
        {"--bootstrap", broker_->bootstrap_servers(), "--listen", "127.0.0.1:0", "--max-in-flight",
         std::to_string(kMaxInFlight), "--timeout-ms", "1000", "--threads", "32"});
    ASSERT_TRUE(gateway.ok()) << gateway.error().message();
    gateway_.emplace(std::move(gateway).value());
    const auto line = gateway_->wait_for_line("listening on", 30s);
    ASSERT_TRUE(line.has_value()) << "the gateway did not start";
    port_ = std::stoi(line->substr(line->rfind(':') + 1));
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }

  std::int64_t gateway_rss_kib() const {
    std::ifstream status("/proc/" + std::to_string(gateway_->pid()) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with("VmRSS:"))
        return std::stoll(line.substr(6));
    }
    return -1;
  }

  std::optional<BrokerProcess> broker_;
  std::optional<ChildProcess> gateway_;
  int port_ = 0;
};

TEST_F(GatewayTest, BodiesThatAreNotOrdersGet400NamingWhatIsWrong) {
  auto c = client();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"not json", "not JSON"},
      {"[1, 2]", "JSON object"},
      {R"({"sku": "sku-1"})", "'user_id' is missing"},
      {R"({"user_id": "", "sku": "sku-1"})", "'user_id' must be a non-empty string"},
      {R"({"user_id": "ann", "sku": 7})", "'sku' must be a non-empty string"},
      {R"({"user_id": "ann", "sku": "sku-1", "qty": 3})", "'qty' must be the number 1"},
      {R"({"user_id": "ann", "sku": "sku-1", "colour": "red"})", "unknown field 'colour'"},
  };
  for (const auto& [body, reason] : cases) {
    auto response = c.Post("/orders", body, "application/json");
    ASSERT_TRUE(response) << body;
    EXPECT_EQ(response->status, 400) << body;
    EXPECT_THAT(json::parse(response->body)["error"].get<std::string>(), HasSubstr(reason)) << body;
  }
}

TEST_F(GatewayTest, AnOrderIsTakenAtOnceAndItsDecisionServedOnceMade) {
  auto c = client();
  auto placed = c.Post("/orders", R"({"user_id": "ann", "sku": "sku-1"})", "application/json");
  ASSERT_TRUE(placed);
  ASSERT_EQ(placed->status, 202) << placed->body;
  const auto order_id = json::parse(placed->body)["order_id"].get<std::string>();
  EXPECT_FALSE(order_id.empty());

  auto pending = c.Get("/orders/" + order_id);
  ASSERT_TRUE(pending);
  EXPECT_EQ(json::parse(pending->body)["status"], "pending");

  // What the pipeline would write.
  auto producer = kafka::Producer::create({{"bootstrap.servers", broker_->bootstrap_servers()}});
  ASSERT_TRUE(producer.ok());
  const json decision{{"order_id", order_id},   {"user_id", "ann"},     {"sku", "sku-1"},
                      {"decision", "accepted"}, {"reason", "accepted"}, {"remaining", 4}};
  ASSERT_TRUE((*producer)
                  ->send({"decisions", std::nullopt, order_id, decision.dump(), {}, std::nullopt})
                  .ok());
  ASSERT_TRUE((*producer)->flush(10s).ok());
  json served;
  for (int attempt = 0; attempt < 300 && !served.contains("decision"); ++attempt) {
    auto answer = c.Get("/orders/" + order_id);
    ASSERT_TRUE(answer);
    served = json::parse(answer->body);
    if (!served.contains("decision"))
      std::this_thread::sleep_for(100ms);  // polling another process, as a client would
  }
  EXPECT_EQ(served, decision);
}

TEST_F(GatewayTest, AStoppedBrokerGets503WithRetryAfterAndTheGatewayStaysSmall) {
  auto c = client();
  auto before = c.Post("/orders", R"({"user_id": "ann", "sku": "sku-1"})", "application/json");
  ASSERT_TRUE(before);
  ASSERT_EQ(before->status, 202);
  ASSERT_EQ(broker_->stop(), std::optional<int>(0));

  // Many clients at once while nothing reaches Kafka: each is answered 503 (in flight beyond
  // the bound, or not acknowledged in time), never queued without limit.
  std::atomic<int> unavailable{0};
  std::atomic<int> other{0};
  std::atomic<int> most_in_flight{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&, t] {
      auto own = client();
      for (int i = 0; i < 10; ++i) {
        auto response = own.Post(
            "/orders",
            json{{"user_id", "u" + std::to_string(t)}, {"sku", "sku-" + std::to_string(i)}}.dump(),
            "application/json");
        if (response && response->status == 503 && response->has_header("Retry-After")) {
          ++unavailable;
        } else {
          ++other;
        }
      }
    });
  }
  std::thread watcher([&] {
    auto own = client();
    for (int i = 0; i < 50; ++i) {
      if (auto health = own.Get("/health"))
        most_in_flight = std::max<int>(most_in_flight, json::parse(health->body)["in_flight"]);
      std::this_thread::sleep_for(20ms);  // sampling
    }
  });
  for (auto& thread : clients)
    thread.join();
  watcher.join();
  EXPECT_EQ(unavailable, 16 * 10);
  EXPECT_EQ(other, 0);
  EXPECT_LE(most_in_flight, kMaxInFlight);
  EXPECT_LT(gateway_rss_kib(), 256 * 1024) << "KiB";
  auto health = c.Get("/health");
  ASSERT_TRUE(health) << "the gateway still answers";
  EXPECT_EQ(health->status, 200);
}

// GET /items/{sku}: the gateway reads the stock row and the units reserved from a running
// inventory pipeline's state stores (its admin endpoint's GET /state/...).
TEST(GatewayItemsTest, StockAndReservationsComeFromThePipelinesState) {
  auto broker = BrokerProcess::start(
      STREAMRUN_CLI_PATH,
      {{"orders", 4}, {"stock", 4}, {"decisions", 4}, {"inventory-dead-letter", 1}});
  ASSERT_TRUE(broker.ok()) << broker.error().message();
  const auto state_dir =
      std::filesystem::temp_directory_path() / ("gateway-items-" + std::to_string(::getpid()));
  std::filesystem::remove_all(state_dir);
  auto pipeline = ChildProcess::spawn(
      STREAMRUN_CLI_PATH,
      {STREAMRUN_SOURCE_DIR "/pipelines/inventory.yaml", "--set",
       "bootstrap.servers=" + broker->bootstrap_servers(), "--set",
       "state.dir=" + state_dir.string(), "--set", "consumer.session.timeout.ms=6000", "--set",
       "admin.timeout.ms=500", "--set", "admin.listen=127.0.0.1:0"},
      /*merge_stderr=*/true);  // its log names the admin address (a few lines at info level)
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message();
  const auto admin_line = pipeline->wait_for_line("admin endpoint on http://", 60s);
  ASSERT_TRUE(admin_line) << "the pipeline did not serve its admin endpoint";
  const auto from = admin_line->find("http://") + 7;
  const auto pipeline_admin = admin_line->substr(from, admin_line->find(' ', from) - from);
  auto gateway = ChildProcess::spawn(
      SECKILL_GATEWAY_PATH, {"--bootstrap", broker->bootstrap_servers(), "--listen", "127.0.0.1:0",
                             "--pipeline-admin", pipeline_admin});
  ASSERT_TRUE(gateway.ok()) << gateway.error().message();
  const auto line = gateway->wait_for_line("listening on", 30s);
  ASSERT_TRUE(line.has_value());
  httplib::Client c("127.0.0.1", std::stoi(line->substr(line->rfind(':') + 1)));
  c.set_read_timeout(30, 0);

  auto producer = kafka::Producer::create({{"bootstrap.servers", broker->bootstrap_servers()}});
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE((*producer)
                  ->send({"stock", std::nullopt, "sku-7", R"({"units": 5})", {}, std::nullopt})
                  .ok());
  ASSERT_TRUE((*producer)->flush(10s).ok());
  for (const auto* user : {"ann", "bob"}) {
    auto placed =
        c.Post("/orders", json{{"user_id", user}, {"sku", "sku-7"}}.dump(), "application/json");
    ASSERT_TRUE(placed);
    ASSERT_EQ(placed->status, 202) << placed->body;
  }
  // Until the pipeline has decided both orders and committed its state (a client polls).
  json item = json::object();
  for (int attempt = 0; attempt < 600 && item.value("reserved", -1) != 2; ++attempt) {
    auto answer = c.Get("/items/sku-7");
    ASSERT_TRUE(answer);
    if (answer->status == 200)
      item = json::parse(answer->body);
    else
      EXPECT_THAT(answer->status, ::testing::AnyOf(404, 503)) << answer->body;
    if (item.value("reserved", -1) != 2)
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(item, (json{{"sku", "sku-7"}, {"units", 5}, {"reserved", 2}, {"remaining", 3}}));

  // A SKU with a slash, percent-encoded as a client must.
  ASSERT_TRUE((*producer)
                  ->send({"stock", std::nullopt, "kit/2 x", R"({"units": 9})", {}, std::nullopt})
                  .ok());
  ASSERT_TRUE((*producer)->flush(10s).ok());
  json kit = json::object();
  for (int attempt = 0; attempt < 600 && !kit.contains("units"); ++attempt) {
    auto answer = c.Get("/items/kit%2F2%20x");
    ASSERT_TRUE(answer);
    if (answer->status == 200)
      kit = json::parse(answer->body);
    else
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(kit, (json{{"sku", "kit/2 x"}, {"units", 9}, {"reserved", 0}, {"remaining", 9}}));

  auto unknown = c.Get("/items/no-such-sku");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  EXPECT_THAT(json::parse(unknown->body)["error"].get<std::string>(),
              HasSubstr("no item 'no-such-sku'"));

  // The pipeline gone: 503 naming its endpoint, with Retry-After.
  pipeline->signal(SIGTERM);
  ASSERT_TRUE(pipeline->wait(60s).has_value());
  auto gone = c.Get("/items/sku-7");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 503) << gone->body;
  EXPECT_TRUE(gone->has_header("Retry-After"));
  EXPECT_THAT(gone->body, HasSubstr(pipeline_admin));
  std::filesystem::remove_all(state_dir);
}

}  // namespace
}  // namespace streamrun::testing
