#include "check.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <streamrun/core/error_policy.h>

namespace seckill {
namespace {

std::optional<nlohmann::json> parse_object(std::optional<std::string_view> text) {
  if (!text)
    return std::nullopt;
  auto value = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!value.is_object())
    return std::nullopt;
  return value;
}

std::string text_of(const nlohmann::json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null())
    return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::optional<std::int64_t> integer_of(const nlohmann::json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || !it->is_number_integer())
    return std::nullopt;
  return it->get<std::int64_t>();
}

std::optional<std::int64_t> parse_integer(const std::optional<std::string>& text) {
  if (!text)
    return std::nullopt;
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size())
    return std::nullopt;
  return value;
}

// Nearest rank: the smallest value with at least `p` of the values at or below it.
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty())
    return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

void Checker::add_stock(std::optional<std::string_view> sku,
                        std::optional<std::string_view> value) {
  if (!sku)
    return;
  const auto row = parse_object(value);
  if (!row) {
    stock_.erase(std::string(*sku));
    return;
  }
  stock_[std::string(*sku)] = integer_of(*row, "units").value_or(0);
}

void Checker::add_order(int partition, std::int64_t offset, std::optional<std::string_view> value) {
  ++order_records_;
  const auto order = parse_object(value);
  if (!order) {
    malformed_.emplace(partition, offset);
    return;
  }
  const auto id = text_of(*order, "order_id");
  if (id.empty()) {
    ++without_id_;
    return;
  }
  orders_.try_emplace(
      id, OrderSeen{text_of(*order, "user_id"), text_of(*order, "sku"), integer_of(*order, "ts")});
}

void Checker::add_decision(std::optional<std::string_view> value) {
  ++decision_records_;
  const auto decision = parse_object(value);
  if (!decision) {
    ++decisions_without_id_;
    return;
  }
  const auto id = text_of(*decision, "order_id");
  if (id.empty()) {
    ++decisions_without_id_;
    return;
  }
  Decided seen{text_of(*decision, "decision"), text_of(*decision, "reason"),
               text_of(*decision, "sku"), text_of(*decision, "user_id"),
               integer_of(*decision, "decided_ms")};
  auto [it, first] = decided_.try_emplace(id, seen);
  if (!first && (it->second.decision != seen.decision || it->second.reason != seen.reason))
    it->second.conflicting = true;
}

void Checker::add_dead_letter(const std::map<std::string, std::optional<std::string>>& headers) {
  ++dead_letters_;
  const auto header = [&](std::string_view name) -> std::optional<std::string> {
    auto it = headers.find(std::string(name));
    return it == headers.end() ? std::nullopt : it->second;
  };
  const auto topic = header(streamrun::dead_letter_header::source_topic);
  const auto partition = parse_integer(header(streamrun::dead_letter_header::source_partition));
  const auto offset = parse_integer(header(streamrun::dead_letter_header::source_offset));
  if (!topic || !partition || !offset) {
    ++dead_letters_without_source_;
    return;
  }
  if (*topic == orders_topic_)
    dead_lettered_.emplace(static_cast<int>(*partition), *offset);
}

void Checker::add_confirmation(std::optional<std::string_view> value) {
  confirmations_checked_ = true;
  ++confirmation_records_;
  const auto record = parse_object(value);
  if (!record)
    return;
  const auto id = text_of(*record, "order_id");
  const auto confirmation =
      record->contains("confirmation") && (*record)["confirmation"].is_object()
          ? text_of((*record)["confirmation"], "confirmation")
          : std::string();
  auto [it, first] = confirmed_.try_emplace(id, Confirmed{confirmation});
  if (!first && it->second.confirmation != confirmation)
    it->second.conflicting = true;
}

void Checker::add_confirmation_dead_letter() {
  confirmations_checked_ = true;
  ++confirmation_dead_letters_;
}

void Checker::add_sales_rate(std::optional<std::string_view> sku,
                             std::optional<std::string_view> value) {
  sales_rate_checked_ = true;
  ++sales_rate_records_;
  const auto record = parse_object(value);
  if (!sku || sku->empty() || !record) {
    ++sales_rate_unreadable_;
    return;
  }
  const auto start = integer_of(*record, "window_start");
  const auto orders = integer_of(*record, "orders");
  const auto accepted = integer_of(*record, "accepted");
  if (!start || !orders || !accepted) {
    ++sales_rate_unreadable_;
    return;
  }
  sales_rate_[std::string(*sku)][*start] = SecondSales{*start, *orders, *accepted};
}

std::map<std::string, Checker::Totals> Checker::decided_per_sku() const {
  std::map<std::string, Totals> totals;
  for (const auto& [id, decision] : decided_) {
    if (decision.sku.empty())
      continue;
    auto& sku = totals[decision.sku];
    ++sku.orders;
    if (decision.decision == "accepted")
      ++sku.accepted;
  }
  return totals;
}

std::map<std::string, Checker::Totals> Checker::sales_rate_per_sku() const {
  std::map<std::string, Totals> totals;
  for (const auto& [sku, seconds] : sales_rate_) {
    auto& sum = totals[sku];
    for (const auto& [start, second] : seconds) {
      sum.orders += second.orders;
      sum.accepted += second.accepted;
    }
  }
  return totals;
}

std::int64_t Checker::sales_rate_behind() const {
  const auto decided = decided_per_sku();
  const auto sold = sales_rate_per_sku();
  std::int64_t behind = 0;
  for (const auto& [sku, totals] : decided) {
    auto it = sold.find(sku);
    if (it == sold.end() || !(it->second == totals))
      ++behind;
  }
  for (const auto& [sku, totals] : sold) {
    if (!decided.contains(sku))
      ++behind;
  }
  return behind;
}

std::int64_t Checker::unconfirmed() const {
  std::int64_t count = 0;
  for (const auto& [id, decision] : decided_) {
    if (decision.decision == "accepted" && !confirmed_.contains(id))
      ++count;
  }
  return count;
}

std::int64_t Checker::undecided() const {
  std::int64_t count = 0;
  for (const auto& [id, order] : orders_) {
    if (!decided_.contains(id))
      ++count;
  }
  return count;
}

Report Checker::report() const {
  Report r;
  r.orders = order_records_;
  r.well_formed = static_cast<std::int64_t>(orders_.size());
  r.malformed = static_cast<std::int64_t>(malformed_.size());
  r.without_id = without_id_;
  r.orders_missing = orders_missing_;
  r.decisions = decision_records_;
  r.decisions_missing = decisions_missing_;
  r.dead_letters = dead_letters_;
  r.dead_letters_without_source = dead_letters_without_source_;
  for (const auto& letter : malformed_) {
    if (!dead_lettered_.contains(letter))
      ++r.malformed_not_dead_lettered;
  }

  std::map<std::string, SkuReport> skus;
  const auto sku_report = [&](const std::string& sku) -> SkuReport& {
    auto& report = skus[sku];
    report.sku = sku;
    if (auto it = stock_.find(sku); it != stock_.end())
      report.stock = it->second;
    return report;
  };
  for (const auto& [id, order] : orders_) {
    ++sku_report(order.sku).orders;
    auto decision = decided_.find(id);
    if (decision == decided_.end()) {
      ++r.undecided;
      continue;
    }
    ++r.decided;
    if (order.ts && decision->second.decided_ms)
      r.latencies_ms.push_back(*decision->second.decided_ms - *order.ts);
  }
  std::map<std::pair<std::string, std::string>, int> accepted_per_user;
  for (const auto& [id, decision] : decided_) {
    if (decision.conflicting)
      ++r.conflicting;
    if (!orders_.contains(id))
      ++r.decisions_unknown;
    auto& sku = sku_report(decision.sku);
    if (decision.decision == "accepted") {
      ++r.accepted;
      ++sku.accepted;
      ++accepted_per_user[{decision.sku, decision.user_id}];
    } else {
      ++r.rejected[decision.reason];
      ++sku.rejected[decision.reason];
    }
  }
  for (const auto& [pair, count] : accepted_per_user) {
    if (count > 1)
      ++r.double_accepted;
  }
  for (auto& [name, sku] : skus) {
    if (sku.accepted > sku.stock.value_or(0)) {
      r.oversold.push_back(
          fmt::format("{}: {} accepted, stock {}", name, sku.accepted, sku.stock.value_or(0)));
    }
    r.skus.push_back(std::move(sku));
  }
  r.confirmations_checked = confirmations_checked_;
  r.confirmations = confirmation_records_;
  r.confirmations_dead_lettered = confirmation_dead_letters_;
  for (const auto& [id, decision] : decided_) {
    if (decision.decision != "accepted")
      continue;
    auto it = confirmed_.find(id);
    if (it == confirmed_.end()) {
      ++r.unconfirmed;
      continue;
    }
    ++r.confirmed;
    if (it->second.conflicting || it->second.confirmation.empty())
      ++r.confirmations_conflicting;
  }
  for (const auto& [id, confirmed] : confirmed_) {
    auto it = decided_.find(id);
    if (it == decided_.end() || it->second.decision != "accepted")
      ++r.confirmations_unexpected;
  }
  r.sales_rate_checked = sales_rate_checked_;
  r.sales_rate_records = sales_rate_records_;
  r.sales_rate_unreadable = sales_rate_unreadable_;
  if (sales_rate_checked_) {
    const auto decided = decided_per_sku();
    const auto sold = sales_rate_per_sku();
    std::set<std::string> names;
    for (const auto& [sku, totals] : decided)
      names.insert(sku);
    for (const auto& [sku, totals] : sold)
      names.insert(sku);
    for (const auto& sku : names) {
      const auto d = decided.contains(sku) ? decided.at(sku) : Totals{};
      const auto s = sold.contains(sku) ? sold.at(sku) : Totals{};
      if (!(d == s)) {
        r.sales_rate_differ.push_back(
            fmt::format("{}: {} orders, {} accepted in sales-rate; {} decided, {} accepted", sku,
                        s.orders, s.accepted, d.orders, d.accepted));
      }
    }
    for (auto& sku : r.skus) {
      if (auto it = sales_rate_.find(sku.sku); it != sales_rate_.end()) {
        for (const auto& [start, second] : it->second)
          sku.seconds.push_back(second);
      }
    }
  }
  std::stable_sort(r.skus.begin(), r.skus.end(),
                   [](const SkuReport& a, const SkuReport& b) { return a.orders > b.orders; });
  std::sort(r.latencies_ms.begin(), r.latencies_ms.end());
  return r;
}

bool Report::ok() const {
  return oversold.empty() && double_accepted == 0 && undecided == 0 && conflicting == 0 &&
         malformed_not_dead_lettered == 0 && dead_letters_without_source == 0 &&
         orders_missing == 0 && decisions_missing == 0 &&
         (!confirmations_checked ||
          (unconfirmed == 0 && confirmations_conflicting == 0 && confirmations_unexpected == 0 &&
           confirmations_dead_lettered == 0)) &&
         (!sales_rate_checked || (sales_rate_differ.empty() && sales_rate_unreadable == 0));
}

std::string Report::to_text(std::size_t hot_skus) const {
  std::string text;
  auto out = std::back_inserter(text);
  fmt::format_to(out,
                 "orders: {} read ({} well-formed, {} not JSON, {} without an order_id)\n"
                 "decisions: {} read for {} orders; {} accepted, rejected: ",
                 orders, well_formed, malformed, without_id, decisions, decided, accepted);
  if (rejected.empty())
    fmt::format_to(out, "none");
  bool first = true;
  for (const auto& [reason, count] : rejected) {
    fmt::format_to(out, "{}{} {}", first ? "" : ", ", count, reason);
    first = false;
  }
  fmt::format_to(out, "\ndead letters: {}\n\n", dead_letters);
  fmt::format_to(out,
                 "| SKU | stock | orders | accepted | sold out | duplicate | sell-through |\n");
  fmt::format_to(out, "|---|---:|---:|---:|---:|---:|---:|\n");
  for (std::size_t i = 0; i < skus.size() && i < hot_skus; ++i) {
    const auto& sku = skus[i];
    const auto reason = [&](const char* name) {
      auto it = sku.rejected.find(name);
      return it == sku.rejected.end() ? std::int64_t{0} : it->second;
    };
    fmt::format_to(out, "| {} | {} | {} | {} | {} | {} | {} |\n", sku.sku,
                   sku.stock ? fmt::format("{}", *sku.stock) : std::string("-"), sku.orders,
                   sku.accepted, reason("sold_out"), reason("duplicate"),
                   sku.stock && *sku.stock > 0
                       ? fmt::format("{:.1f} %", 100.0 * static_cast<double>(sku.accepted) /
                                                     static_cast<double>(*sku.stock))
                       : std::string("-"));
  }
  if (skus.size() > hot_skus)
    fmt::format_to(out, "({} more SKUs)\n", skus.size() - hot_skus);
  if (sales_rate_checked)
    sell_through_to_text(text, hot_skus);
  if (!latencies_ms.empty()) {
    fmt::format_to(out, "\norder to decision: p50 {} ms, p99 {} ms, max {} ms ({} orders)\n",
                   percentile(latencies_ms, 0.50), percentile(latencies_ms, 0.99),
                   latencies_ms.back(), latencies_ms.size());
  }
  const auto line = [&](bool ok, const std::string& what) {
    fmt::format_to(out, "  {}  {}\n", ok ? "ok  " : "FAIL", what);
  };
  fmt::format_to(out, "\ninvariants:\n");
  line(oversold.empty(), oversold.empty() ? std::string("accepted <= stock for every SKU")
                                          : fmt::format("oversold: {}", fmt::join(oversold, "; ")));
  line(double_accepted == 0,
       fmt::format("at most one accepted order per user and SKU ({} pairs with more)",
                   double_accepted));
  line(undecided == 0, fmt::format("every well-formed order decided ({} undecided)", undecided));
  line(conflicting == 0,
       fmt::format("repeated decisions agree ({} orders decided differently)", conflicting));
  line(malformed_not_dead_lettered == 0 && dead_letters_without_source == 0,
       fmt::format("every order that is not JSON is dead-lettered with its source headers ({} "
                   "missing, {} letters without headers)",
                   malformed_not_dead_lettered, dead_letters_without_source));
  const bool nothing_dropped = orders_missing == 0 && decisions_missing == 0;
  line(nothing_dropped,
       nothing_dropped
           ? std::string("nothing dropped from the log")
           : fmt::format("nothing dropped from the log: {} orders and {} decisions were dropped "
                         "by the broker before they were read (a broker that keeps little per "
                         "partition: more partitions, a lower --rate)",
                         orders_missing, decisions_missing));
  if (confirmations_checked) {
    line(unconfirmed == 0 && confirmations_conflicting == 0 && confirmations_unexpected == 0 &&
             confirmations_dead_lettered == 0,
         fmt::format("every accepted order confirmed by the order service, once ({} confirmed "
                     "from {} records; {} unconfirmed, {} confirmed differently or without an "
                     "id, {} confirmations of orders not accepted, {} dead-lettered by the "
                     "confirmer)",
                     confirmed, confirmations, unconfirmed, confirmations_conflicting,
                     confirmations_unexpected, confirmations_dead_lettered));
  }
  if (sales_rate_checked) {
    const bool agree = sales_rate_differ.empty() && sales_rate_unreadable == 0;
    std::string what = fmt::format(
        "sales-rate adds up to the decisions: per SKU, its seconds' orders and accepted orders "
        "({} records read, {} unreadable)",
        sales_rate_records, sales_rate_unreadable);
    if (!sales_rate_differ.empty()) {
      what += fmt::format(
          "; {} SKUs differ: {}", sales_rate_differ.size(),
          fmt::join(sales_rate_differ.begin(),
                    sales_rate_differ.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(
                                                    sales_rate_differ.size(), 3)),
                    "; "));
    }
    line(agree, what);
  }
  return text;
}

void Report::sell_through_to_text(std::string& text, std::size_t hot_skus) const {
  auto out = std::back_inserter(text);
  // Seconds counted from the first second with an order of any SKU shown.
  std::optional<std::int64_t> first;
  for (std::size_t i = 0; i < skus.size() && i < hot_skus; ++i) {
    if (!skus[i].seconds.empty())
      first = std::min(first.value_or(skus[i].seconds.front().start_ms),
                       skus[i].seconds.front().start_ms);
  }
  fmt::format_to(out,
                 "\nsell-through per second of the orders' time (sales-rate), from the first "
                 "order:\n| SKU | seconds | peak orders/s | accepted in second 1, 2, 3... | "
                 "sold out in second |\n|---|---:|---:|---|---:|\n");
  for (std::size_t i = 0; i < skus.size() && i < hot_skus; ++i) {
    const auto& sku = skus[i];
    if (sku.seconds.empty() || !first) {
      fmt::format_to(out, "| {} | 0 | - | - | - |\n", sku.sku);
      continue;
    }
    std::int64_t peak = 0;
    std::int64_t sold = 0;
    std::optional<std::int64_t> sold_out;
    std::vector<std::string> per_second;
    const auto second_of = [&](const SecondSales& s) { return (s.start_ms - *first) / 1000 + 1; };
    std::int64_t next = 1;
    for (const auto& second : sku.seconds) {
      peak = std::max(peak, second.orders);
      // Seconds without an order of this SKU sold nothing.
      for (; next < second_of(second) && per_second.size() < 10; ++next)
        per_second.emplace_back("0");
      if (per_second.size() < 10)
        per_second.push_back(fmt::format("{}", second.accepted));
      next = second_of(second) + 1;
      sold += second.accepted;
      if (!sold_out && sku.stock && *sku.stock > 0 && sold >= *sku.stock)
        sold_out = second_of(second);
    }
    const auto span = second_of(sku.seconds.back()) - second_of(sku.seconds.front()) + 1;
    fmt::format_to(out, "| {} | {} | {} | {}{} | {} |\n", sku.sku, span, peak,
                   fmt::join(per_second, ", "), next - 1 > 10 ? ", ..." : "",
                   sold_out ? fmt::format("{}", *sold_out) : std::string("not sold out"));
  }
}

}  // namespace seckill
