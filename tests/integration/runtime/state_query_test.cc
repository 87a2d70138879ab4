// Interactive queries (GET /state/...) against a running two-instance application: a key held
// here, a key held by the other instance (307 naming it), a missing key, ranges, bad requests,
// and the answers after one instance leaves.

#include <filesystem>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/core/stream_builder.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>
#include <streamrun/testing/broker_fixture.h>

#include "support/kafka_test_util.h"
#include "support/running_app.h"
#include "support/topologies.h"

namespace streamrun::runtime {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::send_waiting;

using testing::count_topology;
constexpr int kPartitions = 4;
constexpr int kKeys = 20;
constexpr int kPerKey = 5;

// The count store's value for kPerKey: an int64, big-endian, shown as hex (not text).
const std::string kCountHex = fmt::format("{:016x}", kPerKey);

class StateQueryTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"orders", kPartitions},
            {"counts", kPartitions},
            {"state-query-counts-changelog", kPartitions},
            {"state-query-per-second-changelog", kPartitions},
            {"state-query-sessions-changelog", kPartitions}};
  }

  static std::filesystem::path state_dir(int instance) {
    return std::filesystem::temp_directory_path() /
           fmt::format("state-query-test-{}-{}", instance, ::getpid());
  }
  void TearDown() override {
    for (int i = 0; i < 2; ++i)
      std::filesystem::remove_all(state_dir(i));
    BrokerFixture::TearDown();
  }

  config::Properties properties(int instance, const std::string& listen = "127.0.0.1:0") const {
    return {{"application.id", "state-query"},
            {"bootstrap.servers", bootstrap_servers()},
            {"consumer.session.timeout.ms", "6000"},
            {"admin.timeout.ms", "500"},
            {"admin.listen", listen},
            {"state.dir", state_dir(instance).string()}};
  }

  void produce() {
    auto producer = kafka::Producer::create(producer_properties()).value();
    for (int i = 0; i < kKeys * kPerKey; ++i) {
      send_waiting(*producer,
                   {"orders", std::nullopt, fmt::format("k{}", i % kKeys), "o", {}, std::nullopt});
    }
    ASSERT_TRUE(producer->flush(10s).ok());
  }

  static httplib::Result get(const std::string& address, const std::string& path) {
    httplib::Client client("http://" + address);
    client.set_connection_timeout(5s);
    client.set_read_timeout(10s);
    return client.Get(path);  // redirects are not followed: the test looks at them
  }
  // The number of tasks running on the instance (its status figures).
  static std::size_t tasks_of(const std::string& address) {
    auto status = get(address, "/api/status");
    if (!status || status->status != 200)
      return 0;
    return json::parse(status->body)["tasks"].size();
  }

  // Asks `address` for `key`, following one redirect: the final answer and who gave it. Asks
  // again after a 503 (Retry-After), as a client should: an instance learns who holds a
  // partition from that instance's offset commits, which follow its state's by up to a commit
  // interval.
  struct Answer {
    int status = 0;
    json body;
    std::string answered_by;
    bool redirected = false;
  };
  static Answer ask(const std::string& address, const std::string& key) {
    Answer answer;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    do {
      answer = ask_once(address, key);
      if (answer.status != 503)
        break;
      EXPECT_NE(answer.body.value("error", "").find("ask again"), std::string::npos)
          << answer.body.dump();
      std::this_thread::sleep_for(50ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return answer;
  }
  static Answer ask_once(const std::string& address, const std::string& key) {
    Answer answer;
    auto response = get(address, "/state/counts/" + key);
    if (!response)
      return answer;
    answer.answered_by = address;
    if (response->status == 307) {
      answer.redirected = true;
      const auto location = response->get_header_value("Location");
      const auto owner = json::parse(response->body)["owner"].get<std::string>();
      EXPECT_EQ(location, "http://" + owner + "/state/counts/" + key);
      response = get(owner, "/state/counts/" + key);
      if (!response) {
        // An instance that stopped says so in its last commits: nobody is sent to it.
        ADD_FAILURE() << key << ": redirected to " << owner << ", which does not answer";
        return answer;
      }
      answer.answered_by = owner;
    }
    answer.status = response->status;
    answer.body = json::parse(response->body);
    return answer;
  }

  // Waits until every key reads kPerKey through `address`; the last answers.
  static std::map<std::string, Answer> await_all_counted(const std::string& address) {
    std::map<std::string, Answer> answers;
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    while (std::chrono::steady_clock::now() < deadline) {
      answers.clear();
      bool all = true;
      for (int k = 0; k < kKeys; ++k) {
        const auto key = fmt::format("k{}", k);
        answers[key] = ask(address, key);
        all = all && answers[key].status == 200 &&
              answers[key].body.value("value_hex", "") == kCountHex;
      }
      if (all)
        break;
      std::this_thread::sleep_for(100ms);
    }
    return answers;
  }
};

TEST_F(StateQueryTest, TwoInstancesAnswerLocalRemoteAndMissingKeys) {
  testing::RunningApp first(count_topology(), properties(0));
  const auto a = first.admin_address();
  testing::RunningApp second(count_topology(), properties(1));
  const auto b = second.admin_address();
  ASSERT_NE(a, b);
  // Both members hold tasks before the records come, so that both have state to show.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((tasks_of(a) == 0 || tasks_of(b) == 0 || tasks_of(a) + tasks_of(b) != kPartitions) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_GT(tasks_of(a), 0u);
  ASSERT_GT(tasks_of(b), 0u);
  produce();

  // Every key, asked of the first instance: answered by it, or by the one it names.
  const auto answers = await_all_counted(a);
  std::set<std::string> answered_by;
  for (const auto& [key, answer] : answers) {
    ASSERT_EQ(answer.status, 200) << key << ": " << answer.body.dump();
    EXPECT_EQ(answer.body["value_hex"], kCountHex) << key;
    EXPECT_EQ(answer.body["key"], key);
    EXPECT_EQ(answer.body["store"], "counts");
    EXPECT_EQ(answer.redirected, answer.answered_by == b) << key;
    answered_by.insert(answer.answered_by);
    // The other instance agrees on who holds it.
    const auto again = ask(b, key);
    EXPECT_EQ(again.answered_by, answer.answered_by) << key;
    EXPECT_EQ(again.body["partition"], answer.body["partition"]) << key;
  }
  EXPECT_EQ(answered_by, (std::set<std::string>{a, b}))
      << "both instances hold some of the keys: local and remote answers";

  // A key no record had: 404 from the instance that would hold it.
  const auto missing = ask(a, "never-seen");
  EXPECT_EQ(missing.status, 404) << missing.body.dump();
  EXPECT_NE(missing.body["error"].get<std::string>().find("no key 'never-seen' in store 'counts'"),
            std::string::npos)
      << missing.body.dump();

  // Ranges: each instance shows what it holds and names the other for the rest; together,
  // every key once.
  std::set<std::string> keys;
  for (const auto& [self, other] : {std::pair{a, b}, std::pair{b, a}}) {
    json body;
    // Until the other instance's commits name it for each of its partitions (see ask()).
    const auto until = std::chrono::steady_clock::now() + 10s;
    do {
      auto range = get(self, "/state/counts?prefix=k&limit=1000");
      ASSERT_TRUE(range);
      ASSERT_EQ(range->status, 200) << range->body;
      body = json::parse(range->body);
    } while (body["partitions"]["elsewhere"].dump().find("null") != std::string::npos &&
             std::chrono::steady_clock::now() < until);
    EXPECT_FALSE(body["more"].get<bool>());
    for (const auto& entry : body["entries"]) {
      EXPECT_TRUE(keys.insert(entry["key"].get<std::string>()).second) << entry.dump();
      EXPECT_EQ(entry["value_hex"], kCountHex);
    }
    EXPECT_FALSE(body["partitions"]["local"].empty());
    for (const auto& [partition, owner] : body["partitions"]["elsewhere"].items())
      EXPECT_EQ(owner, other) << "partition " << partition;
    EXPECT_EQ(body["partitions"]["local"].size() + body["partitions"]["elsewhere"].size(),
              static_cast<std::size_t>(kPartitions));
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kKeys));
  // A bounded range says there is more.
  auto bounded = get(a, "/state/counts?from=k1&to=k2&limit=1");
  ASSERT_TRUE(bounded);
  const auto bounded_body = json::parse(bounded->body);
  EXPECT_LE(bounded_body["entries"].size(), 1u);

  // Bad requests name what is wrong.
  const std::map<std::string, std::pair<int, std::string>> bad = {
      {"/state/nope/k1", {404, "no state store 'nope' (its stores: counts)"}},
      {"/state/counts?limit=0", {400, "parameter 'limit' = '0'"}},
      {"/state/counts?limit=x", {400, "parameter 'limit' = 'x'"}},
      {"/state/counts?colour=red", {400, "unknown parameter 'colour'"}},
      {"/state/counts?from=b&to=a", {400, "reversed range"}},
      {"/state/counts/k1?partition=99", {400, "has partitions 0 to 3"}},
      {"/state/counts/k1?limit=3", {400, "unknown parameter 'limit' for a key lookup"}},
  };
  for (const auto& [path, expected] : bad) {
    auto response = get(a, path);
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->status, expected.first) << path << ": " << response->body;
    EXPECT_NE(response->body.find(expected.second), std::string::npos)
        << path << ": " << response->body;
  }

  // One instance leaves: the other takes its partitions (restoring them from the changelog)
  // and answers every key itself.
  ASSERT_TRUE(second.stop().ok());
  const auto after = await_all_counted(a);
  for (const auto& [key, answer] : after) {
    EXPECT_EQ(answer.status, 200) << key << ": " << answer.body.dump();
    EXPECT_FALSE(answer.redirected) << key;
  }
}

// A window store answers a key with its windows (each with its bounds and value), and a range
// with every key's windows; its own bookkeeping (stream time) never shows.
TEST_F(StateQueryTest, WindowStoresAnswerTheWindowsOfAKey) {
  StreamBuilder builder;
  const Serdes<std::string, std::string> strings{serdes::string(), serdes::string()};
  const auto grouped = builder.stream("orders", strings).group_by_key(strings);
  // With grace, so that no window expires while the test looks at it.
  static_cast<void>(grouped.windowed_by(TimeWindows::of(1000ms).grace(60s)).count("per-second"));
  static_cast<void>(grouped.windowed_by(SessionWindows::with_inactivity_gap(1000ms).grace(60s))
                        .count("sessions"));
  testing::RunningApp app(builder.build(), properties(0));
  const auto address = app.admin_address();
  {
    auto producer = kafka::Producer::create(producer_properties()).value();
    for (const std::int64_t at : {1000, 1500, 2500, 5000})
      send_waiting(*producer, {"orders", std::nullopt, "k0", "o", {}, at});
    send_waiting(*producer, {"orders", std::nullopt, "k1", "o", {}, 1200});
    ASSERT_TRUE(producer->flush(10s).ok());
  }
  const auto windows_of = [&](const std::string& path) {
    json body;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    do {
      auto response = get(address, path);
      if (response && response->status == 200) {
        body = json::parse(response->body);
        if (body["windows"].size() >= 2 && body["windows"].back()["window_start"] == 5000)
          break;
      }
      std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < deadline);
    json windows = json::array();
    for (const auto& window : body["windows"])
      windows.push_back({window["window_start"], window["window_end"], window["value_hex"]});
    return windows;
  };
  const auto count = [](int n) { return fmt::format("{:016x}", n); };
  EXPECT_EQ(windows_of("/state/per-second/k0"),
            (json{{1000, 2000, count(2)}, {2000, 3000, count(1)}, {5000, 6000, count(1)}}));
  // Sessions: [first, last] record, both included.
  EXPECT_EQ(windows_of("/state/sessions/k0"),
            (json{{1000, 2500, count(3)}, {5000, 5000, count(1)}}));
  auto range = get(address, "/state/per-second?prefix=k&limit=1000");
  ASSERT_TRUE(range);
  ASSERT_EQ(range->status, 200) << range->body;
  const auto range_body = json::parse(range->body);
  json entries = json::array();
  for (const auto& entry : range_body["entries"])
    entries.push_back({entry["key"], entry["window_start"], entry["value_hex"]});
  EXPECT_EQ(entries, (json{{"k0", 1000, count(2)},
                           {"k0", 2000, count(1)},
                           {"k0", 5000, count(1)},
                           {"k1", 1000, count(1)}}));
  // The status page's figures show the latest windows of each window store, newest first.
  auto status = get(address, "/api/status");
  ASSERT_TRUE(status);
  const auto status_body = json::parse(status->body);
  json latest = json::object();
  for (const auto& store : status_body["windows"]) {
    json windows = json::array();
    for (const auto& window : store["latest"])
      windows.push_back({window["key"], window["window_start"], window["window_end"]});
    latest[store["store"].get<std::string>()] = std::move(windows);
  }
  // k0 and k1 share partition 1 (murmur2), whose stream time is 5000: the windows that start
  // (sessions: end) at 3000 or later, two window sizes (gaps) back, are shown; k1's are older.
  EXPECT_EQ(latest["per-second"], (json{{"k0", 5000, 6000}})) << latest;
  EXPECT_EQ(latest["sessions"], (json{{"k0", 5000, 5000}})) << latest;

  // GET /state lists the stores and their kinds.
  auto listing = get(address, "/state");
  ASSERT_TRUE(listing);
  ASSERT_EQ(listing->status, 200) << listing->body;
  EXPECT_EQ(json::parse(listing->body),
            (json{{"stores",
                   {{{"store", "per-second"}, {"kind", "time windows"}},
                    {{"store", "sessions"}, {"kind", "session windows"}}}}}));

  auto missing = get(address, "/state/per-second/k9");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("no windows of key 'k9' in window store 'per-second'"),
            std::string::npos)
      << missing->body;
}

TEST_F(StateQueryTest, KeysOfAnInstanceWithoutAdminEndpointAreSaidToBeUnreachable) {
  testing::RunningApp first(count_topology(), properties(0));
  const auto a = first.admin_address();
  testing::RunningApp silent(count_topology(), properties(1, "0"));
  ASSERT_FALSE(silent.app().admin_address().has_value());
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (tasks_of(a) != kPartitions / 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(tasks_of(a), static_cast<std::size_t>(kPartitions / 2)) << "the two share the work";
  produce();

  // Every key ends up answered here, or said to be on an instance that answers no queries.
  int local = 0;
  int unreachable = 0;
  for (int k = 0; k < kKeys; ++k) {
    const auto key = fmt::format("k{}", k);
    Answer answer;
    const auto until = std::chrono::steady_clock::now() + 60s;
    for (;;) {
      answer = ask_once(a, key);
      const bool counted = answer.status == 200 && answer.body.value("value_hex", "") == kCountHex;
      const bool no_endpoint =
          answer.status == 503 &&
          answer.body.value("error", "").find("serves no state queries") != std::string::npos;
      if (counted || no_endpoint || std::chrono::steady_clock::now() > until)
        break;
      std::this_thread::sleep_for(50ms);
    }
    if (answer.status == 200) {
      ++local;
      EXPECT_FALSE(answer.redirected);
    } else {
      ++unreachable;
      EXPECT_EQ(answer.status, 503) << key << ": " << answer.body.dump();
      EXPECT_NE(answer.body.value("error", "").find("admin.listen is 0"), std::string::npos)
          << answer.body.dump();
    }
  }
  EXPECT_GT(local, 0);
  EXPECT_GT(unreachable, 0);
  EXPECT_EQ(local + unreachable, kKeys);
  // Asking again will not help: no Retry-After.
  for (int k = 0; k < kKeys; ++k) {
    auto response = get(a, fmt::format("/state/counts/k{}", k));
    ASSERT_TRUE(response);
    if (response->status == 503)
      EXPECT_FALSE(response->has_header("Retry-After"));
  }
}

}  // namespace
}  // namespace streamrun::runtime
