// YAML pipelines: what a valid file builds (run on the test driver), and the exact message and
// position for each kind of broken file (the corpus in tests/unit/dsl/lint/: NAME.yaml and the
// errors expected for it in NAME.errors, with FILE standing for the file's path).

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <streamrun/dsl/pipeline.h>
#include <streamrun/json/json_serde.h>
#include <streamrun/operators/builtin.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun::dsl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TopologyTestDriver;

const Registry& registry() {
  static const Registry r = [] {
    Registry built;
    operators::register_builtin_operators(built);
    return built;
  }();
  return r;
}

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

LoadResult load(const std::string& yaml, std::map<std::string, std::string> environment = {}) {
  return load_pipeline(yaml, "test.yaml", registry(),
                       [environment](const std::string& name) -> std::optional<std::string> {
                         auto it = environment.find(name);
                         if (it == environment.end())
                           return std::nullopt;
                         return it->second;
                       });
}

TEST(PipelineLoaderTest, EveryBrokenFileOfTheCorpusGetsItsExactMessages) {
  const std::filesystem::path corpus = STREAMRUN_SOURCE_DIR "/tests/unit/dsl/lint";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    if (entry.path().extension() != ".yaml")
      continue;
    ++files;
    const auto file = entry.path().string();
    auto loaded = load_pipeline_file(entry.path(), registry());
    EXPECT_FALSE(loaded.pipeline.has_value()) << file << " must not load";
    std::string messages;
    for (const auto& diagnostic : loaded.diagnostics)
      messages += diagnostic.to_string() + "\n";
    // FILE stands for the path in the expected messages.
    std::string expected = read(std::filesystem::path(entry.path()).replace_extension(".errors"));
    for (auto at = expected.find("FILE"); at != std::string::npos; at = expected.find("FILE"))
      expected.replace(at, 4, file);
    EXPECT_EQ(messages, expected) << "for " << file;
  }
  EXPECT_GE(files, 10);
}

TEST(PipelineLoaderTest, EveryPipelineShippedInPipelinesLoads) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(STREAMRUN_SOURCE_DIR "/pipelines")) {
    if (entry.path().extension() != ".yaml")
      continue;
    ++files;
    auto loaded = load_pipeline_file(entry.path(), registry());
    EXPECT_TRUE(loaded.pipeline.has_value())
        << (loaded.diagnostics.empty() ? "" : loaded.diagnostics.front().to_string());
  }
  EXPECT_GE(files, 1);
}

TEST(PipelineLoaderTest, AWordCountPipelineCountsOnTheTestDriver) {
  auto loaded = load(read(STREAMRUN_SOURCE_DIR "/pipelines/word-count.yaml"));
  ASSERT_TRUE(loaded.pipeline) << loaded.diagnostics.front().to_string();
  EXPECT_EQ(loaded.pipeline->application_id, "word-count");
  TopologyTestDriver driver(
      loaded.pipeline->topology,
      TopologyTestDriver::Options{.application_id = "word-count", .partitions = {{"words", 4}}});
  const Serdes<Key, nlohmann::json> json{serdes::nullable_string(), serdes::json()};
  auto words = driver.input_topic("words", json);
  words.pipe(std::nullopt, {{"word", "kafka"}});
  words.pipe(std::nullopt, {{"word", "fiber"}});
  words.pipe(std::nullopt, {{"word", "kafka"}});
  words.pipe(std::nullopt, {{"other", 1}});  // no word: filtered out
  std::map<std::string, std::int64_t> latest;
  for (auto& kv : driver.output_topic("word-counts", json).read_key_values())
    latest[*kv.key] = kv.value.get<std::int64_t>();
  EXPECT_EQ(latest, (std::map<std::string, std::int64_t>{{"fiber", 1}, {"kafka", 2}}));
}

TEST(PipelineLoaderTest, PropertiesAndEnvironmentVariablesAreSubstitutedWithTheirLines) {
  auto loaded = load(R"(application: app
properties:
  bootstrap.servers: ${BROKERS:127.0.0.1:9092}
  commit.interval.ms: ${INTERVAL}
pipeline:
  - from: {topic: in}
  - to: {topic: out}
)",
                     {{"INTERVAL", "250"}});
  ASSERT_TRUE(loaded.pipeline);
  std::map<std::string, std::string> values;
  for (const auto& entry : loaded.pipeline->properties.entries()) {
    values[entry.key] = entry.value;
    if (entry.key == "commit.interval.ms")
      EXPECT_EQ(entry.source.to_string(), "test.yaml:4");
  }
  EXPECT_EQ(values["bootstrap.servers"], "127.0.0.1:9092");
  EXPECT_EQ(values["commit.interval.ms"], "250");
  EXPECT_EQ(values["application.id"], "app");
}

TEST(PipelineLoaderTest, FilterAndMapReshapeRecords) {
  auto loaded = load(R"(application: app
pipeline:
  - from: {topic: in}
  - filter: {field: order.qty, op: ">", value: 0}
  - map: {rename: {order.qty: quantity}, drop: [secret], set: {source: web, valid: true}}
  - to: {topic: out}
)");
  ASSERT_TRUE(loaded.pipeline) << loaded.diagnostics.front().to_string();
  TopologyTestDriver driver(loaded.pipeline->topology);
  const Serdes<Key, nlohmann::json> json{serdes::nullable_string(), serdes::json()};
  auto in = driver.input_topic("in", json);
  in.pipe("k", nlohmann::json::parse(R"({"order": {"qty": 2}, "secret": "x"})"));
  in.pipe("k", nlohmann::json::parse(R"({"order": {"qty": 0}})"));
  in.pipe("k", nlohmann::json::parse(R"({"order": {"qty": "2"}})"));  // text is not a number
  EXPECT_THAT(driver.output_topic("out", json).read_values(),
              ElementsAre(nlohmann::json::parse(
                  R"({"order": {}, "quantity": 2, "source": "web", "valid": true})")));
}

TEST(PipelineLoaderTest, TheSameTopologyAsTheCxxApiDescribesTheSame) {
  auto loaded = load(R"(application: app
pipeline:
  - from: {topic: in}
  - key_by: {field: sku}
  - count: {store: per-sku}
  - to: {topic: out}
)");
  ASSERT_TRUE(loaded.pipeline);
  const auto text = loaded.pipeline->topology.resolved("app").describe();
  EXPECT_THAT(text, HasSubstr("[sink: app-3-count-by-key-repartition]"))
      << "a key change before a keyed operator goes through a repartition topic";
  EXPECT_EQ(loaded.pipeline->topology.subtopology_count(), 2);
  EXPECT_EQ(loaded.pipeline->topology.stores(1), std::vector<std::string>{"per-sku"});
}

}  // namespace
}  // namespace streamrun::dsl
