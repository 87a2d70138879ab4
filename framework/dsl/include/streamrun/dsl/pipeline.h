#pragma once

// A pipeline declared in YAML, loaded into the same Topology the C++ API builds:
//
//   application: word-count                # application.id
//   properties:                            # runtime and Kafka client properties
//     bootstrap.servers: ${BOOTSTRAP:127.0.0.1:9092}
//   pipeline:                              # steps, each "operator: {fields}"
//     - from: {topic: lines}
//     - key_by: {field: word}
//     - count: {store: words}
//     - to: {topic: word-counts}
//
// ${VAR} and ${VAR:default} in any scalar are replaced from the environment. Every problem is
// reported at once, each as "FILE:LINE:COL: error: ...". See docs/pipelines.md.

#include <filesystem>
#include <string>
#include <vector>

#include <streamrun/base/result.h>
#include <streamrun/config/properties.h>
#include <streamrun/core/topology.h>
#include <streamrun/dsl/registry.h>

namespace streamrun::dsl {

struct Diagnostic {
  Location where;
  std::string message;
  [[nodiscard]] std::string to_string() const;  // "FILE:LINE:COL: error: message"
};

struct Pipeline {
  std::string application_id;
  config::Properties properties;  // application.id included; each names its file and line
  Topology topology;
};

// The pipeline in `text` (read from `file`, which only names it in messages), or every problem
// found. `environment` looks variables up (default: the process environment).
struct LoadResult {
  std::optional<Pipeline> pipeline;
  std::vector<Diagnostic> diagnostics;  // empty when pipeline is set
  // The properties the file sets, each with its place, also when the pipeline has problems (so
  // that a tool can check them too).
  config::Properties properties;
};
[[nodiscard]] LoadResult load_pipeline(
    const std::string& text, const std::string& file, const Registry& registry,
    const std::function<std::optional<std::string>(const std::string&)>& environment = {});
[[nodiscard]] LoadResult load_pipeline_file(const std::filesystem::path& path,
                                            const Registry& registry);

}  // namespace streamrun::dsl
