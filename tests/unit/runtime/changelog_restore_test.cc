// Restore semantics against a scripted changelog: what a task's state looks like after reading
// its changelogs, whatever a crash left in them.

#include <filesystem>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <streamrun/base/errc.h>

#include "changelog.h"

namespace streamrun::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const TopicPartition kCounts{TopicName("app-counts-changelog"), PartitionId(2)};
const TopicPartition kSeen{TopicName("app-seen-changelog"), PartitionId(2)};
const TopicPartition kInput{TopicName("clicks"), PartitionId(2)};

// Partitions as scripted lists of records; reads hand out a few records at a time.
class ScriptedChangelogs final : public ChangelogSource {
 public:
  void put(const TopicPartition& tp, std::string key, std::optional<std::string> value) {
    auto& log = logs_[tp];
    log.push_back({next_offset(tp), std::move(key), std::move(value), false});
  }
  void marker(const TopicPartition& tp, const std::map<std::string, std::int64_t>& entries) {
    auto& log = logs_[tp];
    log.push_back({next_offset(tp), std::string(kCommitMarkerKey), encode_marker(entries), true});
  }
  void truncate_front(const TopicPartition& tp, std::int64_t low) { low_[tp] = low; }
  std::int64_t next_offset(const TopicPartition& tp) {
    return static_cast<std::int64_t>(logs_[tp].size());
  }
  int records_read = 0;
  std::int64_t lowest_offset_read = std::numeric_limits<std::int64_t>::max();
  // Set once this many records have been read (a stop during restore).
  std::atomic<bool>* stop_after_flag = nullptr;
  int stop_after = 0;

  Result<std::pair<std::int64_t, std::int64_t>> bounds(const TopicPartition& tp) override {
    return std::pair{low_[tp], next_offset(tp)};
  }
  Result<void> seek(const TopicPartition& tp, std::int64_t offset) override {
    current_ = tp;
    cursor_ = offset;
    return {};
  }
  Result<void> read(std::vector<ChangelogRecord>& out) override {
    const auto& log = logs_[current_];
    for (int i = 0; i < 3 && cursor_ < static_cast<std::int64_t>(log.size()); ++i, ++cursor_) {
      out.push_back(log[static_cast<std::size_t>(cursor_)]);
      lowest_offset_read = std::min(lowest_offset_read, cursor_);
      if (++records_read == stop_after && stop_after_flag != nullptr)
        *stop_after_flag = true;
    }
    return {};
  }

 private:
  std::map<TopicPartition, std::vector<ChangelogRecord>> logs_;
  std::map<TopicPartition, std::int64_t> low_;
  TopicPartition current_;
  std::int64_t cursor_ = 0;
};

class ChangelogRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("streamrun-restore-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    environment_ = state::StateEnvironment::create({root_, "app", 32u << 20}).value();
    reopen();
  }
  void TearDown() override {
    state_.reset();
    environment_.reset();
    std::filesystem::remove_all(root_);
  }
  void reopen() {
    state_.reset();
    state_ = state::TaskState::open(environment_, "0_2", {"counts", "seen"}).value();
  }

  Result<RestoreOutcome> restore(std::vector<StoreChangelog> stores = {{"counts", kCounts}}) {
    return restore_task_state(*state_, stores, changelogs_, stop_, logger_);
  }
  std::optional<std::string> get(std::string_view store, std::string_view key) {
    return state_->store(store).get(key);
  }
  std::optional<std::int64_t> meta(const std::string& key) {
    const auto& offsets = state_->committed_offsets();
    auto it = offsets.find(key);
    return it == offsets.end() ? std::nullopt : std::optional(it->second);
  }

  std::filesystem::path root_;
  std::shared_ptr<state::StateEnvironment> environment_;
  std::unique_ptr<state::TaskState> state_;
  ScriptedChangelogs changelogs_;
  std::atomic<bool> stop_{false};
  spdlog::logger logger_{"test", std::make_shared<spdlog::sinks::null_sink_mt>()};
};

TEST(CommitMarker, RoundTripsItsEntries) {
  const std::map<std::string, std::int64_t> entries{{"clicks/2", 42}, {"end:x-changelog/2", 7}};
  EXPECT_EQ(decode_marker(encode_marker(entries)).value(), entries);
  EXPECT_FALSE(decode_marker("clicks/2=forty-two\n").ok());
  EXPECT_FALSE(decode_marker("no equals sign\n").ok());
}

TEST_F(ChangelogRestoreTest, AppliesEverythingUpToTheLastMarkerAndDiscardsTheRest) {
  changelogs_.put(kCounts, "alice", "1");
  changelogs_.put(kCounts, "bob", "1");
  changelogs_.marker(kCounts, {{position_key(kInput), 2}});
  changelogs_.put(kCounts, "alice", "2");
  changelogs_.put(kCounts, "bob", std::nullopt);
  changelogs_.marker(kCounts, {{position_key(kInput), 4}});
  // A crash after these: their input records will be processed again.
  changelogs_.put(kCounts, "alice", "3");
  changelogs_.put(kCounts, "carol", "1");

  auto outcome = restore();
  ASSERT_TRUE(outcome.ok()) << outcome.error().message();
  EXPECT_EQ(get("counts", "alice"), "2");
  EXPECT_EQ(get("counts", "bob"), std::nullopt);
  EXPECT_EQ(get("counts", "carol"), std::nullopt);
  EXPECT_EQ(meta(position_key(kInput)), 4) << "resume after the last committed input";
  EXPECT_EQ(outcome->entries_applied, 4);
  EXPECT_EQ(outcome->entries_discarded, 2);
  EXPECT_THAT(outcome->to_rewrite["counts"], ElementsAre("alice", "carol"));
  EXPECT_EQ(outcome->changelog_ends["counts"], 6) << "just after the last marker";
  EXPECT_FALSE(state_->has_uncommitted()) << "the restored state is durable";
}

TEST_F(ChangelogRestoreTest, NoMarkerMeansNothingWasCommitted) {
  changelogs_.put(kCounts, "alice", "1");
  auto outcome = restore();
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(get("counts", "alice"), std::nullopt);
  EXPECT_EQ(meta(position_key(kInput)), std::nullopt);
  EXPECT_THAT(outcome->to_rewrite["counts"], ElementsAre("alice"));
}

TEST_F(ChangelogRestoreTest, ARestartReadsOnlyWhatFollowsItsLocalState) {
  changelogs_.put(kCounts, "alice", "1");
  changelogs_.marker(kCounts, {{position_key(kInput), 1}});
  ASSERT_TRUE(restore().ok());
  reopen();
  // A commit whose marker reached Kafka but whose local write did not (killed in between).
  changelogs_.put(kCounts, "alice", "2");
  changelogs_.marker(kCounts, {{position_key(kInput), 2}});
  changelogs_.lowest_offset_read = std::numeric_limits<std::int64_t>::max();

  auto outcome = restore();
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(changelogs_.lowest_offset_read, 2)
      << "only the entries after the local state's position";
  EXPECT_EQ(get("counts", "alice"), "2");
  EXPECT_EQ(meta(position_key(kInput)), 2) << "ahead of the local commit, as the changelog says";
}

TEST_F(ChangelogRestoreTest, OtherStoresStopWhereTheLastMarkerSaysTheyEnded) {
  changelogs_.put(kSeen, "alice", "x");    // offset 0
  changelogs_.put(kCounts, "alice", "1");  // offset 0
  changelogs_.marker(kCounts, {{position_key(kInput), 1}, {end_key(kSeen), 1}});
  changelogs_.put(kSeen, "bob", "y");  // offset 1: after the commit
  changelogs_.put(kSeen, "alice", std::nullopt);

  auto outcome = restore({{"counts", kCounts}, {"seen", kSeen}});
  ASSERT_TRUE(outcome.ok()) << outcome.error().message();
  EXPECT_EQ(get("seen", "alice"), "x");
  EXPECT_EQ(get("seen", "bob"), std::nullopt);
  EXPECT_THAT(outcome->to_rewrite["seen"], ElementsAre("alice", "bob"));
  EXPECT_EQ(outcome->changelog_ends["seen"], 1);
  EXPECT_EQ(meta(position_key(kSeen)), 1) << "the discarded entries are read again next time";
}

TEST_F(ChangelogRestoreTest, LocalStateAheadOfItsChangelogIsNotOverwritten) {
  changelogs_.put(kCounts, "alice", "1");
  changelogs_.marker(kCounts, {{position_key(kInput), 1}});
  ASSERT_TRUE(restore().ok());
  ScriptedChangelogs recreated;  // the changelog topic was deleted and created again
  auto outcome = restore_task_state(*state_, {{"counts", kCounts}}, recreated, stop_, logger_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code(), make_error_code(state::errc::unusable));
  EXPECT_THAT(outcome.error().message(), HasSubstr("app-counts-changelog[2]"));
  EXPECT_THAT(outcome.error().message(),
              HasSubstr("in '" + state_->directory().string() + "' has read it up to offset 2"))
      << "says where the state is";
  EXPECT_THAT(outcome.error().message(), HasSubstr("To keep it, restore the changelog topic"));
  EXPECT_THAT(outcome.error().message(),
              HasSubstr("To start over, stop every instance of the application, delete '" +
                        state_->directory().string() + "'"))
      << "and what to do about it";
  EXPECT_EQ(get("counts", "alice"), "1");
}

TEST_F(ChangelogRestoreTest, StopCancelsARestore) {
  for (int i = 0; i < 100; ++i)
    changelogs_.put(kCounts, "k" + std::to_string(i), "1");
  stop_ = true;
  auto outcome = restore();
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code(), make_error_code(errc::cancelled));
}

TEST_F(ChangelogRestoreTest, ALongCommitIsAppliedInBatchesNotHeldUntilItsMarker) {
  // One commit of 50k entries (a first commit after a long run, or a large batch): restore
  // must not hold them all in memory until the marker arrives. Stopping it part-way shows what
  // it had already made durable, and a second run picks up from there.
  constexpr int kEntries = 50'000;
  for (int i = 0; i < kEntries; ++i)
    changelogs_.put(kCounts, "k" + std::to_string(i), std::to_string(i));
  changelogs_.marker(kCounts, {{position_key(kInput), 7}});
  changelogs_.put(kCounts, "k0", "after the commit");

  changelogs_.stop_after_flag = &stop_;
  changelogs_.stop_after = 45'000;  // the backward scan for the marker, then most entries
  auto cancelled = restore();
  ASSERT_FALSE(cancelled.ok());
  reopen();
  EXPECT_GE(meta(position_key(kCounts)).value_or(0), 20'000)
      << "progress within the commit was made durable in batches";
  EXPECT_FALSE(meta(position_key(kInput)).has_value()) << "the commit itself is not applied yet";

  stop_ = false;
  changelogs_.stop_after_flag = nullptr;
  auto outcome = restore();
  ASSERT_TRUE(outcome.ok()) << outcome.error().message();
  EXPECT_EQ(meta(position_key(kInput)), 7);
  EXPECT_EQ(get("counts", "k0"), "0") << "the entry after the last marker is discarded";
  EXPECT_EQ(get("counts", "k49999"), "49999");
  EXPECT_THAT(outcome->to_rewrite["counts"], ElementsAre("k0"));
}

}  // namespace
}  // namespace streamrun::runtime
