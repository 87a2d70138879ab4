#include <algorithm>
#include <array>
#include <cstdio>
#include <set>

#include <streamrun/kafka/client_config.h>

#include "handles.h"

namespace streamrun::kafka {
namespace {

// librdkafka documents its properties as a Markdown table; the first column is the name.
std::set<std::string, std::less<>> read_librdkafka_property_names() {
  char* buffer = nullptr;
  size_t size = 0;
  FILE* stream = open_memstream(&buffer, &size);
  rd_kafka_conf_properties_show(stream);
  std::fclose(stream);
  std::string_view text(buffer, size);
  std::set<std::string, std::less<>> names;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    const auto bar = line.find('|');
    if (bar == std::string_view::npos || line.starts_with("Property") || line.starts_with("-")) {
      continue;
    }
    auto name = line.substr(0, bar);
    while (!name.empty() && name.back() == ' ')
      name.remove_suffix(1);
    if (!name.empty() && name.find(' ') == std::string_view::npos)
      names.emplace(name);
  }
  std::free(buffer);
  return names;
}

class LibrdkafkaSchema final : public config::PassthroughSchema {
 public:
  LibrdkafkaSchema() : names_(read_librdkafka_property_names()) {}

  std::string_view name() const override { return "Kafka client"; }
  bool knows(std::string_view key) const override { return names_.find(key) != names_.end(); }

  std::optional<std::string> check(std::string_view key, std::string_view value) const override {
    ConfHandle scratch(rd_kafka_conf_new());
    char errstr[512];
    if (rd_kafka_conf_set(scratch.get(), std::string(key).c_str(), std::string(value).c_str(),
                          errstr, sizeof errstr) == RD_KAFKA_CONF_OK) {
      return std::nullopt;
    }
    if (is_secret(key))
      return "value rejected by librdkafka";
    return std::string(errstr);
  }

  bool is_secret(std::string_view key) const override { return is_secret_property(key); }

  std::vector<std::string> keys() const override { return {names_.begin(), names_.end()}; }

  std::vector<std::string> role_prefixes() const override { return {"consumer.", "producer."}; }

 private:
  std::set<std::string, std::less<>> names_;
};

}  // namespace

bool is_secret_property(std::string_view key) {
  static constexpr std::array<std::string_view, 5> kSecretParts = {
      "password", "secret", "ssl.key.pem", "ssl_key", "sasl.oauthbearer.config"};
  return std::any_of(kSecretParts.begin(), kSecretParts.end(), [&](std::string_view part) {
    return key.find(part) != std::string_view::npos;
  });
}

const config::PassthroughSchema& client_property_schema() {
  static const LibrdkafkaSchema schema;
  return schema;
}

}  // namespace streamrun::kafka
