// seckill-orders: the order service the pipeline confirms accepted orders with (issue 20). A
// small in-memory HTTP service (cpp-httplib) that can be told to be slow, to fail a share of
// calls, or to be down for a while — the dependency the pipeline must survive.
//
//   POST /confirmations   {"order_id", "user_id", "sku"} with header Idempotency-Key
//     200 {"order_id", "confirmation", "repeat"}  the same key (or order id) always gets the
//                                                 same confirmation; "repeat" says it was known
//     400 {"error"}                               not a confirmation request, naming the field
//     500 {"error"}                               an injected failure (--fail-share)
//     503 {"error"} + Retry-After                 the service is down (POST /chaos down_for_ms)
//   GET  /confirmations/{order_id}   200 the confirmation, 404 unknown
//   GET  /stats                      200 {"confirmed", "calls", "failed", "rejected", "repeats",
//                                         "in_flight", "max_in_flight"} (calls served now, and
//                                         at most at once)
//   POST /chaos  {"fail_share", "slow_share", "slow_ms", "down_for_ms"} (any subset): changes the
//                behaviour from now on; down_for_ms makes every call 503 for that long
//
//   seckill-orders --listen 127.0.0.1:8081 --slow-share 0.1 --slow-ms 200

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "http_serve.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Chaos {
  double fail_share = 0;
  double slow_share = 0;
  int slow_ms = 0;
  Clock::time_point down_until{};
};

void reply(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(body.dump(), "application/json");
}

// Empty when `body` is a confirmation request; else what is wrong with it.
std::string invalid_request(const json& body) {
  if (!body.is_object())
    return "the body must be a JSON object";
  for (const auto* field : {"order_id", "user_id", "sku"}) {
    if (!body.contains(field))
      return fmt::format("field '{}' is missing", field);
    if (!body[field].is_string() || body[field].get<std::string>().empty())
      return fmt::format("field '{}' must be a non-empty string", field);
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:8081";
  Chaos initial;
  int threads = 128;
  CLI::App cli{
      "The flash sale's order service: confirms accepted orders (idempotently, by "
      "Idempotency-Key), and can be told to be slow, fail or go down (POST /chaos)."};
  cli.add_option("--listen", listen, "HOST:PORT to serve (port 0: any free one)")
      ->capture_default_str();
  cli.add_option("--fail-share", initial.fail_share, "share of calls answered 500")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cli.add_option("--slow-share", initial.slow_share, "share of calls delayed by --slow-ms")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cli.add_option("--slow-ms", initial.slow_ms, "delay of a slow call, ms")
      ->check(CLI::Range(0, 600'000))
      ->capture_default_str();
  cli.add_option("--threads", threads, "HTTP worker threads (calls served at once)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  if (const auto why = seckill::invalid_listen(listen); !why.empty()) {
    std::fprintf(stderr, "seckill-orders: %s\n", why.c_str());
    return 2;
  }
  const sigset_t stop_signals = seckill::block_stop_signals();

  std::mutex mutex;  // guards everything below
  Chaos chaos = initial;
  std::unordered_map<std::string, std::string> confirmations;  // order id -> confirmation
  std::unordered_map<std::string, std::string> by_key;         // idempotency key -> order id
  std::mt19937_64 random(std::random_device{}());
  std::atomic<std::int64_t> calls{0}, failed{0}, rejected{0}, repeats{0};
  // Confirmation calls being served now, and the most at once: how far callers overlap.
  std::atomic<std::int64_t> in_flight{0}, max_in_flight{0};

  httplib::Server server;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.Post("/confirmations", [&](const httplib::Request& request, httplib::Response& response) {
    ++calls;
    const auto now_in_flight = ++in_flight;
    for (auto seen = max_in_flight.load();
         now_in_flight > seen && !max_in_flight.compare_exchange_weak(seen, now_in_flight);) {
    }
    struct Leave {
      std::atomic<std::int64_t>& count;
      ~Leave() { --count; }
    } leave{in_flight};
    bool slow = false;
    bool fail = false;
    int slow_ms = 0;
    bool down = false;
    {
      std::lock_guard lock(mutex);
      down = Clock::now() < chaos.down_until;
      std::uniform_real_distribution<double> share(0, 1);
      slow = share(random) < chaos.slow_share;
      fail = share(random) < chaos.fail_share;
      slow_ms = chaos.slow_ms;
    }
    if (down) {
      ++failed;
      response.set_header("Retry-After", "1");
      reply(response, 503, {{"error", "the order service is down (injected outage)"}});
      return;
    }
    if (slow)
      std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms));
    if (fail) {
      ++failed;
      reply(response, 500, {{"error", "injected failure"}});
      return;
    }
    const auto body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (const auto why = invalid_request(body); !why.empty()) {
      ++rejected;
      reply(response, 400, {{"error", why}});
      return;
    }
    const auto order_id = body["order_id"].get<std::string>();
    const auto key = request.get_header_value("Idempotency-Key");
    std::lock_guard lock(mutex);
    if (!key.empty()) {
      if (auto known = by_key.find(key); known != by_key.end() && known->second != order_id) {
        ++rejected;
        reply(response, 400,
              {{"error",
                fmt::format("Idempotency-Key '{}' was used for order '{}'", key, known->second)}});
        return;
      }
      by_key.emplace(key, order_id);
    }
    auto [it, inserted] =
        confirmations.try_emplace(order_id, fmt::format("c-{}", confirmations.size() + 1));
    if (!inserted)
      ++repeats;
    reply(response, 200,
          {{"order_id", order_id}, {"confirmation", it->second}, {"repeat", !inserted}});
  });
  server.Get(
      R"(/confirmations/(.+))", [&](const httplib::Request& request, httplib::Response& response) {
        const std::string order_id = request.matches[1];
        std::lock_guard lock(mutex);
        if (auto it = confirmations.find(order_id); it != confirmations.end()) {
          reply(response, 200, {{"order_id", order_id}, {"confirmation", it->second}});
          return;
        }
        reply(response, 404, {{"error", fmt::format("no confirmation for order '{}'", order_id)}});
      });
  server.Get("/stats", [&](const httplib::Request&, httplib::Response& response) {
    std::size_t confirmed = 0;
    {
      std::lock_guard lock(mutex);
      confirmed = confirmations.size();
    }
    reply(response, 200,
          {{"confirmed", confirmed},
           {"calls", calls.load()},
           {"failed", failed.load()},
           {"rejected", rejected.load()},
           {"repeats", repeats.load()},
           {"in_flight", in_flight.load()},
           {"max_in_flight", max_in_flight.load()}});
  });
  server.Post("/chaos", [&](const httplib::Request& request, httplib::Response& response) {
    const auto body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object()) {
      reply(response, 400, {{"error", "the body must be a JSON object"}});
      return;
    }
    std::lock_guard lock(mutex);
    Chaos next = chaos;
    for (const auto& [field, value] : body.items()) {
      const bool share = field == "fail_share" || field == "slow_share";
      if (share && (!value.is_number() || value.get<double>() < 0 || value.get<double>() > 1)) {
        reply(response, 400, {{"error", fmt::format("'{}' must be a number from 0 to 1", field)}});
        return;
      }
      if ((field == "slow_ms" || field == "down_for_ms") &&
          (!value.is_number_integer() || value.get<std::int64_t>() < 0)) {
        reply(response, 400, {{"error", fmt::format("'{}' must be an integer >= 0", field)}});
        return;
      }
      if (field == "fail_share") {
        next.fail_share = value.get<double>();
      } else if (field == "slow_share") {
        next.slow_share = value.get<double>();
      } else if (field == "slow_ms") {
        next.slow_ms = value.get<int>();
      } else if (field == "down_for_ms") {
        next.down_until = Clock::now() + std::chrono::milliseconds(value.get<std::int64_t>());
      } else {
        reply(response, 400,
              {{"error", fmt::format("unknown field '{}' (fail_share, slow_share, slow_ms, "
                                     "down_for_ms)",
                                     field)}});
        return;
      }
    }
    chaos = next;
    reply(response, 200,
          {{"fail_share", chaos.fail_share},
           {"slow_share", chaos.slow_share},
           {"slow_ms", chaos.slow_ms}});
  });

  return seckill::serve_until_stopped(server, listen, "seckill-orders", stop_signals) ? 0 : 1;
}
