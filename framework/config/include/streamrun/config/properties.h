#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <streamrun/base/result.h>

namespace streamrun::config {

// Where a value came from, so that an error can say "app.properties:12" or "--set".
struct Source {
  std::string origin;  // file path, "command line", "code"
  int line = 0;        // 0 when not from a file
  int column = 0;      // 0 when not known

  [[nodiscard]] std::string to_string() const;
};

struct RawProperty {
  std::string key;
  std::string value;
  Source source;
};

// Unvalidated key/value pairs in the order given; later entries override earlier ones.
class Properties {
 public:
  Properties() = default;
  Properties(std::initializer_list<std::pair<std::string, std::string>> entries);

  void set(std::string key, std::string value, Source source = {"code", 0});
  void merge(const Properties& other);
  [[nodiscard]] const std::vector<RawProperty>& entries() const noexcept { return entries_; }

  // Java-style properties file: `key=value` (or `key: value`), `#`/`!` comments, blank lines.
  [[nodiscard]] static Result<Properties> from_file(const std::filesystem::path& path);
  // `key=value` items, e.g. from repeated `--set` flags.
  [[nodiscard]] static Result<Properties> from_assignments(const std::vector<std::string>& items,
                                                           std::string_view origin);

 private:
  std::vector<RawProperty> entries_;
};

}  // namespace streamrun::config
