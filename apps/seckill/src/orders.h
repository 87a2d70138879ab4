#pragma once

// The records of the flash sale as the load generator, the gateway and the checker see them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <streamrun/kafka/client_config.h>

namespace seckill {

// An order request: {"order_id", "user_id", "sku", "qty", "ts"}; ts is when it was placed (ms
// since the epoch).
struct Order {
  std::string order_id;
  std::string user_id;
  std::string sku;
  std::int64_t qty = 1;
  std::int64_t ts = 0;
};

[[nodiscard]] std::string to_json(const Order& order);

// The SKU of index i ("sku-<i>"); index kHotSku is the hot one of the load generator.
inline constexpr int kHotSku = 0;
[[nodiscard]] std::string sku_name(int index);
[[nodiscard]] std::string user_name(int index);

[[nodiscard]] inline std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `base` with the programs' `--set KEY=VALUE` items (librdkafka's names) on top; nullopt, having
// printed "<program>: <why>" to stderr, for a malformed item.
[[nodiscard]] std::optional<streamrun::kafka::ClientProperties> with_client_settings(
    streamrun::kafka::ClientProperties base, const std::vector<std::string>& settings,
    std::string_view program);

}  // namespace seckill
