// Which changelog topic configurations the runtime accepts: only those that keep the latest
// entry of every key for ever.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "changelog.h"

namespace streamrun::runtime {
namespace {

using ::testing::HasSubstr;

TEST(ChangelogConfigTest, CompactedChangelogsAreAccepted) {
  EXPECT_TRUE(check_changelog_config("app-s-changelog", {{"cleanup.policy", "compact"}}).ok());
  EXPECT_TRUE(check_changelog_config("app-s-changelog",
                                     {{"cleanup.policy", "compact,delete"}, {"retention.ms", "-1"}})
                  .ok());
}

TEST(ChangelogConfigTest, ADeletePolicyIsRefusedNamingTheTopicAndTheFix) {
  auto checked = check_changelog_config(
      "app-counts-changelog", {{"cleanup.policy", "delete"}, {"retention.ms", "604800000"}});
  ASSERT_FALSE(checked.ok());
  EXPECT_THAT(checked.error().message(),
              HasSubstr("changelog topic 'app-counts-changelog' has cleanup.policy=delete "
                        "(retention.ms=604800000)"));
  EXPECT_THAT(checked.error().message(), HasSubstr("--add-config cleanup.policy=compact"));
}

TEST(ChangelogConfigTest, CompactAndDeleteWithFiniteRetentionIsRefused) {
  EXPECT_FALSE(check_changelog_config(
                   "c", {{"cleanup.policy", "compact,delete"}, {"retention.ms", "86400000"}})
                   .ok());
  EXPECT_FALSE(check_changelog_config("c", {}).ok()) << "a topic whose policy is unknown";
}

// A window store's changelog lets expired windows go: compact,delete is right for it, as long
// as it keeps entries at least as long as the store keeps a window.
TEST(ChangelogConfigTest, AWindowStoresChangelogMayDeleteWhatTheStoreNoLongerKeeps) {
  const std::map<std::string, std::string> day{{"cleanup.policy", "compact,delete"},
                                               {"retention.ms", "86400000"}};
  EXPECT_TRUE(check_changelog_config("app-w-changelog", day, 3'600'000).ok());
  auto checked = check_changelog_config("app-w-changelog", day, 100'000'000);
  ASSERT_FALSE(checked.ok());
  EXPECT_THAT(checked.error().message(),
              HasSubstr("changelog topic 'app-w-changelog' of a window store has "
                        "retention.ms=86400000, less than the 100000000 ms the store keeps"));
  EXPECT_FALSE(check_changelog_config("app-w-changelog",
                                      {{"cleanup.policy", "delete"}, {"retention.ms", "-1"}},
                                      3'600'000)
                   .ok())
      << "never compacted: a window's older updates would come back on restore";
}

}  // namespace
}  // namespace streamrun::runtime
