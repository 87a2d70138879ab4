#pragma once

// What the pipeline loader and the pipeline-test loader share in reading YAML.

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <streamrun/dsl/registry.h>

namespace streamrun::dsl::detail {

// A place in `file`: yaml-cpp counts lines and columns from 0, messages from 1.
inline Location location_of(const std::string& file, const YAML::Mark& mark) {
  return {file, mark.line + 1, mark.column + 1};
}

// A YAML scalar (its text, after any substitution) as JSON: quoted text stays text; true,
// false, null and ~ are recognised, and so are numbers as JSON writes them; anything else is
// text.
inline nlohmann::json scalar_to_json(const YAML::Node& node, const std::string& text) {
  if (node.Tag() == "!")
    return text;  // quoted
  if (text == "true" || text == "false")
    return text == "true";
  if (text == "null" || text == "~")
    return nullptr;
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() || !parsed.is_number() ? nlohmann::json(text) : parsed;
}

// The text of the file at `path`, or why it cannot be read ("is a directory", strerror).
inline std::optional<std::string> read_text(const std::filesystem::path& path,
                                            std::string& why_not) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    why_not = "cannot read the file: it is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why_not = "cannot read the file: " + std::string(std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    why_not = "cannot read the file: " + std::string(std::strerror(errno));
    return std::nullopt;
  }
  return text.str();
}

// The one YAML document of a file. Reports (and returns nullopt for) text that is not YAML, an
// empty file, and a second document: a file holds one pipeline or one test suite.
template <typename Report>  // report(YAML::Mark, message)
std::optional<YAML::Node> load_document(const std::string& text, std::string_view what,
                                        Report&& report) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    report(e.mark, "not valid YAML: " + e.msg);
    return std::nullopt;
  }
  if (documents.empty() || documents.front().IsNull()) {
    report(YAML::Mark(), fmt::format("the file is empty: a {} is a YAML mapping", what));
    return std::nullopt;
  }
  if (documents.size() > 1) {
    report(documents[1].Mark(),
           fmt::format("a second YAML document: a file holds one {} (remove the '---')", what));
    return std::nullopt;
  }
  return documents.front();
}

// Whether `text` is valid UTF-8 (YAML files are Unicode text; yaml-cpp does not check).
inline bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const int length = byte < 0x80           ? 1
                       : (byte >> 5) == 0x6  ? 2
                       : (byte >> 4) == 0xE  ? 3
                       : (byte >> 3) == 0x1E ? 4
                                             : 0;
    if (length == 0 || i + static_cast<std::size_t>(length) > text.size())
      return false;
    for (int k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]) & 0xC0) != 0x80)
        return false;
    }
    i += static_cast<std::size_t>(length);
  }
  return true;
}

// The limits of a document the loaders read: far beyond any real pipeline or test file, and
// what keeps aliases that expand exponentially ("billion laughs") or a node that contains
// itself (`&a [*a]`) from taking the process's memory or stack.
inline constexpr int kMaxDepth = 64;
inline constexpr int kMaxNodes = 100'000;

// Checks what must hold before a document's meaning is looked at, calling report(node,
// message) for each problem: every mapping key is a single value and given once, every scalar
// is UTF-8, and the document (aliases expanded) is within kMaxDepth and kMaxNodes. Returns
// false when it reported anything (the loaders then stop: keys are not safe to read).
template <typename Report>
bool check_structure(const YAML::Node& root, Report&& report) {
  int nodes = 0;
  bool ok = true;
  bool stopped = false;
  auto walk = [&](auto&& self, const YAML::Node& node, int depth) -> void {
    if (stopped)
      return;
    if (++nodes > kMaxNodes || depth > kMaxDepth) {
      report(node, nodes > kMaxNodes
                       ? fmt::format("the document has more than {} values (aliases that "
                                     "expand too far?)",
                                     kMaxNodes)
                       : fmt::format("values nested deeper than {} (an alias inside its own "
                                     "anchor?)",
                                     kMaxDepth));
      ok = false;
      stopped = true;
      return;
    }
    if (node.IsScalar()) {
      if (!valid_utf8(node.Scalar())) {
        report(node, "not valid UTF-8 text (YAML files are Unicode)");
        ok = false;
      }
      return;
    }
    if (node.IsSequence()) {
      for (const auto& item : node)
        self(self, item, depth + 1);
      return;
    }
    if (!node.IsMap())
      return;
    std::map<std::string, YAML::Node> seen;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) {
        report(entry.first, "a key must be a name, not a list, a mapping or nothing");
        ok = false;
      } else if (auto [it, first] = seen.emplace(entry.first.Scalar(), entry.first); !first) {
        report(entry.first,
               fmt::format("'{}' is given twice (first at line {}); YAML keeps only one",
                           entry.first.Scalar(), it->second.Mark().line + 1));
        ok = false;
      }
      self(self, entry.first, depth + 1);
      self(self, entry.second, depth + 1);
    }
  };
  walk(walk, root, 0);
  return ok;
}

}  // namespace streamrun::dsl::detail
