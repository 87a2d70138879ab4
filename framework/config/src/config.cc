#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <streamrun/base/errc.h>
#include <streamrun/config/config.h>

namespace streamrun::config {
namespace {

std::string_view describe(errc value) noexcept {
  switch (value) {
    case errc::unknown_key:
      return "unknown configuration key";
    case errc::invalid_value:
      return "invalid configuration value";
    case errc::missing_required:
      return "missing required configuration";
    case errc::unreadable:
      return "configuration not readable";
  }
  return {};
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty())
    return std::nullopt;
  return value;
}

std::optional<double> parse_double(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size())
    return std::nullopt;
  return value;
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true")
    return true;
  if (text == "false")
    return false;
  return std::nullopt;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string_view::npos)
      end = text.size();
    auto item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (!item.empty())
      items.emplace_back(item);
    start = end + 1;
  }
  return items;
}

std::string bounds_text(const PropertySpec& spec) {
  if (spec.min && spec.max)
    return fmt::format(" in [{}, {}]", *spec.min, *spec.max);
  if (spec.min)
    return fmt::format(" >= {}", *spec.min);
  if (spec.max)
    return fmt::format(" <= {}", *spec.max);
  return "";
}

std::optional<std::string> check_type(const PropertySpec& spec, std::string_view value);

// Why `value` is not acceptable for `spec`, or nullopt when it is.
std::optional<std::string> check_value(const PropertySpec& spec, std::string_view value) {
  if (auto problem = check_type(spec, value))
    return problem;
  if (spec.validate) {
    if (auto problem = spec.validate(value); !problem.empty())
      return problem;
  }
  return std::nullopt;
}

std::optional<std::string> check_type(const PropertySpec& spec, std::string_view value) {
  switch (spec.type) {
    case ValueType::boolean:
      if (!parse_bool(value))
        return "expected true or false";
      return std::nullopt;
    case ValueType::integer: {
      auto parsed = parse_int(value);
      if (!parsed || (spec.min && *parsed < *spec.min) || (spec.max && *parsed > *spec.max)) {
        return fmt::format("expected an integer{}", bounds_text(spec));
      }
      return std::nullopt;
    }
    case ValueType::floating: {
      auto parsed = parse_double(value);
      if (!parsed || (spec.min && *parsed < static_cast<double>(*spec.min)) ||
          (spec.max && *parsed > static_cast<double>(*spec.max))) {
        return fmt::format("expected a number{}", bounds_text(spec));
      }
      return std::nullopt;
    }
    case ValueType::choice:
      if (std::find(spec.choices.begin(), spec.choices.end(), value) == spec.choices.end()) {
        return fmt::format("expected one of {}", fmt::join(spec.choices, ", "));
      }
      return std::nullopt;
    case ValueType::string:
    case ValueType::list:
      return std::nullopt;
  }
  return std::nullopt;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

const std::error_category& config_category() noexcept {
  static const EnumCategory<errc> category("streamrun.config", describe);
  return category;
}

std::string_view to_string(ValueType type) {
  switch (type) {
    case ValueType::boolean:
      return "boolean";
    case ValueType::integer:
      return "integer";
    case ValueType::floating:
      return "number";
    case ValueType::string:
      return "string";
    case ValueType::list:
      return "list";
    case ValueType::choice:
      return "choice";
  }
  return "?";
}

std::optional<std::string> closest_match(std::string_view key,
                                         const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(2, key.size() / 4) + 1;
  for (const auto& candidate : candidates) {
    const auto distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

ConfigDef::ConfigDef(std::initializer_list<const PropertySpec*> specs) {
  for (const auto* spec : specs)
    add(*spec);
}

ConfigDef& ConfigDef::add(const PropertySpec& spec) {
  if (find(spec.key) != nullptr) {
    throw std::logic_error("config property declared twice: " + spec.key);
  }
  if (spec.default_value) {
    if (auto problem = check_value(spec, *spec.default_value)) {
      throw std::logic_error(
          fmt::format("default of config property '{}' is invalid: {}", spec.key, *problem));
    }
  }
  specs_.push_back(&spec);
  return *this;
}

ConfigDef& ConfigDef::add_all(const ConfigDef& other) {
  for (const auto* spec : other.specs_)
    add(*spec);
  return *this;
}

const PropertySpec* ConfigDef::find(std::string_view key) const {
  for (const auto* spec : specs_) {
    if (spec->key == key)
      return spec;
  }
  return nullptr;
}

std::string ConfigDef::to_markdown() const {
  std::string out = "| key | type | default | description |\n|---|---|---|---|\n";
  for (const auto* spec : specs_) {
    std::string type(to_string(spec->type));
    if (spec->type == ValueType::choice)
      type += ": " + fmt::format("{}", fmt::join(spec->choices, ", "));
    type += bounds_text(*spec);
    out += fmt::format(
        "| `{}` | {} | {} | {} |\n", spec->key, type,
        spec->default_value ? fmt::format("`{}`", *spec->default_value) : std::string("(required)"),
        spec->doc);
  }
  return out;
}

std::string Problem::to_string() const {
  return source.origin.empty() ? message : fmt::format("{}: {}", source.to_string(), message);
}

Result<Config> Config::load(const Properties& properties, const ConfigDef& def,
                            const PassthroughSchema* passthrough) {
  Config config;
  auto problems = check(properties, def, passthrough, &config);
  if (!problems.empty()) {
    // The first problem decides the code; the message lists them all.
    const auto& first = problems.front().message;
    const bool unknown = first.starts_with("unknown configuration key");
    const bool missing = first.starts_with("missing required");
    const auto code =
        unknown ? errc::unknown_key : (missing ? errc::missing_required : errc::invalid_value);
    std::vector<std::string> lines;
    for (const auto& problem : problems)
      lines.push_back(problem.to_string());
    return Error(code, fmt::format("{}", fmt::join(lines, "\n")));
  }
  return config;
}

std::vector<Problem> Config::check(const Properties& properties, const ConfigDef& def,
                                   const PassthroughSchema* passthrough, Config* into) {
  Config scratch;
  Config& config = into != nullptr ? *into : scratch;
  std::vector<Problem> problems;
  std::set<std::string> given_but_invalid;  // reported once, not again as missing

  std::vector<std::string> known_keys;
  for (const auto* spec : def.specs())
    known_keys.push_back(spec->key);
  std::vector<std::string> role_prefixes;
  if (passthrough) {
    for (auto& key : passthrough->keys())
      known_keys.push_back(std::move(key));
    role_prefixes = passthrough->role_prefixes();
    config.role_prefixes_ = role_prefixes;
  }

  for (const auto& entry : properties.entries()) {
    const auto& where = entry.source;
    if (const auto* spec = def.find(entry.key)) {
      if (auto problem = check_value(*spec, entry.value)) {
        problems.push_back({where, fmt::format("invalid value {} for '{}': {}",
                                               spec->secret ? std::string("(redacted)")
                                                            : fmt::format("'{}'", entry.value),
                                               entry.key, *problem)});
        given_but_invalid.insert(entry.key);
        continue;
      }
      config.declared_[entry.key] = entry.value;
      config.secret_[entry.key] = spec->secret;
      continue;
    }
    if (passthrough) {
      std::string_view client_key = entry.key;
      for (const auto& prefix : role_prefixes) {
        if (client_key.starts_with(prefix) &&
            passthrough->knows(client_key.substr(prefix.size()))) {
          client_key.remove_prefix(prefix.size());
          break;
        }
      }
      if (passthrough->knows(client_key)) {
        if (auto problem = passthrough->check(client_key, entry.value)) {
          problems.push_back({where, fmt::format("invalid value for {} property '{}': {}",
                                                 passthrough->name(), entry.key, *problem)});
          continue;
        }
        config.passthrough_[entry.key] = entry.value;
        config.secret_[entry.key] = passthrough->is_secret(client_key);
        continue;
      }
    }
    auto suggestion = closest_match(entry.key, known_keys);
    for (const auto& prefix : role_prefixes) {
      // "consumer.sesion.timeout.ms": a client property under a prefix, misspelt.
      if (!suggestion && entry.key.starts_with(prefix)) {
        if (auto unprefixed = closest_match(entry.key.substr(prefix.size()), known_keys))
          suggestion = prefix + *unprefixed;
      }
    }
    problems.push_back(
        {where, fmt::format("unknown configuration key '{}'{}", entry.key,
                            suggestion ? fmt::format(" (did you mean '{}'?)", *suggestion)
                                       : std::string())});
  }

  for (const auto* spec : def.specs()) {
    if (!spec->default_value && !config.declared_.contains(spec->key) &&
        !given_but_invalid.contains(spec->key)) {
      problems.push_back(
          {{}, fmt::format("missing required configuration '{}': {}", spec->key, spec->doc)});
    }
  }

  return problems;
}

const std::string* Config::raw(const PropertySpec& spec) const {
  if (auto it = declared_.find(spec.key); it != declared_.end())
    return &it->second;
  if (spec.default_value)
    return &*spec.default_value;
  throw std::logic_error("config property read but never declared or set: " + spec.key);
}

bool Config::get(const Property<bool>& property) const {
  return *parse_bool(*raw(property.spec()));
}
std::int64_t Config::get(const Property<std::int64_t>& property) const {
  return *parse_int(*raw(property.spec()));
}
double Config::get(const Property<double>& property) const {
  return *parse_double(*raw(property.spec()));
}
std::string Config::get(const Property<std::string>& property) const {
  return *raw(property.spec());
}
std::vector<std::string> Config::get(const Property<std::vector<std::string>>& property) const {
  return split_list(*raw(property.spec()));
}

std::map<std::string, std::string> Config::passthrough_for(std::string_view role) const {
  const std::string own_prefix = std::string(role) + ".";
  auto scoped = [&](const std::string& key) {
    return std::any_of(role_prefixes_.begin(), role_prefixes_.end(),
                       [&](const std::string& prefix) { return key.starts_with(prefix); });
  };
  std::map<std::string, std::string> result;
  for (const auto& [key, value] : passthrough_) {
    if (!scoped(key))
      result.emplace(key, value);
  }
  // Role-scoped keys win over unscoped ones, whatever order they were given in.
  for (const auto& [key, value] : passthrough_) {
    if (key.starts_with(own_prefix))
      result[key.substr(own_prefix.size())] = value;
  }
  return result;
}

bool Config::is_set(std::string_view key) const {
  return declared_.contains(std::string(key)) || passthrough_.contains(std::string(key));
}

std::string Config::to_log_string() const {
  std::vector<std::string> items;
  auto render = [&](const std::map<std::string, std::string>& values) {
    for (const auto& [key, value] : values) {
      const auto secret = secret_.find(key);
      const bool hide = secret != secret_.end() && secret->second;
      items.push_back(fmt::format("{}={}", key, hide ? "[redacted]" : value));
    }
  };
  render(declared_);
  render(passthrough_);
  return fmt::format("{}", fmt::join(items, ", "));
}

}  // namespace streamrun::config
