// The admin endpoint (admin.listen) of a running application, scraped as Prometheus and a
// readiness probe would: /metrics against what was produced and consumed, checked by promtool;
// /healthz, /readyz; the addresses it refuses.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

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
using testing::count_topology;
using testing::send_waiting;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};
constexpr int kPartitions = 4;

// Values are numbers; odd ones are dropped by the filter.
Topology filter_topology() {
  StreamBuilder builder;
  builder.stream("orders", kStrings)
      .filter(
          [](const std::string&, const std::string& value) { return std::stoi(value) % 2 == 0; })
      .to("even", kStrings);
  return builder.build();
}

// The samples of a Prometheus text: "name{labels}" -> value.
std::map<std::string, double> parse_samples(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#')
      continue;
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

// Sum of every sample of `name` (any labels).
double sum_of(const std::map<std::string, double>& samples, const std::string& name) {
  double sum = 0;
  for (const auto& [key, value] : samples) {
    if (key == name || key.starts_with(name + "{"))
      sum += value;
  }
  return sum;
}

class AdminTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"orders", kPartitions},
            {"even", kPartitions},
            {"counts", kPartitions},
            {"admin-count-counts-changelog", kPartitions}};
  }

  static std::filesystem::path state_dir(const std::string& id) {
    return std::filesystem::temp_directory_path() / fmt::format("admin-test-{}-{}", id, ::getpid());
  }

  config::Properties properties(const std::string& id) const {
    return {{"application.id", id},
            {"bootstrap.servers", bootstrap_servers()},
            {"consumer.session.timeout.ms", "6000"},
            {"admin.timeout.ms", "500"},
            {"admin.listen", "127.0.0.1:0"},
            {"metrics.latency.sample.records", "1"},
            {"state.dir", state_dir(id).string()}};
  }

  void produce(int records) {
    auto producer = kafka::Producer::create(producer_properties()).value();
    for (int i = 0; i < records; ++i) {
      const auto key = fmt::format("k{}", i % 10);
      const auto value = std::to_string(i);
      send_waiting(*producer, {"orders", std::nullopt, key, value, {}, std::nullopt});
    }
    ASSERT_TRUE(producer->flush(10s).ok());
  }

  // GET path from the app's admin endpoint.
  static httplib::Result get(Application& app, const std::string& path) {
    // run() serves the endpoint from its start, on the application's thread.
    const auto started = std::chrono::steady_clock::now();
    while (!app.admin_address() && std::chrono::steady_clock::now() - started < 30s)
      std::this_thread::sleep_for(10ms);
    const auto address = app.admin_address();
    EXPECT_TRUE(address.has_value()) << "no admin endpoint";
    httplib::Client client("http://" + address.value_or("127.0.0.1:1"));
    client.set_connection_timeout(5s);
    client.set_read_timeout(10s);
    return client.Get(path);
  }

  // Waits until `done` holds for a scrape of /metrics; the last scrape.
  static std::map<std::string, double> scrape_until(
      Application& app, const std::function<bool(const std::map<std::string, double>&)>& done) {
    std::map<std::string, double> samples;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto response = get(app, "/metrics"); response && response->status == 200) {
        samples = parse_samples(response->body);
        if (done(samples))
          break;
      }
      std::this_thread::sleep_for(50ms);  // the gauges are published every commit interval
    }
    return samples;
  }
};

TEST_F(AdminTest, SecretsAppearNowhereTheEndpointServes) {
  auto props = properties("admin-secrets");
  props.set("sasl.password", "hunter2-secret");
  props.set("producer.ssl.key.password", "hunter3-secret");
  testing::RunningApp running(count_topology(), props);
  produce(20);
  // Until the page's figures show the records: everything below then has content to leak.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    auto status = get(running.app(), "/api/status");
    ASSERT_TRUE(status);
    if (status->body.find("\"processed\":20") != std::string::npos ||
        std::chrono::steady_clock::now() > deadline)
      break;
    std::this_thread::sleep_for(50ms);
  }
  for (const auto* path :
       {"/metrics", "/api/status", "/", "/readyz", "/state/counts?limit=100", "/state/counts/k1"}) {
    auto response = get(running.app(), path);
    ASSERT_TRUE(response) << path;
    EXPECT_LT(response->status, 500) << path << ": " << response->body;
    EXPECT_EQ(response->body.find("hunter"), std::string::npos) << path << ": " << response->body;
  }
}

TEST_F(AdminTest, MetricsCountWhatWasConsumedAndProducedAndPassPromtool) {
  testing::RunningApp running(filter_topology(), properties("admin-filter"));
  auto health = get(running.app(), "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  constexpr int kRecords = 1000;
  produce(kRecords);
  const auto samples = scrape_until(running.app(), [](const auto& s) {
    return sum_of(s, "streamrun_records_processed_total") >= kRecords &&
           sum_of(s, "streamrun_partition_lag_records") == 0 &&
           s.contains(
               "streamrun_partition_lag_records{task=\"0_0\",subtopology=\"0\",topic=\"orders\","
               "partition=\"0\"}");
  });
  EXPECT_EQ(sum_of(samples, "streamrun_records_processed_total"), kRecords);
  EXPECT_EQ(sum_of(samples, "streamrun_task_records_processed_total"), kRecords);
  EXPECT_EQ(sum_of(samples, "streamrun_records_produced_total"), kRecords / 2);
  EXPECT_EQ(sum_of(samples, "streamrun_task_records_produced_total"), kRecords / 2);
  EXPECT_EQ(sum_of(samples, "streamrun_active_tasks"), kPartitions);
  EXPECT_EQ(sum_of(samples, "streamrun_task_ready"), kPartitions);
  EXPECT_EQ(sum_of(samples, "streamrun_partition_lag_records"), 0);
  EXPECT_EQ(sum_of(samples, "streamrun_records_dead_lettered_total"), 0);
  // Per operator: the filter takes every record and passes on the even half to the sink.
  double filter_in = 0, filter_out = 0, sink_out = 0;
  for (const auto& [key, value] : samples) {
    if (key.find("node=\"filter-1\"") != std::string::npos) {
      filter_in += key.starts_with("streamrun_node_records_in_total{") ? value : 0;
      filter_out += key.starts_with("streamrun_node_records_out_total{") ? value : 0;
    }
    if (key.find("node=\"sink-2\"") != std::string::npos &&
        key.starts_with("streamrun_node_records_out_total{"))
      sink_out += value;
  }
  EXPECT_EQ(filter_in, kRecords);
  EXPECT_EQ(filter_out, kRecords / 2);
  EXPECT_EQ(sink_out, kRecords / 2);
  // Every record was timed (metrics.latency.sample.records=1).
  EXPECT_EQ(sum_of(samples, "streamrun_task_processing_latency_seconds_count"), kRecords);
  EXPECT_EQ(sum_of(samples, "streamrun_task_end_to_end_latency_seconds_count"), kRecords);

  auto ready = get(running.app(), "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;

  // The text as Prometheus' own checker sees it.
  auto metrics = get(running.app(), "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto file =
      std::filesystem::temp_directory_path() / fmt::format("admin-test-metrics-{}.txt", ::getpid());
  std::ofstream(file) << metrics->body;
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/promtool"))
      << "promtool is missing: install Debian's prometheus package (scripts/setup.sh does)";
  const auto command = fmt::format("/usr/bin/promtool check metrics < {} 2>&1", file.string());
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string said;
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr)
    said += buffer;
  EXPECT_EQ(pclose(pipe), 0) << said << "\n--- the text:\n" << metrics->body;
  std::filesystem::remove(file);
}

TEST_F(AdminTest, StatefulTasksReportTheirStateCommitsAndRestores) {
  std::filesystem::remove_all(state_dir("admin-count"));
  {
    testing::RunningApp running(count_topology(), properties("admin-count"));
    produce(200);
    const auto samples = scrape_until(running.app(), [](const auto& s) {
      return sum_of(s, "streamrun_records_processed_total") >= 200 &&
             sum_of(s, "streamrun_task_state_keys") >= 10 &&
             sum_of(s, "streamrun_commits_total") > 0;
    });
    EXPECT_EQ(sum_of(samples, "streamrun_records_processed_total"), 200);
    EXPECT_GT(sum_of(samples, "streamrun_task_state_bytes"), 0);
    // k0..k9; RocksDB estimates (an overwrite in a memtable may count twice).
    EXPECT_GE(sum_of(samples, "streamrun_task_state_keys"), 10);
    EXPECT_GT(sum_of(samples, "streamrun_state_cache_bytes"), 0);
    EXPECT_GT(sum_of(samples, "streamrun_commits_total"), 0);
    EXPECT_GT(sum_of(samples, "streamrun_commit_latency_seconds_count"), 0);
    ASSERT_TRUE(running.stop().ok());
  }
  // The local state is lost: the restart restores it from the changelogs, and says so.
  std::filesystem::remove_all(state_dir("admin-count"));
  testing::RunningApp restarted(count_topology(), properties("admin-count"));
  const auto samples = scrape_until(restarted.app(), [](const auto& s) {
    return sum_of(s, "streamrun_records_restored_total") >= 10 &&
           sum_of(s, "streamrun_task_ready") == kPartitions;
  });
  EXPECT_GE(sum_of(samples, "streamrun_records_restored_total"), 10);
  EXPECT_EQ(sum_of(samples, "streamrun_task_records_restored_total"),
            sum_of(samples, "streamrun_records_restored_total"));
  auto ready = get(restarted.app(), "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  ASSERT_TRUE(restarted.stop().ok());
  std::filesystem::remove_all(state_dir("admin-count"));
}

TEST_F(AdminTest, NonLoopbackNeedsAdminAllowRemote) {
  auto props = properties("admin-remote");
  props.set("admin.listen", "0.0.0.0:0");
  auto app = Application::create(filter_topology(), props);
  ASSERT_FALSE(app.ok());
  EXPECT_NE(app.error().message().find("admin.allow.remote"), std::string::npos)
      << app.error().message();
  props.set("admin.allow.remote", "true");
  EXPECT_TRUE(Application::create(filter_topology(), props).ok());
}

TEST_F(AdminTest, AnExplicitTakenPortIsAnErrorNamingIt) {
  testing::RunningApp first(filter_topology(), properties("admin-first"));
  ASSERT_TRUE(get(first.app(), "/healthz"));
  const auto taken = first.app().admin_address();
  ASSERT_TRUE(taken);
  auto props = properties("admin-second");
  props.set("admin.listen", *taken);
  auto app = Application::create(filter_topology(), props);
  ASSERT_TRUE(app.ok()) << app.error().message();
  const auto ran = (*app)->run();
  ASSERT_FALSE(ran.ok());
  EXPECT_NE(ran.error().message().find("cannot serve the admin endpoint on " + *taken),
            std::string::npos)
      << ran.error().message();
}

TEST_F(AdminTest, BadAdminListenIsAConfigurationError) {
  // application.server is where others are sent: a host and port, never a URL (its redirects
  // would be broken).
  const std::map<std::string, std::vector<std::string>> bad = {
      {"admin.listen", {"9095", "localhost:99999", "host:port", "http://127.0.0.1:9095"}},
      {"application.server", {"http://x:1", "x:0", "0", "x", "x:1/state"}},
  };
  for (const auto& [key, values] : bad) {
    for (const auto& value : values) {
      auto props = properties("admin-bad");
      props.set(key, value);
      auto app = Application::create(filter_topology(), props);
      ASSERT_FALSE(app.ok()) << key << "=" << value;
      EXPECT_NE(app.error().message().find(key), std::string::npos) << app.error().message();
    }
  }
}

}  // namespace
}  // namespace streamrun::runtime
