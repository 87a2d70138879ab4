// bench/run: the benchmark suite, the only source of the figures in bench/RESULTS.md.
//
//   bench/run [--quick] [--orders N] [--rounds R] [--partitions P] [--only a,b] [--set K=V]
//   [--no-write]
//
// Starts the development broker in its own process, loads every input once, then runs the
// scenarios in interleaved rounds on the same data: the best bare librdkafka loop (the limit),
// stateless filter (C++ and YAML; in C++ also with 1 % poison records dead-lettered), keyed
// count in RocksDB with changelog and the same per 1 s tumbling window, the inventory
// pipeline with every order on one SKU (YAML, and the seckill app in C++: its decisions/s, then
// its end-to-end latency with orders offered at half that rate), a restart with 1M keys of local
// state, a restore of 1M keys from a changelog, and a backlog ten times the input memory budget.
// Each run is a child process of this one, so its CPU time and peak RSS are its own (the broker's
// are not counted). Prints a table of medians and writes it, with the machine and the command, into
// bench/RESULTS.md between the "bench/run" markers.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/dsl/pipeline.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/operators/builtin.h>
#include <streamrun/runtime/application.h>
#include <streamrun/state/task_state.h>
#include <streamrun/testing/broker_process.h>

#include "bench_support.h"
#include "changelog.h"  // the runtime's restore and changelog names, timed on their own
#include "inventory.h"  // apps/seckill: the flash-sale pipeline in C++
#include "orders.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The development broker keeps about 5 MiB per partition (DESIGN.md): inputs stay under it.
constexpr int kRecordsPerPartitionCap = 40'000;
constexpr int kHotOrders = 200'000;  // of the one-SKU runs
constexpr int kSkus = 10'000;
constexpr int kPoisonPercent = 1;  // of the poison run's records
constexpr int kRestoreKeys = 1'000'000;
constexpr int kRestorePartitions = 8;
constexpr int kBacklogPartitions = 32;
constexpr std::int64_t kBacklogBudget = 8 << 20;  // input.buffer.max.bytes of the backlog run

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  }
  return 0;
}

// An order as the seckill front end writes it; one in 100 has qty 0 (the filter drops them).
std::string order_json(int i, const std::string& sku) {
  return fmt::format(R"({{"order_id":"o-{}","user_id":"u-{}","sku":"{}","qty":{},"ts":{}}})", i,
                     (i * 7919) % 1'000'000, sku, i % 100 == 0 ? 0 : 1, 1'700'000'000'000 + i);
}
std::string sku_of(int i) {
  return fmt::format("sku-{}", (i * 31) % kSkus);
}

// The work of the stateless runs, by hand: the order's qty, without a JSON parser (the best a
// bare loop can do on this data).
bool positive_qty(std::string_view order) {
  const auto at = order.find("\"qty\":");
  return at != std::string_view::npos && at + 6 < order.size() && order[at + 6] != '0' &&
         order[at + 6] != '-';
}

// ---- child side: one run, one process ------------------------------------------------------

struct ChildArgs {
  std::string scenario;
  std::string bootstrap;
  std::string topic;
  std::string app_id;
  std::string state_dir;
  std::string source_dir;
  std::int64_t records = 0;
  int partitions = 0;
  double rate = 0;  // orders/s the paced run offers
  std::vector<std::string> overrides;
};

struct RunResult {
  double seconds = 0;     // first processed record to the last one
  double cpu = 0;         // this process, same span
  long idle_rss_kib = 0;  // before the first record
  double value = 0;       // scenario-specific (task ready ms, keys/s)
};

void print_result(const RunResult& r) {
  std::printf("RESULT %.6f %.6f %ld %.3f\n", r.seconds, r.cpu, r.idle_rss_kib, r.value);
  std::fflush(stdout);
}

// The best bare loop we know on librdkafka's C API: batched consume from the consumer queue
// (1000 at a time), queued.min.messages raised so that the shared group queue does not stall
// fetching, produce with linger 5 ms (idempotent, like streamrun's), an asynchronous commit of
// the offsets handed over every 100 ms.
RunResult bare_loop(const ChildArgs& a) {
  char err[512];
  rd_kafka_conf_t* cconf = rd_kafka_conf_new();
  rd_kafka_conf_set(cconf, "bootstrap.servers", a.bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(cconf, "group.id", a.app_id.c_str(), err, sizeof err);
  rd_kafka_conf_set(cconf, "auto.offset.reset", "earliest", err, sizeof err);
  rd_kafka_conf_set(cconf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_conf_set(cconf, "queued.min.messages", "1000000", err, sizeof err);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof err);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, a.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(consumer);

  rd_kafka_conf_t* pconf = rd_kafka_conf_new();
  rd_kafka_conf_set(pconf, "bootstrap.servers", a.bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(pconf, "enable.idempotence", "true", err, sizeof err);
  rd_kafka_conf_set(pconf, "linger.ms", "5", err, sizeof err);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err);
  const std::string output = a.app_id + "-out";
  {
    // Learn where the output topic lives before the first record, as streamrun does at start.
    rd_kafka_topic_t* topic = rd_kafka_topic_new(producer, output.c_str(), nullptr);
    const rd_kafka_metadata_t* metadata = nullptr;
    if (rd_kafka_metadata(producer, 0, topic, &metadata, 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      rd_kafka_metadata_destroy(metadata);
    rd_kafka_topic_destroy(topic);
  }

  RunResult result;
  result.idle_rss_kib = rss_kib();
  std::int64_t consumed = 0;
  Clock::time_point first;
  double cpu_at_first = 0;
  auto last_commit = Clock::now();
  std::vector<rd_kafka_message_t*> batch(1000);
  while (consumed < a.records) {
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
      if (positive_qty(value)) {
        while (rd_kafka_producev(
                   producer, RD_KAFKA_V_TOPIC(output.c_str()), RD_KAFKA_V_KEY(m->key, m->key_len),
                   RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
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
  result.seconds = seconds_since(first);
  result.cpu = cpu_seconds() - cpu_at_first;
  rd_kafka_commit(consumer, nullptr, 0);
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);
  return result;
}

const streamrun::Serdes<std::string, std::string> kStrings{streamrun::serdes::string(),
                                                           streamrun::serdes::string()};

// A record that is not a JSON object makes the filter throw: a poison record, which the error
// policy handles (the clean runs never throw).
streamrun::Topology stateless_topology(const std::string& input, const std::string& output) {
  streamrun::StreamBuilder builder;
  builder.stream(input, kStrings)
      .filter([](const std::string&, const std::string& order) {
        if (order.empty() || order.front() != '{')
          throw std::invalid_argument("order is not a JSON object");
        return positive_qty(order);
      })
      .to(output, kStrings);
  return builder.build();
}

// The poison run's: failed records go to <application.id>-dead-letter.
streamrun::config::Properties poison_properties() {
  return {{"errors.policy", "dead_letter"}};
}

// Orders keyed by SKU -> count per SKU (store "counts") -> <app>-out.
streamrun::Topology count_topology(const std::string& input, const std::string& output) {
  streamrun::StreamBuilder builder;
  builder.stream(input, kStrings)
      .group_by_key(kStrings)
      .count("counts")
      .to_stream()
      .to(output, {streamrun::serdes::string(), streamrun::serdes::int64()});
  return builder.build();
}

// The same per 1 s tumbling window of the orders' timestamps (store "window-counts").
streamrun::Topology window_count_topology(const std::string& input, const std::string& output) {
  using namespace std::chrono_literals;
  streamrun::StreamBuilder builder;
  builder.stream(input, kStrings)
      .group_by_key(kStrings)
      .windowed_by(streamrun::TimeWindows::of(1s))
      .count("window-counts")
      .to_stream()
      .to(output, {streamrun::serdes::windowed(streamrun::serdes::string(), 1s),
                   streamrun::serdes::int64()});
  return builder.build();
}

const streamrun::dsl::Registry& registry() {
  static const streamrun::dsl::Registry r = [] {
    streamrun::dsl::Registry built;
    streamrun::operators::register_builtin_operators(built);
    return built;
  }();
  return r;
}

// A YAML pipeline with ${VAR}s from `variables`.
streamrun::dsl::Pipeline load_yaml(const fs::path& file,
                                   const std::map<std::string, std::string>& variables) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  auto loaded =
      streamrun::dsl::load_pipeline(text.str(), file.string(), registry(),
                                    [&](const std::string& name) -> std::optional<std::string> {
                                      if (auto it = variables.find(name); it != variables.end())
                                        return it->second;
                                      return std::nullopt;
                                    });
  if (!loaded.pipeline) {
    for (const auto& d : loaded.diagnostics)
      std::fprintf(stderr, "%s\n", d.to_string().c_str());
    std::exit(2);
  }
  return std::move(*loaded.pipeline);
}

// The application of one run: `base` with the run's id, broker, state directory and --set.
std::unique_ptr<streamrun::runtime::Application> make_application(
    const streamrun::Topology& topology, streamrun::config::Properties base, const ChildArgs& a) {
  base.set("application.id", a.app_id);
  base.set("bootstrap.servers", a.bootstrap);
  base.set("state.dir", a.state_dir);
  base.set("admin.timeout.ms", "500");  // the development broker has no Admin API
  // Errors only: the development broker's missing Admin API earns a warning on every start.
  base.set("log.level", "error");
  base.merge(streamrun::config::Properties::from_assignments(a.overrides, "--set").value());
  auto app = streamrun::runtime::Application::create(topology, base);
  if (!app) {
    std::fprintf(stderr, "%s\n", app.error().message().c_str());
    std::exit(2);
  }
  return std::move(*app);
}

// Runs `topology` until it has processed `target` records (every sub-topology's count).
RunResult run_application(const streamrun::Topology& topology, streamrun::config::Properties base,
                          const ChildArgs& a, std::int64_t target) {
  auto app = make_application(topology, std::move(base), a);
  RunResult result;
  result.idle_rss_kib = rss_kib();
  std::thread runner([&] {
    if (auto ran = app->run(); !ran)
      std::fprintf(stderr, "run: %s\n", ran.error().message().c_str());
  });
  Clock::time_point first;
  double cpu_at_first = 0;
  bool started = false;
  std::int64_t last = 0;
  auto last_progress = Clock::now();
  while (true) {
    const auto processed = app->stats().records_processed;
    if (processed >= target)
      break;
    if (!started && processed > 0) {
      first = Clock::now();
      cpu_at_first = cpu_seconds();
      started = true;
    }
    if (processed != last) {
      last = processed;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > 60s) {
      std::fprintf(stderr, "no progress for 60 s at %lld of %lld records\n",
                   static_cast<long long>(processed), static_cast<long long>(target));
      std::_Exit(3);
    }
    std::this_thread::sleep_for(1ms);  // sampling another thread
  }
  app->stop();
  runner.join();
  result.seconds = seconds_since(first);
  result.cpu = cpu_seconds() - cpu_at_first;
  return result;
}

// A restart of a keyed count whose task has 1M keys of local state: from run() to the task being
// ready (state opened, changelog tail read) and to its first processed record.
RunResult restart(const ChildArgs& a) {
  using streamrun::state::StateEnvironment;
  using streamrun::state::TaskState;
  const auto topology = count_topology(a.topic, a.app_id + "-out");
  {
    // The state a previous run left: 1M counts, input consumed up to offset 0.
    auto environment =
        StateEnvironment::create({fs::path(a.state_dir) / a.app_id, a.app_id, 256u << 20}).value();
    auto state = TaskState::open(environment, "0_0", {"counts"}).value();
    auto& store = state->store("counts");
    const std::string position = a.topic + "/0";
    for (int i = 0; i < kRestoreKeys; ++i) {
      store.put(fmt::format("sku-{:08}", i), streamrun::serdes::int64().serialize(1).value());
      if (i % 10'000 == 9'999)
        state->commit({{position, 0}}).value();
    }
    state->commit({{position, 0}}).value();
  }
  streamrun::config::Properties properties{{"application.id", a.app_id},
                                           {"bootstrap.servers", a.bootstrap},
                                           {"admin.timeout.ms", "500"},
                                           {"log.level", "error"},
                                           {"state.dir", a.state_dir}};
  properties.merge(streamrun::config::Properties::from_assignments(a.overrides, "--set").value());
  auto app = streamrun::runtime::Application::create(topology, properties).value();
  RunResult result;
  result.idle_rss_kib = rss_kib();
  const auto start = Clock::now();
  std::thread runner([&] { static_cast<void>(app->run()); });
  while (app->stats().records_processed == 0)
    std::this_thread::sleep_for(200us);  // sampling another thread
  result.seconds = seconds_since(start);
  result.value = static_cast<double>(app->stats().max_task_start_ms);
  app->stop();
  runner.join();
  return result;
}

// One task after the other, on one thread, restores its partition of a 1M-key changelog.
RunResult restore(const ChildArgs& a) {
  namespace runtime = streamrun::runtime;
  using streamrun::state::StateEnvironment;
  using streamrun::state::TaskState;
  auto environment =
      StateEnvironment::create({fs::path(a.state_dir) / "restore", "bench", 256u << 20}).value();
  auto source = runtime::open_kafka_changelog_source({{"bootstrap.servers", a.bootstrap}}).value();
  std::atomic<bool> stop{false};
  std::int64_t restored = 0;
  RunResult result;
  result.idle_rss_kib = rss_kib();
  const auto start = Clock::now();
  const double cpu_before = cpu_seconds();
  for (int p = 0; p < kRestorePartitions; ++p) {
    auto state = TaskState::open(environment, fmt::format("0_{}", p), {"counts"}).value();
    restored +=
        runtime::restore_task_state(
            *state, {{"counts", {streamrun::TopicName(a.topic), streamrun::PartitionId(p)}}},
            *source, stop, *streamrun::log::get("bench"))
            .value()
            .entries_applied;
  }
  result.seconds = seconds_since(start);
  result.cpu = cpu_seconds() - cpu_before;
  result.value = static_cast<double>(restored);
  return result;
}

// The seckill app's topics in a run: orders from the run's topic, decisions to <app>-out.
seckill::Topics seckill_topics(const std::string& orders, const std::string& app_id) {
  return {.orders = orders, .stock = "stock", .decisions = app_id + "-out"};
}

// Nearest rank: the smallest value with at least `p` of the values at or below it.
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty())
    return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

// The order index of a decision's key "o-<index>"; -1 for any other key.
std::int64_t order_index(std::string_view key) {
  if (key.size() < 3 || key.substr(0, 2) != "o-")
    return -1;
  std::int64_t index = 0;
  for (const char c : key.substr(2)) {
    if (c < '0' || c > '9')
      return -1;
    index = index * 10 + (c - '0');
  }
  return index;
}

// The seckill app (C++) deciding orders offered at a.rate orders/s, every one on one SKU and
// from another user, sent as seckill-gateway sends them (idempotent, linger 5 ms, zstd), once
// every task runs and the stock is read. Times each order from when it was sent (its ts) to its
// decision's decided_ms, and to the decision being read back from the decisions topic (what a
// client polling for it would see first). Prints "LATENCY" with both; the result's seconds are
// those of sending (its records/s is the rate achieved), its CPU that of the whole process.
RunResult paced_seckill(const ChildArgs& a) {
  const auto topics = seckill_topics(a.topic, a.app_id);
  auto app =
      make_application(seckill::inventory_topology(topics), seckill::inventory_defaults(), a);
  std::thread runner([&] {
    if (auto ran = app->run(); !ran)
      std::fprintf(stderr, "run: %s\n", ran.error().message().c_str());
  });
  // Ready: the tasks of both sub-topologies run and the stock record has been read.
  const auto ready_by = Clock::now() + 60s;
  while (app->stats().active_tasks < 2 * a.partitions || app->stats().records_processed < 1) {
    if (Clock::now() > ready_by) {
      std::fprintf(stderr, "not ready after 60 s: %lld tasks of %d\n",
                   static_cast<long long>(app->stats().active_tasks), 2 * a.partitions);
      std::_Exit(3);
    }
    std::this_thread::sleep_for(1ms);  // sampling another thread
  }

  const auto records = static_cast<std::size_t>(a.records);
  std::vector<std::int64_t> sent_ms(records, 0), decided_ms(records, -1), read_ms(records, -1);
  std::atomic<bool> sending_done{false};
  std::atomic<bool> reader_ready{false};
  std::thread reader([&] {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", a.bootstrap.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", (a.app_id + "-reader").c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof err);
    // The end of every partition tells that the reader fetches: ready to time decisions.
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    rd_kafka_topic_partition_list_t* partitions = rd_kafka_topic_partition_list_new(a.partitions);
    for (int p = 0; p < a.partitions; ++p) {
      rd_kafka_topic_partition_list_add(partitions, topics.decisions.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(consumer, partitions);  // no group: read every partition from the start
    rd_kafka_topic_partition_list_destroy(partitions);
    std::size_t seen = 0;
    int at_end = 0;
    std::optional<Clock::time_point> give_up;
    while (seen < records) {
      if (!give_up && sending_done)
        give_up = Clock::now() + 120s;
      if (give_up && Clock::now() > *give_up) {
        std::fprintf(stderr, "%zu of %zu orders undecided 120 s after the last was sent\n",
                     records - seen, records);
        std::_Exit(3);
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
      if (m == nullptr)
        continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && !reader_ready && ++at_end == a.partitions)
        reader_ready = true;
      const auto now = seckill::wall_clock_ms();
      const auto index =
          m->err ? -1 : order_index({static_cast<const char*>(m->key), m->key ? m->key_len : 0});
      if (index >= 0 && static_cast<std::size_t>(index) < records && read_ms[index] < 0) {
        const std::string_view value(static_cast<const char*>(m->payload), m->len);
        const auto field = fmt::format("\"{}\":", seckill::kDecidedAtField);
        if (const auto at = value.find(field); at != std::string_view::npos)
          decided_ms[index] = std::strtoll(value.data() + at + field.size(), nullptr, 10);
        read_ms[index] = now;
        ++seen;
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
  });

  auto producer = streamrun::kafka::Producer::create({{"bootstrap.servers", a.bootstrap},
                                                      {"enable.idempotence", "true"},
                                                      {"linger.ms", "5"},
                                                      {"compression.type", "zstd"}})
                      .value();
  while (!reader_ready) {
    if (Clock::now() > ready_by + 60s) {
      std::fprintf(stderr, "the decisions reader did not reach the end of %s in 60 s\n",
                   topics.decisions.c_str());
      std::_Exit(3);
    }
    std::this_thread::sleep_for(1ms);  // sampling another thread
  }
  RunResult result;
  result.idle_rss_kib = rss_kib();
  const double cpu_before = cpu_seconds();
  const auto start = Clock::now();
  for (std::size_t i = 0; i < records; ++i) {
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double>(static_cast<double>(i) / a.rate)));
    const seckill::Order order{.order_id = fmt::format("o-{}", i),
                               .user_id = seckill::user_name(static_cast<int>(i)),
                               .sku = seckill::sku_name(seckill::kHotSku),
                               .qty = 1,
                               .ts = seckill::wall_clock_ms()};
    sent_ms[i] = order.ts;
    const auto value = seckill::to_json(order);
    while (!producer->send({topics.orders, std::nullopt, order.order_id, value, {}, std::nullopt}))
      producer->poll(1ms);
    producer->poll();
  }
  producer->flush(60s).value();
  result.seconds = seconds_since(start);
  sending_done = true;
  reader.join();
  result.cpu = cpu_seconds() - cpu_before;
  app->stop();
  runner.join();

  std::vector<std::int64_t> to_decided, to_read;
  for (std::size_t i = 0; i < records; ++i) {
    if (decided_ms[i] < 0) {
      std::fprintf(stderr, "the decision of o-%zu has no %s\n", i, seckill::kDecidedAtField);
      std::_Exit(3);
    }
    to_decided.push_back(decided_ms[i] - sent_ms[i]);
    to_read.push_back(read_ms[i] - sent_ms[i]);
  }
  std::sort(to_decided.begin(), to_decided.end());
  std::sort(to_read.begin(), to_read.end());
  std::printf(
      "LATENCY %lld %lld %lld %lld %lld %lld\n",
      static_cast<long long>(percentile(to_decided, 0.50)),
      static_cast<long long>(percentile(to_decided, 0.99)),
      static_cast<long long>(to_decided.back()), static_cast<long long>(percentile(to_read, 0.50)),
      static_cast<long long>(percentile(to_read, 0.99)), static_cast<long long>(to_read.back()));
  result.value = static_cast<double>(percentile(to_decided, 0.99));
  return result;
}

int run_child(const ChildArgs& a) {
  streamrun::log::configure({.level = "error"});
  RunResult result;
  const std::string output = a.app_id + "-out";
  if (a.scenario == "bare") {
    result = bare_loop(a);
  } else if (a.scenario == "stateless-cpp" || a.scenario == "backlog" ||
             a.scenario == "metrics-off") {
    result = run_application(stateless_topology(a.topic, output), {}, a, a.records);
  } else if (a.scenario == "poison") {
    result =
        run_application(stateless_topology(a.topic, output), poison_properties(), a, a.records);
  } else if (a.scenario == "stateless-yaml") {
    const auto pipeline = load_yaml(fs::path(a.source_dir) / "bench/pipelines/stateless.yaml",
                                    {{"INPUT", a.topic}, {"OUTPUT", output}});
    result = run_application(pipeline.topology, pipeline.properties, a, a.records);
  } else if (a.scenario == "count-cpp") {
    result = run_application(count_topology(a.topic, output), {}, a, a.records);
  } else if (a.scenario == "window-cpp") {
    result = run_application(window_count_topology(a.topic, output), {}, a, a.records);
  } else if (a.scenario == "inventory") {
    const auto pipeline = load_yaml(fs::path(a.source_dir) / "pipelines/inventory.yaml", {});
    // Sub-topology 0 re-keys every order, sub-topology 1 decides it and reads the one stock
    // record: 2 x orders + 1 processed in all.
    result = run_application(pipeline.topology, pipeline.properties, a, 2 * a.records + 1);
  } else if (a.scenario == "seckill") {
    // As the inventory run: 2 x orders + the stock record.
    result = run_application(seckill::inventory_topology(seckill_topics(a.topic, a.app_id)),
                             seckill::inventory_defaults(), a, 2 * a.records + 1);
  } else if (a.scenario == "seckill-paced") {
    result = paced_seckill(a);
  } else if (a.scenario == "restart") {
    result = restart(a);
  } else if (a.scenario == "restore") {
    result = restore(a);
  } else {
    std::fprintf(stderr, "unknown scenario '%s'\n", a.scenario.c_str());
    return 2;
  }
  print_result(result);
  return 0;
}

// ---- parent side ---------------------------------------------------------------------------

struct Run {
  std::string scenario;  // as the child knows it
  std::string label;     // as the table shows it
  int partitions = 0;
  std::string topic;
  std::int64_t records = 0;
  std::vector<std::string> overrides;
};

struct Sample {
  RunResult result;
  // The paced run's ms from order to decision (decided_ms) and to the decision being read:
  // p50, p99, max of each.
  std::vector<double> latency;
  long peak_rss_kib = 0;
  double rate() const { return result.seconds > 0 ? records / result.seconds : 0; }
  std::int64_t records = 0;
};

std::string self_path() {
  return fs::read_symlink("/proc/self/exe").string();
}

// Runs one child and waits for it; its RESULT line and rusage.
// `rate`: the orders/s a paced run offers (0 for the others).
std::optional<Sample> spawn_run(const Run& run, const std::string& bootstrap,
                                const std::string& app_id, const fs::path& state_dir,
                                const fs::path& source_dir, double rate) {
  std::vector<std::string> args{self_path(),
                                "--child",
                                run.scenario,
                                "--bootstrap",
                                bootstrap,
                                "--topic",
                                run.topic,
                                "--app-id",
                                app_id,
                                "--state-dir",
                                state_dir.string(),
                                "--source-dir",
                                source_dir.string(),
                                "--records",
                                std::to_string(run.records),
                                "--partitions",
                                std::to_string(run.partitions)};
  if (rate > 0) {
    args.push_back("--rate");
    args.push_back(fmt::format("{:.0f}", rate));
  }
  for (const auto& o : run.overrides) {
    args.push_back("--set");
    args.push_back(o);
  }
  std::vector<char*> argv;
  for (auto& s : args)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  int out[2];
  if (pipe(out) != 0)
    return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (spawned != 0) {
    close(out[0]);
    return std::nullopt;
  }
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(out[0], buffer, sizeof buffer)) > 0;)
    text.append(buffer, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  Sample sample;
  sample.records = run.records;
  sample.peak_rss_kib = usage.ru_maxrss;
  const auto at = text.find("RESULT ");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || at == std::string::npos ||
      std::sscanf(text.c_str() + at, "RESULT %lf %lf %ld %lf", &sample.result.seconds,
                  &sample.result.cpu, &sample.result.idle_rss_kib, &sample.result.value) != 4) {
    std::fprintf(stderr, "bench: run %s (%s) failed (its errors are above); its output: %s\n",
                 run.label.c_str(), app_id.c_str(), text.empty() ? "none" : text.c_str());
    return std::nullopt;
  }
  if (const auto latency = text.find("LATENCY "); latency != std::string::npos) {
    std::istringstream line(text.substr(latency + 8));
    for (double ms; sample.latency.size() < 6 && line >> ms;)
      sample.latency.push_back(ms);
  }
  return sample;
}

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string machine_description() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::string model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname names{};
  uname(&names);
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  return fmt::format("{} cores ({}), {:.0f} GiB, Linux {}, librdkafka {}",
                     std::thread::hardware_concurrency(), model,
                     static_cast<double>(pages) * page_size / (1 << 30), names.release,
                     rd_kafka_version_str());
}

// Every topic the runs need, with the partitions they must have: the development broker has no
// Admin API, so internal topics are created with the broker.
void add_internal_topics(const streamrun::Topology& topology,
                         streamrun::config::Properties properties, const std::string& app_id,
                         int partitions, std::vector<streamrun::kafka::TopicSpec>& topics) {
  properties.set("application.id", app_id);
  properties.set("bootstrap.servers", "127.0.0.1:9092");  // not contacted
  for (const auto& topic :
       streamrun::runtime::Application::internal_topics(topology, properties, partitions).value())
    topics.push_back({topic.name, topic.partitions});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"The streamrun benchmark suite (see bench/RESULTS.md).", "bench/run"};
  ChildArgs child;
  // Internal: how the suite starts its child runs (hidden from --help).
  cli.add_option("--child", child.scenario)->group("");
  cli.add_option("--bootstrap", child.bootstrap)->group("");
  cli.add_option("--topic", child.topic)->group("");
  cli.add_option("--app-id", child.app_id)->group("");
  cli.add_option("--state-dir", child.state_dir)->group("");
  cli.add_option("--records", child.records)->group("");
  cli.add_option("--rate", child.rate)->group("");
  std::string source_dir = fs::current_path().string();
  cli.add_option("--source-dir", source_dir, "the checkout (pipelines are read from it)")
      ->check(CLI::ExistingDirectory);
  cli.add_option("--set", child.overrides,
                 "streamrun property KEY=VALUE for every run of a pipeline (all but the restore, "
                 "which reads a changelog into RocksDB directly); checked before anything runs");
  bool quick = false;
  cli.add_flag("--quick", quick, "a short version: fewer records, one round, no sweep");
  int records = 0;
  cli.add_option("--orders", records, "orders per run (default 500000; --quick 100000)")
      ->check(CLI::Range(1, 10'000'000));
  int rounds = 0;
  cli.add_option("--rounds", rounds, "interleaved rounds, medians reported (default 3)")
      ->check(CLI::Range(1, 100));
  int partitions = 16;
  cli.add_option("--partitions", partitions, "partitions of the main runs")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  bool no_write = false;
  cli.add_flag("--no-write", no_write, "do not write bench/RESULTS.md");
  std::vector<std::string> only;
  cli.add_option(
         "--only", only,
         "run only these scenarios (bare, stateless-cpp, metrics-off, poison, stateless-yaml, "
         "count-cpp, window-cpp, inventory, seckill, seckill-paced, restart, restore, backlog; "
         "seckill-paced runs after seckill, at half its rate)")
      ->delimiter(',')
      ->check(CLI::IsMember({"bare", "stateless-cpp", "metrics-off", "poison", "stateless-yaml",
                             "count-cpp", "window-cpp", "inventory", "seckill", "seckill-paced",
                             "restart", "restore", "backlog"}));
  std::string command = "bench/run";
  cli.add_option("--command", command)->group("");  // internal: the command line to record
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; a bad option 2, as for every --set below.
    return cli.exit(e) == 0 ? 0 : 2;
  }
  if (!child.scenario.empty()) {
    child.source_dir = source_dir;
    child.partitions = partitions;
    return run_child(child);
  }
  streamrun::log::configure({.level = "warn"});
  // A wrong --set would fail every run: say so once, before anything starts.
  {
    auto overrides = streamrun::config::Properties::from_assignments(child.overrides, "--set");
    if (!overrides) {
      std::fprintf(stderr, "bench: %s\n", overrides.error().message().c_str());
      return 2;
    }
    streamrun::config::Properties properties{{"application.id", "bench"},
                                             {"bootstrap.servers", "127.0.0.1:9092"}};
    properties.merge(*overrides);
    if (auto checked = streamrun::runtime::Application::internal_topics(
            count_topology("orders", "out"), properties, 1);
        !checked) {
      std::fprintf(stderr, "bench: %s\n", checked.error().message().c_str());
      return 2;
    }
  }
  if (records == 0)
    records = quick ? 100'000 : 500'000;
  if (rounds == 0)
    rounds = quick ? 1 : 3;
  const std::vector<int> sweep = quick ? std::vector<int>{} : std::vector<int>{1, 4, 16, 64};
  const auto records_for = [&](int p) {
    return std::min<std::int64_t>(records, std::int64_t{kRecordsPerPartitionCap} * p);
  };

  // The runs of one round, in the order they interleave.
  std::vector<Run> runs;
  const auto orders_topic = [](int p) { return fmt::format("orders-p{}", p); };
  const auto poison_topic = [](int p) { return fmt::format("orders-poison-p{}", p); };
  std::set<int> input_partitions{partitions};
  const auto add_throughput = [&](int p, bool all) {
    input_partitions.insert(p);
    runs.push_back({"bare", "bare librdkafka loop", p, orders_topic(p), records_for(p), {}});
    runs.push_back(
        {"stateless-cpp", "stateless filter, C++", p, orders_topic(p), records_for(p), {}});
    if (all) {
      runs.push_back({"metrics-off",
                      "the same without metrics (admin.listen=0, no latency sampling)",
                      p,
                      orders_topic(p),
                      records_for(p),
                      {"admin.listen=0", "metrics.latency.sample.records=0"}});
      runs.push_back({"poison",
                      fmt::format("the same, {}% poison records dead-lettered", kPoisonPercent),
                      p,
                      poison_topic(p),
                      records_for(p),
                      {}});
      runs.push_back(
          {"stateless-yaml", "stateless filter, YAML", p, orders_topic(p), records_for(p), {}});
    }
    runs.push_back(
        {"count-cpp", "keyed count (RocksDB + changelog)", p, orders_topic(p), records_for(p), {}});
    runs.push_back({"window-cpp",
                    "windowed count, 1 s tumbling (RocksDB + changelog)",
                    p,
                    orders_topic(p),
                    records_for(p),
                    {}});
  };
  add_throughput(partitions, true);
  for (const int p : sweep) {
    if (p != partitions)
      add_throughput(p, false);
  }
  // Every order goes through one partition of the repartition topic and of each changelog,
  // which the development broker caps like any other: the pipelines write them zstd-compressed,
  // about 15 bytes an order.
  const std::int64_t hot_orders = std::min<std::int64_t>(records, kHotOrders);
  // The development broker answers a fetch that finds no new record only after the consumer's
  // whole fetch.wait.max.ms (500 ms by default), even when records arrive meanwhile; Kafka
  // answers as soon as they do. The one-SKU runs, whose second sub-topology keeps catching up
  // with its repartition topic, would measure that wait; they run with the wait a real broker
  // gives them.
  const std::string fetch_wait = "consumer.fetch.wait.max.ms=10";
  runs.push_back({"inventory",
                  "inventory.yaml, every order on one SKU",
                  partitions,
                  "orders",
                  hot_orders,
                  {fetch_wait}});
  runs.push_back({"seckill",
                  "seckill-inventory (C++), every order on one SKU: decisions/s",
                  partitions,
                  "orders",
                  hot_orders,
                  {fetch_wait}});
  // Offered live, at half the rate the run above decided a backlog; its own input topic per
  // round.
  runs.push_back({"seckill-paced",
                  "the same, orders offered at half that rate: end-to-end latency",
                  partitions,
                  "",
                  hot_orders,
                  {fetch_wait}});
  runs.push_back({"restart", "restart with 1M keys of local state", 1, "restart-orders", 1, {}});
  runs.push_back({"restore",
                  "restore 1M keys from the changelog",
                  kRestorePartitions,
                  "restore-changelog",
                  kRestoreKeys,
                  {}});
  const std::int64_t backlog_records =
      std::int64_t{kRecordsPerPartitionCap} * kBacklogPartitions / (quick ? 4 : 1);
  // Bytes of the backlog as the records' keys and values (the orders are all about this long).
  const double backlog_mib =
      static_cast<double>(backlog_records) *
      static_cast<double>(order_json(500'000, sku_of(500'000)).size() + sku_of(0).size()) /
      (1 << 20);
  runs.push_back(
      {"backlog",
       fmt::format("backlog of {:.0f} MiB ({:.1f}x input.buffer.max.bytes={} MiB)", backlog_mib,
                   backlog_mib / (kBacklogBudget >> 20), kBacklogBudget >> 20),
       kBacklogPartitions,
       "backlog",
       backlog_records,
       {fmt::format("input.buffer.max.bytes={}", kBacklogBudget)}});
  // What running costs besides the input buffer: the same pipeline over a few records of the
  // same topic with the smallest budget.
  runs.push_back({"backlog",
                  "the same over 2,000 records, input.buffer.max.bytes=1 MiB",
                  kBacklogPartitions,
                  "backlog",
                  2'000,
                  {"input.buffer.max.bytes=1048576"}});
  if (std::find(only.begin(), only.end(), "seckill-paced") != only.end() &&
      std::find(only.begin(), only.end(), "seckill") == only.end())
    only.push_back("seckill");  // the paced run's rate comes from it
  if (std::find(only.begin(), only.end(), "metrics-off") != only.end() &&
      std::find(only.begin(), only.end(), "stateless-cpp") == only.end())
    only.push_back("stateless-cpp");  // what it is compared with
  if (!only.empty()) {
    std::erase_if(runs, [&](const Run& run) {
      return std::find(only.begin(), only.end(), run.scenario) == only.end();
    });
  }
  for (auto& run : runs) {
    run.overrides.insert(run.overrides.end(), child.overrides.begin(), child.overrides.end());
  }
  const auto app_id_of = [&](const Run& run, int round) {
    const auto index = static_cast<std::size_t>(&run - runs.data());
    return fmt::format("{}-p{}-r{}-{}", run.scenario, run.partitions, round, index);
  };
  // A run without a topic of its own reads <app id>-in, which it fills itself.
  const auto input_of = [&](const Run& run, int round) {
    return run.topic.empty() ? app_id_of(run, round) + "-in" : run.topic;
  };

  // Topics: inputs, and every internal topic of every run.
  std::vector<streamrun::kafka::TopicSpec> topics;
  for (const int p : input_partitions)
    topics.push_back({orders_topic(p), p});
  topics.push_back({poison_topic(partitions), partitions});
  topics.push_back({"orders", partitions});
  topics.push_back({"stock", partitions});
  topics.push_back({"decisions", partitions});
  topics.push_back({"restart-orders", 1});
  topics.push_back({"restore-changelog", kRestorePartitions});
  topics.push_back({"backlog", kBacklogPartitions});
  const auto inventory = load_yaml(fs::path(source_dir) / "pipelines/inventory.yaml", {});
  for (int round = 0; round < rounds; ++round) {
    for (const auto& run : runs) {
      const auto id = app_id_of(run, round);
      topics.push_back({id + "-out", run.partitions});
      if (run.scenario == "poison") {
        add_internal_topics(stateless_topology(run.topic, id + "-out"), poison_properties(), id,
                            run.partitions, topics);
      } else if (run.scenario == "count-cpp" || run.scenario == "restart") {
        add_internal_topics(count_topology(run.topic, id + "-out"), {}, id, run.partitions, topics);
      } else if (run.scenario == "window-cpp") {
        add_internal_topics(window_count_topology(run.topic, id + "-out"), {}, id, run.partitions,
                            topics);
      } else if (run.scenario == "inventory") {
        add_internal_topics(inventory.topology, inventory.properties, id, run.partitions, topics);
      } else if (run.scenario == "seckill" || run.scenario == "seckill-paced") {
        if (run.topic.empty())
          topics.push_back({input_of(run, round), run.partitions});
        add_internal_topics(seckill::inventory_topology(seckill_topics(input_of(run, round), id)),
                            seckill::inventory_defaults(), id, run.partitions, topics);
      }
    }
  }
  const fs::path streamrun_cli = fs::path(self_path()).parent_path() / "streamrun";
  auto broker = streamrun::testing::BrokerProcess::start(streamrun_cli.string(), topics);
  if (!broker) {
    std::fprintf(stderr, "bench: %s\n", broker.error().message().c_str());
    return 1;
  }
  const auto bootstrap = broker->bootstrap_servers();

  fmt::print("loading inputs on {} ...\n", bootstrap);
  const auto load_start = Clock::now();
  for (const int p : input_partitions) {
    streamrun::bench::produce(
        bootstrap, orders_topic(p), static_cast<int>(records_for(p)),
        [](int i) { return sku_of(i); }, [](int i) { return order_json(i, sku_of(i)); });
  }
  // The same orders with every hundredth one unreadable, in the same place as in the clean runs.
  streamrun::bench::produce(
      bootstrap, poison_topic(partitions), static_cast<int>(records_for(partitions)),
      [](int i) { return sku_of(i); },
      [](int i) {
        return i % 100 < kPoisonPercent ? fmt::format("not an order #{}", i)
                                        : order_json(i, sku_of(i));
      });
  streamrun::bench::produce(
      bootstrap, "orders", static_cast<int>(hot_orders),
      [](int i) { return fmt::format("o-{}", i); }, [](int i) { return order_json(i, "sku-hot"); });
  streamrun::bench::produce(
      bootstrap, "stock", 1, [](int) { return std::string("sku-hot"); },
      [](int) { return std::string(R"({"units":1000})"); });
  streamrun::bench::produce(
      bootstrap, "restart-orders", 1, [](int) { return std::string("sku-00000007"); },
      [](int i) { return order_json(i, "sku-00000007"); });
  streamrun::bench::produce(
      bootstrap, "backlog", static_cast<int>(backlog_records), [](int i) { return sku_of(i); },
      [](int i) { return order_json(i, sku_of(i)); });
  streamrun::bench::produce(
      bootstrap, "restore-changelog", kRestoreKeys,
      [](int i) { return fmt::format("sku-{:08}", i); },
      [](int i) { return streamrun::serdes::int64().serialize(i).value(); });
  {
    // The commit markers that make every entry before them part of the restored state.
    namespace runtime = streamrun::runtime;
    auto producer = streamrun::kafka::Producer::create({{"bootstrap.servers", bootstrap}}).value();
    const streamrun::kafka::HeaderView header{runtime::kCommitMarkerHeader, std::string_view("1")};
    for (int p = 0; p < kRestorePartitions; ++p) {
      const auto payload = runtime::encode_marker({{fmt::format("orders/{}", p), 1}});
      producer
          ->send({"restore-changelog", p, runtime::kCommitMarkerKey, payload, std::span(&header, 1),
                  std::nullopt})
          .value();
    }
    producer->flush(10s).value();
  }
  fmt::print("inputs loaded in {:.1f} s\n", seconds_since(load_start));

  const fs::path state_root =
      fs::temp_directory_path() / fmt::format("streamrun-bench-{}", ::getpid());
  std::map<std::size_t, std::vector<Sample>> samples;  // by index in `runs`
  int failures = 0;
  for (int round = 0; round < rounds; ++round) {
    double seckill_rate = 0;  // decisions/s of this round's seckill run
    for (std::size_t i = 0; i < runs.size(); ++i) {
      auto run = runs[i];
      const auto id = app_id_of(runs[i], round);
      run.topic = input_of(runs[i], round);
      fmt::print("round {}/{}: {} ({} partition{}) ...", round + 1, rounds, run.label,
                 run.partitions, run.partitions > 1 ? "s" : "");
      std::fflush(stdout);
      const double rate = run.scenario == "seckill-paced" ? seckill_rate / 2 : 0;
      if (run.scenario == "seckill-paced" && rate <= 0) {
        fmt::print(" failed: no decisions/s of the seckill run in this round\n");
        ++failures;
        continue;
      }
      auto sample = spawn_run(run, bootstrap, id, state_root / id, source_dir, rate);
      fs::remove_all(state_root / id);
      if (!sample) {
        fmt::print(" failed\n");
        ++failures;
        continue;
      }
      if (run.scenario == "seckill")
        seckill_rate = sample->rate();
      if (run.scenario == "restart") {
        fmt::print(" task ready in {:.0f} ms\n", sample->result.value);
      } else if (run.scenario == "seckill-paced") {
        fmt::print(" {:.0f} orders/s offered, p99 {:.0f} ms to decision\n", sample->rate(),
                   sample->result.value);
      } else if (run.scenario == "restore") {
        fmt::print(" {:.0f} keys/s\n", sample->rate());
      } else {
        fmt::print(" {:.0f} records/s\n", sample->rate());
      }
      samples[i].push_back(*sample);
    }
  }
  fs::remove_all(state_root);

  // The table: medians over rounds; ratios against the bare loop at the same partition count
  // in the same round.
  std::string table =
      "| run | partitions | records | records/s | ratio to bare loop | CPU µs/record | "
      "peak RSS MiB (before input) | other |\n|---|---:|---:|---:|---:|---:|---:|---|\n";
  std::map<int, std::size_t> bare_of;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].scenario == "bare")
      bare_of[runs[i].partitions] = i;
  }
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& run = runs[i];
    const auto& got = samples[i];
    if (got.empty()) {
      table += fmt::format("| {} | {} | {} | failed | | | | |\n", run.label, run.partitions,
                           run.records);
      continue;
    }
    std::vector<double> rates, ratios, cpu, rss, idle, values;
    for (std::size_t k = 0; k < got.size(); ++k) {
      rates.push_back(got[k].rate());
      cpu.push_back(got[k].result.cpu * 1e6 / static_cast<double>(run.records));
      rss.push_back(got[k].peak_rss_kib / 1024.0);
      idle.push_back(got[k].result.idle_rss_kib / 1024.0);
      values.push_back(got[k].result.value);
      if (auto b = bare_of.find(run.partitions);
          b != bare_of.end() && k < samples[b->second].size()) {
        ratios.push_back(got[k].rate() / samples[b->second][k].rate());
      }
    }
    std::string rate = fmt::format("{:.0f}", median(rates));
    // The inventory runs are another workload (one SKU, one task): no ratio to the bare loop.
    std::string ratio = ratios.empty() || run.scenario == "restart" || run.scenario == "restore" ||
                                run.scenario == "inventory" || run.scenario.starts_with("seckill")
                            ? ""
                            : fmt::format("{:.2f}", median(ratios));
    std::string cpu_text = fmt::format("{:.2f}", median(cpu));
    std::string other;
    if (run.scenario == "restart") {
      std::vector<double> first_record;
      for (const auto& g : got)
        first_record.push_back(g.result.seconds);
      rate = "";
      cpu_text = "";
      other = fmt::format(
          "task ready {:.0f} ms after assignment; first record {:.2f} s after run() (group "
          "join included)",
          median(values), median(first_record));
    } else if (run.scenario == "poison" || run.scenario == "metrics-off") {
      // Against the stateless filter with metrics on the same partitions, round by round: for
      // the poison run the clean run's ratio to it, for metrics-off the metrics run's.
      const auto clean = std::find_if(runs.begin(), runs.end(), [&](const Run& r) {
        return r.scenario == "stateless-cpp" && r.partitions == run.partitions;
      });
      std::vector<double> ratio_to_clean;
      if (clean != runs.end()) {
        const auto& clean_samples = samples[static_cast<std::size_t>(clean - runs.begin())];
        for (std::size_t k = 0; k < got.size() && k < clean_samples.size(); ++k) {
          ratio_to_clean.push_back(run.scenario == "poison"
                                       ? got[k].rate() / clean_samples[k].rate()
                                       : clean_samples[k].rate() / got[k].rate());
        }
      }
      if (!ratio_to_clean.empty()) {
        other = run.scenario == "poison"
                    ? fmt::format("{:.2f}x the clean run's records/s", median(ratio_to_clean))
                    : fmt::format("the run with metrics above: {:.2f}x this one's records/s",
                                  median(ratio_to_clean));
      }
    } else if (run.scenario == "seckill-paced") {
      // Medians over rounds of each round's figure.
      std::vector<std::vector<double>> by_figure(6);
      for (const auto& g : got) {
        for (std::size_t f = 0; f < g.latency.size() && f < by_figure.size(); ++f)
          by_figure[f].push_back(g.latency[f]);
      }
      other = fmt::format(
          "from order sent to decided_ms: p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms; to the "
          "decision read back from its topic: p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms (CPU "
          "includes the sender and the reader)",
          median(by_figure[0]), median(by_figure[1]), median(by_figure[2]), median(by_figure[3]),
          median(by_figure[4]), median(by_figure[5]));
    } else if (run.scenario == "restore") {
      rate = fmt::format("{:.0f} keys/s", median(rates));
      other = "one thread, tasks one after the other";
    } else if (run.scenario == "backlog" && run.records > 2'000) {
      // Against the small run just after it: what the larger input budget added.
      const auto& small = samples[i + 1];
      std::vector<double> small_growth;
      for (const auto& g : small)
        small_growth.push_back((g.peak_rss_kib - g.result.idle_rss_kib) / 1024.0);
      const double growth = median(rss) - median(idle);
      other = fmt::format(
          "RSS grew {:.0f} MiB from before the input to its peak; the 2,000-record run below grew "
          "{:.0f} MiB: the {} MiB of extra budget cost {:.0f} MiB",
          growth, small.empty() ? 0.0 : median(small_growth), (kBacklogBudget >> 20) - 1,
          small.empty() ? 0.0 : growth - median(small_growth));
    }
    table += fmt::format("| {} | {} | {} | {} | {} | {} | {:.0f} ({:.0f}) | {} |\n", run.label,
                         run.partitions, run.records, rate, ratio, cpu_text, median(rss),
                         median(idle), other);
  }
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const std::string section = fmt::format(
      "Command: `{}` ({}; {})\n\nMachine: {}. The development broker runs in its "
      "own process; each run is a child process whose CPU time (from its first record) and "
      "peak RSS are its own. Ratios are medians of each round's ratio to the bare loop at the "
      "same partition count (not the ratio of the median rates); the restart row's one record is "
      "the first one processed after the restart.\n\n{}",
      command, rounds > 1 ? fmt::format("{} interleaved rounds, medians", rounds) : "one round",
      date, machine_description(), table);
  fmt::print("\n{}", section);

  if (failures > 0) {
    fmt::print(stderr, "bench: {} run(s) failed (see above); bench/RESULTS.md not written\n",
               failures);
    return 1;
  }
  if (!no_write) {
    const fs::path results = fs::path(source_dir) / "bench/RESULTS.md";
    std::ifstream in(results);
    std::stringstream text;
    text << in.rdbuf();
    std::string doc = text.str();
    const std::string begin = "<!-- bench/run: begin -->";
    const std::string end = "<!-- bench/run: end -->";
    const auto b = doc.find(begin);
    const auto e = doc.find(end);
    if (b == std::string::npos || e == std::string::npos || e < b) {
      std::fprintf(stderr, "bench: %s has no '%s' ... '%s' markers; not written\n", results.c_str(),
                   begin.c_str(), end.c_str());
      return 1;
    }
    doc = doc.substr(0, b + begin.size()) + "\n" + section + doc.substr(e);
    std::ofstream(results) << doc;
    fmt::print("written to {}\n", results.string());
  }
  return 0;
}
