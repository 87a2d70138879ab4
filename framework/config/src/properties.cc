#include <fstream>

#include <fmt/format.h>

#include <streamrun/config/config.h>
#include <streamrun/config/properties.h>

namespace streamrun::config {
namespace {

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos)
    return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

}  // namespace

std::string Source::to_string() const {
  if (line > 0 && column > 0)
    return fmt::format("{}:{}:{}", origin, line, column);
  return line > 0 ? fmt::format("{}:{}", origin, line) : origin;
}

Properties::Properties(std::initializer_list<std::pair<std::string, std::string>> entries) {
  for (const auto& [key, value] : entries)
    set(key, value);
}

void Properties::set(std::string key, std::string value, Source source) {
  entries_.push_back({std::move(key), std::move(value), std::move(source)});
}

void Properties::merge(const Properties& other) {
  entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
}

Result<Properties> Properties::from_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    return Error(errc::unreadable, fmt::format("cannot read config file '{}'", path.string()));
  }
  Properties props;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const auto text = trim(line);
    if (text.empty() || text.front() == '#' || text.front() == '!')
      continue;
    const auto sep = text.find_first_of("=:");
    if (sep == std::string_view::npos) {
      return Error(errc::invalid_value, fmt::format("{}:{}: expected 'key=value', got '{}'",
                                                    path.string(), number, text));
    }
    props.set(std::string(trim(text.substr(0, sep))), std::string(trim(text.substr(sep + 1))),
              {path.string(), number});
  }
  return props;
}

Result<Properties> Properties::from_assignments(const std::vector<std::string>& items,
                                                std::string_view origin) {
  Properties props;
  for (const auto& item : items) {
    const auto sep = item.find('=');
    if (sep == std::string::npos || sep == 0) {
      return Error(errc::invalid_value,
                   fmt::format("{}: expected 'key=value', got '{}'", origin, item));
    }
    props.set(item.substr(0, sep), item.substr(sep + 1), {std::string(origin), 0});
  }
  return props;
}

}  // namespace streamrun::config
