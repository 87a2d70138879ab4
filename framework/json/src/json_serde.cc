#include <streamrun/json/json_serde.h>

namespace streamrun::serdes {

Serde<nlohmann::json> json() {
  return {"json",
          [](const nlohmann::json& value) -> std::optional<std::string> { return value.dump(); },
          [](std::optional<std::string_view> bytes) -> nlohmann::json {
            if (!bytes)
              return nullptr;
            try {
              return nlohmann::json::parse(bytes->begin(), bytes->end());
            } catch (const nlohmann::json::parse_error& e) {
              throw SerdeError("json: " + std::string(e.what()));
            }
          }};
}

}  // namespace streamrun::serdes
