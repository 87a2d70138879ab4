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
#include <yaml-cpp/eventhandler.h>
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

// Where each document of a YAML stream starts, without building nodes.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// The one YAML document of a file. Reports (and returns nullopt for) text that is not YAML, an
// empty file, and a second document: a file holds one pipeline or one test suite. Looks at most
// two documents ahead: yaml-cpp 0.7's LoadAll never ends on some broken input (a lone ",":
// jbeder/yaml-cpp#1040), reporting empty documents at one place forever.
template <typename Report>  // report(YAML::Mark, message)
std::optional<YAML::Node> load_document(const std::string& text, std::string_view what,
                                        Report&& report) {
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts documents;
    if (parser.HandleNextDocument(documents) && parser.HandleNextDocument(documents) &&
        documents.starts.size() >= 2) {
      if (documents.starts[1].pos == documents.starts[0].pos) {
        report(documents.starts[0], "not valid YAML");
        return std::nullopt;
      }
      report(documents.starts[1],
             fmt::format("a second YAML document: a file holds one {} (remove the '---')", what));
      return std::nullopt;
    }
    auto root = YAML::Load(text);
    if (root.IsNull()) {
      report(YAML::Mark(), fmt::format("the file is empty: a {} is a YAML mapping", what));
      return std::nullopt;
    }
    return root;
  } catch (const YAML::ParserException& e) {
    report(e.mark, "not valid YAML: " + e.msg);
    return std::nullopt;
  }
}

// Whether `text` is valid UTF-8 (YAML files are Unicode text; yaml-cpp does not check).
inline bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  auto byte = [&](std::size_t at) { return static_cast<unsigned char>(text[at]); };
  while (i < text.size()) {
    const auto lead = byte(i);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // The well-formed sequences of Unicode's table 3-7: no overlong forms, no surrogates,
    // nothing past U+10FFFF.
    int length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      low = lead == 0xE0 ? 0xA0 : 0x80;
      high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      low = lead == 0xF0 ? 0x90 : 0x80;
      high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(length) > text.size())
      return false;
    if (byte(i + 1) < low || byte(i + 1) > high)
      return false;
    for (int k = 2; k < length; ++k) {
      if ((byte(i + static_cast<std::size_t>(k)) & 0xC0) != 0x80)
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
