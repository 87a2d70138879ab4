#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <streamrun/base/result.h>
#include <streamrun/config/properties.h>
#include <streamrun/config/property.h>

namespace streamrun::config {

enum class errc { unknown_key = 1, invalid_value, missing_required, unreadable };
const std::error_category& config_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), config_category()};
}

// The declared properties of one component. Holds pointers: properties are long-lived
// constants declared next to the code that reads them.
class ConfigDef {
 public:
  ConfigDef() = default;
  ConfigDef(std::initializer_list<const PropertySpec*> specs);
  template <typename T>
  ConfigDef& add(const Property<T>& property) {
    return add(property.spec());
  }
  ConfigDef& add(const PropertySpec& spec);
  ConfigDef& add_all(const ConfigDef& other);

  [[nodiscard]] const PropertySpec* find(std::string_view key) const;
  [[nodiscard]] const std::vector<const PropertySpec*>& specs() const noexcept { return specs_; }

  // Markdown table of every property: key, type, default, bounds, doc.
  [[nodiscard]] std::string to_markdown() const;

 private:
  std::vector<const PropertySpec*> specs_;
};

// Properties owned by another library and passed to it unchanged (librdkafka's client
// properties). Implemented by the module that owns that library.
class PassthroughSchema {
 public:
  virtual ~PassthroughSchema() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual bool knows(std::string_view key) const = 0;
  // An explanation when `value` is not acceptable for `key`. Must not echo secret values.
  [[nodiscard]] virtual std::optional<std::string> check(std::string_view key,
                                                         std::string_view value) const = 0;
  [[nodiscard]] virtual bool is_secret(std::string_view key) const = 0;
  [[nodiscard]] virtual std::vector<std::string> keys() const = 0;
  // Prefixes that scope a passthrough key to one client role ("consumer.", "producer.").
  [[nodiscard]] virtual std::vector<std::string> role_prefixes() const { return {}; }
};

// One problem with one property: where it was set (empty for a missing one) and what is wrong.
struct Problem {
  Source source;
  std::string message;
  [[nodiscard]] std::string to_string() const;  // "FILE:LINE: message"
};

// Validated configuration: every declared property has a value of the right type within its
// bounds, every other key is a passthrough key its schema accepted. Immutable.
class Config {
 public:
  // Validates everything; the error lists every problem, one per line, each naming the key,
  // where it came from and what was expected.
  [[nodiscard]] static Result<Config> load(const Properties& properties, const ConfigDef& def,
                                           const PassthroughSchema* passthrough = nullptr);
  // Every problem load() would report, one each (for tools that place them, like `lint`).
  [[nodiscard]] static std::vector<Problem> check(const Properties& properties,
                                                  const ConfigDef& def,
                                                  const PassthroughSchema* passthrough = nullptr,
                                                  Config* into = nullptr);

  [[nodiscard]] bool get(const Property<bool>& property) const;
  [[nodiscard]] std::int64_t get(const Property<std::int64_t>& property) const;
  [[nodiscard]] double get(const Property<double>& property) const;
  [[nodiscard]] std::string get(const Property<std::string>& property) const;
  [[nodiscard]] std::vector<std::string> get(
      const Property<std::vector<std::string>>& property) const;

  // Passthrough keys with their values, role prefix kept ("consumer.fetch.max.bytes").
  [[nodiscard]] const std::map<std::string, std::string>& passthrough() const noexcept {
    return passthrough_;
  }
  // Passthrough for one role: unscoped keys, then "<role>." keys with the prefix removed.
  [[nodiscard]] std::map<std::string, std::string> passthrough_for(std::string_view role) const;

  [[nodiscard]] bool is_set(std::string_view key) const;

  // "key=value, ..." of everything set, secrets shown as [redacted]. For start-up logs.
  [[nodiscard]] std::string to_log_string() const;

 private:
  const std::string* raw(const PropertySpec& spec) const;

  std::map<std::string, std::string> declared_;
  std::map<std::string, std::string> passthrough_;
  std::map<std::string, bool> secret_;
  std::vector<std::string> role_prefixes_;
};

// The closest candidate to `key` when it is close enough to be a likely typo.
std::optional<std::string> closest_match(std::string_view key,
                                         const std::vector<std::string>& candidates);

}  // namespace streamrun::config

template <>
struct std::is_error_code_enum<streamrun::config::errc> : std::true_type {};
