// order-counter: counts orders per SKU, built against an installed streamrun
// (examples/out-of-tree/CMakeLists.txt).
//
//   order-counter BOOTSTRAP        # orders (keyed by SKU) -> order-counts (SKU -> count)
//   order-counter --self-test      # no broker: the C++ topology and a YAML pipeline, in-process

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <streamrun/core/stream_builder.h>
#include <streamrun/dsl/pipeline.h>
#include <streamrun/operators/builtin.h>
#include <streamrun/runtime/application.h>
#include <streamrun/testing/topology_test_driver.h>

namespace {

const streamrun::Serdes<std::string, std::string> kStrings{streamrun::serdes::string(),
                                                           streamrun::serdes::string()};
const streamrun::Serdes<std::string, std::int64_t> kCounts{streamrun::serdes::string(),
                                                           streamrun::serdes::int64()};

streamrun::Topology count_topology() {
  streamrun::StreamBuilder builder;
  builder.stream("orders", kStrings)
      .group_by_key(kStrings)
      .count("counts")
      .to_stream()
      .to("order-counts", kCounts);
  return builder.build();
}

// The same count declared in YAML, loaded with the built-in operators.
constexpr const char* kPipeline = R"(application: order-counter-yaml
pipeline:
  - from: {topic: orders}
  - count: {store: counts}
  - to: {topic: order-counts}
)";

int self_test() {
  int failures = 0;
  {
    streamrun::testing::TopologyTestDriver driver(count_topology());
    auto orders = driver.input_topic("orders", kStrings);
    auto counts = driver.output_topic("order-counts", kCounts);
    orders.pipe("sku-1", "o-1");
    orders.pipe("sku-2", "o-2");
    orders.pipe("sku-1", "o-3");
    const auto got = counts.read_key_values();
    const bool ok = got.size() == 3 && got[2].key == "sku-1" && got[2].value == 2;
    std::printf("C++ topology: %s\n", ok ? "ok" : "wrong counts");
    failures += ok ? 0 : 1;
  }
  {
    streamrun::dsl::Registry registry;
    streamrun::operators::register_builtin_operators(registry);
    auto loaded = streamrun::dsl::load_pipeline(kPipeline, "order-counter.yaml", registry);
    if (!loaded.pipeline) {
      for (const auto& diagnostic : loaded.diagnostics)
        std::fprintf(stderr, "%s\n", diagnostic.to_string().c_str());
      return 1;
    }
    streamrun::testing::TopologyTestDriver driver(loaded.pipeline->topology);
    driver.pipe_raw("orders", {.key = "sku-1", .value = R"({"order_id":"o-1"})"});
    driver.pipe_raw("orders", {.key = "sku-1", .value = R"({"order_id":"o-2"})"});
    const auto got = driver.read_raw("order-counts");
    const bool ok = got.size() == 2 && got[1].key == "sku-1";
    std::printf("YAML pipeline: %s\n", ok ? "ok" : "wrong output");
    failures += ok ? 0 : 1;
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--self-test") == 0)
    return self_test();
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: order-counter BOOTSTRAP | --self-test\n");
    return 2;
  }
  auto app = streamrun::runtime::Application::create(
      count_topology(), {{"application.id", "order-counter"}, {"bootstrap.servers", argv[1]}},
      {.handle_signals = true});
  if (!app) {
    std::fprintf(stderr, "order-counter: %s\n", app.error().message().c_str());
    return 2;
  }
  if (auto ran = (*app)->run(); !ran) {
    std::fprintf(stderr, "order-counter: %s\n", ran.error().message().c_str());
    return 1;
  }
  return 0;
}
