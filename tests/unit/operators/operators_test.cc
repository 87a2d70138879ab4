// The built-in operators of YAML pipelines on the test driver: expressions in filter, map,
// key_by and route; the keyed aggregates sum, reduce and aggregate; dedupe with and without a
// time-to-live; and what a failing expression does to its record (and only to it).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <streamrun/core/errors.h>
#include <streamrun/dsl/pipeline.h>
#include <streamrun/json/json_serde.h>
#include <streamrun/operators/builtin.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun::operators {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;
using testing::TopologyTestDriver;

const dsl::Registry& registry() {
  static const dsl::Registry r = [] {
    dsl::Registry built;
    register_builtin_operators(built);
    return built;
  }();
  return r;
}

const Serdes<dsl::Key, json> kJson{serdes::nullable_string(), serdes::json()};

// A pipeline "from: in" -> steps -> "to: out", loaded (or the test fails with its errors).
Topology pipeline(const std::string& steps, const std::string& tables = "") {
  auto loaded = dsl::load_pipeline(
      "application: app\n" + tables + "pipeline:\n  - from: {topic: in}\n" + steps +
          "  - to: {topic: out}\n",
      "test.yaml", registry(), [](const std::string&) { return std::optional<std::string>(); });
  if (!loaded.pipeline) {
    std::string errors;
    for (const auto& diagnostic : loaded.diagnostics)
      errors += diagnostic.to_string() + "\n";
    throw std::invalid_argument(errors);
  }
  return loaded.pipeline->topology;
}

std::vector<std::pair<dsl::Key, json>> outputs(TopologyTestDriver& driver,
                                               const std::string& topic = "out") {
  std::vector<std::pair<dsl::Key, json>> records;
  for (const auto& record : driver.output_topic(topic, kJson).read_records())
    records.emplace_back(record.key, record.value);
  return records;
}

TEST(ExpressionOperatorsTest, FilterMapAndKeyByTakeExpressions) {
  TopologyTestDriver driver(pipeline(R"(  - filter: {expr: "value.qty > 0 and value.sku ~= nil"}
  - map:
      drop: [price]
      compute: {total: value.qty * value.price, price: nil, sku: string.upper(value.sku)}
  - key_by: {expr: "value.sku .. '/' .. value.region"}
)"));
  auto in = driver.input_topic("in", kJson);
  in.pipe("1", {{"sku", "a"}, {"qty", 2}, {"price", 1.5}, {"region", "eu"}});
  in.pipe("2", {{"sku", "b"}, {"qty", 0}, {"price", 9}, {"region", "eu"}});
  in.pipe("3", {{"qty", 1}, {"price", 1}});
  EXPECT_THAT(
      outputs(driver),
      ElementsAre(std::pair(dsl::Key("A/eu"),
                            json{{"sku", "A"}, {"qty", 2}, {"total", 3.0}, {"region", "eu"}})));
}

TEST(ExpressionOperatorsTest, RouteSelectsTheTopicByAnExpression) {
  auto loaded = dsl::load_pipeline(R"(application: app
pipeline:
  - from: {topic: in}
  - route:
      expr: "value.total >= 100 and 'big' or 'small'"
      cases: {big: big-orders, small: small-orders}
)",
                                   "test.yaml", registry(),
                                   [](const std::string&) { return std::optional<std::string>(); });
  ASSERT_TRUE(loaded.pipeline);
  TopologyTestDriver driver(loaded.pipeline->topology);
  auto in = driver.input_topic("in", kJson);
  in.pipe("1", {{"total", 250}});
  in.pipe("2", {{"total", 5}});
  EXPECT_THAT(outputs(driver, "big-orders"),
              ElementsAre(std::pair(dsl::Key("1"), json{{"total", 250}})));
  EXPECT_THAT(outputs(driver, "small-orders"),
              ElementsAre(std::pair(dsl::Key("2"), json{{"total", 5}})));
}

TEST(ExpressionOperatorsTest, AFailingExpressionFailsItsRecordOnly) {
  TopologyTestDriver driver(pipeline("  - filter: {expr: value.qty > 0}\n"));
  auto in = driver.input_topic("in", kJson);
  try {
    in.pipe("1", {{"qty", "many"}});
    FAIL() << "the record did not fail";
  } catch (const OperatorFailure& failure) {
    EXPECT_EQ(failure.operator_name(), "2-filter");
    EXPECT_THAT(failure.error_message(),
                HasSubstr("expression `value.qty > 0` failed: attempt to compare"));
  }
  in.pipe("2", {{"qty", 1}});
  EXPECT_EQ(outputs(driver).size(), 1u);
}

TEST(ExpressionOperatorsTest, ARunawayExpressionFailsItsRecordAndTheNextOneRuns) {
  TopologyTestDriver driver(pipeline(
      "  - filter: {expr: \"value.loop and (function() while true do end end)() or true\"}\n"));
  auto in = driver.input_topic("in", kJson);
  EXPECT_THROW(in.pipe("1", {{"loop", true}}), OperatorFailure);
  in.pipe("2", {{"loop", false}});
  EXPECT_EQ(outputs(driver).size(), 1u);
}

TEST(KeyedAggregatesTest, SumAddsUpANumberPerKey) {
  TopologyTestDriver driver(
      pipeline("  - key_by: {field: sku}\n  - sum: {field: qty, store: units}\n"));
  auto in = driver.input_topic("in", kJson);
  in.pipe("x", {{"sku", "a"}, {"qty", 2}});
  in.pipe("x", {{"sku", "b"}, {"qty", 5}});
  in.pipe("x", {{"sku", "a"}, {"qty", 3}});
  in.pipe("x", {{"sku", "a"}});  // no number: adds nothing
  in.pipe("x", {{"sku", "a"}, {"qty", 0.5}});
  EXPECT_THAT(outputs(driver),
              ElementsAre(std::pair(dsl::Key("a"), json(2)), std::pair(dsl::Key("b"), json(5)),
                          std::pair(dsl::Key("a"), json(5)), std::pair(dsl::Key("a"), json(5)),
                          std::pair(dsl::Key("a"), json(5.5))));
  EXPECT_THROW(in.pipe("x", {{"sku", "a"}, {"qty", "7"}}), OperatorFailure)
      << "text is not a number";
}

TEST(KeyedAggregatesTest, SumTakesAnExpression) {
  TopologyTestDriver driver(pipeline("  - sum: {expr: value.qty * value.price, store: revenue}\n"));
  auto in = driver.input_topic("in", kJson);
  in.pipe("a", {{"qty", 2}, {"price", 10}});
  in.pipe("a", {{"qty", 1}, {"price", 5}});
  EXPECT_THAT(outputs(driver),
              ElementsAre(std::pair(dsl::Key("a"), json(20)), std::pair(dsl::Key("a"), json(25))));
}

TEST(KeyedAggregatesTest, ReduceKeepsTheLatestByAnExpression) {
  TopologyTestDriver driver(
      pipeline("  - reduce: {expr: \"value.ts > agg.ts and value or agg\", store: latest}\n"));
  auto in = driver.input_topic("in", kJson);
  in.pipe("a", {{"ts", 5}, {"v", 1}});
  in.pipe("a", {{"ts", 3}, {"v", 2}});  // older: agg stays
  in.pipe("a", {{"ts", 9}, {"v", 3}});
  EXPECT_THAT(outputs(driver), ElementsAre(std::pair(dsl::Key("a"), json{{"ts", 5}, {"v", 1}}),
                                           std::pair(dsl::Key("a"), json{{"ts", 5}, {"v", 1}}),
                                           std::pair(dsl::Key("a"), json{{"ts", 9}, {"v", 3}})));
}

TEST(KeyedAggregatesTest, AggregateFoldsFromItsInitialValueAndNilDeletesTheKey) {
  TopologyTestDriver driver(pipeline(R"(  - aggregate:
      initial: '{"orders": 0, "units": 0}'
      expr: |
        if value.cancel_all then return nil end
        return {orders = agg.orders + 1, units = agg.units + value.qty}
      store: per-sku
)"));
  auto in = driver.input_topic("in", kJson);
  in.pipe("a", {{"qty", 2}});
  in.pipe("a", {{"qty", 3}});
  in.pipe("a", {{"cancel_all", true}});
  in.pipe("a", {{"qty", 1}});
  EXPECT_THAT(outputs(driver),
              ElementsAre(std::pair(dsl::Key("a"), json{{"orders", 1}, {"units", 2}}),
                          std::pair(dsl::Key("a"), json{{"orders", 2}, {"units", 5}}),
                          std::pair(dsl::Key("a"), json()),  // a tombstone
                          std::pair(dsl::Key("a"), json{{"orders", 1}, {"units", 1}})));
  EXPECT_FALSE(driver.store("per-sku").get("a") == std::nullopt);
}

TEST(KeyedAggregatesTest, AnInitialValueThatIsNotJsonIsNamed) {
  EXPECT_THAT(
      [] { (void)pipeline("  - aggregate: {initial: '{orders: 0}', expr: agg, store: s}\n"); },
      ::testing::ThrowsMessage<std::invalid_argument>(
          HasSubstr("'aggregate' field 'initial' must be a JSON value")));
}

TEST(DedupeTest, PassesTheFirstRecordPerKeyAndIdentity) {
  TopologyTestDriver driver(pipeline("  - dedupe: {field: order_id, store: seen}\n"));
  auto in = driver.input_topic("in", kJson);
  in.pipe("a", {{"order_id", 1}});
  in.pipe("a", {{"order_id", 1}, {"retry", true}});
  in.pipe("a", {{"order_id", 2}});
  in.pipe("b", {{"order_id", 1}});  // another key: its own identities
  EXPECT_THAT(outputs(driver), ElementsAre(std::pair(dsl::Key("a"), json{{"order_id", 1}}),
                                           std::pair(dsl::Key("a"), json{{"order_id", 2}}),
                                           std::pair(dsl::Key("b"), json{{"order_id", 1}})));
  in.pipe("a", {{"no_id", 1}});  // nothing to tell it by: passes, twice
  in.pipe("a", {{"no_id", 1}});
  EXPECT_EQ(outputs(driver).size(), 2u);
  in.pipe(std::nullopt, {{"order_id", 7}});
  EXPECT_EQ(driver.dropped(), 1) << "a null key has no partition of its own";
}

TEST(DedupeTest, WithoutFieldOrByTheWholeValueIsTheIdentity) {
  TopologyTestDriver driver(pipeline("  - dedupe: {store: seen}\n"));
  auto in = driver.input_topic("in", kJson);
  in.pipe("a", {{"x", 1}, {"y", 2}});
  in.pipe("a", {{"y", 2}, {"x", 1}});  // the same value
  in.pipe("a", {{"x", 1}});
  EXPECT_EQ(outputs(driver).size(), 2u);
}

TEST(DedupeTest, ATimeToLiveForgetsIdentitiesAndEmptiesTheStore) {
  TopologyTestDriver driver(pipeline(
      "  - dedupe: {by: \"value.user .. '/' .. value.item\", ttl_ms: 1000, store: seen}\n"));
  auto in = driver.input_topic("in", kJson);
  in.pipe("k", {{"user", "ann"}, {"item", "x"}}, 0);
  in.pipe("k", {{"user", "ann"}, {"item", "x"}}, 999);   // within the ttl: a repeat
  in.pipe("k", {{"user", "ann"}, {"item", "x"}}, 1000);  // forgotten: passes, seen anew
  in.pipe("k", {{"user", "ann"}, {"item", "x"}}, 1500);
  EXPECT_EQ(outputs(driver).size(), 2u);

  for (int i = 0; i < 100; ++i)
    in.pipe("k", {{"user", "u" + std::to_string(i)}, {"item", "x"}}, 2000);
  auto entries = [&] {
    int n = 0;
    driver.store("seen").range("", "", [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  };
  EXPECT_EQ(entries(), 100);  // ann's, seen at 1000, expired at 2000 and was swept
  for (int i = 0; i < 60; ++i)
    in.pipe("k", {{"user", "late"}, {"item", std::to_string(i)}}, 5000);
  EXPECT_EQ(entries(), 60) << "expired identities leave the store as records arrive";
  EXPECT_EQ(outputs(driver).size(), 160u);  // since the first two were read
}

TEST(DedupeTest, AfterAKeyChangeItRepartitions) {
  const auto topology =
      pipeline("  - key_by: {field: user}\n  - dedupe: {field: order_id, store: seen}\n");
  EXPECT_EQ(topology.subtopology_count(), 2);
  EXPECT_THAT(topology.resolved("app").describe(), HasSubstr("app-3-dedupe-by-key-repartition"));
}

}  // namespace
}  // namespace streamrun::operators
