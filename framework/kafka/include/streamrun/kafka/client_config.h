#pragma once

#include <map>
#include <string>

#include <streamrun/config/config.h>

namespace streamrun::kafka {

// librdkafka property names and values, passed through unchanged.
using ClientProperties = std::map<std::string, std::string>;

// Accepts every librdkafka client property under its own name (bootstrap.servers,
// security.protocol, sasl.*, ...) and the same names scoped to one client with "consumer." or
// "producer.". Values are checked by librdkafka itself; secrets are never echoed.
const config::PassthroughSchema& client_property_schema();

// True for properties whose values must never be logged (passwords, keys, secrets).
bool is_secret_property(std::string_view key);

}  // namespace streamrun::kafka
