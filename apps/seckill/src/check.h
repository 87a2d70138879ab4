#pragma once

// The flash sale's invariants, checked from what the topics hold (seckill-check reads them; the
// tests feed records directly):
//   1. accepted <= stock for every SKU (counting each order once, however often it was decided);
//   2. at most one accepted order per (user, SKU);
//   3. every well-formed order has a decision, and repeated decisions of one order agree;
//   4. every order that is not JSON is in the dead-letter topic, with the headers naming it;
//   5. nothing the check needs was dropped from the log (the development broker keeps only a few
//      MiB per partition and drops older records silently): reported apart from (3);
//   6. with confirmations (pipelines/confirm-orders.yaml): every accepted order is confirmed by
//      the order service, repeated confirmations of an order agree (the service was called at
//      least once, idempotently), no other order is confirmed, and the confirmer dead-lettered
//      nothing;
//   7. with sales rates (pipelines/sales-rate.yaml): for every SKU, the orders and accepted
//      orders of its seconds add up to its decided and accepted orders (each counted once).

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace seckill {

// One SKU's sales in one second (of the orders' time), from the sales-rate topic.
struct SecondSales {
  std::int64_t start_ms = 0;
  std::int64_t orders = 0;
  std::int64_t accepted = 0;
};

struct SkuReport {
  std::string sku;
  std::vector<SecondSales> seconds;   // with sales rates: oldest first
  std::optional<std::int64_t> stock;  // nullopt: not in the stock topic
  std::int64_t orders = 0;            // well-formed orders for it
  std::int64_t accepted = 0;
  std::map<std::string, std::int64_t> rejected;  // by reason
};

struct Report {
  std::int64_t orders = 0;             // order records read
  std::int64_t well_formed = 0;        // JSON objects with an order_id
  std::int64_t malformed = 0;          // not a JSON object
  std::int64_t without_id = 0;         // JSON objects without an order_id (answered invalid)
  std::int64_t orders_missing = 0;     // dropped from the orders topic before they were read
  std::int64_t decisions = 0;          // decision records read (repeats included)
  std::int64_t decisions_missing = 0;  // dropped from the decisions topic before they were read
  std::int64_t decided = 0;            // well-formed orders with a decision
  std::int64_t undecided = 0;          // well-formed orders without one
  std::int64_t conflicting = 0;        // orders decided twice, differently
  std::int64_t decisions_unknown = 0;  // decisions of orders not in the orders topic
  std::int64_t accepted = 0;
  std::map<std::string, std::int64_t> rejected;  // by reason
  std::vector<std::string> oversold;             // "sku: N accepted, stock M"
  std::int64_t double_accepted = 0;  // (user, SKU) pairs with more than one accepted order
  std::int64_t dead_letters = 0;
  std::int64_t malformed_not_dead_lettered = 0;
  std::int64_t dead_letters_without_source = 0;  // no header naming the failed record
  std::vector<SkuReport> skus;                   // most ordered first
  // From the order's ts to its decision's decided_ms, of decided orders; empty without them.
  std::vector<std::int64_t> latencies_ms;  // sorted
  // Invariant 6, when checked.
  bool confirmations_checked = false;
  std::int64_t confirmations = 0;              // confirmation records read (repeats included)
  std::int64_t confirmed = 0;                  // accepted orders with a confirmation
  std::int64_t unconfirmed = 0;                // accepted orders without one
  std::int64_t confirmations_conflicting = 0;  // orders with two different confirmations
  std::int64_t confirmations_unexpected = 0;   // confirmations of orders not accepted
  std::int64_t confirmations_dead_lettered = 0;
  // Invariant 7, when checked.
  bool sales_rate_checked = false;
  std::int64_t sales_rate_records = 0;         // records read (updates of a second included)
  std::int64_t sales_rate_unreadable = 0;      // without a SKU, or not {window_start, orders, ...}
  std::vector<std::string> sales_rate_differ;  // "sku: ..." where the seconds do not add up

  [[nodiscard]] bool ok() const;
  // The table and the invariants, `hot_skus` SKUs shown.
  [[nodiscard]] std::string to_text(std::size_t hot_skus = 3) const;

 private:
  // With sales rates: the sell-through table of the `hot_skus` SKUs.
  void sell_through_to_text(std::string& text, std::size_t hot_skus) const;
};

class Checker {
 public:
  // `orders_topic`: what the dead letters' source header must name.
  explicit Checker(std::string orders_topic) : orders_topic_(std::move(orders_topic)) {}

  // A stock record: key SKU, value {"units": N} (null: removed).
  void add_stock(std::optional<std::string_view> sku, std::optional<std::string_view> value);
  void add_order(int partition, std::int64_t offset, std::optional<std::string_view> value);
  void add_decision(std::optional<std::string_view> value);
  void add_dead_letter(const std::map<std::string, std::optional<std::string>>& headers);
  void add_orders_missing(std::int64_t records) { orders_missing_ += records; }
  void add_decisions_missing(std::int64_t records) { decisions_missing_ += records; }
  // Invariant 6: a record of the confirmations topic (the decision plus "confirmation":
  // {"order_id", "confirmation", "repeat"}), and a record of the confirmer's dead-letter topic.
  // The first call makes the report check invariant 6.
  void add_confirmation(std::optional<std::string_view> value);
  void add_confirmation_dead_letter();
  void expect_confirmations() { confirmations_checked_ = true; }
  // Invariant 7: a record of the sales-rate topic (key SKU, value {"window_start", "orders",
  // "accepted", ...}; a later record of the same SKU and second replaces an earlier one). The
  // first call makes the report check invariant 7.
  void add_sales_rate(std::optional<std::string_view> sku, std::optional<std::string_view> value);
  void expect_sales_rate() { sales_rate_checked_ = true; }
  // SKUs whose seconds do not add up to their decisions yet.
  [[nodiscard]] std::int64_t sales_rate_behind() const;
  // Accepted orders without a confirmation so far.
  [[nodiscard]] std::int64_t unconfirmed() const;

  // Well-formed orders without a decision so far (cheap: what waiting polls).
  [[nodiscard]] std::int64_t undecided() const;
  [[nodiscard]] Report report() const;

 private:
  struct OrderSeen {
    std::string user_id;
    std::string sku;
    std::optional<std::int64_t> ts;
  };
  struct Decided {
    std::string decision;
    std::string reason;
    std::string sku;
    std::string user_id;
    std::optional<std::int64_t> decided_ms;
    bool conflicting = false;
  };

  std::string orders_topic_;
  std::unordered_map<std::string, std::int64_t> stock_;
  std::unordered_map<std::string, OrderSeen> orders_;
  std::int64_t order_records_ = 0;
  std::int64_t without_id_ = 0;
  std::set<std::pair<int, std::int64_t>> malformed_;  // (partition, offset)
  std::int64_t orders_missing_ = 0;
  std::unordered_map<std::string, Decided> decided_;  // by order id
  std::int64_t decision_records_ = 0;
  bool confirmations_checked_ = false;
  std::int64_t confirmation_records_ = 0;
  std::int64_t confirmation_dead_letters_ = 0;
  struct Confirmed {
    std::string confirmation;
    bool conflicting = false;
  };
  std::unordered_map<std::string, Confirmed> confirmed_;  // by order id
  bool sales_rate_checked_ = false;
  std::int64_t sales_rate_records_ = 0;
  std::int64_t sales_rate_unreadable_ = 0;
  // By SKU, then second.
  std::map<std::string, std::map<std::int64_t, SecondSales>> sales_rate_;
  struct Totals {
    std::int64_t orders = 0;
    std::int64_t accepted = 0;
    bool operator==(const Totals&) const = default;
  };
  // Decided and accepted orders per SKU (decisions without a SKU left out).
  [[nodiscard]] std::map<std::string, Totals> decided_per_sku() const;
  [[nodiscard]] std::map<std::string, Totals> sales_rate_per_sku() const;
  std::int64_t decisions_without_id_ = 0;
  std::int64_t decisions_missing_ = 0;
  std::set<std::pair<int, std::int64_t>> dead_lettered_;
  std::int64_t dead_letters_ = 0;
  std::int64_t dead_letters_without_source_ = 0;
};

}  // namespace seckill
