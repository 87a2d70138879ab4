#include <gtest/gtest.h>

#include <streamrun/base/errc.h>
#include <streamrun/base/ids.h>
#include <streamrun/base/result.h>

namespace streamrun {
namespace {

Result<int> parse_positive(int value) {
  if (value <= 0)
    return Error(errc::invalid_argument, "value must be positive");
  return value;
}

TEST(ResultTest, CarriesValueOrError) {
  auto good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);

  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), errc::invalid_argument);
  EXPECT_EQ(bad.error().message(), "value must be positive");
}

TEST(ResultTest, ValueOfAnErrorThrowsWithTheMessage) {
  auto bad = parse_positive(0);
  try {
    static_cast<void>(bad.value());
    FAIL() << "value() of an error must throw";
  } catch (const Failure& failure) {
    EXPECT_STREQ(failure.what(), "value must be positive");
    EXPECT_EQ(failure.error().code(), errc::invalid_argument);
  }
}

TEST(ResultTest, ContextIsPrepended) {
  const Error error(errc::timed_out, "no answer");
  EXPECT_EQ(error.with_context("commit orders[3]").message(), "commit orders[3]: no answer");
  EXPECT_EQ(error.with_context("x").code(), errc::timed_out);
}

TEST(ErrorCategoryTest, CodesDescribeThemselves) {
  EXPECT_EQ(std::error_code(errc::timed_out).message(), "timed out");
  EXPECT_STREQ(std::error_code(errc::timed_out).category().name(), "streamrun");
  EXPECT_EQ(std::error_code(99, base_category()).message(), "streamrun error 99");
}

TEST(IdsTest, TopicPartitionPrintsAsTopicAndIndex) {
  const TopicPartition tp{TopicName("orders"), PartitionId(3)};
  EXPECT_EQ(to_string(tp), "orders[3]");
  EXPECT_LT(tp, (TopicPartition{TopicName("orders"), PartitionId(4)}));
}

}  // namespace
}  // namespace streamrun
