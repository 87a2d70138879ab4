#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_fixture.h>

#include "support/kafka_test_util.h"

namespace streamrun::kafka {
namespace {

using namespace std::chrono_literals;

// Who owns which partition, across all members; any overlap is recorded as a violation.
class OwnershipLedger {
 public:
  void acquire(int member, const std::vector<TopicPartition>& partitions) {
    std::lock_guard lock(mutex_);
    for (const auto& tp : partitions) {
      auto [it, fresh] = owner_.emplace(tp, member);
      if (!fresh && it->second != member) {
        violations_.push_back(fmt::format("{} assigned to member {} while member {} owns it",
                                          to_string(tp), member, it->second));
      }
      it->second = member;
    }
  }
  void release(int member, const std::vector<TopicPartition>& partitions) {
    std::lock_guard lock(mutex_);
    for (const auto& tp : partitions) {
      if (auto it = owner_.find(tp); it != owner_.end() && it->second == member)
        owner_.erase(it);
    }
  }
  void consumed(int member, const Message& message) {
    std::lock_guard lock(mutex_);
    auto it = owner_.find(message.topic_partition());
    if (it == owner_.end() || it->second != member) {
      violations_.push_back(fmt::format("member {} consumed {} offset {} without owning it ({})",
                                        member, to_string(message.topic_partition()),
                                        message.offset().value(),
                                        it == owner_.end() ? -1 : it->second));
    }
    if (!records_.emplace(message.partition().value(), message.offset().value()).second) {
      ++duplicates_;
      if (!after_failed_commit_locked(message)) {
        violations_.push_back(
            fmt::format("member {} got {} offset {} again although it was committed", member,
                        to_string(message.topic_partition()), message.offset().value()));
      }
    }
  }
  // A member gave up `tp` without committing [from, to): those records may come again.
  void uncommitted(const TopicPartition& tp, std::int64_t from, std::int64_t to) {
    std::lock_guard lock(mutex_);
    uncommitted_.push_back({tp, from, to});
  }
  std::size_t uncommitted_ranges() const {
    std::lock_guard lock(mutex_);
    return uncommitted_.size();
  }
  std::vector<std::string> violations() const {
    std::lock_guard lock(mutex_);
    return violations_;
  }
  std::size_t distinct_records() const {
    std::lock_guard lock(mutex_);
    return records_.size();
  }
  int duplicates() const {
    std::lock_guard lock(mutex_);
    return duplicates_;
  }

 private:
  struct Range {
    TopicPartition tp;
    std::int64_t from;
    std::int64_t to;
  };
  bool after_failed_commit_locked(const Message& message) const {
    const auto offset = message.offset().value();
    return std::any_of(uncommitted_.begin(), uncommitted_.end(), [&](const Range& range) {
      return range.tp == message.topic_partition() && offset >= range.from && offset < range.to;
    });
  }

  mutable std::mutex mutex_;
  std::vector<Range> uncommitted_;
  std::map<TopicPartition, int> owner_;
  std::vector<std::string> violations_;
  std::set<std::pair<int, std::int64_t>> records_;
  int duplicates_ = 0;
};

// One group member on its own thread: consumes, and commits what it consumed whenever
// partitions are revoked. (No periodic commits: on the development broker a commit that lands
// while the group is syncing makes the client rejoin, which restarts the rebalance.)
class Member : public RebalanceListener {
 public:
  Member(int id, const ClientProperties& properties, OwnershipLedger& ledger)
      : id_(id), ledger_(ledger) {
    auto consumer = Consumer::create(properties, this);
    EXPECT_TRUE(consumer.ok()) << consumer.error().message();
    consumer_ = std::move(consumer).value();
    EXPECT_TRUE(consumer_->subscribe({"shared"}).ok());
    thread_ = std::thread([this] { run(); });
  }
  ~Member() override { stop(); }

  void stop() {
    running_ = false;
    if (thread_.joinable())
      thread_.join();
  }
  // Asks the member to commit everything it consumed while the group is stable; returns once
  // the commit is done. (The development broker refuses commits while a rebalance is pending,
  // so members commit before anyone leaves, as the runtime's graceful stop does.)
  // Returns whether a commit succeeded within the timeout: a commit the broker refuses while a
  // rebalance settles is retried (the member keeps polling, so the rebalance completes).
  bool commit_now(std::chrono::seconds timeout = 30s) {
    commit_succeeded_ = false;
    commit_requested_ = true;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (commit_requested_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);  // observing the member's thread
    }
    commit_requested_ = false;
    return commit_succeeded_;
  }
  std::size_t owned() const { return owned_count_.load(); }

  void on_assigned(const std::vector<TopicPartition>& partitions, StartOffsets&) override {
    ledger_.acquire(id_, partitions);
    owned_count_ += partitions.size();
  }
  void on_revoked(const std::vector<TopicPartition>& partitions) override {
    std::vector<PartitionOffset> commits;
    for (const auto& tp : partitions) {
      if (auto it = next_.find(tp); it != next_.end() && committed_[tp] != it->second) {
        commits.push_back({tp, it->second});
      }
    }
    if (!commit(commits)) {
      // The development broker refuses commits while a rebalance is pending (Kafka accepts them
      // from the current generation), so what was consumed since the last commit may be
      // consumed again by the next owner: at-least-once, and the ledger knows the range.
      for (const auto& po : commits) {
        const auto last = committed_.find(po.topic_partition);
        ledger_.uncommitted(po.topic_partition, last == committed_.end() ? 0 : last->second.value(),
                            po.offset.value());
      }
    }
    ledger_.release(id_, partitions);
    owned_count_ -= partitions.size();
  }

 private:
  void run() {
    std::vector<Message> batch;
    while (running_) {
      batch.clear();
      auto polled = consumer_->poll(batch, 200, 20ms);
      EXPECT_TRUE(polled.ok()) << polled.error().message();
      for (const auto& message : batch) {
        ledger_.consumed(id_, message);
        next_[message.topic_partition()] = Offset(message.offset().value() + 1);
      }
      if (commit_requested_) {
        std::vector<PartitionOffset> commits;
        for (const auto& tp : consumer_->assignment()) {
          if (auto it = next_.find(tp); it != next_.end())
            commits.push_back({tp, it->second});
        }
        if (commit(commits)) {
          commit_succeeded_ = true;
          commit_requested_ = false;
        }
      }
    }
    EXPECT_TRUE(consumer_->close().ok());  // revokes (and so commits) what is left
  }

  bool commit(const std::vector<PartitionOffset>& offsets) {
    auto committed = consumer_->commit(offsets);
    if (!committed)
      return false;
    for (const auto& po : offsets)
      committed_[po.topic_partition] = po.offset;
    return true;
  }

  int id_;
  OwnershipLedger& ledger_;
  std::map<TopicPartition, Offset> committed_;
  std::atomic<bool> commit_requested_{false};
  std::atomic<bool> commit_succeeded_{false};
  std::unique_ptr<Consumer> consumer_;
  std::map<TopicPartition, Offset> next_;
  std::atomic<bool> running_{true};
  std::atomic<std::size_t> owned_count_{0};
  std::thread thread_;
};

class ConsumerGroupTest : public testing::BrokerFixture {
 protected:
  std::vector<TopicSpec> topics() const override { return {{"shared", 6}}; }
};

bool eventually(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(20ms);  // observing other threads; no event to wait on
  }
  return true;
}

TEST_F(ConsumerGroupTest, MembersSplitPartitionsAndAJoinerNeverCausesDoubleOwnership) {
  auto producer = Producer::create(producer_properties());
  ASSERT_TRUE(producer.ok());
  std::atomic<int> produced{0};
  std::atomic<bool> producing{true};
  // Records keep flowing through every rebalance, so that a double owner would show.
  std::thread writer([&] {
    while (producing) {
      for (int i = 0; i < 100; ++i) {
        const auto key = fmt::format("k{}", produced.load() + i);
        testing::send_waiting(**producer, {"shared", std::nullopt, key, key, {}, std::nullopt});
      }
      produced += 100;
      (*producer)->poll();
      std::this_thread::sleep_for(10ms);  // about 10k records/s: a steady stream, not a flood
    }
    EXPECT_TRUE((*producer)->flush(10s).ok());
  });

  OwnershipLedger ledger;
  auto properties = consumer_properties("splitters");
  if (const char* debug = std::getenv("KAFKA_DEBUG"))
    properties["debug"] = debug;
  auto first = std::make_unique<Member>(1, properties, ledger);
  auto second = std::make_unique<Member>(2, properties, ledger);
  ASSERT_TRUE(eventually(
      [&] {
        return first->owned() + second->owned() == 6 && first->owned() > 0 && second->owned() > 0;
      },
      60s))
      << "two members should split 6 partitions, have " << first->owned() << " + "
      << second->owned();

  auto third = std::make_unique<Member>(3, properties, ledger);
  ASSERT_TRUE(eventually(
      [&] {
        return third->owned() > 0 && first->owned() > 0 && second->owned() > 0 &&
               first->owned() + second->owned() + third->owned() == 6;
      },
      60s))
      << "the joiner should get its share: " << first->owned() << " + " << second->owned() << " + "
      << third->owned();

  producing = false;
  writer.join();
  // Every record is consumed by someone before the members stop.
  ASSERT_TRUE(eventually(
      [&] { return ledger.distinct_records() >= static_cast<std::size_t>(produced.load()); }, 60s))
      << ledger.distinct_records() << " of " << produced.load();
  for (auto* member : {first.get(), second.get(), third.get()}) {
    EXPECT_TRUE(member->commit_now()) << "once the group settles, a member's commit succeeds";
  }
  third->stop();
  second->stop();
  first->stop();

  EXPECT_EQ(ledger.violations(), std::vector<std::string>{});
  EXPECT_EQ(ledger.distinct_records(), static_cast<std::size_t>(produced.load()));
  // Redelivery is allowed only for records after a member's last successful commit; the
  // ledger turned any other duplicate into a violation above.
  std::cout << "records: " << produced.load()
            << ", redelivered after a refused commit: " << ledger.duplicates() << " ("
            << ledger.uncommitted_ranges() << " ranges)\n";
}

}  // namespace
}  // namespace streamrun::kafka
