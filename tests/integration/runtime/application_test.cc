#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>
#include <streamrun/testing/broker_fixture.h>
#include <streamrun/testing/topology_test_driver.h>

#include "support/kafka_test_util.h"
#include "support/running_app.h"

namespace streamrun::runtime {
namespace {

using namespace std::chrono_literals;
using kafka::Message;
using testing::poll_until;
using testing::send_waiting;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};
const Serdes<std::string, std::int64_t> kCounts{serdes::string(), serdes::int64()};

// Keeps orders with an even amount, tags them, and stamps where each output came from.
class Stamp : public Processor<std::string, std::string> {
 public:
  explicit Stamp(std::string instance) : instance_(std::move(instance)) {}
  void process(Record<std::string, std::string> record) override {
    record.headers.push_back(
        {"src", fmt::format("{}/{}", record.origin.partition, record.origin.offset)});
    record.headers.push_back({"instance", instance_});
    context().forward(std::move(record));
  }

 private:
  std::string instance_;
};

Topology filter_map_topology(const std::string& instance = "a") {
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .filter([](const std::string&, const std::string& value) {
        return std::stoi(value.substr(value.find(':') + 1)) % 2 == 0;
      })
      .map_values([](const std::string& value) { return "accepted " + value; })
      .process<std::string, std::string>([instance] { return std::make_unique<Stamp>(instance); })
      .to("accepted", kStrings);
  return builder.build();
}

class ApplicationTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override { return {{"orders", 8}, {"accepted", 8}}; }

  config::Properties app_properties(const std::string& app_id) const {
    return {{"application.id", app_id},
            {"admin.timeout.ms", "500"},  // the development broker has no Admin API
            {"bootstrap.servers", bootstrap_servers()},
            {"consumer.session.timeout.ms", "6000"},
            {"consumer.heartbeat.interval.ms", "500"},
            {"num.threads", "2"}};
  }

  // Produces `count` orders "order-<i>:<i>" keyed by user-<i % 50>; returns them in order.
  std::vector<std::pair<std::string, std::string>> produce_orders(int first, int count) {
    auto producer = kafka::Producer::create(producer_properties());
    EXPECT_TRUE(producer.ok());
    std::vector<std::pair<std::string, std::string>> sent;
    for (int i = first; i < first + count; ++i) {
      sent.emplace_back(fmt::format("user-{}", i % 50), fmt::format("order-{}:{}", i, i));
      send_waiting(
          **producer,
          {"orders", std::nullopt, sent.back().first, sent.back().second, {}, std::nullopt});
    }
    EXPECT_TRUE((*producer)->flush(30s).ok());
    return sent;
  }

  struct Output {
    std::string key;
    std::string value;
    std::string src;
    std::string instance;
  };

  // Reads `accepted` from the beginning until outputs for `expected` distinct inputs arrived
  // (or the timeout).
  std::vector<Output> read_outputs(std::size_t expected, std::chrono::seconds timeout = 60s) {
    auto consumer = kafka::Consumer::create(
        consumer_properties("reader-" + std::to_string(++readers_)), nullptr);
    EXPECT_TRUE(consumer.ok());
    EXPECT_TRUE((*consumer)->subscribe({"accepted"}).ok());
    std::vector<Output> outputs;
    std::set<std::string> distinct;
    poll_until(
        **consumer, [&] { return distinct.size() >= expected; },
        [&](const Message& m) {
          outputs.push_back({std::string(m.key().value_or("")), std::string(m.value().value_or("")),
                             std::string(m.header("src").value_or("")),
                             std::string(m.header("instance").value_or(""))});
          distinct.insert(outputs.back().src);
        },
        timeout);
    return outputs;
  }

  int readers_ = 0;

  // A sink that takes at most 20 records per 20 ms, far slower than the input: nothing is dropped
  // and the records waiting for it stay within bounds. Returns the application's stats.
  ApplicationStats run_slow_sink(const std::string& id,
                                 const std::map<std::string, std::string>& extra) {
    constexpr int kOrders = 4'000;
    produce_orders(0, kOrders);
    auto properties = app_properties(id);
    properties.set("buffered.records.per.partition", "50");
    properties.set("poll.batch.records", "100");
    properties.set("producer.queue.buffering.max.messages", "20");
    properties.set("producer.linger.ms", "20");
    for (const auto& [key, value] : extra)
      properties.set(key, value);
    testing::RunningApp app(filter_map_topology(), properties);
    const auto outputs = read_outputs(kOrders / 2, 120s);
    const auto stats = app.app().stats();
    EXPECT_TRUE(app.stop().ok());

    std::set<std::string> distinct;
    for (const auto& out : outputs)
      distinct.insert(out.src);
    EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kOrders / 2)) << "nothing dropped";
    EXPECT_LE(stats.max_channel_depth, 50) << "a channel never exceeds its bound";
    EXPECT_GT(stats.max_channel_depth, 0);
    // What was already fetched when a partition's task was full waits outside the channel; it is
    // bounded by what one poll returns, not by the input.
    EXPECT_LE(stats.max_backlog, 100);
    std::cout << "paused " << stats.partitions_paused << " times; deepest channel "
              << stats.max_channel_depth << " of " << stats.channel_bound << "; largest backlog "
              << stats.max_backlog << "\n";
    return stats;
  }
};

using testing::RunningApp;

TEST_F(ApplicationTest, FilterMapPipelineDeliversExactlyWhatTheDriverPredicts) {
  constexpr int kOrders = 20'000;
  const auto orders = produce_orders(0, kOrders);

  // What the test driver says the pipeline produces, per key, in order.
  std::map<std::string, std::vector<std::string>> predicted;
  std::size_t predicted_count = 0;
  {
    testing::TopologyTestDriver driver(filter_map_topology());
    auto in = driver.input_topic("orders", kStrings);
    for (const auto& [key, value] : orders)
      in.pipe(key, value);
    for (auto& kv : driver.output_topic("accepted", kStrings).read_key_values()) {
      predicted[kv.key].push_back(kv.value);
      ++predicted_count;
    }
  }
  ASSERT_EQ(predicted_count, static_cast<std::size_t>(kOrders / 2));

  RunningApp app(filter_map_topology(), app_properties("filter-map"));
  const auto outputs = read_outputs(predicted_count);
  const auto stats = app.app().stats();
  ASSERT_TRUE(app.stop().ok());

  std::map<std::string, std::vector<std::string>> actual;
  for (const auto& out : outputs)
    actual[out.key].push_back(out.value);
  EXPECT_EQ(outputs.size(), predicted_count);
  EXPECT_EQ(actual, predicted) << "every key's outputs, in the order the driver predicts";
  EXPECT_EQ(stats.active_tasks, 8) << "one task per input partition";
  EXPECT_EQ(stats.records_produced, static_cast<std::int64_t>(predicted_count))
      << "every output counted once";
}

TEST_F(ApplicationTest, WhenOneOfTwoInstancesStopsTheOtherTakesOverWithoutLoss) {
  constexpr int kFirstBatch = 6'000;
  constexpr int kSecondBatch = 6'000;
  auto first = std::make_unique<RunningApp>(filter_map_topology("a"), app_properties("takeover"));
  auto second = std::make_unique<RunningApp>(filter_map_topology("b"), app_properties("takeover"));

  // Sync point: both instances own tasks before anything is produced.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((first->app().stats().active_tasks == 0 || second->app().stats().active_tasks == 0 ||
          first->app().stats().active_tasks + second->app().stats().active_tasks != 8) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);  // observing another thread's progress
  }
  ASSERT_EQ(first->app().stats().active_tasks + second->app().stats().active_tasks, 8);
  ASSERT_GT(first->app().stats().active_tasks, 0);
  ASSERT_GT(second->app().stats().active_tasks, 0);

  produce_orders(0, kFirstBatch);
  // Mid-run: wait until part of the stream has been processed, then stop one instance.
  const auto mid = read_outputs(kFirstBatch / 4);
  ASSERT_GE(mid.size(), static_cast<std::size_t>(kFirstBatch / 4));
  ASSERT_TRUE(first->stop().ok());
  const auto stopped_stats = first->app().stats();
  produce_orders(kFirstBatch, kSecondBatch);

  const std::size_t expected = (kFirstBatch + kSecondBatch) / 2;
  const auto outputs = read_outputs(expected, 90s);
  ASSERT_TRUE(second->stop().ok());

  std::map<std::string, std::vector<std::string>> processed_by;  // source "partition/offset"
  for (const auto& out : outputs)
    processed_by[out.src].push_back(out.instance);
  EXPECT_EQ(processed_by.size(), expected) << "every accepted order has an output: none lost";

  // The stopped instance committed everything it processed before leaving, so the survivor
  // starts exactly after it: nothing "a" processed is processed again. (The survivor may redo
  // its own records after its last successful commit: the development broker refuses commits
  // around a rebalance and the client then drops its assignment — at-least-once.)
  ASSERT_TRUE(stopped_stats.last_commit_ok) << "the final commit of the stopped instance failed";
  std::vector<std::string> redone_after_handover;
  int redone_by_survivor = 0;
  for (const auto& [src, instances] : processed_by) {
    if (instances.size() > 1 && instances.front() == "a")
      redone_after_handover.push_back(src);
    if (instances.size() > 1 && instances.front() == "b")
      ++redone_by_survivor;
  }
  EXPECT_EQ(redone_after_handover, std::vector<std::string>{});
  std::cout << "outputs: " << outputs.size() << " for " << processed_by.size()
            << " orders; redone by the survivor after a refused commit: " << redone_by_survivor
            << "\n";
  std::set<std::string> instances;
  for (const auto& out : outputs)
    instances.insert(out.instance);
  EXPECT_EQ(instances, (std::set<std::string>{"a", "b"}));
}

TEST_F(ApplicationTest, AFailingRecordStopsTheApplicationNamingItAndIsNeverCommittedPast) {
  auto producer = kafka::Producer::create(producer_properties());
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 100; ++i) {
    const auto value = i == 50 ? std::string("poison") : fmt::format("order-{}:{}", i, i);
    send_waiting(**producer, {"orders", 0, "k", value, {}, std::nullopt});
  }
  ASSERT_TRUE((*producer)->flush(10s).ok());

  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .map_values(
          [](const std::string& value) {
            if (value == "poison")
              throw std::runtime_error("cannot price order 'poison'");
            return value;
          },
          "price")
      .process<std::string, std::string>([] { return std::make_unique<Stamp>("a"); })
      .to("accepted", kStrings);
  RunningApp app(builder.build(), app_properties("failing"));
  auto result = app.wait();
  ASSERT_FALSE(result.ok()) << "a failed task stops the application with an error";
  EXPECT_NE(result.error().message().find("on orders[0] offset 50: operator 'price' failed: "
                                          "std::runtime_error: cannot price order 'poison'"),
            std::string::npos)
      << result.error().message();

  // The records before it were processed and committed; the failed one was not.
  EXPECT_EQ(read_outputs(50).size(), 50u);
  auto consumer = kafka::Consumer::create(consumer_properties("failing"), nullptr);
  ASSERT_TRUE(consumer.ok());
  auto committed = (*consumer)->committed({{TopicName("orders"), PartitionId(0)}}, 10s);
  ASSERT_TRUE(committed.ok()) << committed.error().message();
  ASSERT_EQ(committed->size(), 1u);
  EXPECT_EQ(committed->front().offset.value(), 50);
}

// With per-partition fetch queues (the default) the input waits in librdkafka's prefetch, which
// input.buffer.max.bytes bounds: nothing needs pausing.
TEST_F(ApplicationTest, ASlowSinkLeavesItsInputInTheBoundedPrefetchWithoutPausing) {
  const auto stats = run_slow_sink("slow-sink", {{"input.buffer.max.bytes", "4194304"}});
  EXPECT_EQ(stats.partitions_paused, 0);
}

// With one shared fetch queue, a task that is behind has its partitions paused.
TEST_F(ApplicationTest, ASlowSinkPausesThePartitionWhenPartitionQueuesAreOff) {
  const auto stats = run_slow_sink("slow-sink-shared", {{"input.partition.queues", "false"}});
  EXPECT_GT(stats.partitions_paused, 0) << "the slow sink must pause the input";
}

}  // namespace
}  // namespace streamrun::runtime

namespace streamrun::runtime {
namespace {

class StatefulApplicationTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    // The development broker cannot create topics through the Admin API: the changelog is
    // created here, as an operator would on a cluster that forbids it.
    return {{"clicks", 4},
            {"click-counts", 4},
            {"click-counter-clicks-per-user-changelog", 4},
            {"other-counter-clicks-per-user-changelog", 4}};
  }
  void SetUp() override {
    BrokerFixture::SetUp();
    state_dir_ = std::filesystem::temp_directory_path() /
                 ("streamrun-stateful-" + std::to_string(::getpid()));
    std::filesystem::remove_all(state_dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(state_dir_);
    BrokerFixture::TearDown();
  }

  config::Properties properties() const {
    return {{"application.id", "click-counter"},
            {"bootstrap.servers", bootstrap_servers()},
            {"admin.timeout.ms", "500"},  // the development broker has no Admin API
            {"state.dir", state_dir_.string()},
            {"consumer.session.timeout.ms", "6000"},
            {"consumer.heartbeat.interval.ms", "500"},
            {"num.threads", "2"}};
  }

  static Topology counting_topology() {
    StreamBuilder builder;
    builder.stream("clicks", kStrings)
        .group_by_key(kStrings)
        .count("clicks-per-user")
        .to_stream()
        .to("click-counts", {serdes::string(), serdes::int64()});
    return builder.build();
  }

  void produce_clicks(int first, int count, std::map<std::string, std::int64_t>& expected) {
    auto producer = kafka::Producer::create(producer_properties());
    ASSERT_TRUE(producer.ok());
    for (int i = first; i < first + count; ++i) {
      const auto user = fmt::format("user-{}", i % 37);
      ++expected[user];
      send_waiting(**producer, {"clicks", std::nullopt, user, "click", {}, std::nullopt});
    }
    ASSERT_TRUE((*producer)->flush(10s).ok());
  }

  // The latest count per user in click-counts, once every user reached `expected`.
  std::map<std::string, std::int64_t> latest_counts(
      const std::map<std::string, std::int64_t>& expected) {
    auto consumer = kafka::Consumer::create(
        consumer_properties("counts-reader-" + std::to_string(++readers_)), nullptr);
    EXPECT_TRUE(consumer.ok());
    EXPECT_TRUE((*consumer)->subscribe({"click-counts"}).ok());
    std::map<std::string, std::int64_t> latest;
    poll_until(
        **consumer, [&] { return latest == expected; },
        [&](const Message& m) {
          auto& count = latest[std::string(*m.key())];
          count = std::max(count, serdes::int64().deserialize(m.value()));
        },
        60s);
    return latest;
  }

  std::filesystem::path state_dir_;
  int readers_ = 0;
};

TEST_F(StatefulApplicationTest, CountsSurviveARestartExactlyFromTheStateDirectory) {
  std::map<std::string, std::int64_t> expected;
  produce_clicks(0, 3000, expected);
  {
    RunningApp app(counting_topology(), properties());
    EXPECT_EQ(latest_counts(expected), expected);
    ASSERT_TRUE(app.stop().ok());
  }
  EXPECT_TRUE(std::filesystem::exists(state_dir_ / "click-counter" / "0_0"))
      << "each task keeps its state under state.dir/application.id/task";

  produce_clicks(3000, 2000, expected);
  RunningApp restarted(counting_topology(), properties());
  // Counts continue from the stored state: 5000 clicks in all, none counted twice or lost.
  EXPECT_EQ(latest_counts(expected), expected);
  EXPECT_EQ(restarted.app().stats().records_restored, 0)
      << "local state was complete: nothing to read from the changelog";
  ASSERT_TRUE(restarted.stop().ok());
}

TEST_F(StatefulApplicationTest, LostStateDirectoryIsRestoredFromTheChangelog) {
  std::map<std::string, std::int64_t> expected;
  produce_clicks(0, 3000, expected);
  {
    RunningApp app(counting_topology(), properties());
    EXPECT_EQ(latest_counts(expected), expected);
    ASSERT_TRUE(app.stop().ok());
  }
  // A new machine: no local state at all.
  std::filesystem::remove_all(state_dir_);

  produce_clicks(3000, 2000, expected);
  RunningApp restarted(counting_topology(), properties());
  EXPECT_EQ(latest_counts(expected), expected);
  EXPECT_GE(restarted.app().stats().records_restored, 37)
      << "every user's count came back from the changelog";
  ASSERT_TRUE(restarted.stop().ok());
}

TEST_F(StatefulApplicationTest, CorruptStateDirectoryIsRebuiltNotUsed) {
  std::map<std::string, std::int64_t> expected;
  produce_clicks(0, 3000, expected);
  {
    RunningApp app(counting_topology(), properties());
    EXPECT_EQ(latest_counts(expected), expected);
    ASSERT_TRUE(app.stop().ok());
  }
  // Every task directory damaged: RocksDB's manifest pointer is garbage.
  for (const auto& task : std::filesystem::directory_iterator(state_dir_ / "click-counter")) {
    std::ofstream(task.path() / "CURRENT", std::ios::trunc) << "garbage\n";
  }

  produce_clicks(3000, 1000, expected);
  RunningApp restarted(counting_topology(), properties());
  EXPECT_EQ(latest_counts(expected), expected);
  EXPECT_GE(restarted.app().stats().records_restored, 37);
  ASSERT_TRUE(restarted.stop().ok());
}

TEST_F(StatefulApplicationTest, StateDirectoryOfAnotherApplicationIsNotUsed) {
  std::map<std::string, std::int64_t> expected;
  produce_clicks(0, 2000, expected);
  {
    auto props = properties();
    props.set("application.id", "other-counter");
    RunningApp other(counting_topology(), props);
    EXPECT_EQ(latest_counts(expected), expected);
    ASSERT_TRUE(other.stop().ok());
  }
  // Someone copies the other application's directory where click-counter keeps its state.
  std::filesystem::rename(state_dir_ / "other-counter", state_dir_ / "click-counter");

  RunningApp app(counting_topology(), properties());
  // Had the foreign counts been used, every count would come out doubled.
  EXPECT_EQ(latest_counts(expected), expected);
  ASSERT_TRUE(app.stop().ok());
}

TEST_F(StatefulApplicationTest, LostChangelogWithCommittedProgressStopsTheApplication) {
  std::map<std::string, std::int64_t> expected;
  produce_clicks(0, 500, expected);
  {
    RunningApp app(counting_topology(), properties());
    EXPECT_EQ(latest_counts(expected), expected);
    ASSERT_TRUE(app.stop().ok());
  }
  std::filesystem::remove_all(state_dir_);
  // Same group, but a changelog that knows nothing: counts cannot be rebuilt.
  auto props = properties();
  Topology topology = [] {
    StreamBuilder builder;
    builder.stream("clicks", kStrings)
        .group_by_key(kStrings)
        .count("renamed-store")
        .to_stream()
        .to("click-counts", {serdes::string(), serdes::int64()});
    return builder.build();
  }();
  create_topic("click-counter-renamed-store-changelog", 4);
  RunningApp restarted(topology, props);
  auto result = restarted.wait();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message().find("changelog"), std::string::npos)
      << result.error().message();
}

// A stream joined with a table read from a topic: task p reads partition p of both.
class TableJoinApplicationTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"orders", 4},    {"stock", 4},        {"stock-updates", 4},
            {"decisions", 4}, {"narrow-stock", 2}, {"stock-join-stock-by-item-changelog", 4}};
  }

  void TearDown() override {
    std::filesystem::remove_all(state_dir_);
    BrokerFixture::TearDown();
  }

  config::Properties properties() const {
    return {{"application.id", "stock-join"},
            {"admin.timeout.ms", "500"},  // the development broker has no Admin API
            {"bootstrap.servers", bootstrap_servers()},
            {"state.dir", state_dir_.string()},
            {"consumer.session.timeout.ms", "6000"},
            {"consumer.heartbeat.interval.ms", "500"}};
  }

  static Topology topology(const std::string& stock_topic) {
    StreamBuilder builder;
    auto stock = builder.table(stock_topic, kCounts, "stock-by-item");
    stock.to_stream().to("stock-updates", kCounts);
    builder.stream("orders", kStrings)
        .join(stock,
              [](const std::string& user, std::int64_t units) {
                return user + (units > 0 ? " may buy" : " is too late");
              })
        .to("decisions", kStrings);
    return builder.build();
  }

  template <typename V>
  std::map<std::string, V> read(const std::string& topic, Serde<V> serde, std::size_t count) {
    auto consumer = kafka::Consumer::create(
        consumer_properties("reader-" + std::to_string(++readers_)), nullptr);
    EXPECT_TRUE(consumer.ok());
    EXPECT_TRUE((*consumer)->subscribe({topic}).ok());
    std::map<std::string, V> latest;
    poll_until(
        **consumer, [&] { return latest.size() >= count; },
        [&](const Message& m) {
          latest[std::string(m.key().value_or(""))] = serde.deserialize(m.value());
        },
        60s);
    return latest;
  }

  const std::filesystem::path state_dir_ =
      std::filesystem::temp_directory_path() / ("streamrun-join-" + std::to_string(::getpid()));
  int readers_ = 0;
};

TEST_F(TableJoinApplicationTest, OrdersSeeTheStockTheirTaskHoldsForTheirItem) {
  auto producer = kafka::Producer::create(producer_properties()).value();
  for (int item = 0; item < 40; ++item) {
    const auto units = serdes::int64().serialize(item % 2).value();
    send_waiting(*producer,
                 {"stock", std::nullopt, fmt::format("item-{}", item), units, {}, std::nullopt});
  }
  ASSERT_TRUE(producer->flush(10s).ok());
  RunningApp app(topology("stock"), properties());
  // The table is loaded once every update went through it.
  ASSERT_EQ(read("stock-updates", serdes::int64(), 40).size(), 40u);
  for (int item = 0; item < 40; ++item) {
    send_waiting(*producer, {"orders",
                             std::nullopt,
                             fmt::format("item-{}", item),
                             fmt::format("user-{}", item),
                             {},
                             std::nullopt});
  }
  ASSERT_TRUE(producer->flush(10s).ok());
  const auto decisions = read("decisions", serdes::string(), 40);
  ASSERT_EQ(decisions.size(), 40u);
  for (int item = 0; item < 40; ++item) {
    EXPECT_EQ(decisions.at(fmt::format("item-{}", item)),
              fmt::format("user-{} {}", item, item % 2 ? "may buy" : "is too late"));
  }
  ASSERT_TRUE(app.stop().ok());
}

TEST_F(TableJoinApplicationTest, TopicsThatAreNotCoPartitionedAreRefusedAtStart) {
  auto app = Application::create(topology("narrow-stock"), properties());
  ASSERT_FALSE(app.ok());
  EXPECT_THAT(app.error().message(), ::testing::HasSubstr("not co-partitioned"));
  EXPECT_THAT(app.error().message(), ::testing::HasSubstr("'narrow-stock' (2 partitions)"));
  EXPECT_THAT(app.error().message(), ::testing::HasSubstr("'orders' (4 partitions)"));
}

}  // namespace
}  // namespace streamrun::runtime
