// Start-up errors an application reports before it talks to any broker.

#include <filesystem>
#include <fstream>
#include <unistd.h>

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

Topology stateful() {
  StreamBuilder builder;
  builder.stream("in", kStrings).group_by_key(kStrings).count("counts");
  return builder.build();
}

// A state.dir of its own, removed afterwards.
class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("streamrun-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

using ApplicationIdTest = StateDirTest;

TEST_F(ApplicationIdTest, AnIdThatIsNotATopicNameIsRefusedBeforeAnythingIsWritten) {
  const auto error = create_error(stateful(), {{"application.id", "../escaped-app"},
                                               {"bootstrap.servers", "127.0.0.1:1"},
                                               {"state.dir", dir_.string()}});
  EXPECT_THAT(error, HasSubstr("invalid value '../escaped-app' for 'application.id': has '/' at "
                               "position 3"));
  EXPECT_FALSE(std::filesystem::exists(dir_)) << "nothing created under state.dir";
  EXPECT_FALSE(std::filesystem::exists(dir_.parent_path() / "escaped-app"));
}

TEST_F(ApplicationIdTest, AnEmptyIdIsRefusedAsSuch) {
  EXPECT_EQ(create_error(stateful(), {{"application.id", ""},
                                      {"bootstrap.servers", "127.0.0.1:1"},
                                      {"state.dir", dir_.string()}}),
            "code: invalid value '' for 'application.id': is empty");
}

TEST_F(ApplicationIdTest, InternalTopicNamesTooLongForKafkaAreRefused) {
  const std::string id(240, 'a');  // legal alone; "<id>-counts-changelog" is not
  EXPECT_THAT(create_error(stateful(), {{"application.id", id},
                                        {"bootstrap.servers", "127.0.0.1:1"},
                                        {"state.dir", dir_.string()}}),
              HasSubstr("-counts-changelog' (application.id"));
}

TEST_F(ApplicationIdTest, AStateDirThatCannotBeCreatedIsNamedBeforeTheClusterIsAsked) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "a-file") << "not a directory";
  const auto error =
      create_error(stateful(), {{"application.id", "app"},
                                {"bootstrap.servers", "127.0.0.1:1"},
                                {"state.dir", (dir_ / "a-file" / "state").string()}});
  EXPECT_THAT(error, HasSubstr("state.dir '" + (dir_ / "a-file" / "state").string() + "': '" +
                               (dir_ / "a-file").string() + "' is not a directory"));
  EXPECT_THAT(error, HasSubstr("set state.dir to a directory this process may create and write"));
}

using ValidationOrderTest = StateDirTest;

TEST_F(ValidationOrderTest, ABadClientPropertyIsReportedBeforeTheClusterIsAsked) {
  // The cluster is unreachable: reaching it first would report that instead, after the
  // start-up timeout.
  const auto error = create_error(stateful(), {{"application.id", "app"},
                                               {"bootstrap.servers", "127.0.0.1:1"},
                                               {"enable.auto.commit", "true"},
                                               {"state.dir", dir_.string()}});
  EXPECT_THAT(error, HasSubstr("consumer property 'enable.auto.commit' = 'true'"));
  EXPECT_FALSE(std::filesystem::exists(dir_));
  EXPECT_THAT(create_error(stateful(), {{"application.id", "app"},
                                        {"bootstrap.servers", "127.0.0.1:1"},
                                        {"producer.linger.ms", "soon"},
                                        {"state.dir", dir_.string()}}),
              HasSubstr("linger.ms"));
}

}  // namespace
}  // namespace streamrun::runtime
