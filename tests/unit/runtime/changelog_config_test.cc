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

}  // namespace
}  // namespace streamrun::runtime
