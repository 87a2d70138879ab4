#pragma once

// Tests of YAML pipelines, written as YAML beside them and run on the test driver by
// `streamrun test FILE` (no broker):
//
//   pipeline: inventory.yaml          # relative to this file
//   partitions: {orders: 4, stock: 4} # optional; topics not named have 1
//   tests:
//     - name: one unit per user
//       input:                        # piped in the order given
//         - {topic: stock, key: sku-1, value: {units: 5}}
//         - {topic: orders, key: r1, value: {order_id: "1", user_id: ann, sku: sku-1}}
//       expect:                       # every record written to each topic named, in order
//         decisions:
//           - {key: sku-1, value: {order_id: "1", ..., reason: accepted, remaining: 4}}
//
// A record is {topic (input only), key (text or null), value (any JSON) or text (raw bytes),
// timestamp (input only: milliseconds since the epoch, default 0)}.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <streamrun/dsl/pipeline.h>

namespace streamrun::dsl {

struct TestRecordSpec {
  std::string topic;  // input records only
  std::optional<std::string> key;
  std::optional<std::string> bytes;  // the value as written: JSON text, raw text, or null
  // Input: the record's time. Expected: the time the record must carry, when given.
  std::int64_t timestamp_ms = 0;
  bool timestamp_given = false;
  // Input only ({wait_ms: N} instead of a record): move the test's clock on by N ms, running
  // the wall-clock punctuators that are due (emit_every_ms).
  std::optional<std::int64_t> wait_ms;
  Location where;
};

struct PipelineTestCase {
  std::string name;
  Location where;
  std::vector<TestRecordSpec> input;
  std::map<std::string, std::vector<TestRecordSpec>> expect;  // by topic
};

struct PipelineTestSuite {
  std::filesystem::path pipeline;
  std::map<std::string, std::int32_t, std::less<>> partitions;
  std::vector<PipelineTestCase> cases;
};

struct TestSuiteLoadResult {
  std::optional<PipelineTestSuite> suite;
  std::vector<Diagnostic> diagnostics;
};

[[nodiscard]] TestSuiteLoadResult load_test_suite(const std::filesystem::path& path);

}  // namespace streamrun::dsl
