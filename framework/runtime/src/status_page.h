#pragma once

#include <string_view>

namespace streamrun::runtime {

// The admin endpoint's "/" page: a self-contained HTML document (no request leaves the
// instance) that draws the topology from /api/status and polls it every second for live rates,
// lag, paused partitions, restores and dead letters.
[[nodiscard]] std::string_view status_page_html() noexcept;

}  // namespace streamrun::runtime
