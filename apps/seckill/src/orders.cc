#include "orders.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <streamrun/config/properties.h>

namespace seckill {

std::string to_json(const Order& order) {
  return nlohmann::json{{"order_id", order.order_id},
                        {"user_id", order.user_id},
                        {"sku", order.sku},
                        {"qty", order.qty},
                        {"ts", order.ts}}
      .dump();
}

std::string sku_name(int index) {
  return fmt::format("sku-{}", index);
}

std::string user_name(int index) {
  return fmt::format("u-{}", index);
}

std::optional<streamrun::kafka::ClientProperties> with_client_settings(
    streamrun::kafka::ClientProperties base, const std::vector<std::string>& settings,
    std::string_view program) {
  auto parsed = streamrun::config::Properties::from_assignments(settings, "--set");
  if (!parsed) {
    fmt::print(stderr, "{}: {}\n", program, parsed.error().message());
    return std::nullopt;
  }
  for (const auto& entry : parsed->entries())
    base[entry.key] = entry.value;
  return base;
}

}  // namespace seckill
