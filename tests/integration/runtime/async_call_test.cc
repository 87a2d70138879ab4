// A stateful task whose records also pass an async call: each record is counted in a store at
// once and confirmed by a call later. Its commits never cover a record whose call is still held,
// and a stop with calls held keeps the last commit (the state counted those records already): a
// restart counts every record exactly once, though some calls are made twice (at-least-once
// toward the service).

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

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
using testing::poll_until;
using testing::RunningApp;
using testing::send_waiting;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};

// A service on its own thread: answers each call after a random 0-20 ms (so answers come out of
// order), or holds the calls it gets once told to answer no more.
class Endpoint {
 public:
  Endpoint() : thread_([this] { serve(); }) {}
  ~Endpoint() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // From now on, answer only `more` further calls; hold the rest unanswered.
  void answer_only(int more) {
    std::lock_guard lock(mutex_);
    budget_ = more;
  }
  void answer_all() {
    std::lock_guard lock(mutex_);
    budget_ = -1;
  }
  [[nodiscard]] std::map<std::string, int> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  [[nodiscard]] int held() const {
    std::lock_guard lock(mutex_);
    return held_;
  }

  std::function<void(const Record<std::string, std::string>&, CallCompletion<std::string>)>
  function() {
    return [this](const Record<std::string, std::string>& record,
                  CallCompletion<std::string> completion) {
      std::lock_guard lock(mutex_);
      ++calls_[record.value];
      if (budget_ == 0) {
        ++held_;  // dropped unanswered, as by a service that hangs
        return;
      }
      if (budget_ > 0)
        --budget_;
      const auto due =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_(random_));
      pending_.push_back({due, record.value, std::move(completion)});
      wake_.notify_all();
    };
  }

 private:
  struct Pending {
    std::chrono::steady_clock::time_point due;
    std::string value;
    CallCompletion<std::string> completion;
  };

  void serve() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (pending_.empty()) {
        wake_.wait(lock);
        continue;
      }
      auto first = std::min_element(pending_.begin(), pending_.end(),
                                    [](const auto& a, const auto& b) { return a.due < b.due; });
      if (std::chrono::steady_clock::now() < first->due) {
        wake_.wait_until(lock, first->due);
        continue;
      }
      auto call = std::move(*first);
      pending_.erase(first);
      call.completion.succeed(call.value);
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> pending_;
  std::map<std::string, int> calls_;
  int budget_ = -1;
  int held_ = 0;
  bool stopping_ = false;
  std::mt19937 random_{7};
  std::uniform_int_distribution<int> delay_{0, 20};
  std::thread thread_;
};

class AsyncCallStateTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"in", 1}, {"out", 1}, {"confirmed", 1}, {"calls-seen-changelog", 1}};
  }
  void SetUp() override {
    BrokerFixture::SetUp();
    state_dir_ = std::filesystem::temp_directory_path() /
                 ("streamrun-calls-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(state_dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(state_dir_);
    BrokerFixture::TearDown();
  }

  config::Properties properties() const {
    return {{"application.id", "calls"},
            {"bootstrap.servers", bootstrap_servers()},
            {"state.dir", state_dir_.string()},
            {"consumer.session.timeout.ms", "6000"},
            {"consumer.heartbeat.interval.ms", "500"},
            {"admin.timeout.ms", "500"},  // the development broker has no Admin API
            // Commits fall due all the time, with calls held nearly always.
            {"commit.interval.ms", "50"},
            {"shutdown.timeout.ms", "1000"}};
  }

  Topology topology() {
    AsyncCallOptions options;
    options.capacity = 16;
    options.timeout = 60s;  // held calls stay held; none is retried
    StreamBuilder builder;
    auto in = builder.stream("in", kStrings);
    in.group_by_key(kStrings).count("seen").to_stream().to("out",
                                                           {serdes::string(), serdes::int64()});
    in.call_async<std::string>(endpoint_.function(), options, "confirm").to("confirmed", kStrings);
    return builder.build();
  }

  void produce(const std::string& prefix, int count) {
    auto producer = kafka::Producer::create(producer_properties()).value();
    for (int i = 0; i < count; ++i)
      send_waiting(*producer, {"in", 0, "k", prefix + std::to_string(i), {}, std::nullopt});
    ASSERT_TRUE(producer->flush(10s).ok());
  }

  std::optional<std::int64_t> committed() {
    auto consumer = kafka::Consumer::create(consumer_properties("calls"), nullptr).value();
    auto offsets = consumer->committed({{TopicName("in"), PartitionId(0)}}, 10s);
    EXPECT_TRUE(offsets.ok()) << offsets.error().message();
    if (!offsets || offsets->empty() || offsets->front().offset.value() < 0)
      return std::nullopt;
    return offsets->front().offset.value();
  }

  // Reads counts from "out" until one is `count`; every count read is kept in counts_.
  bool read_until_count(std::int64_t count) {
    return poll_until(
        *reader_, [&] { return counts_.contains(count); },
        [&](const kafka::Message& m) { ++counts_[serdes::int64().deserialize(m.value())]; });
  }

  Endpoint endpoint_;
  std::filesystem::path state_dir_;
  std::unique_ptr<kafka::Consumer> reader_;
  std::map<std::int64_t, int> counts_;  // count -> times seen on "out"
};

TEST_F(AsyncCallStateTest, AStopWithCallsHeldKeepsTheLastCommitAndARestartCountsEachRecordOnce) {
  reader_ = kafka::Consumer::create(consumer_properties("reader"), nullptr).value();
  ASSERT_TRUE(reader_->subscribe({"out"}).ok());

  // 1. Every call answered: the count reaches every record, and the stop commits all of them.
  produce("a", 300);
  {
    RunningApp app(topology(), properties());
    ASSERT_TRUE(read_until_count(300)) << "counts read: " << counts_.size();
    ASSERT_TRUE(app.stop().ok());
  }
  ASSERT_EQ(committed(), 300);

  // 2. The service answers 20 more calls, then hangs: the next calls are held, their records
  //    already counted. The task takes no more once it holds 16 (the capacity), or sooner, once
  //    a commit is due (a stateful task commits only with no calls held). The stop finds calls
  //    held: no offset past them is committed, and neither is the state that counted them.
  endpoint_.answer_only(20);
  produce("b", 50);
  {
    RunningApp app(topology(), properties());
    ASSERT_TRUE(read_until_count(321)) << "counts read: " << counts_.size();
    ASSERT_TRUE(app.stop().ok()) << "a stop with calls held does not hang";
  }
  EXPECT_GE(endpoint_.held(), 1);
  EXPECT_LE(endpoint_.held(), 16);
  EXPECT_FALSE(counts_.contains(337)) << "a task at capacity took another record";
  const auto after_hang = committed();
  ASSERT_TRUE(after_hang.has_value());
  EXPECT_GE(*after_hang, 300);
  EXPECT_LE(*after_hang, 320) << "an offset past a held call was committed";

  // 3. The service is back: a restart counts the 50 records once each, some of them called twice.
  endpoint_.answer_all();
  {
    RunningApp app(topology(), properties());
    ASSERT_TRUE(read_until_count(350)) << "counts read: " << counts_.size();
    ASSERT_TRUE(app.stop().ok());
  }
  EXPECT_EQ(committed(), 350);
  EXPECT_EQ(counts_.rbegin()->first, 350) << "a record was counted twice";
  for (std::int64_t count = 1; count <= 350; ++count)
    EXPECT_TRUE(counts_.contains(count)) << "count " << count << " never written";

  const auto calls = endpoint_.calls();
  EXPECT_EQ(calls.size(), 350u) << "every record called, nothing else";
  int repeated = 0;
  for (const auto& [value, times] : calls)
    repeated += times > 1 ? 1 : 0;
  EXPECT_GE(repeated, 16) << "the held calls are made again after the restart";

  // Every record confirmed (some twice): nothing lost on the way through the call.
  auto confirmations =
      kafka::Consumer::create(consumer_properties("confirmations"), nullptr).value();
  ASSERT_TRUE(confirmations->subscribe({"confirmed"}).ok());
  std::set<std::string> confirmed;
  EXPECT_TRUE(poll_until(
      *confirmations, [&] { return confirmed.size() >= 350; },
      [&](const kafka::Message& m) { confirmed.insert(std::string(m.value().value_or(""))); }))
      << confirmed.size() << " of 350 records confirmed";
}

}  // namespace
}  // namespace streamrun::runtime
