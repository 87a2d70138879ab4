// Documentation generated from the code stays in step with it.

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <streamrun/runtime/runtime_config.h>

namespace streamrun::runtime {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(DocsTest, ThePropertyTableOfRuntimeMdIsTheDeclaredProperties) {
  const auto doc = read_file(STREAMRUN_SOURCE_DIR "/docs/runtime.md");
  const auto begin = doc.find("<!-- properties:");
  const auto end = doc.find("<!-- end of properties -->");
  ASSERT_NE(begin, std::string::npos) << "docs/runtime.md lost its property table markers";
  ASSERT_NE(end, std::string::npos);
  const auto table_start = doc.find('\n', begin) + 1;
  EXPECT_EQ(doc.substr(table_start, end - table_start),
            RuntimeProperties::definition().to_markdown())
      << "docs/runtime.md is out of date: run scripts/gen-docs.sh";
}

}  // namespace
}  // namespace streamrun::runtime
