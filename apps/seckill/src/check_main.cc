// seckill-check: reads the stock, orders, decisions and dead-letter topics (and, when asked,
// the confirmations and sales rates) from the beginning and checks the flash sale's invariants
// (check.h). With --wait it keeps reading the decisions
// until every well-formed order has one (or nothing new arrives for --idle seconds), so that it
// can run right after a burst. Prints a table and the invariants; exit status 0 only when every
// invariant holds, 1 when one does not, 2 on bad usage or when the topics cannot be read.
//
//   seckill-check --bootstrap 127.0.0.1:9092 --wait 600

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <streamrun/base/errc.h>
#include <streamrun/base/log.h>
#include <streamrun/config/properties.h>
#include <streamrun/kafka/log_reader.h>
#include <streamrun/kafka/producer.h>

#include "check.h"
#include "orders.h"

namespace {

using Clock = std::chrono::steady_clock;
using streamrun::kafka::Message;

// Reads a topic from the beginning, a little more at each call.
class TopicTail {
 public:
  TopicTail(streamrun::kafka::LogReader& reader, std::string topic, int partitions)
      : reader_(reader),
        topic_(std::move(topic)),
        next_(static_cast<std::size_t>(partitions), -1) {}

  // Hands every record written since the last call to `handle`; counts records the broker
  // dropped before they could be read in `missing`. Returns how many records were read.
  streamrun::Result<std::int64_t> read_new(const std::function<void(const Message&)>& handle,
                                           std::int64_t& missing) {
    std::int64_t read = 0;
    std::vector<Message> batch;
    for (std::size_t p = 0; p < next_.size(); ++p) {
      const streamrun::TopicPartition tp{streamrun::TopicName(topic_),
                                         streamrun::PartitionId(static_cast<std::int32_t>(p))};
      auto marks = reader_.watermarks(tp, std::chrono::seconds(10));
      if (!marks)
        return marks.error();
      auto& next = next_[p];
      if (next < marks->low) {
        missing += marks->low - std::max<std::int64_t>(next, 0);
        next = marks->low;
      }
      if (next >= marks->high)
        continue;
      if (auto assigned = reader_.assign(tp, next); !assigned)
        return assigned.error();
      while (next < marks->high) {
        batch.clear();
        auto got = reader_.read(batch, 10'000, std::chrono::seconds(10));
        if (!got) {
          // The broker may have dropped what we were about to read (the development broker
          // keeps a few MiB per partition): count it and go on from what it still has.
          auto now = reader_.watermarks(tp, std::chrono::seconds(10));
          if (!now || now->low <= next)
            return got.error();
          missing += now->low - next;
          next = now->low;
          if (auto reassigned = reader_.assign(tp, next); !reassigned)
            return reassigned.error();
          continue;
        }
        if (*got == 0)
          return streamrun::Error(
              streamrun::errc::timed_out,
              fmt::format("{}[{}]: nothing read from offset {} in 10 s", topic_, p, next));
        for (const auto& message : batch) {
          if (message.offset().value() > next)
            missing += message.offset().value() - next;  // dropped while we read
          handle(message);
          next = message.offset().value() + 1;
          ++read;
        }
      }
    }
    return read;
  }

 private:
  streamrun::kafka::LogReader& reader_;
  std::string topic_;
  std::vector<std::int64_t> next_;  // next offset per partition; -1: not read yet
};

}  // namespace

int main(int argc, char** argv) {
  std::string bootstrap = "127.0.0.1:9092";
  std::string orders = "orders";
  std::string stock = "stock";
  std::string decisions = "decisions";
  std::string dead_letter = "seckill-dead-letter";
  std::string confirmations;
  std::string confirm_dead_letter = "confirmer-dead-letter";
  std::string sales_rate;
  double wait_s = 0;
  double idle_s = 30;
  std::size_t hot_skus = 3;
  std::vector<std::string> client_settings;
  CLI::App cli{"Checks a flash sale's invariants from its topics."};
  cli.add_option("--bootstrap", bootstrap, "bootstrap.servers")->capture_default_str();
  cli.add_option("--orders", orders, "the topic of orders")->capture_default_str();
  cli.add_option("--stock", stock, "the topic of stock")->capture_default_str();
  cli.add_option("--decisions", decisions, "the topic of decisions")->capture_default_str();
  cli.add_option("--dead-letter", dead_letter,
                 "the dead-letter topic (inventory.yaml: inventory-dead-letter)")
      ->capture_default_str();
  cli.add_option(
      "--confirmations", confirmations,
      "also check invariant 6: the topic of confirmations (pipelines/confirm-orders.yaml "
      "writes `confirmations`)");
  cli.add_option("--confirm-dead-letter", confirm_dead_letter,
                 "the confirmer's dead-letter topic (with --confirmations)")
      ->capture_default_str();
  cli.add_option("--sales-rate", sales_rate,
                 "also check invariant 7 and show the sell-through per second: the topic of "
                 "sales per SKU and second (pipelines/sales-rate.yaml writes `sales-rate`)");
  cli.add_option("--wait", wait_s,
                 "keep reading decisions up to this many seconds until every order has one "
                 "(and, with --confirmations, every accepted order a confirmation; with "
                 "--sales-rate, until every SKU's seconds add up; 0: read what is there once)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--idle", idle_s, "give up waiting after this many seconds without a new decision")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--hot-skus", hot_skus, "SKUs shown in the table (most ordered first)")
      ->capture_default_str();
  cli.add_option("--set", client_settings,
                 "Kafka client property KEY=VALUE (librdkafka's names, e.g. security.protocol; "
                 "repeatable)");
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "warn"});

  const auto client = seckill::with_client_settings({{"bootstrap.servers", bootstrap}},
                                                    client_settings, "seckill-check");
  if (!client)
    return 2;
  auto metadata = streamrun::kafka::Producer::create(*client);
  auto reader = streamrun::kafka::LogReader::create(*client);
  if (!metadata || !reader) {
    std::fprintf(stderr, "seckill-check: %s\n",
                 (!metadata ? metadata.error() : reader.error()).message().c_str());
    return 2;
  }
  std::map<std::string, int> partitions;
  std::vector<const std::string*> topics{&orders, &stock, &decisions, &dead_letter};
  if (!confirmations.empty()) {
    topics.push_back(&confirmations);
    topics.push_back(&confirm_dead_letter);
  }
  if (!sales_rate.empty())
    topics.push_back(&sales_rate);
  // From the list of every topic: asking for one by name would create it on a cluster that
  // creates topics on first use (the development broker, Kafka's default), and a misspelt
  // topic would read as an empty one.
  auto existing = (*metadata)->list_topics(std::chrono::seconds(10));
  if (!existing) {
    std::fprintf(stderr, "seckill-check: listing the topics: %s\n",
                 existing.error().message().c_str());
    return 2;
  }
  for (const auto* topic : topics) {
    const auto it = existing->find(*topic);
    if (it == existing->end()) {
      std::fprintf(stderr, "seckill-check: topic '%s' does not exist (check the topic options)\n",
                   topic->c_str());
      return 2;
    }
    partitions[*topic] = it->second;
  }

  seckill::Checker checker(orders);
  TopicTail stock_tail(**reader, stock, partitions[stock]);
  TopicTail orders_tail(**reader, orders, partitions[orders]);
  TopicTail decisions_tail(**reader, decisions, partitions[decisions]);
  TopicTail letters_tail(**reader, dead_letter, partitions[dead_letter]);
  std::optional<TopicTail> confirmations_tail;
  std::optional<TopicTail> confirm_letters_tail;
  if (!confirmations.empty()) {
    checker.expect_confirmations();
    confirmations_tail.emplace(**reader, confirmations, partitions[confirmations]);
    confirm_letters_tail.emplace(**reader, confirm_dead_letter, partitions[confirm_dead_letter]);
  }
  std::optional<TopicTail> sales_rate_tail;
  if (!sales_rate.empty()) {
    checker.expect_sales_rate();
    sales_rate_tail.emplace(**reader, sales_rate, partitions[sales_rate]);
  }
  std::int64_t sales_rate_missing = 0;
  std::int64_t confirmations_missing = 0;
  std::int64_t ignored = 0;
  std::int64_t orders_missing = 0;
  std::int64_t decisions_missing = 0;
  const auto fail = [](const streamrun::Error& error) {
    std::fprintf(stderr, "seckill-check: %s\n", error.message().c_str());
    return 2;
  };
  if (auto read = stock_tail.read_new(
          [&](const Message& m) { checker.add_stock(m.key(), m.value()); }, ignored);
      !read)
    return fail(read.error());
  if (auto read = orders_tail.read_new(
          [&](const Message& m) {
            checker.add_order(m.partition().value(), m.offset().value(), m.value());
          },
          orders_missing);
      !read)
    return fail(read.error());
  checker.add_orders_missing(orders_missing);

  const auto started = Clock::now();
  auto last_progress = started;
  while (true) {
    auto read = decisions_tail.read_new([&](const Message& m) { checker.add_decision(m.value()); },
                                        decisions_missing);
    if (!read)
      return fail(read.error());
    if (*read > 0)
      last_progress = Clock::now();
    std::int64_t unconfirmed = 0;
    if (confirmations_tail) {
      auto confirmed = confirmations_tail->read_new(
          [&](const Message& m) { checker.add_confirmation(m.value()); }, confirmations_missing);
      if (!confirmed)
        return fail(confirmed.error());
      if (*confirmed > 0)
        last_progress = Clock::now();
      unconfirmed = checker.unconfirmed();
    }
    std::int64_t behind = 0;
    if (sales_rate_tail) {
      auto sold = sales_rate_tail->read_new(
          [&](const Message& m) { checker.add_sales_rate(m.key(), m.value()); },
          sales_rate_missing);
      if (!sold)
        return fail(sold.error());
      if (*sold > 0)
        last_progress = Clock::now();
    }
    const auto undecided = checker.undecided();
    if (sales_rate_tail && undecided == 0 && unconfirmed == 0)
      behind = checker.sales_rate_behind();
    const auto now = Clock::now();
    if ((undecided == 0 && unconfirmed == 0 && behind == 0) ||
        std::chrono::duration<double>(now - started).count() >= wait_s ||
        std::chrono::duration<double>(now - last_progress).count() >= idle_s)
      break;
    if (undecided > 0) {
      std::fprintf(stderr, "seckill-check: %lld orders not decided yet, waiting\n",
                   static_cast<long long>(undecided));
    } else if (unconfirmed > 0) {
      std::fprintf(stderr, "seckill-check: %lld accepted orders not confirmed yet, waiting\n",
                   static_cast<long long>(unconfirmed));
    } else {
      std::fprintf(stderr,
                   "seckill-check: the sales rates of %lld SKUs do not add up to their "
                   "decisions yet, waiting\n",
                   static_cast<long long>(behind));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  checker.add_decisions_missing(decisions_missing);
  if (sales_rate_missing > 0) {
    std::fprintf(stderr,
                 "seckill-check: %lld sales-rate records were dropped by the broker "
                 "before they were read\n",
                 static_cast<long long>(sales_rate_missing));
  }
  if (auto read = letters_tail.read_new(
          [&](const Message& m) {
            std::map<std::string, std::optional<std::string>> headers;
            for (auto& header : m.headers())
              headers[header.key] = std::move(header.value);
            checker.add_dead_letter(headers);
          },
          ignored);
      !read)
    return fail(read.error());

  if (confirm_letters_tail) {
    if (auto read = confirm_letters_tail->read_new(
            [&](const Message&) { checker.add_confirmation_dead_letter(); }, ignored);
        !read)
      return fail(read.error());
  }
  const auto report = checker.report();
  std::printf("%s", report.to_text(hot_skus).c_str());
  std::printf("\nseckill-check: %s\n", report.ok() ? "every invariant holds" : "FAILED");
  return report.ok() ? 0 : 1;
}
