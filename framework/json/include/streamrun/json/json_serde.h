#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <streamrun/core/serde.h>

namespace streamrun::serdes {

// Any JSON document. A value that is not valid JSON is a SerdeError naming the byte where
// parsing stopped; null on the wire reads as JSON null.
Serde<nlohmann::json> json();

// A type with nlohmann's to_json/from_json (e.g. via NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE).
// A missing field is a SerdeError naming it; a mistyped one gives nlohmann's type error
// ("type must be number, but is string"), which does not name the field.
template <typename T>
Serde<T> json_as(std::string name = "json") {
  auto document = json();
  return {name, [document](const T& value) { return document.serialize(nlohmann::json(value)); },
          [document, name](std::optional<std::string_view> bytes) {
            const auto parsed = document.deserialize(bytes);
            try {
              return parsed.template get<T>();
            } catch (const nlohmann::json::exception& e) {
              throw SerdeError(name + ": " + e.what());
            }
          }};
}

}  // namespace streamrun::serdes
