// End-to-end throughput of a stateless filter/map pipeline through the development broker,
// against a bare librdkafka consume -> produce loop doing the same work, in the same run.
//
//   build/bin/stateless-bench --records 1000000
//
// The bare loop is the best we know on librdkafka's C API (see bare_loop()); streamrun runs
// at its defaults unless --set says otherwise. Both read the same pre-produced input topic
// (8 partitions) with a fresh consumer group and
// write every record whose value is even (half of them) after a small map, so the figures
// compare the framework's overhead, not the work. Throughput is counted from the first record
// consumed to the last output acknowledged, so group-join time is left out of both.

#include <chrono>
#include <cstdio>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/kafka/dev_broker.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>

#include "bench_support.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

bool keep(std::string_view value) {
  return (value.back() - '0') % 2 == 0;
}
std::string transform(std::string_view value) {
  return "ok:" + std::string(value);
}

void produce_input(const std::string& bootstrap, int records) {
  streamrun::bench::produce(
      bootstrap, "input", records, [](int i) { return fmt::format("user-{}", i % 1000); },
      [](int i) { return fmt::format("order-{}", i); });
}

struct Measurement {
  double seconds = 0;
  long records = 0;
  double cpu_seconds = 0;  // the process's, broker included
  [[nodiscard]] double rate() const { return records / seconds; }
  [[nodiscard]] double cpu_us_per_record() const { return cpu_seconds * 1e6 / records; }
};

// The process's CPU time (user + system) so far, in seconds: the development broker runs in this
// process too, so CPU per record includes the broker's share, for both runs alike.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The best bare loop we know on librdkafka's C API: batched consume from the consumer queue
// (rd_kafka_consume_batch_queue, 1000 at a time), queued.min.messages raised so that the
// shared group queue does not stall fetching (librdkafka 2.0.2 counts it against the
// per-partition threshold and rechecks only about once a second), produce with linger 5 ms,
// an asynchronous commit every 100 ms of the offsets stored as records are handed over.
Measurement bare_loop(const std::string& bootstrap, int records) {
  char err[512];
  rd_kafka_conf_t* cconf = rd_kafka_conf_new();
  rd_kafka_conf_set(cconf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(cconf, "group.id", "bench-bare", err, sizeof err);
  rd_kafka_conf_set(cconf, "auto.offset.reset", "earliest", err, sizeof err);
  rd_kafka_conf_set(cconf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_conf_set(cconf, "queued.min.messages", "1000000", err, sizeof err);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof err);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, "input", RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(consumer);

  rd_kafka_conf_t* pconf = rd_kafka_conf_new();
  rd_kafka_conf_set(pconf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(pconf, "enable.idempotence", "true", err, sizeof err);
  rd_kafka_conf_set(pconf, "linger.ms", "5", err, sizeof err);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err);

  long consumed = 0;
  Clock::time_point first;
  double cpu_at_first = 0;
  auto last_commit = Clock::now();
  std::vector<rd_kafka_message_t*> batch(1000);
  std::string out;
  while (consumed < records) {
    const auto n = rd_kafka_consume_batch_queue(queue, 100, batch.data(), batch.size());
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[static_cast<std::size_t>(i)];
      if (m->err) {
        rd_kafka_message_destroy(m);
        continue;
      }
      if (consumed++ == 0) {
        first = Clock::now();
        cpu_at_first = cpu_seconds();
      }
      const std::string_view value(static_cast<const char*>(m->payload), m->len);
      if (keep(value)) {
        out.assign("ok:").append(value);
        while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("output"),
                                 RD_KAFKA_V_KEY(m->key, m->key_len),
                                 RD_KAFKA_V_VALUE(out.data(), out.size()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          rd_kafka_poll(producer, 1);
        }
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(producer, 0);
    if (Clock::now() - last_commit >= 100ms) {
      rd_kafka_commit(consumer, nullptr, /*async=*/1);
      last_commit = Clock::now();
    }
  }
  rd_kafka_flush(producer, 60'000);
  const double seconds = std::chrono::duration<double>(Clock::now() - first).count();
  const double cpu = cpu_seconds() - cpu_at_first;
  rd_kafka_commit(consumer, nullptr, 0);
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);
  return {seconds, consumed, cpu};
}

Measurement streamrun_pipeline(const std::string& bootstrap, int records, int threads,
                               const std::vector<std::string>& overrides) {
  const streamrun::Serdes<std::string, std::string> strings{streamrun::serdes::string(),
                                                            streamrun::serdes::string()};
  streamrun::StreamBuilder builder;
  builder.stream("input", strings)
      .filter([](const std::string&, const std::string& value) { return keep(value); })
      .map_values([](const std::string& value) { return transform(value); })
      .to("output", strings);
  streamrun::config::Properties properties{{"application.id", "bench-streamrun"},
                                           {"bootstrap.servers", bootstrap},
                                           {"num.threads", std::to_string(threads)}};
  properties.merge(streamrun::config::Properties::from_assignments(overrides, "--set").value());
  auto app = streamrun::runtime::Application::create(builder.build(), properties).value();
  const double cpu_before = cpu_seconds();
  const double seconds = streamrun::bench::run_until_processed(*app, records);
  const double cpu = cpu_seconds() - cpu_before;
  const auto stats = app->stats();
  fmt::print("streamrun: paused {} times, deepest channel {}, largest backlog {}, commits {}\n",
             stats.partitions_paused, stats.max_channel_depth, stats.max_backlog, stats.commits);
  return {seconds, records, cpu};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Stateless pipeline throughput: streamrun vs a bare librdkafka loop."};
  int records = 1'000'000;
  int threads = 2;
  cli.add_option("--records", records)->capture_default_str();
  cli.add_option("--threads", threads, "num.threads for streamrun")->capture_default_str();
  std::vector<std::string> overrides;
  cli.add_option("--set", overrides, "streamrun property KEY=VALUE (repeatable)");
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure({.level = "warn"});

  auto broker = streamrun::kafka::DevBroker::start({1, {{"input", 8}, {"output", 8}}}).value();
  produce_input(broker->bootstrap_servers(), records);

  const auto bare = bare_loop(broker->bootstrap_servers(), records);
  const auto framework =
      streamrun_pipeline(broker->bootstrap_servers(), records, threads, overrides);
  fmt::print("records: {}, partitions: 8, development broker in-process\n", records);
  fmt::print(
      "bare librdkafka consume->produce loop: {:>10.0f} records/s ({:.2f} s, {:.2f} CPU "
      "us/record)\n",
      bare.rate(), bare.seconds, bare.cpu_us_per_record());
  fmt::print(
      "streamrun filter/map pipeline:         {:>10.0f} records/s ({:.2f} s, {:.2f} CPU "
      "us/record, {} threads)\n",
      framework.rate(), framework.seconds, framework.cpu_us_per_record(), threads);
  fmt::print("ratio streamrun / bare: {:.2f} records/s, {:.2f} CPU per record\n",
             framework.rate() / bare.rate(),
             framework.cpu_us_per_record() / bare.cpu_us_per_record());
  return 0;
}
