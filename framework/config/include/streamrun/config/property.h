#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace streamrun::config {

enum class ValueType { boolean, integer, floating, string, list, choice };

std::string_view to_string(ValueType type);

// Everything known about a property, in one place: the spec drives validation, defaults,
// documentation (`streamrun config`) and redaction.
struct PropertySpec {
  std::string key;
  ValueType type = ValueType::string;
  std::optional<std::string> default_value;  // nullopt: the property is required
  std::string doc;
  std::optional<std::int64_t> min;  // integer and floating bounds (inclusive)
  std::optional<std::int64_t> max;
  std::vector<std::string> choices;  // for ValueType::choice
  bool secret = false;               // never printed
  // Further rule for a value of the right type: why it is not acceptable, or empty when it is.
  std::function<std::string(std::string_view value)> validate;
};

// A typed handle on a declared property; Config::get(property) returns a T.
// T is bool, std::int64_t, double, std::string or std::vector<std::string>.
template <typename T>
class Property {
 public:
  explicit Property(PropertySpec spec) : spec_(std::move(spec)) {}
  [[nodiscard]] const PropertySpec& spec() const noexcept { return spec_; }
  [[nodiscard]] const std::string& key() const noexcept { return spec_.key; }

 private:
  PropertySpec spec_;
};

}  // namespace streamrun::config
