#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/state/task_state.h>

namespace streamrun::state {
namespace {

using ::testing::HasSubstr;

class TaskStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("streamrun-state-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::shared_ptr<StateEnvironment> environment(const std::string& application = "shop") {
    auto env = StateEnvironment::create({root_ / application, application, 64u << 20});
    EXPECT_TRUE(env.ok()) << env.error().message();
    return std::move(env).value();
  }

  std::unique_ptr<TaskState> open(std::shared_ptr<StateEnvironment> env,
                                  const std::string& task = "0_1") {
    auto state = TaskState::open(std::move(env), task, {"counts", "seen"});
    EXPECT_TRUE(state.ok()) << state.error().message();
    return state.ok() ? std::move(state).value() : nullptr;
  }

  std::filesystem::path root_;
};

std::vector<std::pair<std::string, std::string>> all(const KeyValueStore& store,
                                                     std::string_view from = "",
                                                     std::string_view to = "") {
  std::vector<std::pair<std::string, std::string>> entries;
  store.range(from, to, [&](std::string_view key, std::string_view value) {
    entries.emplace_back(key, value);
    return true;
  });
  return entries;
}

TEST_F(TaskStateTest, ReadsSeeUncommittedWritesAndRangesAreOrdered) {
  auto state = open(environment());
  auto& counts = state->store("counts");
  counts.put("b", "2");
  counts.put("a", "1");
  counts.put("c", "3");
  EXPECT_EQ(counts.get("a"), "1");
  counts.remove("c");
  EXPECT_EQ(counts.get("c"), std::nullopt);
  EXPECT_EQ(all(counts),
            (std::vector<std::pair<std::string, std::string>>{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(all(counts, "b"), (std::vector<std::pair<std::string, std::string>>{{"b", "2"}}));
  EXPECT_EQ(all(counts, "", "b"), (std::vector<std::pair<std::string, std::string>>{{"a", "1"}}));
  EXPECT_TRUE(state->has_uncommitted());
  EXPECT_EQ(state->store("seen").get("a"), std::nullopt) << "stores are separate";
}

TEST_F(TaskStateTest, CommitMakesStateAndOffsetsDurableTogether) {
  auto env = environment();
  {
    auto state = open(env);
    state->store("counts").put("user-1", "5");
    ASSERT_TRUE(state->commit({{"orders/1", 42}}).ok());
    state->store("counts").put("user-1", "6");  // after the commit: must not survive a crash
    state->store("counts").put("user-2", "1");
  }  // closed without committing: as if the process died here
  auto reopened = open(env);
  EXPECT_EQ(reopened->store("counts").get("user-1"), "5");
  EXPECT_EQ(reopened->store("counts").get("user-2"), std::nullopt);
  EXPECT_EQ(reopened->committed_offsets(), (std::map<std::string, std::int64_t>{{"orders/1", 42}}));
  EXPECT_FALSE(reopened->has_uncommitted());

  // Reads of committed data merge with newer uncommitted writes, in ranges too.
  reopened->store("counts").put("user-0", "9");
  EXPECT_EQ(all(reopened->store("counts")),
            (std::vector<std::pair<std::string, std::string>>{{"user-0", "9"}, {"user-1", "5"}}));
  reopened->store("counts").remove("user-1");
  EXPECT_EQ(all(reopened->store("counts")),
            (std::vector<std::pair<std::string, std::string>>{{"user-0", "9"}}));
}

TEST_F(TaskStateTest, DiscardDropsUncommittedChangesOnly) {
  auto state = open(environment());
  state->store("counts").put("k", "1");
  ASSERT_TRUE(state->commit({{"orders/0", 1}}).ok());
  state->store("counts").put("k", "2");
  state->discard_uncommitted();
  EXPECT_EQ(state->store("counts").get("k"), "1");
}

TEST_F(TaskStateTest, OffsetsMergeAcrossCommits) {
  auto state = open(environment());
  ASSERT_TRUE(state->commit({{"orders/0", 10}, {"payments/0", 3}}).ok());
  ASSERT_TRUE(state->commit({{"orders/0", 12}}).ok());
  EXPECT_EQ(state->committed_offsets(),
            (std::map<std::string, std::int64_t>{{"orders/0", 12}, {"payments/0", 3}}));
}

TEST_F(TaskStateTest, AnotherApplicationsDirectoryIsRefusedNamingTheOwner) {
  {
    auto state = open(environment("shop"));
    ASSERT_TRUE(state->commit({{"orders/1", 7}}).ok());
  }
  // Same directory, other application id (e.g. copied by hand).
  auto other = StateEnvironment::create({root_ / "shop", "audit", 64u << 20});
  ASSERT_TRUE(other.ok());
  auto refused = TaskState::open(*other, "0_1", {"counts"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), errc::unusable);
  EXPECT_THAT(refused.error().message(), HasSubstr("belongs to application 'shop', not 'audit'"));
  EXPECT_THAT(refused.error().message(), HasSubstr((root_ / "shop" / "0_1").string()));

  ASSERT_TRUE(TaskState::wipe(**other, "0_1").ok());
  auto fresh = TaskState::open(*other, "0_1", {"counts"});
  ASSERT_TRUE(fresh.ok()) << fresh.error().message();
  EXPECT_TRUE((*fresh)->committed_offsets().empty());
}

TEST_F(TaskStateTest, AnotherTasksDirectoryIsRefused) {
  auto env = environment();
  { open(env, "0_1"); }
  std::filesystem::rename(root_ / "shop" / "0_1", root_ / "shop" / "0_2");
  auto refused = TaskState::open(env, "0_2", {"counts"});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("belongs to task 0_1"));
}

TEST_F(TaskStateTest, CorruptDirectoryIsRefusedNotUsed) {
  auto env = environment();
  {
    auto state = open(env);
    state->store("counts").put("k", "1");
    ASSERT_TRUE(state->commit({{"orders/1", 1}}).ok());
  }
  // Overwrite every file's contents with garbage.
  for (const auto& entry : std::filesystem::directory_iterator(root_ / "shop" / "0_1")) {
    if (!entry.is_regular_file() || entry.path().filename() == "LOCK")
      continue;
    std::ofstream(entry.path(), std::ios::trunc) << "not a rocksdb file";
  }
  auto refused = TaskState::open(env, "0_1", {"counts"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), errc::unusable);
  EXPECT_THAT(refused.error().message(), HasSubstr("state directory '"));
}

TEST_F(TaskStateTest, ADirectoryInUseIsAnIoErrorNotUnusable) {
  auto env = environment();
  auto first = open(env);
  EXPECT_TRUE(first->created());
  auto second = TaskState::open(env, "0_1", {"counts"});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), errc::io_error) << "never to be wiped: someone uses it";
  EXPECT_THAT(second.error().message(), HasSubstr("task 0_1"));
  first.reset();
  auto reopened = TaskState::open(env, "0_1", {"counts"});
  ASSERT_TRUE(reopened.ok()) << reopened.error().message();
  EXPECT_FALSE((*reopened)->created());
}

// The record cache in front of RocksDB changes nothing a task can observe: reads see writes, a
// commit keeps what was written, a discard forgets it — whether the writes are still cached or
// went to the batch because the cache filled up or a scan needed them.
TEST_F(TaskStateTest, CachedWritesAreCommittedOrDiscardedLikeAnyOther) {
  // A 1 KiB cache per store: a few dozen entries, so the loop below overflows it many times.
  auto env = StateEnvironment::create({root_ / "shop", "shop", 64u << 20, 1024});
  ASSERT_TRUE(env.ok());
  {
    auto state = open(*env);
    auto& counts = state->store("counts");
    for (int round = 0; round < 3; ++round) {
      for (int key = 0; key < 500; ++key)
        counts.put("k" + std::to_string(key), std::to_string(round));
    }
    counts.remove("k7");
    EXPECT_EQ(counts.get("k499"), "2");
    EXPECT_EQ(counts.get("k7"), std::nullopt);
    EXPECT_TRUE(state->has_uncommitted());
    ASSERT_TRUE(state->commit({{"orders/0", 10}}).ok());
    EXPECT_FALSE(state->has_uncommitted());

    // After the commit: writes that stay in the cache, then are thrown away.
    counts.put("k1", "uncommitted");
    counts.put("new", "uncommitted");
    EXPECT_TRUE(state->has_uncommitted());
    EXPECT_EQ(all(counts, "new", "new\x01"),
              (std::vector<std::pair<std::string, std::string>>{{"new", "uncommitted"}}))
        << "a scan sees cached writes";
    counts.put("k2", "uncommitted");
    state->discard_uncommitted();
    EXPECT_FALSE(state->has_uncommitted());
    EXPECT_EQ(counts.get("k1"), "2");
    EXPECT_EQ(counts.get("k2"), "2");
    EXPECT_EQ(counts.get("new"), std::nullopt);
  }
  auto reopened = open(*env);
  auto& counts = reopened->store("counts");
  EXPECT_EQ(all(counts).size(), 499u) << "every committed key, k7 removed";
  EXPECT_EQ(counts.get("k0"), "2");
  EXPECT_EQ(counts.get("k7"), std::nullopt);
  EXPECT_EQ(counts.get("new"), std::nullopt);
  EXPECT_EQ(reopened->committed_offsets().at("orders/0"), 10);
}

TEST_F(TaskStateTest, AFrozenCommitMakesOnlyTheChangesBeforeTheFreezeDurable) {
  auto env = environment();
  {
    auto state = open(env);
    auto& counts = state->store("counts");
    counts.put("a", "1");
    counts.put("b", "1");
    state->freeze();
    EXPECT_TRUE(state->frozen());
    // The task goes on while it waits for its outputs: these belong to the next commit.
    counts.put("a", "2");
    counts.remove("b");
    counts.put("c", "2");
    EXPECT_EQ(counts.get("a"), "2") << "reads see every write, frozen or not";
    EXPECT_EQ(counts.get("b"), std::nullopt);
    ASSERT_TRUE(state->commit({{"orders/0", 5}}).ok());
    EXPECT_FALSE(state->frozen());
    EXPECT_TRUE(state->has_uncommitted()) << "the writes after the freeze are still pending";
    EXPECT_EQ(counts.get("a"), "2");
  }  // the process dies before its next commit
  {
    auto reopened = open(env);
    auto& counts = reopened->store("counts");
    EXPECT_EQ(counts.get("a"), "1");
    EXPECT_EQ(counts.get("b"), "1");
    EXPECT_EQ(counts.get("c"), std::nullopt);
    EXPECT_EQ(reopened->committed_offsets().at("orders/0"), 5);
    // And the next commit takes the later writes.
    counts.put("a", "1");
    reopened->freeze();
    counts.put("a", "3");
    ASSERT_TRUE(reopened->commit({{"orders/0", 6}}).ok());
    ASSERT_TRUE(reopened->commit({{"orders/0", 7}}).ok());
  }
  auto last = open(env);
  EXPECT_EQ(last->store("counts").get("a"), "3");
  EXPECT_EQ(last->committed_offsets().at("orders/0"), 7);
}

TEST_F(TaskStateTest, AWriteToTheFrozenBatchSettlesTheFrozenCommitFirst) {
  // 1 KiB caches: the loop below fills one, which must write to the batch.
  auto env = StateEnvironment::create({root_ / "shop", "shop", 64u << 20, 1024});
  ASSERT_TRUE(env.ok());
  {
    auto state = open(*env);
    auto& counts = state->store("counts");
    int settled = 0;
    state->set_before_thaw([&] {
      ++settled;
      ASSERT_TRUE(state->commit({{"orders/0", 1}}).ok());
    });
    counts.put("before", "1");
    state->freeze();
    for (int key = 0; key < 100; ++key)
      counts.put("k" + std::to_string(key), "after");
    EXPECT_EQ(settled, 1) << "the full cache settled the frozen commit once";
    EXPECT_FALSE(state->frozen());

    // A scan reads the batch: it settles a frozen commit the same way.
    state->freeze();
    counts.put("late", "x");
    EXPECT_EQ(all(counts, "late", "late\x01").size(), 1u);
    EXPECT_EQ(settled, 2);
  }
  auto reopened = open(*env);
  EXPECT_EQ(reopened->store("counts").get("before"), "1");
  EXPECT_EQ(reopened->store("counts").get("k99"), "after") << "committed by the second settle";
  EXPECT_EQ(reopened->store("counts").get("late"), std::nullopt) << "after the last freeze";
}

TEST_F(TaskStateTest, AnUnsettledFreezeThawsAndTheNextCommitTakesEverything) {
  auto env = StateEnvironment::create({root_ / "shop", "shop", 64u << 20, 1024});
  ASSERT_TRUE(env.ok());
  {
    auto state = open(*env);
    auto& counts = state->store("counts");
    state->set_before_thaw([] {});  // a task that is stopping gives the frozen commit up
    counts.put("before", "1");
    state->freeze();
    for (int key = 0; key < 100; ++key)
      counts.put("k" + std::to_string(key), "after");
    EXPECT_FALSE(state->frozen());
    ASSERT_TRUE(state->commit({{"orders/0", 9}}).ok());

    // Discarding (a lost partition) forgets a frozen commit point with everything else.
    counts.put("gone", "1");
    state->freeze();
    state->discard_uncommitted();
    EXPECT_FALSE(state->frozen());
    EXPECT_FALSE(state->has_uncommitted());
  }
  auto reopened = open(*env);
  EXPECT_EQ(reopened->store("counts").get("before"), "1");
  EXPECT_EQ(reopened->store("counts").get("k99"), "after");
  EXPECT_EQ(reopened->store("counts").get("gone"), std::nullopt);
}

// A range removal (window segments expiring) hides committed and uncommitted entries at once,
// keeps writes made after it, and is committed or discarded with the other changes.
TEST_F(TaskStateTest, ARangeRemovalIsCommittedInOrderWithTheWritesAroundIt) {
  using Entries = std::vector<std::pair<std::string, std::string>>;
  auto env = environment();
  {
    auto state = open(env);
    auto& counts = state->store("counts");
    counts.put("a1", "committed");
    counts.put("b1", "committed");
    counts.put("c1", "committed");
    ASSERT_TRUE(state->commit({{"orders/0", 3}}).ok());
    counts.put("b2", "uncommitted");
    static_cast<void>(all(counts));  // a scan moves it from the cache into the batch
    counts.put("b3", "cached");
    counts.remove_range("b", "c");
    EXPECT_EQ(counts.get("b1"), std::nullopt);
    EXPECT_EQ(counts.get("b3"), std::nullopt);
    EXPECT_EQ(all(counts), (Entries{{"a1", "committed"}, {"c1", "committed"}}));
    counts.put("b4", "after");  // a write after the removal survives it
    EXPECT_EQ(all(counts), (Entries{{"a1", "committed"}, {"b4", "after"}, {"c1", "committed"}}));
    EXPECT_EQ(counts.get("b4"), "after");
    ASSERT_TRUE(state->commit({{"orders/0", 5}}).ok());
    EXPECT_THROW(counts.remove_range("c", ""), std::invalid_argument);
  }
  auto reopened = open(env);
  EXPECT_EQ(all(reopened->store("counts")),
            (Entries{{"a1", "committed"}, {"b4", "after"}, {"c1", "committed"}}));

  // Discarded: everything comes back.
  auto& counts = reopened->store("counts");
  counts.remove_range("a", "z");
  EXPECT_TRUE(all(counts).empty());
  reopened->discard_uncommitted();
  EXPECT_EQ(all(counts), (Entries{{"a1", "committed"}, {"b4", "after"}, {"c1", "committed"}}));
  EXPECT_EQ(counts.get("c1"), "committed");
}

TEST_F(TaskStateTest, UnknownStoreIsAProgrammingError) {
  auto state = open(environment());
  EXPECT_THROW(static_cast<void>(state->store("nope")), std::invalid_argument);
}

TEST_F(TaskStateTest, NewStoresCanJoinAnExistingDirectory) {
  auto env = environment();
  {
    auto state = open(env);
    state->store("counts").put("k", "1");
    ASSERT_TRUE(state->commit({}).ok());
  }
  auto state = TaskState::open(env, "0_1", {"counts", "seen", "totals"});
  ASSERT_TRUE(state.ok()) << state.error().message();
  EXPECT_EQ((*state)->store("counts").get("k"), "1");
  EXPECT_EQ((*state)->store("totals").get("k"), std::nullopt);
}

}  // namespace
}  // namespace streamrun::state
