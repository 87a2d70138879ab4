// Quickstart: produce keyed records with headers through Kafka, consume them back in a consumer
// group, commit, and report what happened. Runs against any Kafka-protocol cluster:
//   streamrun-quickstart --bootstrap 127.0.0.1:9092 --records 5000

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <streamrun/base/log.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>

namespace {

using Clock = std::chrono::steady_clock;
namespace kafka = streamrun::kafka;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct PartitionReport {
  std::int64_t produced = 0;
  std::int64_t consumed = 0;
  std::int64_t first_offset = -1;
  std::int64_t last_offset = -1;
  std::int64_t last_sequence = -1;
  bool in_order = true;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Produce records through Kafka, consume them back and report."};
  std::string bootstrap = "127.0.0.1:9092";
  std::string topic = "quickstart";
  int records = 5000;
  std::string group = fmt::format("quickstart-{}", ::getpid());
  app.add_option("--bootstrap", bootstrap, "bootstrap.servers")->capture_default_str();
  app.add_option("--topic", topic, "Topic to use")->capture_default_str();
  app.add_option("--records", records, "Records to produce")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  app.add_option("--group", group, "Consumer group (default: unique per run)");
  CLI11_PARSE(app, argc, argv);
  streamrun::log::configure();
  auto logger = streamrun::log::get("quickstart");

  auto producer = kafka::Producer::create({{"bootstrap.servers", bootstrap}});
  if (!producer) {
    logger->error("{}", producer.error().message());
    return 1;
  }
  if (auto reachable = (*producer)->check_connection(std::chrono::seconds(10)); !reachable) {
    logger->error("{}", reachable.error().message());
    return 1;
  }
  auto partitions = (*producer)->partition_count(topic, std::chrono::seconds(10));
  if (!partitions) {
    logger->error("{}", partitions.error().message());
    return 1;
  }

  std::map<int, PartitionReport> report;
  std::int64_t acked = 0;
  std::int64_t failed = 0;
  const auto produce_start = Clock::now();
  for (int i = 0; i < records; ++i) {
    const auto key = fmt::format("user-{}", i % 97);
    const auto value =
        fmt::format(R"({{"order":{},"user":"{}","sku":"sku-{}","qty":1}})", i, key, i % 7);
    const auto sequence = std::to_string(i);
    const std::array headers = {kafka::HeaderView{"source", "quickstart"},
                                kafka::HeaderView{"seq", sequence}};
    const kafka::ProducerRecord record{topic, std::nullopt, key, value, headers, std::nullopt};
    auto on_delivery = [&](const kafka::DeliveryReport& delivery) {
      if (delivery.error) {
        ++failed;
        logger->error("{}", delivery.error->message());
        return;
      }
      ++acked;
      auto& p = report[delivery.partition.value()];
      ++p.produced;
      if (p.first_offset < 0)
        p.first_offset = delivery.offset.value();
    };
    while (true) {
      auto sent = (*producer)->send(record, on_delivery);
      if (sent)
        break;
      if (sent.error().code() != kafka::errc::queue_full) {
        logger->error("{}", sent.error().message());
        return 1;
      }
      (*producer)->poll(std::chrono::milliseconds(10));  // queue full: wait for deliveries
    }
    (*producer)->poll();
  }
  if (auto flushed = (*producer)->flush(std::chrono::seconds(30)); !flushed) {
    logger->error("{}", flushed.error().message());
    return 1;
  }
  const double produce_seconds = seconds_since(produce_start);
  fmt::print(
      "produced {} records to '{}' ({} partitions) in {:.3f} s: {} acknowledged, {} failed\n",
      records, topic, *partitions, produce_seconds, acked, failed);

  auto consumer = kafka::Consumer::create(
      {{"bootstrap.servers", bootstrap}, {"group.id", group}, {"session.timeout.ms", "6000"}},
      nullptr);
  if (!consumer) {
    logger->error("{}", consumer.error().message());
    return 1;
  }
  if (auto subscribed = (*consumer)->subscribe({topic}); !subscribed) {
    logger->error("{}", subscribed.error().message());
    return 1;
  }
  const auto consume_start = Clock::now();
  std::int64_t consumed = 0;
  std::int64_t intact = 0;
  std::vector<kafka::Message> batch;
  while (consumed < acked && seconds_since(consume_start) < 60) {
    batch.clear();
    auto polled = (*consumer)->poll(batch, 1000, std::chrono::milliseconds(100));
    if (!polled) {
      logger->error("{}", polled.error().message());
      return 1;
    }
    for (const auto& message : batch) {
      auto& p = report[message.partition().value()];
      if (message.offset().value() < p.first_offset)
        continue;  // from an earlier run
      ++consumed;
      ++p.consumed;
      p.last_offset = message.offset().value();
      const auto seq = message.header("seq");
      const auto sequence = seq ? std::stoll(std::string(*seq)) : -1;
      if (sequence <= p.last_sequence)
        p.in_order = false;
      p.last_sequence = sequence;
      if (message.header("source") == "quickstart" && message.key() && message.value() &&
          message.value()->find(fmt::format(R"("order":{},)", sequence)) !=
              std::string_view::npos) {
        ++intact;
      }
    }
  }
  const double consume_seconds = seconds_since(consume_start);

  std::vector<kafka::PartitionOffset> commits;
  for (const auto& [partition, p] : report) {
    if (p.last_offset >= 0) {
      commits.push_back({{streamrun::TopicName(topic), streamrun::PartitionId(partition)},
                         streamrun::Offset(p.last_offset + 1)});
    }
  }
  auto committed = (*consumer)->commit(commits);
  fmt::print(
      "consumed {} records in {:.3f} s (group '{}', including the join); {} intact "
      "(key, value and headers as produced)\n",
      consumed, consume_seconds, group, intact);
  bool ordered = true;
  for (const auto& [partition, p] : report) {
    ordered = ordered && p.in_order;
    fmt::print("  {}[{}]: produced {}, consumed {}, offsets {}..{}, {}, committed {}\n", topic,
               partition, p.produced, p.consumed, p.first_offset, p.last_offset,
               p.in_order ? "in order" : "OUT OF ORDER", p.last_offset + 1);
  }
  if (!committed)
    logger->error("{}", committed.error().message());
  const bool ok = failed == 0 && consumed == records && intact == records && ordered && committed;
  fmt::print("{}\n", ok ? "quickstart OK: every record delivered once, intact and in order"
                        : "quickstart FAILED");
  return ok ? 0 : 1;
}
