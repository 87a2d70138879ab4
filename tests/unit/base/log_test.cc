#include <cstdlib>

#include <gtest/gtest.h>

#include <streamrun/base/log.h>

namespace streamrun::log {
namespace {

TEST(LogTest, EveryLevelNameTheOptionsOfferIsUnderstood) {
  // The names log.level, --log-level and STREAMRUN_LOG_LEVEL accept.
  EXPECT_EQ(parse_level("trace"), spdlog::level::trace);
  EXPECT_EQ(parse_level("debug"), spdlog::level::debug);
  EXPECT_EQ(parse_level("info"), spdlog::level::info);
  EXPECT_EQ(parse_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_level("warning"), spdlog::level::warn);
  EXPECT_EQ(parse_level("error"), spdlog::level::err);
  EXPECT_EQ(parse_level("critical"), spdlog::level::critical);
  EXPECT_EQ(parse_level("off"), spdlog::level::off);
  EXPECT_EQ(parse_level("loud"), std::nullopt);
}

TEST(LogTest, SetLevelAppliesToExistingLoggers) {
  if (std::getenv("STREAMRUN_LOG_LEVEL") != nullptr)
    GTEST_SKIP() << "STREAMRUN_LOG_LEVEL overrides set_level by design";
  auto logger = get("log-test");
  set_level("warn");
  EXPECT_EQ(logger->level(), spdlog::level::warn);
  set_level("info");
  EXPECT_EQ(logger->level(), spdlog::level::info);
}

}  // namespace
}  // namespace streamrun::log
