// How input.buffer.max.bytes becomes librdkafka's per-partition prefetch limits.

#include "prefetch.h"

#include <gtest/gtest.h>

namespace streamrun::runtime {
namespace {

std::int64_t number(const kafka::ClientProperties& properties, const std::string& key) {
  return std::stoll(properties.at(key));
}

TEST(PrefetchLimitsTest, TheBudgetIsSharedEvenlyByEveryPartitionTheInstanceCanBeAssigned) {
  constexpr std::int64_t kBudget = 256 << 20;
  for (const int partitions : {1, 4, 16, 64}) {
    const auto limits = prefetch_limits(kBudget, partitions, {});
    const std::int64_t queued_bytes = number(limits, "queued.max.messages.kbytes") * 1024;
    const std::int64_t queued_records = number(limits, "queued.min.messages");
    const std::int64_t in_flight = number(limits, "max.partition.fetch.bytes");
    // What all partitions together may hold: queued records (at the assumed cost of one) or
    // queued payload, whichever is larger, plus one fetch response each.
    const std::int64_t held =
        partitions * (std::max(queued_bytes, queued_records * kBytesPerQueuedRecord) + in_flight);
    EXPECT_LE(held, kBudget) << partitions << " partitions";
    EXPECT_GE(held, kBudget / 2) << partitions << " partitions: the budget is used";
  }
}

TEST(PrefetchLimitsTest, WhatTheUserSetForTheConsumerIsLeftAlone) {
  const auto limits = prefetch_limits(64 << 20, 8, {{"queued.min.messages", "5"}});
  EXPECT_FALSE(limits.contains("queued.min.messages"));
  EXPECT_TRUE(limits.contains("queued.max.messages.kbytes"));
  EXPECT_TRUE(limits.contains("max.partition.fetch.bytes"));
}

TEST(PrefetchLimitsTest, ATinyShareStaysWithinLibrdkafkasRanges) {
  const auto limits = prefetch_limits(1 << 20, 100'000, {});
  EXPECT_EQ(number(limits, "queued.max.messages.kbytes"), 1);
  EXPECT_EQ(number(limits, "queued.min.messages"), 1);
  EXPECT_EQ(number(limits, "max.partition.fetch.bytes"), 1024);
}

}  // namespace
}  // namespace streamrun::runtime
