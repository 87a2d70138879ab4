// libFuzzer target for the YAML loaders (docs/fuzzing.md; scripts/fuzz.sh builds and runs it).
// Every input is given to both loaders:
//   - dsl::load_pipeline() as a pipeline file (built-in operators, a fixed environment), and
//     when it loads, what `streamrun describe`/`run` do with the topology;
//   - dsl::load_test_suite() as a pipeline-test file (it reads a path: the input is written to
//     an in-memory file, /proc/self/fd/N).
// Whatever the input, each must answer with a result or diagnostics: no crash, uncaught
// exception, hang, leak or undefined behaviour.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include <streamrun/dsl/pipeline.h>
#include <streamrun/dsl/pipeline_test.h>
#include <streamrun/operators/builtin.h>

namespace {

using namespace streamrun;

const dsl::Registry& registry() {
  static const dsl::Registry* const built = [] {
    auto* r = new dsl::Registry();
    operators::register_builtin_operators(*r);
    return r;
  }();
  return *built;
}

// A fixed environment, so that a run does not depend on the machine's (yaml.dict names these).
std::optional<std::string> environment(const std::string& name) {
  static const std::map<std::string, std::string> variables{
      {"VAR", "value"}, {"BOOTSTRAP", "127.0.0.1:9092"},
      {"EMPTY", ""},    {"NESTED", "${VAR}"},  // not substituted again
      {"NUMBER", "42"},
  };
  auto it = variables.find(name);
  if (it == variables.end())
    return std::nullopt;
  return it->second;
}

// Stops the run on a broken promise of the API, as a crash libFuzzer reports.
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "pipeline_loader_fuzz: %s\n", what);
    std::abort();
  }
}

void fuzz_pipeline(const std::string& text) {
  auto result = dsl::load_pipeline(text, "fuzz.yaml", registry(), environment);
  check(result.pipeline.has_value() != !result.diagnostics.empty(),
        "load_pipeline: expected a pipeline or diagnostics, exactly one of them");
  for (const auto& diagnostic : result.diagnostics) {
    check(!diagnostic.message.empty(), "load_pipeline: a diagnostic without a message");
    static_cast<void>(diagnostic.to_string());
  }
  if (!result.pipeline)
    return;
  const auto& pipeline = *result.pipeline;
  check(!pipeline.application_id.empty(), "load_pipeline: a pipeline without application id");
  auto topology = pipeline.topology.resolved(pipeline.application_id);
  static_cast<void>(topology.describe());
  static_cast<void>(topology.describe_mermaid());
  static_cast<void>(topology.source_topics());
  static_cast<void>(topology.sink_topics());
  for (int i = 0; i < topology.subtopology_count(); ++i)
    static_cast<void>(topology.stores(i));
  for (const auto& node : topology.nodes()) {
    if (node.factory)
      static_cast<void>(node.factory());
  }
}

// One in-memory file, rewritten for each input.
struct MemoryFile {
  int fd;
  std::string path;
};
const MemoryFile& test_file() {
  static const MemoryFile file = [] {
    const int fd = memfd_create("fuzz.test.yaml", MFD_CLOEXEC);
    check(fd >= 0, "memfd_create failed");
    return MemoryFile{fd, "/proc/self/fd/" + std::to_string(fd)};
  }();
  return file;
}

void fuzz_test_suite(const uint8_t* data, size_t size) {
  const auto& file = test_file();
  check(ftruncate(file.fd, 0) == 0, "ftruncate failed");
  size_t written = 0;
  while (written < size) {
    const auto n = pwrite(file.fd, data + written, size - written, static_cast<off_t>(written));
    check(n > 0, "pwrite failed");
    written += static_cast<size_t>(n);
  }
  auto result = dsl::load_test_suite(file.path);
  check(result.suite.has_value() != !result.diagnostics.empty(),
        "load_test_suite: expected a suite or diagnostics, exactly one of them");
  for (const auto& diagnostic : result.diagnostics) {
    check(!diagnostic.message.empty(), "load_test_suite: a diagnostic without a message");
    static_cast<void>(diagnostic.to_string());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_pipeline(std::string(reinterpret_cast<const char*>(data), size));
  fuzz_test_suite(data, size);
  return 0;
}
