// seckill-check's verdicts: each invariant it checks, broken on purpose, and the ways an honest
// run looks odd (repeated decisions after a crash) that it must accept.

#include "check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/error_policy.h>

namespace seckill {
namespace {

using ::testing::HasSubstr;

std::string order(const std::string& id, const std::string& user, const std::string& sku,
                  std::int64_t ts = 1000) {
  return R"({"order_id":")" + id + R"(","user_id":")" + user + R"(","sku":")" + sku +
         R"(","qty":1,"ts":)" + std::to_string(ts) + "}";
}

std::string decision(const std::string& id, const std::string& user, const std::string& sku,
                     const std::string& reason, std::int64_t decided_ms = 1010) {
  return R"({"order_id":")" + id + R"(","user_id":")" + user + R"(","sku":")" + sku +
         R"(","decision":")" + (reason == "accepted" ? "accepted" : "rejected") +
         R"(","reason":")" + reason + R"(","remaining":0,"decided_ms":)" +
         std::to_string(decided_ms) + "}";
}

// Two units of sku-1; ann's first order accepted, her second a duplicate, bob's accepted, cat's
// sold out; one order that is not JSON, dead-lettered.
Checker honest_sale() {
  Checker checker("orders");
  checker.add_stock("sku-1", R"({"units":2})");
  checker.add_order(0, 0, order("1", "ann", "sku-1"));
  checker.add_order(0, 1, order("2", "ann", "sku-1"));
  checker.add_order(1, 0, order("3", "bob", "sku-1"));
  checker.add_order(1, 1, order("4", "cat", "sku-1"));
  checker.add_order(1, 2, std::string_view("not an order"));
  checker.add_decision(decision("1", "ann", "sku-1", "accepted", 1010));
  checker.add_decision(decision("2", "ann", "sku-1", "duplicate", 1020));
  checker.add_decision(decision("3", "bob", "sku-1", "accepted", 1030));
  checker.add_decision(decision("4", "cat", "sku-1", "sold_out", 1040));
  checker.add_dead_letter({{std::string(streamrun::dead_letter_header::source_topic), "orders"},
                           {std::string(streamrun::dead_letter_header::source_partition), "1"},
                           {std::string(streamrun::dead_letter_header::source_offset), "2"}});
  return checker;
}

TEST(SeckillCheckTest, AnHonestSalePassesWithItsFiguresAndLatencies) {
  const auto report = honest_sale().report();
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.orders, 5);
  EXPECT_EQ(report.well_formed, 4);
  EXPECT_EQ(report.malformed, 1);
  EXPECT_EQ(report.accepted, 2);
  EXPECT_EQ(report.rejected.at("duplicate"), 1);
  EXPECT_EQ(report.rejected.at("sold_out"), 1);
  EXPECT_EQ(report.latencies_ms, (std::vector<std::int64_t>{10, 20, 30, 40}));
  const auto text = report.to_text();
  EXPECT_THAT(text, HasSubstr("| sku-1 | 2 | 4 | 2 | 1 | 1 | 100.0 % |"));
  EXPECT_THAT(text, HasSubstr("p50 20 ms, p99 40 ms, max 40 ms"));
}

TEST(SeckillCheckTest, TheSameDecisionWrittenAgainAfterACrashCountsOnce) {
  auto checker = honest_sale();
  checker.add_decision(decision("3", "bob", "sku-1", "accepted", 2000));
  const auto report = checker.report();
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.accepted, 2) << "an order is accepted once, however often it is answered";
  EXPECT_EQ(report.decisions, 5);
}

TEST(SeckillCheckTest, OversellingIsCaughtAndNamed) {
  auto checker = honest_sale();
  checker.add_order(2, 0, order("5", "dan", "sku-1"));
  checker.add_decision(decision("5", "dan", "sku-1", "accepted"));
  const auto report = checker.report();
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(report.to_text(), HasSubstr("FAIL  oversold: sku-1: 3 accepted, stock 2"));
}

TEST(SeckillCheckTest, TwoUnitsForOneUserAreCaught) {
  Checker checker("orders");
  checker.add_stock("sku-1", R"({"units":5})");
  checker.add_order(0, 0, order("1", "ann", "sku-1"));
  checker.add_order(0, 1, order("2", "ann", "sku-1"));
  checker.add_decision(decision("1", "ann", "sku-1", "accepted"));
  checker.add_decision(decision("2", "ann", "sku-1", "accepted"));
  const auto report = checker.report();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.double_accepted, 1);
}

TEST(SeckillCheckTest, AnUndecidedOrderAndADifferentSecondAnswerAreCaught) {
  auto checker = honest_sale();
  checker.add_order(2, 0, order("5", "dan", "sku-1"));
  EXPECT_EQ(checker.undecided(), 1);
  checker.add_decision(decision("4", "cat", "sku-1", "accepted"));  // was sold_out
  const auto report = checker.report();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.undecided, 1);
  EXPECT_EQ(report.conflicting, 1);
}

TEST(SeckillCheckTest, AMalformedOrderMissingFromTheDeadLetterTopicIsCaught) {
  auto checker = honest_sale();
  checker.add_order(3, 7, std::string_view("{broken"));
  checker.add_dead_letter({});  // a letter that does not say where it came from
  const auto report = checker.report();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.malformed_not_dead_lettered, 1);
  EXPECT_EQ(report.dead_letters_without_source, 1);
}

TEST(SeckillCheckTest, RecordsTheBrokerDroppedAreReportedApartFromUndecidedOnes) {
  auto checker = honest_sale();
  checker.add_orders_missing(12);
  const auto report = checker.report();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.undecided, 0);
  EXPECT_THAT(report.to_text(), HasSubstr("12 orders and 0 decisions were dropped by the broker"));
}

std::string confirmation(const std::string& id, const std::string& user, const std::string& sku,
                         const std::string& confirmation_id) {
  return R"({"order_id":")" + id + R"(","user_id":")" + user + R"(","sku":")" + sku +
         R"(","decision":"accepted","confirmation":{"order_id":")" + id + R"(","confirmation":")" +
         confirmation_id + R"("}})";
}

TEST(SeckillCheckTest, EveryAcceptedOrderMustBeConfirmedOnceAndOnlyThose) {
  auto checker = honest_sale();
  checker.expect_confirmations();
  EXPECT_EQ(checker.unconfirmed(), 2);
  checker.add_confirmation(confirmation("1", "ann", "sku-1", "c-1"));
  checker.add_confirmation(confirmation("1", "ann", "sku-1", "c-1"));  // repeated after a crash
  EXPECT_FALSE(checker.report().ok()) << "order 3 is not confirmed";
  checker.add_confirmation(confirmation("3", "bob", "sku-1", "c-2"));
  auto report = checker.report();
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.confirmed, 2);
  EXPECT_EQ(report.confirmations, 3);
  EXPECT_THAT(report.to_text(), HasSubstr("every accepted order confirmed"));

  auto twice = checker;
  twice.add_confirmation(confirmation("3", "bob", "sku-1", "c-9"));  // a second confirmation
  EXPECT_EQ(twice.report().confirmations_conflicting, 1);
  EXPECT_FALSE(twice.report().ok());

  auto unexpected = checker;
  unexpected.add_confirmation(confirmation("4", "cat", "sku-1", "c-3"));  // cat was sold out
  EXPECT_EQ(unexpected.report().confirmations_unexpected, 1);
  EXPECT_FALSE(unexpected.report().ok());

  auto lettered = checker;
  lettered.add_confirmation_dead_letter();
  EXPECT_FALSE(lettered.report().ok());
}

}  // namespace
}  // namespace seckill

namespace seckill {
namespace {

std::string second(std::int64_t start, std::int64_t orders, std::int64_t accepted) {
  return R"({"window_start":)" + std::to_string(start) + R"(,"window_end":)" +
         std::to_string(start + 1000) + R"(,"orders":)" + std::to_string(orders) +
         R"(,"accepted":)" + std::to_string(accepted) + "}";
}

TEST(SeckillCheckTest, SalesRatesMustAddUpToTheDecisionsAndShowTheSellThrough) {
  auto checker = honest_sale();
  checker.expect_sales_rate();
  EXPECT_EQ(checker.sales_rate_behind(), 1) << "sku-1 has decisions and no seconds yet";
  // Second 1: ann's two orders and bob's (the earlier update of it replaced); second 3: cat's.
  checker.add_sales_rate("sku-1", second(5000, 2, 1));
  checker.add_sales_rate("sku-1", second(5000, 3, 2));
  checker.add_sales_rate("sku-1", second(7000, 1, 0));
  EXPECT_EQ(checker.sales_rate_behind(), 0);
  auto report = checker.report();
  EXPECT_TRUE(report.ok()) << report.to_text();
  const auto text = report.to_text();
  EXPECT_THAT(text, HasSubstr("| sku-1 | 3 | 3 | 2, 0, 0 | 1 |")) << text;
  EXPECT_THAT(text, HasSubstr("ok    sales-rate adds up to the decisions")) << text;

  // A second counted twice (a decision applied twice) is caught and named.
  checker.add_sales_rate("sku-1", second(7000, 2, 1));
  report = checker.report();
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(report.to_text(),
              HasSubstr("sku-1: 5 orders, 3 accepted in sales-rate; 4 decided, 2 accepted"));
  // So is a record that is not a second's sales.
  auto unreadable = honest_sale();
  unreadable.add_sales_rate("sku-1", second(5000, 3, 2));
  unreadable.add_sales_rate("sku-1", second(6000, 1, 0));
  unreadable.add_sales_rate("sku-1", std::string_view(R"({"orders": 1})"));
  EXPECT_FALSE(unreadable.report().ok());
  EXPECT_EQ(unreadable.report().sales_rate_unreadable, 1);
}

}  // namespace
}  // namespace seckill
