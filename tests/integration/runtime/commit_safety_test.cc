// Faults that used to stop commits for good or commit what was not durable: a send the client
// refuses at once, a stateful task that fails, partitions lost to a session timeout; and what
// start-up does with topics that are missing or cannot be created.

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>
#include <streamrun/testing/broker_fixture.h>

#include "support/kafka_test_util.h"
#include "support/running_app.h"

namespace streamrun::runtime {
namespace {

using namespace std::chrono_literals;
using kafka::Message;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::poll_until;
using testing::RunningApp;
using testing::send_waiting;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};

class CommitSafetyTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"in", 1},
            {"out", 1},
            {"other", 1},
            {"safety-dead-letter", 1},
            {"safety-seen-changelog", 1},
            {"lost-seen-changelog", 1}};
  }
  void SetUp() override {
    BrokerFixture::SetUp();
    state_dir_ = std::filesystem::temp_directory_path() /
                 ("streamrun-safety-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(state_dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(state_dir_);
    BrokerFixture::TearDown();
  }

  config::Properties properties(const std::string& app_id) const {
    return {{"application.id", app_id},
            {"bootstrap.servers", bootstrap_servers()},
            {"state.dir", state_dir_.string()},
            {"consumer.session.timeout.ms", "6000"},
            {"consumer.heartbeat.interval.ms", "500"},
            {"admin.timeout.ms", "500"},  // the development broker has no Admin API
            {"num.threads", "2"}};
  }

  void produce(const std::string& topic, const std::vector<std::string>& values,
               std::int32_t partition = 0) {
    auto producer = kafka::Producer::create(producer_properties()).value();
    for (const auto& value : values)
      send_waiting(*producer, {topic, partition, "k", value, {}, std::nullopt});
    ASSERT_TRUE(producer->flush(10s).ok());
  }

  // A record read back: what the tests look at.
  struct Read {
    std::optional<std::string> value;
    std::map<std::string, std::string> headers;
  };

  std::vector<Read> read_all(const std::string& topic, std::size_t expected,
                             std::chrono::seconds timeout = 30s) {
    auto consumer = kafka::Consumer::create(
                        consumer_properties("reader-" + std::to_string(++readers_)), nullptr)
                        .value();
    EXPECT_TRUE(consumer->subscribe({topic}).ok());
    std::vector<Read> read;
    poll_until(
        *consumer, [&] { return read.size() >= expected; },
        [&](const Message& m) {
          Read r;
          if (auto value = m.value())
            r.value = std::string(*value);
          for (auto& header : m.headers())
            r.headers[header.key] = header.value.value_or("");
          read.push_back(std::move(r));
        },
        timeout);
    return read;
  }

  std::optional<std::int64_t> committed(const std::string& group, const std::string& topic,
                                        std::int32_t partition = 0) {
    auto consumer = kafka::Consumer::create(consumer_properties(group), nullptr).value();
    auto offsets = consumer->committed({{TopicName(topic), PartitionId(partition)}}, 10s);
    EXPECT_TRUE(offsets.ok()) << offsets.error().message();
    if (!offsets || offsets->empty() || offsets->front().offset.value() < 0)
      return std::nullopt;
    return offsets->front().offset.value();
  }

  // "big" becomes a value larger than the producer accepts (message.max.bytes, 1 MB default).
  static Topology oversize_topology(bool stateful) {
    StreamBuilder builder;
    auto in = builder.stream("in", kStrings);
    in.map_values([](const std::string& v) { return v == "big" ? std::string(1'100'000, 'x') : v; },
                  "inflate")
        .to("out", kStrings);
    if (stateful) {
      in.group_by_key(kStrings).count("seen");
    }
    return builder.build();
  }

  void expect_oversize_record_is_dead_lettered_and_commits_reach_the_end(bool stateful) {
    produce("in", {"a", "big", "b", "c"});
    auto props = properties("safety");
    props.set("errors.policy", "dead_letter");
    {
      RunningApp app(oversize_topology(stateful), props);
      const auto outputs = read_all("out", 3);
      std::vector<std::string> values;
      for (const auto& m : outputs)
        values.push_back(m.value.value_or(""));
      EXPECT_THAT(values, ElementsAre("a", "b", "c"));
      const auto letters = read_all("safety-dead-letter", 1);
      ASSERT_EQ(letters.size(), 1u);
      EXPECT_EQ(letters[0].value, "big") << "the dead letter is the input record";
      EXPECT_THAT(letters[0].headers.at("streamrun.error.message"), HasSubstr("message.max.bytes"));
      EXPECT_EQ(letters[0].headers.at("streamrun.operator"), "sink-2");
      ASSERT_TRUE(app.stop().ok()) << "the stop neither hangs nor fails";
    }
    EXPECT_EQ(committed("safety", "in"), 4) << "every input committed, the oversize one too";
  }

  // Whether `condition` holds within `timeout`, observing another thread's progress.
  static bool eventually(const std::function<bool()>& condition,
                         std::chrono::seconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    return condition();
  }

  std::filesystem::path state_dir_;
  int readers_ = 0;
};

TEST_F(CommitSafetyTest, AnOversizeOutputIsDeadLetteredAndCommitsReachTheEnd) {
  expect_oversize_record_is_dead_lettered_and_commits_reach_the_end(/*stateful=*/false);
}

TEST_F(CommitSafetyTest, AnOversizeOutputOfAStatefulTaskDoesNotStopIt) {
  expect_oversize_record_is_dead_lettered_and_commits_reach_the_end(/*stateful=*/true);
}

// A state value too large for its changelog fails the record that wrote it, at the write (so
// its error policy applies), not the commit that would send it later.
TEST_F(CommitSafetyTest, AnOversizeStateValueIsDeadLetteredWhereItIsWritten) {
  produce("in", {"a", "big", "b", "c"});
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .group_by_key(kStrings)
      .reduce([](const std::string&,
                 const std::string& v) { return v == "big" ? std::string(1'100'000, 'x') : v; },
              "seen", "latest")
      .to_stream()
      .to("out", kStrings);
  auto props = properties("safety");
  props.set("errors.policy", "dead_letter");
  {
    RunningApp app(builder.build(), props);
    const auto letters = read_all("safety-dead-letter", 1);
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_EQ(letters[0].value, "big") << "the dead letter is the input record";
    EXPECT_THAT(letters[0].headers.at("streamrun.error.message"), HasSubstr("message.max.bytes"));
    EXPECT_EQ(letters[0].headers.at("streamrun.operator"), "latest");
    const auto outputs = read_all("out", 3);
    std::vector<std::string> values;
    for (const auto& m : outputs)
      values.push_back(m.value.value_or(""));
    EXPECT_THAT(values, ElementsAre("a", "b", "c")) << "the first record's value is kept";
    ASSERT_TRUE(app.stop().ok()) << "the pipeline goes on and stops cleanly";
  }
  EXPECT_EQ(committed("safety", "in"), 4) << "every input committed, the oversize one too";
}

TEST_F(CommitSafetyTest, AFailedStatefulTaskCommitsNoOffsetItsStateDoesNotHold) {
  // No periodic commit within the test: whatever is committed comes from the task's end.
  std::vector<std::string> values;
  for (int i = 0; i < 10; ++i)
    values.push_back("v" + std::to_string(i));
  values.emplace_back("poison");
  produce("in", values);
  StreamBuilder builder;
  builder.stream("in", kStrings)
      .map_values(
          [](const std::string& v) {
            if (v == "poison")
              throw std::runtime_error("cannot handle 'poison'");
            return v;
          },
          "check")
      .group_by_key(kStrings)
      .count("seen");
  auto props = properties("safety");
  props.set("commit.interval.ms", "3600000");
  RunningApp app(builder.build(), props);
  ASSERT_FALSE(app.wait().ok()) << "the poison record fails the task";
  const auto offset = committed("safety", "in");
  EXPECT_FALSE(offset.has_value())
      << "ten records were processed but never made durable with the state; committed: "
      << offset.value_or(-1);
}

class LostPartitionTest : public CommitSafetyTest {
 protected:
  int broker_count() const override { return 2; }
};

TEST_F(LostPartitionTest, ATaskWhosePartitionsAreLostWritesNothingMore) {
  // Two brokers: the group's coordinator on broker 2, everything else on broker 1. With the
  // coordinator down past the session timeout the member's partitions are lost.
  StreamBuilder builder;
  builder.stream("other", kStrings).group_by_key(kStrings).count("seen");
  for (const char* topic : {"other", "lost-seen-changelog"})
    ASSERT_TRUE(broker().set_partition_leader(topic, 0, 1).ok());
  ASSERT_TRUE(broker().set_group_coordinator("lost", 2).ok());
  for (int reader = 1; reader <= 3; ++reader)
    ASSERT_TRUE(broker().set_group_coordinator("reader-" + std::to_string(reader), 1).ok());
  auto props = properties("lost");
  props.set("commit.interval.ms", "3600000");  // only a task's end would write a marker
  RunningApp app(builder.build(), props);
  produce("other", {"a", "b", "c"});
  ASSERT_TRUE(eventually([&] { return app.app().stats().records_processed == 3; }));
  ASSERT_TRUE(broker().set_broker_down(2).ok());
  ASSERT_TRUE(eventually([&] { return app.app().stats().active_tasks == 0; }))
      << "the session timed out and the partition was lost";
  // Nothing was written to the changelog after the loss: not the three counts the task held
  // back for its next commit, and no commit marker.
  const auto changelog = read_all("lost-seen-changelog", 4, 5s);
  int markers = 0;
  for (const auto& m : changelog)
    markers += m.headers.contains("streamrun.commit") ? 1 : 0;
  EXPECT_EQ(changelog.size(), 0u)
      << "stores hold their changes until a commit, and a lost task never commits or flushes";
  EXPECT_EQ(markers, 0) << "a lost task must not write its commit marker";
  ASSERT_TRUE(broker().set_broker_up(2).ok());
  ASSERT_TRUE(app.stop().ok());
}

TEST_F(CommitSafetyTest, StateAheadOfTheGroupsOffsetsIsCommittedWithoutNewRecords) {
  // A process killed between its local commit and its Kafka commit leaves the group's offset
  // behind the state. The restarted task resumes from its state, and must also bring the
  // group's offset up to it, even when no new record arrives (else the lag never goes away).
  produce("in", {"a", "b", "c", "d", "e", "f"});
  StreamBuilder builder;
  builder.stream("in", kStrings).group_by_key(kStrings).count("seen");
  {
    RunningApp app(builder.build(), properties("safety"));
    ASSERT_TRUE(eventually([&] { return app.app().stats().records_processed == 6; }));
    ASSERT_TRUE(app.stop().ok());
  }
  ASSERT_EQ(committed("safety", "in"), 6);
  {
    // The kill: the group's offset as it was before the last Kafka commit. (The development
    // broker takes commits from group members only, so this one joins first.)
    struct Joined : kafka::RebalanceListener {
      bool assigned = false;
      void on_assigned(const std::vector<TopicPartition>&, kafka::StartOffsets&) override {
        assigned = true;
      }
      void on_revoked(const std::vector<TopicPartition>&) override {}
    } joined;
    auto group = kafka::Consumer::create(consumer_properties("safety"), &joined).value();
    ASSERT_TRUE(group->subscribe({"in"}).ok());
    poll_until(
        *group, [&] { return joined.assigned; }, [](const Message&) {}, 30s);
    ASSERT_TRUE(joined.assigned);
    auto reset = group->commit({{{TopicName("in"), PartitionId(0)}, Offset(2)}});
    ASSERT_TRUE(reset.ok()) << reset.error().message();
    ASSERT_TRUE(group->close().ok());
  }
  ASSERT_EQ(committed("safety", "in"), 2);
  RunningApp restarted(builder.build(), properties("safety"));
  EXPECT_TRUE(eventually([&] { return committed("safety", "in") == 6; }))
      << "the group's offset stayed at " << committed("safety", "in").value_or(-1);
  EXPECT_EQ(restarted.app().stats().records_processed, 0) << "nothing is processed twice";
  ASSERT_TRUE(restarted.stop().ok());
}

TEST_F(CommitSafetyTest, AMissingSourceTopicIsNamedAndNotCreated) {
  StreamBuilder builder;
  builder.stream("ordrs", kStrings).to("out", kStrings);
  auto app = Application::create(builder.build(), properties("typo"));
  ASSERT_FALSE(app.ok());
  EXPECT_THAT(app.error().message(),
              HasSubstr("source topic 'ordrs' of the topology does not exist on"));
  auto producer = kafka::Producer::create(producer_properties()).value();
  auto listed = producer->list_topics(10s);
  ASSERT_TRUE(listed.ok());
  EXPECT_FALSE(listed->contains("ordrs")) << "asking about it must not create it";
}

TEST_F(CommitSafetyTest, ABrokerWithoutTheAdminApiIsAskedOnceForAllInternalTopics) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200);
  log::get("runtime")->sinks().push_back(sink);
  StreamBuilder builder;
  auto in = builder.stream("in", kStrings);
  in.key_by([](const std::string&, const std::string& v) { return v; })
      .group_by_key(kStrings, "by-value")
      .count("per-value");
  in.group_by_key(kStrings).count("per-key");
  auto props = properties("admin");
  props.set("errors.policy", "dead_letter");
  {
    auto app = Application::create(builder.build(), props);
    ASSERT_TRUE(app.ok()) << app.error().message();
  }
  log::get("runtime")->sinks().pop_back();
  int admin_warnings = 0;
  for (const auto& line : sink->last_formatted()) {
    if (line.find("did not create topics through its Admin API") != std::string::npos) {
      ++admin_warnings;
      EXPECT_THAT(line, HasSubstr("'admin-by-value-repartition'"));
      EXPECT_THAT(line, HasSubstr("'admin-per-key-changelog'"));
      EXPECT_THAT(line, HasSubstr("'admin-dead-letter'"));
    }
  }
  EXPECT_EQ(admin_warnings, 1) << "one request for every missing internal topic, one warning";
}

}  // namespace
}  // namespace streamrun::runtime
