// seckill-load: a flash-sale burst. Loads the stock (one record per SKU) and fires N orders at
// the orders topic, as fast as the producer goes or at a target rate: most SKUs share the
// orders evenly, one hot SKU gets a given share of them, some orders repeat an earlier user's
// SKU (a second try, which must be answered "duplicate" if the first was accepted), and some
// are not JSON at all (which must end in the dead-letter topic).
//
//   seckill-load --bootstrap 127.0.0.1:9092 --orders 1000000 --hot-share 0.5
//
// Orders are keyed by user (as a gateway in front of the users would write them) and carry
// "ts", the wall-clock time they were sent (ms since the epoch), from which seckill-check
// measures how long each waited for its decision. Prints a progress line (rewritten in place on
// a terminal) and a summary; exit status 1 when any record could not be delivered.

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/base/log.h>
#include <streamrun/config/properties.h>
#include <streamrun/kafka/producer.h>

#include "orders.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string bootstrap = "127.0.0.1:9092";
  std::string orders_topic = "orders";
  std::string stock_topic = "stock";
  std::int64_t orders = 1'000'000;
  int users = 200'000;
  int skus = 100;
  double hot_share = 0.5;
  double malformed_share = 0.01;
  double repeat_share = 0.02;
  double rate = 0;  // orders/s; 0: as fast as the producer takes them
  int units = 1'000;
  int hot_units = 10'000;
  bool no_stock = false;
  std::string run_id;
  std::uint64_t seed = 42;
  std::vector<std::string> producer_settings;
  std::string gateway;  // http://HOST:PORT: orders go through seckill-gateway instead
  int connections = 16;
};

// Orders through seckill-gateway: `connections` clients POST what the generator queues (at most
// a few thousand waiting), retrying a 503 after its Retry-After with the same order id (the
// pipeline decides an order id once).
class GatewaySender {
 public:
  GatewaySender(const std::string& url, int connections) {
    for (int i = 0; i < connections; ++i)
      clients_.emplace_back([this, url] { serve(url); });
  }
  ~GatewaySender() { finish(); }

  void send(std::string body) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return queue_.size() < 4096; });
    queue_.push_back(std::move(body));
    ready_.notify_one();
  }
  // Waits until every order is answered.
  void finish() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    ready_.notify_all();
    for (auto& client : clients_) {
      if (client.joinable())
        client.join();
    }
  }
  std::int64_t accepted() const { return accepted_; }
  std::int64_t refused() const { return refused_; }
  std::int64_t retried() const { return retried_; }
  std::int64_t failed() const { return failed_; }
  const std::string& first_error() const { return first_error_; }

 private:
  void serve(const std::string& url) {
    httplib::Client client(url);
    client.set_read_timeout(60, 0);
    while (true) {
      std::string body;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return done_ || !queue_.empty(); });
        if (queue_.empty())
          return;
        body = std::move(queue_.front());
        queue_.pop_front();
        room_.notify_one();
      }
      for (int attempt = 0;; ++attempt) {
        auto response = client.Post("/orders", body, "application/json");
        if (response && response->status == 202) {
          ++accepted_;
        } else if (response && response->status == 400) {
          ++refused_;  // the gateway names what is wrong; malformed orders end here
        } else if (response && response->status == 503 && attempt < 60) {
          ++retried_;
          const auto wait = std::atoi(response->get_header_value("Retry-After").c_str());
          std::this_thread::sleep_for(std::chrono::seconds(std::max(wait, 1)));
          continue;
        } else {
          if (failed_.fetch_add(1) == 0) {
            std::lock_guard lock(mutex_);
            first_error_ = response ? fmt::format("HTTP {}: {}", response->status, response->body)
                                    : httplib::to_string(response.error());
          }
        }
        break;
      }
    }
  }

  std::vector<std::thread> clients_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable room_;
  std::deque<std::string> queue_;
  bool done_ = false;
  std::atomic<std::int64_t> accepted_{0};
  std::atomic<std::int64_t> refused_{0};
  std::atomic<std::int64_t> retried_{0};
  std::atomic<std::int64_t> failed_{0};
  std::string first_error_;
};

// Prints progress: in place on a terminal, a plain line a second otherwise.
class Progress {
 public:
  explicit Progress(std::int64_t total) : total_(total), tty_(::isatty(STDERR_FILENO) == 1) {}

  void update(std::int64_t sent, bool last = false) {
    const auto now = Clock::now();
    if (!last && now - shown_ < (tty_ ? std::chrono::milliseconds(200) : std::chrono::seconds(1)))
      return;
    shown_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const auto line =
        fmt::format("seckill-load: {:>10} / {} orders sent, {:>9.0f} orders/s, {:.1f} s", sent,
                    total_, elapsed > 0 ? sent / elapsed : 0.0, elapsed);
    if (tty_) {
      std::fprintf(stderr, "\r%s%s", line.c_str(), last ? "\n" : "");
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

 private:
  std::int64_t total_;
  bool tty_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point shown_{};
};

// Sends one record, waiting while the producer's queue is full.
bool send(streamrun::kafka::Producer& producer, const streamrun::kafka::ProducerRecord& record,
          std::atomic<std::int64_t>& failed, std::string& first_error) {
  while (true) {
    auto sent = producer.send(record, [&](const streamrun::kafka::DeliveryReport& report) {
      if (report.error) {
        if (failed.fetch_add(1) == 0)
          first_error = report.error->message();
      }
    });
    if (sent)
      return true;
    if (sent.error().code() != streamrun::kafka::errc::queue_full) {
      std::fprintf(stderr, "seckill-load: cannot send to %s: %s\n",
                   std::string(record.topic).c_str(), sent.error().message().c_str());
      return false;
    }
    producer.poll(std::chrono::milliseconds(1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App cli{"Fires a flash-sale burst of orders (and loads the stock) into Kafka."};
  cli.add_option("--bootstrap", o.bootstrap, "bootstrap.servers")->capture_default_str();
  cli.add_option("--orders-topic", o.orders_topic, "the topic orders go to")->capture_default_str();
  cli.add_option("--stock-topic", o.stock_topic, "the topic of stock per SKU")
      ->capture_default_str();
  cli.add_option("--orders", o.orders, "how many orders")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1'000'000'000}));
  cli.add_option("--users", o.users, "distinct users")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000'000));
  cli.add_option("--skus", o.skus, "distinct SKUs (sku-0 is the hot one)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  cli.add_option("--hot-share", o.hot_share, "share of orders for the hot SKU")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cli.add_option("--malformed-share", o.malformed_share, "share of orders that are not JSON")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cli.add_option("--repeat-share", o.repeat_share,
                 "share of orders repeating an earlier order's user and SKU")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cli.add_option("--rate", o.rate, "target orders/s (0: as fast as possible)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--units", o.units, "stock of each SKU but the hot one")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--hot-units", o.hot_units, "stock of the hot SKU")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_flag("--no-stock", o.no_stock, "send orders only");
  cli.add_option("--run-id", o.run_id,
                 "prefix of order ids (default: the time, so that runs differ)");
  cli.add_option("--seed", o.seed, "random seed")->capture_default_str();
  cli.add_option("--set", o.producer_settings,
                 "producer property KEY=VALUE (librdkafka's names; repeatable)");
  cli.add_option("--gateway", o.gateway,
                 "send the orders through seckill-gateway at this URL (http://HOST:PORT) "
                 "instead of straight to Kafka (the stock still goes to Kafka)");
  cli.add_option("--connections", o.connections, "concurrent HTTP clients with --gateway")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "warn"});
  if (o.run_id.empty())
    o.run_id = fmt::format("{:x}",
                           std::chrono::system_clock::now().time_since_epoch().count() / 1'000'000);

  // Batching and compression: a burst of small JSON orders compresses well and the broker
  // stores (and the development broker caps) compressed batches.
  const auto client = seckill::with_client_settings({{"bootstrap.servers", o.bootstrap},
                                                     {"linger.ms", "20"},
                                                     {"batch.size", "1000000"},
                                                     {"compression.type", "lz4"}},
                                                    o.producer_settings, "seckill-load");
  if (!client)
    return 2;
  auto producer = streamrun::kafka::Producer::create(*client);
  if (!producer) {
    std::fprintf(stderr, "seckill-load: %s\n", producer.error().message().c_str());
    return 1;
  }
  std::atomic<std::int64_t> failed{0};
  std::string first_error;

  if (!o.no_stock) {
    for (int i = 0; i < o.skus; ++i) {
      const auto sku = seckill::sku_name(i);
      const auto value =
          nlohmann::json{{"units", i == seckill::kHotSku ? o.hot_units : o.units}}.dump();
      if (!send(**producer, {o.stock_topic, std::nullopt, sku, value, {}, std::nullopt}, failed,
                first_error))
        return 1;
    }
    if (auto flushed = (*producer)->flush(std::chrono::seconds(60)); !flushed) {
      std::fprintf(stderr, "seckill-load: stock not acknowledged: %s\n",
                   flushed.error().message().c_str());
      return 1;
    }
    std::fprintf(stderr,
                 "seckill-load: stock of %d SKUs loaded (%d units of %s, %d of each other)\n",
                 o.skus, o.hot_units, seckill::sku_name(seckill::kHotSku).c_str(), o.units);
  }

  if (o.orders == 0)
    return failed > 0 ? 1 : 0;

  std::mt19937_64 random(o.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> any_user(0, o.users - 1);
  std::uniform_int_distribution<int> other_sku(o.skus > 1 ? 1 : 0, o.skus - 1);
  // Recent (user, SKU) pairs, for repeated orders.
  std::vector<std::pair<int, int>> recent(4096, {0, 0});
  std::int64_t malformed = 0;
  std::int64_t repeats = 0;
  std::optional<GatewaySender> gateway;
  if (!o.gateway.empty())
    gateway.emplace(o.gateway, o.connections);
  Progress progress(o.orders);
  const auto start = Clock::now();
  for (std::int64_t i = 0; i < o.orders; ++i) {
    if (o.rate > 0) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(static_cast<double>(i) / o.rate));
      while (Clock::now() < due) {
        (*producer)->poll(std::chrono::milliseconds(0));
        std::this_thread::sleep_until(std::min(due, Clock::now() + std::chrono::milliseconds(1)));
      }
    }
    int user = 0;
    int sku = 0;
    if (i > 0 && unit(random) < o.repeat_share) {
      std::tie(user, sku) = recent[static_cast<std::size_t>(random() % recent.size())];
      ++repeats;
    } else {
      user = any_user(random);
      sku = unit(random) < o.hot_share ? seckill::kHotSku : other_sku(random);
      recent[static_cast<std::size_t>(i) % recent.size()] = {user, sku};
    }
    const seckill::Order order{fmt::format("{}-{}", o.run_id, i), seckill::user_name(user),
                               seckill::sku_name(sku), 1, seckill::wall_clock_ms()};
    std::string value;
    if (unit(random) < o.malformed_share) {
      value = fmt::format("not an order: {} wants {}", order.order_id, order.sku);
      ++malformed;
    } else if (gateway) {
      // The gateway stamps the time itself; the id makes a retried request the same order.
      value = nlohmann::json{
          {"order_id", order.order_id},
          {"user_id", order.user_id},
          {"sku", order.sku},
          {"qty",
           1}}.dump();
    } else {
      value = seckill::to_json(order);
    }
    if (gateway) {
      gateway->send(std::move(value));
    } else if (!send(**producer,
                     {o.orders_topic, std::nullopt, order.user_id, value, {}, std::nullopt}, failed,
                     first_error)) {
      return 1;
    }
    if (i % 1024 == 0) {
      (*producer)->poll(std::chrono::milliseconds(0));
      progress.update(i);
    }
  }
  if (auto flushed = (*producer)->flush(std::chrono::minutes(5)); !flushed) {
    std::fprintf(stderr, "seckill-load: orders not acknowledged: %s\n",
                 flushed.error().message().c_str());
    return 1;
  }
  if (gateway)
    gateway->finish();
  progress.update(o.orders, /*last=*/true);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "seckill-load: %lld orders sent in %.1f s (%.0f orders/s): %lld not JSON, %lld repeating "
      "an earlier user and SKU, hot SKU share %.0f %%\n",
      static_cast<long long>(o.orders), seconds, seconds > 0 ? o.orders / seconds : 0.0,
      static_cast<long long>(malformed), static_cast<long long>(repeats), o.hot_share * 100);
  if (gateway) {
    std::printf(
        "seckill-load: through %s: %lld taken (202), %lld refused (400), %lld retries "
        "after 503, %lld failed\n",
        o.gateway.c_str(), static_cast<long long>(gateway->accepted()),
        static_cast<long long>(gateway->refused()), static_cast<long long>(gateway->retried()),
        static_cast<long long>(gateway->failed()));
    if (gateway->failed() > 0) {
      std::fprintf(stderr, "seckill-load: %lld order(s) not taken by the gateway; first: %s\n",
                   static_cast<long long>(gateway->failed()), gateway->first_error().c_str());
      return 1;
    }
  }
  if (failed > 0) {
    std::fprintf(stderr, "seckill-load: %lld record(s) not delivered; first error: %s\n",
                 static_cast<long long>(failed.load()), first_error.c_str());
    return 1;
  }
  return 0;
}
