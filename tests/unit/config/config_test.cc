#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <streamrun/config/config.h>

namespace streamrun::config {
namespace {

const Property<std::string> kApplicationId{{.key = "application.id",
                                            .type = ValueType::string,
                                            .default_value = std::nullopt,
                                            .doc = "Consumer group and prefix of internal topics"}};
const Property<std::int64_t> kCommitIntervalMs{{.key = "commit.interval.ms",
                                                .type = ValueType::integer,
                                                .default_value = "100",
                                                .doc = "How often tasks commit",
                                                .min = 1,
                                                .max = 3'600'000}};
const Property<bool> kMetricsEnabled{
    {.key = "metrics.enabled", .type = ValueType::boolean, .default_value = "true", .doc = "d"}};
const Property<std::string> kProcessingGuarantee{{.key = "processing.guarantee",
                                                  .type = ValueType::choice,
                                                  .default_value = "at_least_once",
                                                  .doc = "d",
                                                  .choices = {"at_least_once", "exactly_once"}}};
const Property<std::string> kStoreKey{{.key = "state.encryption.key",
                                       .type = ValueType::choice,
                                       .default_value = "none",
                                       .doc = "d",
                                       .choices = {"none", "k1"},
                                       .secret = true}};
const Property<std::vector<std::string>> kTopics{
    {.key = "topics", .type = ValueType::list, .default_value = "a, b", .doc = "d"}};

ConfigDef test_def() {
  ConfigDef def;
  def.add(kApplicationId)
      .add(kCommitIntervalMs)
      .add(kMetricsEnabled)
      .add(kProcessingGuarantee)
      .add(kStoreKey)
      .add(kTopics);
  return def;
}

// A stand-in for the Kafka client's schema: two keys, one secret.
class FakeClientSchema final : public PassthroughSchema {
 public:
  std::string_view name() const override { return "Kafka client"; }
  bool knows(std::string_view key) const override {
    return key == "bootstrap.servers" || key == "sasl.password" || key == "linger.ms";
  }
  std::optional<std::string> check(std::string_view key, std::string_view value) const override {
    if (key == "linger.ms" && value == "soon")
      return "not a number";
    return std::nullopt;
  }
  bool is_secret(std::string_view key) const override { return key == "sasl.password"; }
  std::vector<std::string> keys() const override {
    return {"bootstrap.servers", "sasl.password", "linger.ms"};
  }
  std::vector<std::string> role_prefixes() const override { return {"consumer.", "producer."}; }
};

TEST(ConfigTest, DefaultsApplyAndSetValuesAreTyped) {
  auto config =
      Config::load({{"application.id", "shop"}, {"commit.interval.ms", "250"}}, test_def());
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->get(kApplicationId), "shop");
  EXPECT_EQ(config->get(kCommitIntervalMs), 250);
  EXPECT_TRUE(config->get(kMetricsEnabled));
  EXPECT_EQ(config->get(kProcessingGuarantee), "at_least_once");
  EXPECT_EQ(config->get(kTopics), (std::vector<std::string>{"a", "b"}));
}

TEST(ConfigTest, UnknownKeyIsRejectedWithSuggestion) {
  auto config = Config::load({{"application.id", "shop"}, {"comit.interval.ms", "5"}}, test_def());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), errc::unknown_key);
  EXPECT_EQ(config.error().message(),
            "code: unknown configuration key 'comit.interval.ms' (did you mean "
            "'commit.interval.ms'?)");
}

TEST(ConfigTest, UnknownKeyFarFromAnyKnownKeyHasNoSuggestion) {
  auto config = Config::load({{"application.id", "x"}, {"zzzzzz", "1"}}, test_def());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(), "code: unknown configuration key 'zzzzzz'");
}

TEST(ConfigTest, MalformedValueNamesKeyAndExpectation) {
  auto config =
      Config::load({{"application.id", "shop"}, {"commit.interval.ms", "soon"}}, test_def());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), errc::invalid_value);
  EXPECT_EQ(config.error().message(),
            "code: invalid value 'soon' for 'commit.interval.ms': expected an integer in [1, "
            "3600000]");
}

TEST(ConfigTest, OutOfBoundsAndBadChoiceAndBadBoolAreRejected) {
  auto config = Config::load({{"application.id", "shop"},
                              {"commit.interval.ms", "0"},
                              {"processing.guarantee", "twice"},
                              {"metrics.enabled", "yes"}},
                             test_def());
  ASSERT_FALSE(config.ok());
  const auto& message = config.error().message();
  EXPECT_NE(message.find("'commit.interval.ms': expected an integer in [1, 3600000]"),
            std::string::npos);
  EXPECT_NE(message.find("'processing.guarantee': expected one of at_least_once, exactly_once"),
            std::string::npos);
  EXPECT_NE(message.find("'metrics.enabled': expected true or false"), std::string::npos);
}

TEST(ConfigTest, MissingRequiredPropertyIsNamed) {
  auto config = Config::load({}, test_def());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), errc::missing_required);
  EXPECT_EQ(config.error().message(),
            "missing required configuration 'application.id': Consumer group and prefix of "
            "internal topics");
}

TEST(ConfigTest, SecretValuesNeverAppearInErrorsOrLogs) {
  FakeClientSchema schema;
  auto bad = Config::load({{"application.id", "a"}, {"state.encryption.key", "hunter2"}},
                          test_def(), &schema);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message().find("hunter2"), std::string::npos) << bad.error().message();

  auto good = Config::load(
      {{"application.id", "a"}, {"sasl.password", "hunter2"}, {"state.encryption.key", "k1"}},
      test_def(), &schema);
  ASSERT_TRUE(good.ok()) << good.error().message();
  const auto shown = good->to_log_string();
  EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("k1"), std::string::npos) << shown;
  EXPECT_NE(shown.find("sasl.password=[redacted]"), std::string::npos) << shown;
  EXPECT_NE(shown.find("application.id=a"), std::string::npos) << shown;
}

TEST(ConfigTest, ClientPropertiesPassThroughUnchangedAndPerRole) {
  FakeClientSchema schema;
  auto config = Config::load({{"application.id", "a"},
                              {"bootstrap.servers", "k1:9092"},
                              {"linger.ms", "5"},
                              {"producer.linger.ms", "20"},
                              {"consumer.bootstrap.servers", "k2:9092"}},
                             test_def(), &schema);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(
      config->passthrough_for("producer"),
      (std::map<std::string, std::string>{{"bootstrap.servers", "k1:9092"}, {"linger.ms", "20"}}));
  EXPECT_EQ(
      config->passthrough_for("consumer"),
      (std::map<std::string, std::string>{{"bootstrap.servers", "k2:9092"}, {"linger.ms", "5"}}));
}

TEST(ConfigTest, ClientPropertyValuesAreCheckedByTheirSchema) {
  FakeClientSchema schema;
  auto config =
      Config::load({{"application.id", "a"}, {"producer.linger.ms", "soon"}}, test_def(), &schema);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(),
            "code: invalid value for Kafka client property 'producer.linger.ms': not a number");
}

TEST(ConfigTest, SuggestionsIncludeClientProperties) {
  FakeClientSchema schema;
  auto config =
      Config::load({{"application.id", "a"}, {"bootstrap.server", "x"}}, test_def(), &schema);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message().find("(did you mean 'bootstrap.servers'?)"),
            std::string::npos);
}

TEST(ConfigTest, AMisspeltClientPropertyUnderARolePrefixGetsASuggestionWithThePrefix) {
  FakeClientSchema schema;
  auto config = Config::load({{"application.id", "a"}, {"consumer.bootstrap.server", "x"}},
                             test_def(), &schema);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message().find("(did you mean 'consumer.bootstrap.servers'?)"),
            std::string::npos)
      << config.error().message();
}

TEST(PropertiesTest, FileErrorsNameFileAndLine) {
  const auto path = std::filesystem::temp_directory_path() / "streamrun_config_test.properties";
  {
    std::ofstream out(path);
    out << "# comment\napplication.id = shop\n\ncommit.interval.ms=abc\n";
  }
  auto props = Properties::from_file(path);
  ASSERT_TRUE(props.ok()) << props.error().message();
  auto config = Config::load(*props, test_def());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(),
            path.string() +
                ":4: invalid value 'abc' for 'commit.interval.ms': expected an integer "
                "in [1, 3600000]");

  {
    std::ofstream out(path);
    out << "application.id\n";
  }
  auto malformed = Properties::from_file(path);
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().message(),
            path.string() + ":1: expected 'key=value', got 'application.id'");
  std::filesystem::remove(path);
}

TEST(PropertiesTest, MissingFileIsAClearError) {
  auto props = Properties::from_file("/nonexistent/app.properties");
  ASSERT_FALSE(props.ok());
  EXPECT_EQ(props.error().message(), "cannot read config file '/nonexistent/app.properties'");
}

TEST(PropertiesTest, AssignmentsNeedAnEqualsSign) {
  auto ok = Properties::from_assignments({"a=b=c"}, "--set");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->entries().front().value, "b=c");
  auto bad = Properties::from_assignments({"novalue"}, "--set");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "--set: expected 'key=value', got 'novalue'");
}

TEST(ConfigDefTest, DeclaringAKeyTwiceOrAnInvalidDefaultIsAProgrammingError) {
  ConfigDef def;
  def.add(kCommitIntervalMs);
  EXPECT_THROW(def.add(kCommitIntervalMs), std::logic_error);
  const Property<std::int64_t> bad_default{
      {.key = "x", .type = ValueType::integer, .default_value = "0", .doc = "d", .min = 1}};
  EXPECT_THROW(def.add(bad_default), std::logic_error);
}

TEST(ConfigDefTest, MarkdownListsEveryProperty) {
  const auto markdown = test_def().to_markdown();
  EXPECT_NE(markdown.find("| `commit.interval.ms` | integer in [1, 3600000] | `100` | How often "
                          "tasks commit |"),
            std::string::npos)
      << markdown;
  EXPECT_NE(markdown.find("| `application.id` | string | (required) |"), std::string::npos);
}

}  // namespace
}  // namespace streamrun::config
