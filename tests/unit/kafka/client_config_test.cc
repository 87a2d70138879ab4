#include <gtest/gtest.h>

#include <streamrun/config/config.h>
#include <streamrun/kafka/client_config.h>
#include <streamrun/kafka/dev_broker.h>
#include <streamrun/kafka/producer.h>

namespace streamrun::kafka {
namespace {

using config::Config;
using config::ConfigDef;

TEST(ClientPropertySchemaTest, KnowsLibrdkafkaNames) {
  const auto& schema = client_property_schema();
  for (const char* key :
       {"bootstrap.servers", "security.protocol", "sasl.mechanisms", "sasl.username",
        "sasl.password", "linger.ms", "acks", "session.timeout.ms", "auto.offset.reset"}) {
    EXPECT_TRUE(schema.knows(key)) << key;
  }
  EXPECT_FALSE(schema.knows("bootstrap.server"));
}

TEST(ClientPropertySchemaTest, UnknownClientKeyGetsASuggestion) {
  auto config = Config::load({{"bootstrap.server", "127.0.0.1:9092"}}, ConfigDef{},
                             &client_property_schema());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(),
            "code: unknown configuration key 'bootstrap.server' (did you mean "
            "'bootstrap.servers'?)");
}

TEST(ClientPropertySchemaTest, MalformedClientValueIsExplainedByLibrdkafka) {
  auto config = Config::load({{"linger.ms", "soon"}}, ConfigDef{}, &client_property_schema());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), config::errc::invalid_value);
  EXPECT_NE(
      config.error().message().find("code: invalid value for Kafka client property 'linger.ms': "),
      std::string::npos)
      << config.error().message();
  EXPECT_NE(config.error().message().find("linger.ms"), std::string::npos);
}

TEST(ClientPropertySchemaTest, SecretsAreRedacted) {
  EXPECT_TRUE(is_secret_property("sasl.password"));
  EXPECT_TRUE(is_secret_property("ssl.key.password"));
  EXPECT_TRUE(is_secret_property("ssl.keystore.password"));
  EXPECT_TRUE(is_secret_property("sasl.oauthbearer.client.secret"));
  EXPECT_TRUE(is_secret_property("ssl.key.pem"));
  EXPECT_FALSE(is_secret_property("sasl.username"));

  auto config = Config::load({{"sasl.password", "hunter2"}, {"sasl.username", "alice"}},
                             ConfigDef{}, &client_property_schema());
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->to_log_string(), "sasl.password=[redacted], sasl.username=alice");
}

TEST(ClientPropertySchemaTest, RolePrefixesScopeAProperty) {
  auto config = Config::load({{"producer.linger.ms", "50"}, {"consumer.fetch.wait.max.ms", "10"}},
                             ConfigDef{}, &client_property_schema());
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->passthrough_for("producer").at("linger.ms"), "50");
  EXPECT_FALSE(config->passthrough_for("producer").contains("fetch.wait.max.ms"));
}

TEST(ProducerTest, RejectedPropertyIsNamed) {
  auto producer = Producer::create({{"linger.ms", "-5"}});
  ASSERT_FALSE(producer.ok());
  EXPECT_EQ(producer.error().code(), errc::invalid_config);
  EXPECT_NE(producer.error().message().find("producer property 'linger.ms' = '-5'"),
            std::string::npos)
      << producer.error().message();
}

TEST(TopicSpecTest, ParsesNameAndPartitions) {
  auto spec = TopicSpec::parse("orders:8");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->name, "orders");
  EXPECT_EQ(spec->partitions, 8);
  for (const char* bad : {"orders", "orders:", "orders:0", "orders:x", ":3", "bad topic:3"}) {
    auto parsed = TopicSpec::parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.error().message().find("expected NAME:PARTITIONS"), std::string::npos);
  }
}

}  // namespace
}  // namespace streamrun::kafka
