#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/json/json_serde.h>
#include <streamrun/testing/topology_test_driver.h>

namespace shop {
struct Order {
  std::string user;
  std::string sku;
  int quantity = 0;
  bool operator==(const Order&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Order, user, sku, quantity)
}  // namespace shop

namespace streamrun {
namespace {

using ::testing::HasSubstr;

TEST(JsonSerdeTest, RoundTripsDocumentsAndTypes) {
  const auto document = serdes::json();
  const nlohmann::json value = {{"user", "u1"}, {"qty", 2}};
  EXPECT_EQ(document.deserialize(document.serialize(value)), value);
  EXPECT_TRUE(document.deserialize(std::nullopt).is_null());

  const auto orders = serdes::json_as<shop::Order>("order");
  const shop::Order order{"u1", "sku-9", 3};
  EXPECT_EQ(orders.deserialize(orders.serialize(order)), order);
}

TEST(JsonSerdeTest, MalformedJsonAndMissingFieldsAreSerdeErrors) {
  const auto orders = serdes::json_as<shop::Order>("order");
  try {
    static_cast<void>(orders.deserialize(R"({"user": "u1", "sku": )"));
    FAIL();
  } catch (const SerdeError& e) {
    EXPECT_THAT(e.what(), HasSubstr("json: "));
    EXPECT_THAT(e.what(), HasSubstr("parse error"));
  }
  try {
    static_cast<void>(orders.deserialize(R"({"user": "u1", "sku": "s"})"));
    FAIL();
  } catch (const SerdeError& e) {
    EXPECT_THAT(e.what(), HasSubstr("order: "));
    EXPECT_THAT(e.what(), HasSubstr("quantity"));
  }
}

TEST(JsonSerdeTest, TypedPipelineRejectsUnparseableRecordsAtTheSource) {
  StreamBuilder builder;
  const Serdes<std::string, shop::Order> in_serdes{serdes::string(),
                                                   serdes::json_as<shop::Order>()};
  const Serdes<std::string, std::int64_t> out_serdes{serdes::string(), serdes::int64()};
  builder.stream("orders", in_serdes, "orders-json")
      .map_values(
          [](const shop::Order& order) { return static_cast<std::int64_t>(order.quantity); })
      .to("quantities", out_serdes);
  testing::TopologyTestDriver driver(builder.build());
  driver.pipe_raw("orders", {"k", R"({"user":"u","sku":"s","quantity":4})", {}, 0});
  EXPECT_THROW(driver.pipe_raw("orders", {"k", "{not json", {}, 0}), OperatorFailure);
  EXPECT_EQ(driver.output_topic("quantities", out_serdes).read_values(),
            std::vector<std::int64_t>{4});
}

TEST(BytesSerdeTest, KeepsEveryByte) {
  const auto bytes = serdes::bytes();
  const std::string raw("\0\xff\x01", 3);
  const auto value = bytes.deserialize(raw);
  ASSERT_EQ(value.size(), 3u);
  EXPECT_EQ(value[1], std::byte{0xff});
  EXPECT_EQ(bytes.serialize(value), raw);
}

}  // namespace
}  // namespace streamrun
