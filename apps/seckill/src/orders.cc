#include "orders.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

}  // namespace seckill
