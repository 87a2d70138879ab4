// Start-up errors an application reports before it talks to any broker.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/runtime/application.h>

namespace streamrun::runtime {
namespace {

using ::testing::HasSubstr;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};

Topology stateless() {
  StreamBuilder builder;
  builder.stream("in", kStrings).to("out", kStrings);
  return builder.build();
}

std::string create_error(const Topology& topology, const config::Properties& properties) {
  auto app = Application::create(topology, properties);
  return app.ok() ? std::string("(created)") : app.error().message();
}

TEST(ApplicationConfigTest, UnknownKeyIsNamedWithASuggestion) {
  EXPECT_EQ(create_error(stateless(), {{"application.id", "a"},
                                       {"bootstrap.servers", "127.0.0.1:1"},
                                       {"commit.interval", "100"}}),
            "code: unknown configuration key 'commit.interval' (did you mean "
            "'commit.interval.ms'?)");
}

TEST(ApplicationConfigTest, MalformedValueIsNamed) {
  EXPECT_EQ(create_error(stateless(), {{"application.id", "a"},
                                       {"bootstrap.servers", "127.0.0.1:1"},
                                       {"num.threads", "many"}}),
            "code: invalid value 'many' for 'num.threads': expected an integer in [0, 256]");
}

TEST(ApplicationConfigTest, RequiredPropertiesAreNamed) {
  EXPECT_THAT(create_error(stateless(), {{"bootstrap.servers", "127.0.0.1:1"}}),
              HasSubstr("missing required configuration 'application.id'"));
  EXPECT_THAT(create_error(stateless(), {{"application.id", "a"}}),
              HasSubstr("missing required configuration 'bootstrap.servers'"));
}

TEST(ApplicationConfigTest, GroupIdComesFromTheApplicationId) {
  EXPECT_THAT(create_error(stateless(), {{"application.id", "a"},
                                         {"bootstrap.servers", "127.0.0.1:1"},
                                         {"group.id", "other"}}),
              HasSubstr("'group.id' is set by 'application.id'"));
}

TEST(ApplicationConfigTest, UnreachableClusterIsOneLineNamingTheAddress) {
  const auto error = create_error(stateless(), {{"application.id", "a"},
                                                {"bootstrap.servers", "127.0.0.1:1"},
                                                {"startup.timeout.ms", "500"}});
  EXPECT_THAT(error, HasSubstr("cannot reach Kafka at bootstrap.servers=127.0.0.1:1"));
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace streamrun::runtime
