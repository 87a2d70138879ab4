// GET /state/... requests as the admin endpoint reads them, and its answers' shape.

#include "state_query.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace streamrun::runtime {
namespace {

using nlohmann::json;

TEST(StateQueryParseTest, KeyLookupTakesOnlyAPartition) {
  auto query = parse_state_query("counts", std::string("k1"), {{"partition", "3"}});
  ASSERT_TRUE(query.ok()) << query.error().message();
  EXPECT_EQ(query->key, "k1");
  EXPECT_EQ(query->partition, 3);
  auto limited = parse_state_query("counts", std::string("k1"), {{"limit", "3"}});
  ASSERT_FALSE(limited.ok());
  EXPECT_NE(limited.error().message().find("unknown parameter 'limit' for a key lookup"),
            std::string::npos);
}

TEST(StateQueryParseTest, RangesAndPrefixes) {
  auto all = parse_state_query("s", std::nullopt, {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->from, "");
  EXPECT_EQ(all->to, "");
  EXPECT_EQ(all->limit, StateQuery::kDefaultLimit);
  auto prefix = parse_state_query("s", std::nullopt, {{"prefix", "user:"}, {"limit", "7"}});
  ASSERT_TRUE(prefix.ok());
  EXPECT_EQ(prefix->from, "user:");
  EXPECT_EQ(prefix->to, "user;");
  EXPECT_EQ(prefix->limit, 7u);
  auto range = parse_state_query("s", std::nullopt, {{"from", "a"}, {"to", "b"}});
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->from, "a");
  EXPECT_EQ(range->to, "b");
}

TEST(StateQueryParseTest, MalformedParametersAreNamed) {
  const std::vector<std::pair<AdminServer::Params, std::string>> bad = {
      {{{"limit", "0"}}, "parameter 'limit' = '0': must be an integer from 1 to 10000"},
      {{{"limit", "10001"}}, "parameter 'limit' = '10001'"},
      {{{"limit", "5x"}}, "parameter 'limit' = '5x'"},
      {{{"partition", "-1"}}, "parameter 'partition' = '-1'"},
      {{{"prefix", "a"}, {"from", "b"}}, "'prefix' cannot be combined"},
      {{{"from", "b"}, {"to", "a"}}, "reversed range"},
      {{{"sort", "desc"}}, "unknown parameter 'sort'"},
  };
  for (const auto& [params, expected] : bad) {
    auto query = parse_state_query("s", std::nullopt, params);
    ASSERT_FALSE(query.ok()) << expected;
    EXPECT_NE(query.error().message().find(expected), std::string::npos) << query.error().message();
  }
}

TEST(StateQueryParseTest, PrefixEndIsTheFirstKeyAfterThePrefix) {
  EXPECT_EQ(prefix_end("ab"), "ac");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end(std::string("\xff\xff", 2)), "");  // no bound
  EXPECT_EQ(prefix_end(""), "");
}

TEST(StateQueryAnswerTest, ValuesAreJsonTextOrHex) {
  StateQuery query;
  query.store = "s";
  const auto body = [&](std::string key, std::string value) {
    return json::parse(
        state_value_answer(query, {std::move(key), std::move(value), 1}, "0_1").body);
  };
  EXPECT_EQ(body("k", R"({"units":3})")["value"]["units"], 3);
  EXPECT_EQ(body("k", "plain text")["value"], "plain text");
  const auto binary = body(std::string("a\0b", 3), std::string("\0\0\0\x05", 4));
  EXPECT_EQ(binary["value_hex"], "00000005");
  EXPECT_EQ(binary["key_hex"], "610062");
  EXPECT_EQ(binary["partition"], 1);
  EXPECT_EQ(binary["task"], "0_1");
}

TEST(StateQueryAnswerTest, RedirectNamesTheOwnerAndKeepsTheQuery) {
  StateQuery query;
  query.store = "sales";
  query.key = "sku 1/x";
  auto answer = state_redirect(query, "10.0.0.2:9095", 2);
  EXPECT_EQ(answer.status, 307);
  ASSERT_EQ(answer.headers.size(), 1u);
  EXPECT_EQ(answer.headers[0].second, "http://10.0.0.2:9095/state/sales/sku%201%2Fx");
  EXPECT_EQ(json::parse(answer.body)["owner"], "10.0.0.2:9095");
}

TEST(StateQueryOwnerTest, MetadataRoundTripsAndIgnoresOthers) {
  const auto serving = owner_of_metadata(owner_metadata("host-a:9095"));
  ASSERT_TRUE(serving.has_value());
  EXPECT_EQ(serving->kind, PartitionOwner::Kind::serving);
  EXPECT_EQ(serving->address, "host-a:9095");
  const auto silent = owner_of_metadata(owner_metadata(""));
  ASSERT_TRUE(silent.has_value());
  EXPECT_EQ(silent->kind, PartitionOwner::Kind::no_endpoint);
  const auto released = owner_of_metadata(released_metadata());
  ASSERT_TRUE(released.has_value());
  EXPECT_EQ(released->kind, PartitionOwner::Kind::released);
  EXPECT_EQ(owner_of_metadata(""), std::nullopt);
  EXPECT_EQ(owner_of_metadata("written by another client"), std::nullopt);
}

}  // namespace
}  // namespace streamrun::runtime
