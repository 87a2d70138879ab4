// Poison records on a real consumer group: malformed JSON and records an operator rejects go to
// the dead-letter topic with headers saying what failed where; every good record is priced; the
// group's committed offsets reach the end of the input.

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/json/json_serde.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/log_reader.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>
#include <streamrun/testing/broker_fixture.h>

#include "../../support/kafka_test_util.h"

namespace streamrun::runtime {
namespace {

using namespace std::chrono_literals;
using testing::poll_until;
using testing::send_waiting;

constexpr int kOrders = 10'000;
constexpr int kPartitions = 4;

enum class Kind { good, malformed, rejected };
Kind kind_of(int i) {
  if (i % 100 == 7)
    return Kind::malformed;  // 1%: not JSON at all
  if (i % 100 == 13)
    return Kind::rejected;  // 1%: JSON the pricing operator throws on
  return Kind::good;
}

class PoisonTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"orders", kPartitions}, {"priced", kPartitions}, {"pricer-dead-letter", kPartitions}};
  }
  // Two brokers, so that one of them can serve only the dead-letter topic and go down.
  int broker_count() const override { return 2; }

  void produce_orders() {
    auto producer = kafka::Producer::create(producer_properties()).value();
    for (int i = 0; i < kOrders; ++i) {
      const auto key = fmt::format("order-{}", i);
      std::string value;
      switch (kind_of(i)) {
        case Kind::good:
          value = fmt::format(R"({{"id": {}, "qty": 2, "price": 5}})", i);
          break;
        case Kind::malformed:
          value = fmt::format(R"({{"id": {}, "qty": )", i);
          break;
        case Kind::rejected:
          value = fmt::format(R"({{"id": {}, "qty": -1, "price": 5}})", i);
          break;
      }
      send_waiting(*producer, {"orders", std::nullopt, key, value, {}, std::nullopt});
    }
    ASSERT_TRUE(producer->flush(30s).ok());
  }

  static Topology pricing() {
    const Serdes<std::string, nlohmann::json> orders{serdes::string(), serdes::json()};
    StreamBuilder builder;
    builder.stream("orders", orders)
        .map_values([](const nlohmann::json& order) {
          if (order.at("qty").get<int>() <= 0)
            throw std::invalid_argument("quantity must be positive");
          return std::to_string(order.at("qty").get<int>() * order.at("price").get<int>());
        })
        .to("priced", {serdes::string(), serdes::string()});
    return builder.build();
  }

  config::Properties properties() const {
    return {{"application.id", "pricer"},
            {"admin.timeout.ms", "500"},  // the development broker has no Admin API
            {"bootstrap.servers", bootstrap_servers()},
            {"errors.policy", "dead_letter"},
            {"errors.retries", "2"},
            {"errors.retry.backoff.ms", "2"},
            {"consumer.session.timeout.ms", "6000"},
            {"consumer.heartbeat.interval.ms", "500"}};
  }
};

TEST_F(PoisonTest, BadRecordsGoToTheDeadLetterTopicOnceWithTheirStoryAndLagReachesZero) {
  produce_orders();
  auto app = Application::create(pricing(), properties());
  ASSERT_TRUE(app.ok()) << app.error().message();
  std::thread runner([&] { EXPECT_TRUE((*app)->run().ok()); });

  auto reader = kafka::Consumer::create(consumer_properties("verifier"), nullptr).value();
  ASSERT_TRUE(reader->subscribe({"priced", "pricer-dead-letter"}).ok());
  std::set<std::string> priced;
  std::map<std::string, std::vector<kafka::Header>> letters;  // by origin "partition/offset"
  std::set<std::string> lettered_keys;
  poll_until(
      *reader, [&] { return priced.size() + lettered_keys.size() >= kOrders; },
      [&](const kafka::Message& m) {
        const std::string key(m.key().value_or(""));
        if (m.topic() == "priced") {
          priced.insert(key);
          return;
        }
        const auto origin =
            fmt::format("{}/{}", m.header("streamrun.source.partition").value_or("?"),
                        m.header("streamrun.source.offset").value_or("?"));
        letters.emplace(origin, m.headers());
        lettered_keys.insert(key);
      },
      120s);

  std::set<std::string> expected_priced;
  std::set<std::string> expected_letters;
  for (int i = 0; i < kOrders; ++i) {
    (kind_of(i) == Kind::good ? expected_priced : expected_letters)
        .insert(fmt::format("order-{}", i));
  }
  EXPECT_EQ(priced, expected_priced) << "every good order is priced";
  EXPECT_EQ(lettered_keys, expected_letters) << "every bad order is dead-lettered";
  EXPECT_EQ(letters.size(), expected_letters.size()) << "one letter per bad input record";
  std::map<std::string, int> classes;
  for (const auto& [origin, headers] : letters) {
    std::map<std::string, std::string> by_key;
    for (const auto& h : headers)
      by_key[h.key] = h.value.value_or("");
    for (const char* key :
         {"streamrun.source.topic", "streamrun.source.partition", "streamrun.source.offset",
          "streamrun.error.class", "streamrun.error.message", "streamrun.error.attempts",
          "streamrun.application.id", "streamrun.operator", "streamrun.failure.time.ms"}) {
      EXPECT_TRUE(by_key.contains(key)) << origin << " lacks " << key;
    }
    EXPECT_EQ(by_key["streamrun.source.topic"], "orders");
    EXPECT_EQ(by_key["streamrun.application.id"], "pricer");
    EXPECT_EQ(by_key["streamrun.error.attempts"], "3") << "the first attempt and two retries";
    ++classes[by_key["streamrun.operator"] + " " + by_key["streamrun.error.class"]];
  }
  EXPECT_EQ(classes["source-0 streamrun::SerdeError"], 100) << ::testing::PrintToString(classes);
  EXPECT_EQ(classes["map_values-1 std::invalid_argument"], 100)
      << ::testing::PrintToString(classes);

  // Consumer lag reaches zero: the group commits up to the end of every input partition.
  auto ends = kafka::LogReader::create(producer_properties()).value();
  auto group = kafka::Consumer::create(consumer_properties("pricer"), nullptr).value();
  std::vector<TopicPartition> partitions;
  for (int p = 0; p < kPartitions; ++p)
    partitions.push_back({TopicName("orders"), PartitionId(p)});
  std::int64_t lag = -1;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (lag != 0 && std::chrono::steady_clock::now() < deadline) {
    lag = 0;
    auto committed = group->committed(partitions, 5s).value();
    for (const auto& tp : partitions) {
      std::int64_t at = 0;
      for (const auto& c : committed) {
        if (c.topic_partition == tp)
          at = c.offset.value();
      }
      lag += ends->watermarks(tp, 5s).value().high - at;
    }
    if (lag != 0)
      std::this_thread::sleep_for(100ms);  // the next periodic commit
  }
  EXPECT_EQ(lag, 0);
  const auto stats = (*app)->stats();
  EXPECT_EQ(stats.records_dead_lettered, 200);
  EXPECT_EQ(stats.retries, 400);
  (*app)->stop();
  runner.join();
}

TEST_F(PoisonTest, AnUnreachableDeadLetterTopicHoldsCommitsBeforeThePoisonRecord) {
  constexpr int kWarmUp = 2'000;
  auto producer = kafka::Producer::create(producer_properties()).value();
  for (int i = 0; i < kWarmUp; ++i) {
    send_waiting(*producer, {"orders",
                             std::nullopt,
                             fmt::format("warm-{}", i),
                             R"({"id": 0, "qty": 1, "price": 1})",
                             {},
                             std::nullopt});
  }
  ASSERT_TRUE(producer->flush(30s).ok());
  auto props = properties();
  props.set("errors.retries", "0");
  props.set("shutdown.timeout.ms", "2000");
  // Broker 2 leads the dead-letter topic only, and is down: the client keeps retrying the
  // letters, none is ever acknowledged, while everything else works.
  for (int p = 0; p < kPartitions; ++p) {
    ASSERT_TRUE(broker().set_partition_leader("orders", p, 1).ok());
    ASSERT_TRUE(broker().set_partition_leader("priced", p, 1).ok());
    ASSERT_TRUE(broker().set_partition_leader("pricer-dead-letter", p, 2).ok());
  }
  for (const char* group : {"pricer", "scanner"})
    ASSERT_TRUE(broker().set_group_coordinator(group, 1).ok());
  ASSERT_TRUE(broker().set_broker_down(2).ok());
  auto app = Application::create(pricing(), props);
  ASSERT_TRUE(app.ok()) << app.error().message();
  std::thread runner([&] { static_cast<void>((*app)->run()); });
  struct StopAtExit {
    Application& app;
    std::thread& runner;
    ~StopAtExit() {
      app.stop();
      runner.join();
    }
  } stop_at_exit{**app, runner};

  auto group = kafka::Consumer::create(consumer_properties("pricer"), nullptr).value();
  std::vector<TopicPartition> partitions;
  for (int p = 0; p < kPartitions; ++p)
    partitions.push_back({TopicName("orders"), PartitionId(p)});
  auto committed_offsets = [&] {
    std::map<std::int32_t, std::int64_t> offsets;
    const auto all = group->committed(partitions, 5s).value();  // a copy: the Result is gone
    for (const auto& committed : all)
      offsets[committed.topic_partition.partition.value()] = committed.offset.value();
    return offsets;
  };
  auto total = [](const std::map<std::int32_t, std::int64_t>& offsets) {
    std::int64_t sum = 0;
    for (const auto& [p, offset] : offsets)
      sum += offset;
    return sum;
  };
  // Sync point: the good records are committed — commits work.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (total(committed_offsets()) < kWarmUp && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);  // the next periodic commit
  ASSERT_EQ(total(committed_offsets()), kWarmUp);

  produce_orders();
  while ((*app)->stats().records_processed < kWarmUp + kOrders &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);  // sampling the application's counters
  }
  ASSERT_EQ((*app)->stats().records_processed, kWarmUp + kOrders) << "every record was read";

  // Where each partition's first bad record is.
  auto scan = kafka::Consumer::create(consumer_properties("scanner"), nullptr).value();
  ASSERT_TRUE(scan->subscribe({"orders"}).ok());
  std::map<std::int32_t, std::int64_t> first_bad;
  std::int64_t seen = 0;
  poll_until(
      *scan, [&] { return seen >= kWarmUp + kOrders; },
      [&](const kafka::Message& m) {
        ++seen;
        const std::string key(m.key().value_or(""));
        if (!key.starts_with("order-"))
          return;
        const int i = std::stoi(key.substr(std::string_view("order-").size()));
        if (kind_of(i) != Kind::good && !first_bad.contains(m.partition().value()))
          first_bad[m.partition().value()] = m.offset().value();
      },
      60s);
  ASSERT_EQ(first_bad.size(), static_cast<std::size_t>(kPartitions));
  // A property of what never happens: watch ten commit intervals after everything was read.
  for (int round = 0; round < 10; ++round) {
    for (const auto& [p, offset] : committed_offsets()) {
      EXPECT_LE(offset, first_bad[p])
          << "partition " << p << " committed past a record whose dead letter is not written";
    }
    std::this_thread::sleep_for(100ms);
  }
}

}  // namespace
}  // namespace streamrun::runtime
