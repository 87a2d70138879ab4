// seckill-gateway: the HTTP front of the flash sale (cpp-httplib). Takes orders and hands them to
// Kafka, never deciding anything itself: the pipeline does, at its own pace.
//
//   POST /orders        {"user_id": "...", "sku": "...", "qty": 1, "order_id": "..." (optional)}
//     202 {"order_id", "status": "pending"}  once Kafka has the order (acknowledged)
//     400 {"error": "..."}                    a body that is not an order, naming the field
//     503 {"error": "..."} + Retry-After      Kafka is slow or down, or too many orders are in
//                                             flight: retry with the same order_id (decided once)
//   GET /orders/{id}    200 the decision once made, else {"order_id", "status": "pending"}
//   GET /items/{sku}    200 {"sku", "units", "reserved", "remaining"}: the stock and what the
//                       pipeline has reserved of it as of its last commit, read from the
//                       pipeline's state stores (GET /state/... on its admin endpoint,
//                       --pipeline-admin; redirects to the instance holding the SKU are followed)
//                       404 the SKU has no stock row; 503 + Retry-After the pipeline cannot say
//   GET /health         200 {"in_flight", "decisions_known"}
//
// Orders are keyed by user and carry "ts" (ms since the epoch). The gateway keeps at most
// --max-in-flight orders waiting for Kafka and the --max-decisions most recent decisions in
// memory (read from the decisions topic), so its memory stays bounded however the broker fares.
//
//   seckill-gateway --bootstrap 127.0.0.1:9092 --listen 127.0.0.1:8080

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <pthread.h>
#include <random>
#include <signal.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <variant>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/base/log.h>
#include <streamrun/config/properties.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>

#include "http_serve.h"
#include "orders.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// The most recent decisions by order id, at most `capacity` (the oldest go first).
class Decisions {
 public:
  explicit Decisions(std::size_t capacity) : capacity_(capacity) {}

  void add(std::string order_id, std::string decision) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = by_id_.try_emplace(order_id, std::move(decision));
    if (!inserted)
      return;  // the same decision written again after a crash
    order_.push_back(std::move(order_id));
    while (order_.size() > capacity_) {
      by_id_.erase(order_.front());
      order_.pop_front();
    }
  }
  std::optional<std::string> find(const std::string& order_id) const {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(order_id);
    if (it == by_id_.end())
      return std::nullopt;
    return it->second;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return by_id_.size();
  }

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::string> by_id_;
  std::deque<std::string> order_;
};

// `base` with `more` added (what `base` sets already wins: the user's --set).
streamrun::kafka::ClientProperties with(streamrun::kafka::ClientProperties base,
                                        const streamrun::kafka::ClientProperties& more) {
  base.insert(more.begin(), more.end());
  return base;
}

// httplib's ThreadPool queues accepted connections without limit; this one makes the accepting
// thread wait once `max_waiting` connections wait for a worker, so that the kernel's listen
// backlog, not the gateway's memory, takes the overflow.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(std::size_t threads, std::size_t max_waiting) : max_waiting_(max_waiting) {
    for (std::size_t i = 0; i < threads; ++i)
      workers_.emplace_back([this] { work(); });
  }
  void enqueue(std::function<void()> job) override {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return jobs_.size() < max_waiting_ || shutdown_; });
    jobs_.push_back(std::move(job));
    ready_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      shutdown_ = true;
    }
    ready_.notify_all();
    room_.notify_all();
    for (auto& worker : workers_)
      worker.join();
  }

 private:
  void work() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
        if (jobs_.empty())
          return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        room_.notify_one();
      }
      job();
    }
  }
  std::size_t max_waiting_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable room_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
};

void reply(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(body.dump(), "application/json");
}

void unavailable(httplib::Response& response, const std::string& why);

// GET /items/{sku}: the stock table's row and the units reserved, as the pipeline's state
// stores hold them (stores "stock" and "reserved", both keyed by SKU).
void answer_item(const std::string& pipeline_admin, const std::string& sku,
                 httplib::Response& response) {
  httplib::Client pipeline("http://" + pipeline_admin);
  pipeline.set_follow_location(true);  // to the instance that holds the SKU
  pipeline.set_connection_timeout(std::chrono::seconds(2));
  pipeline.set_read_timeout(std::chrono::seconds(5));
  // httplib's own encoder, which leaves only unreserved characters as they are.
  const auto key = httplib::detail::encode_query_param(sku);
  json figures[2];
  const char* stores[2] = {"stock", "reserved"};
  for (int i = 0; i < 2; ++i) {
    auto answer = pipeline.Get(fmt::format("/state/{}/{}", stores[i], key));
    if (!answer) {
      unavailable(response, fmt::format("the pipeline's admin endpoint at {} does not answer ({})",
                                        pipeline_admin, httplib::to_string(answer.error())));
      return;
    }
    const auto body = json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
    if (answer->status == 404 && i == 0) {
      reply(response, 404,
            {{"error", fmt::format("no item '{}': the stock table has no row "
                                   "for it",
                                   sku)}});
      return;
    }
    if (answer->status != 200 && answer->status != 404) {
      unavailable(response,
                  fmt::format("the pipeline cannot say yet: {}",
                              body.is_object() ? body.value("error", answer->body) : answer->body));
      return;
    }
    figures[i] = answer->status == 200 && body.is_object() ? body.value("value", json()) : json();
  }
  const auto units = figures[0].is_object() ? figures[0].value("units", json()) : json();
  if (!units.is_number_integer()) {
    reply(response, 502,
          {{"error", fmt::format("the stock row of '{}' has no integer 'units': {}", sku,
                                 figures[0].dump())}});
    return;
  }
  const auto reserved = figures[1].is_number_integer() ? figures[1].get<std::int64_t>() : 0;
  reply(response, 200,
        {{"sku", sku},
         {"units", units},
         {"reserved", reserved},
         {"remaining", std::max<std::int64_t>(0, units.get<std::int64_t>() - reserved)}});
}

void unavailable(httplib::Response& response, const std::string& why) {
  response.set_header("Retry-After", "1");
  reply(response, 503, {{"error", why}});
}

// The order in `body`, or the reason it is not one (naming the field).
std::variant<seckill::Order, std::string> parse_order(const std::string& body,
                                                      std::atomic<std::uint64_t>& next_id,
                                                      const std::string& instance) {
  const auto value = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded())
    return std::string("the body is not JSON");
  if (!value.is_object())
    return std::string("the body must be a JSON object");
  seckill::Order order;
  for (const auto& [field, text] :
       {std::pair{"user_id", &order.user_id}, std::pair{"sku", &order.sku}}) {
    auto it = value.find(field);
    if (it == value.end())
      return fmt::format("field '{}' is missing", field);
    if (!it->is_string() || it->get<std::string>().empty())
      return fmt::format("field '{}' must be a non-empty string", field);
    *text = it->get<std::string>();
  }
  if (auto it = value.find("qty"); it != value.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() != 1)
      return std::string("field 'qty' must be the number 1 (one unit per order)");
  }
  if (auto it = value.find("order_id"); it != value.end()) {
    if (!it->is_string() || it->get<std::string>().empty() || it->get<std::string>().size() > 128)
      return std::string("field 'order_id' must be a string of 1 to 128 characters");
    order.order_id = it->get<std::string>();
  }
  for (const auto& [field, _] : value.items()) {
    if (field != "user_id" && field != "sku" && field != "qty" && field != "order_id")
      return fmt::format("unknown field '{}' (expected user_id, sku, qty, order_id)", field);
  }
  if (order.order_id.empty())
    order.order_id = fmt::format("{}-{}", instance, next_id.fetch_add(1));
  order.ts = seckill::wall_clock_ms();
  return order;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bootstrap = "127.0.0.1:9092";
  std::string listen = "127.0.0.1:8080";
  std::string orders_topic = "orders";
  std::string decisions_topic = "decisions";
  std::size_t max_in_flight = 10'000;
  std::size_t max_decisions = 1'000'000;
  int threads = 16;
  int timeout_ms = 5'000;
  std::vector<std::string> client_settings;
  std::string pipeline_admin = "127.0.0.1:9095";
  CLI::App cli{
      "The flash sale's HTTP gateway: POST /orders hands orders to Kafka, GET "
      "/orders/{id} answers with the decision once the pipeline made it, GET /items/{sku} with "
      "the stock and units reserved (from the pipeline's state, --pipeline-admin)."};
  cli.add_option("--bootstrap", bootstrap, "bootstrap.servers")->capture_default_str();
  cli.add_option("--listen", listen, "HOST:PORT to serve (port 0: any free one)")
      ->capture_default_str();
  cli.add_option("--orders", orders_topic, "the topic of orders")->capture_default_str();
  cli.add_option("--decisions", decisions_topic, "the topic of decisions")->capture_default_str();
  cli.add_option("--max-in-flight", max_in_flight, "orders waiting for Kafka at once; more get 503")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));
  cli.add_option("--max-decisions", max_decisions, "decisions kept in memory for GET")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}));
  cli.add_option("--threads", threads, "HTTP worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cli.add_option("--timeout-ms", timeout_ms,
                 "how long an order may wait for Kafka's acknowledgement before 503")
      ->capture_default_str()
      ->check(CLI::Range(100, 600'000));
  cli.add_option("--pipeline-admin", pipeline_admin,
                 "HOST:PORT of an inventory pipeline instance's admin endpoint, for GET /items")
      ->capture_default_str();
  cli.add_option("--set", client_settings,
                 "Kafka client property KEY=VALUE for its producer and consumer (librdkafka's "
                 "names, e.g. security.protocol; repeatable)");
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "info"});
  auto logger = streamrun::log::get("seckill-gateway");
  const auto settings = seckill::with_client_settings({{"bootstrap.servers", bootstrap}},
                                                      client_settings, "seckill-gateway");
  if (!settings)
    return 2;
  const auto& common = *settings;
  if (const auto why = seckill::invalid_listen(listen); !why.empty()) {
    std::fprintf(stderr, "seckill-gateway: %s\n", why.c_str());
    return 2;
  }
  const sigset_t stop_signals = seckill::block_stop_signals();

  // Batching and compression; an order not acknowledged within the timeout fails, so that a
  // down broker turns into 503s instead of a queue that grows.
  auto producer = streamrun::kafka::Producer::create(
      with(common, {{"linger.ms", "5"},
                    {"compression.type", "zstd"},
                    {"message.timeout.ms", std::to_string(timeout_ms)}}));
  if (!producer) {
    logger->error("{}", producer.error().message());
    return 1;
  }
  // Generated order ids must never repeat across gateways: the pipeline decides an id once.
  std::random_device entropy;
  const std::string instance =
      fmt::format("g{:016x}", (std::uint64_t{entropy()} << 32) ^ std::uint64_t{entropy()});
  Decisions decisions(max_decisions);
  std::atomic<bool> stopping{false};
  std::atomic<bool> reader_failed{false};

  // Delivery reports are served here; the HTTP threads wait for theirs.
  std::thread poller([&] {
    while (!stopping)
      (*producer)->poll(std::chrono::milliseconds(10));
  });
  // The decisions topic, from the beginning, into the bounded index.
  std::thread reader([&] {
    auto consumer = streamrun::kafka::Consumer::create(
        with(common, {{"group.id", instance + "-decisions"}, {"auto.offset.reset", "earliest"}}),
        nullptr);
    if (!consumer || !(*consumer)->subscribe({decisions_topic})) {
      logger->error("cannot read '{}': {}", decisions_topic,
                    consumer ? "subscribe failed" : consumer.error().message());
      reader_failed = true;
      return;
    }
    std::vector<streamrun::kafka::Message> batch;
    while (!stopping) {
      batch.clear();
      if (auto polled = (*consumer)->poll(batch, 1000, std::chrono::milliseconds(100)); !polled) {
        logger->error("reading '{}': {}", decisions_topic, polled.error().message());
        reader_failed = true;
        return;
      }
      for (const auto& message : batch) {
        const auto value = message.value();
        if (!value)
          continue;
        auto decision = json::parse(*value, nullptr, /*allow_exceptions=*/false);
        if (decision.is_object() && decision.contains("order_id") &&
            decision["order_id"].is_string())
          decisions.add(decision["order_id"].get<std::string>(), std::string(*value));
      }
    }
  });

  std::atomic<std::size_t> in_flight{0};
  std::atomic<std::uint64_t> next_id{0};
  httplib::Server server;
  server.new_task_queue = [threads, max_in_flight] {
    return new BoundedPool(static_cast<std::size_t>(threads), max_in_flight);
  };
  server.set_payload_max_length(64 * 1024);
  // Errors httplib answers itself (413 for a body over 64 KiB, 404, ...) get a JSON reason too.
  server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (!response.body.empty())
      return;
    std::string why = fmt::format("HTTP {}", response.status);
    if (response.status == 413)
      why = "the body is larger than 64 KiB";
    else if (response.status == 404)
      why =
          "no such resource: POST /orders, GET /orders/{id}, GET /items/{sku} and GET /health "
          "are served";
    else if (response.status == 400)
      why = "the request could not be read";
    reply(response, response.status, {{"error", why}});
  });
  server.Post("/orders", [&](const httplib::Request& request, httplib::Response& response) {
    auto parsed = parse_order(request.body, next_id, instance);
    if (auto* why = std::get_if<std::string>(&parsed)) {
      reply(response, 400, {{"error", *why}});
      return;
    }
    const auto& order = std::get<seckill::Order>(parsed);
    if (in_flight.fetch_add(1) >= max_in_flight) {
      in_flight.fetch_sub(1);
      unavailable(response, "too many orders in flight; Kafka is slow");
      return;
    }
    struct Release {
      std::atomic<std::size_t>& count;
      ~Release() { count.fetch_sub(1); }
    } release{in_flight};
    auto acknowledged = std::make_shared<std::promise<std::optional<std::string>>>();
    auto outcome = acknowledged->get_future();
    const auto value = seckill::to_json(order);
    auto sent = (*producer)->send(
        {orders_topic, std::nullopt, order.user_id, value, {}, std::nullopt},
        [acknowledged](const streamrun::kafka::DeliveryReport& report) {
          acknowledged->set_value(report.error ? std::optional(report.error->message())
                                               : std::nullopt);
        });
    if (!sent) {
      unavailable(response, "Kafka does not take orders now: " + sent.error().message());
      return;
    }
    if (outcome.wait_for(std::chrono::milliseconds(timeout_ms + 1'000)) !=
        std::future_status::ready) {
      unavailable(response, "Kafka did not acknowledge the order in time; retry with order_id " +
                                order.order_id);
      return;
    }
    if (auto error = outcome.get()) {
      unavailable(response, "Kafka did not take the order (" + *error + "); retry with order_id " +
                                order.order_id);
      return;
    }
    reply(response, 202, {{"order_id", order.order_id}, {"status", "pending"}});
  });
  server.Get(
      R"(/orders/([^/]+))", [&](const httplib::Request& request, httplib::Response& response) {
        const std::string id = request.matches[1];
        if (reader_failed) {
          unavailable(response, "the decisions topic cannot be read (see the gateway's log)");
          return;
        }
        if (auto decision = decisions.find(id)) {
          response.status = 200;
          response.set_content(*decision, "application/json");
          return;
        }
        reply(response, 200, {{"order_id", id}, {"status", "pending"}});
      });
  server.Get(R"(/items/(.+))", [&](const httplib::Request& request, httplib::Response& response) {
    const std::string sku = request.matches[1];
    answer_item(pipeline_admin, sku, response);
  });
  server.Get("/health", [&](const httplib::Request&, httplib::Response& response) {
    reply(response, reader_failed ? 503 : 200,
          {{"in_flight", in_flight.load()},
           {"decisions_known", decisions.size()},
           {"decisions_readable", !reader_failed.load()}});
  });

  const bool served = seckill::serve_until_stopped(server, listen, "seckill-gateway", stop_signals);
  stopping = true;
  poller.join();
  reader.join();
  if (auto flushed = (*producer)->flush(std::chrono::seconds(10)); !flushed)
    logger->warn("{}", flushed.error().message());
  return served ? 0 : 1;
}
