// reserve: the flash-sale decision. Per key (an item), at most as many records are accepted as
// the limit its row in a table says (the stock), and, optionally, at most one per value of
// another field (a user) — every record gets exactly one decision.

#include <charconv>

#include <streamrun/operators/operators.h>

#include "common.h"

namespace streamrun::operators::detail {
namespace {

struct Settings {
  std::string limit_table;  // the table's store holds the limits' JSON rows
  std::optional<std::string> limit_field;
  std::optional<std::string> once_per;
  std::vector<std::string> required;
  std::string store;
  std::optional<std::string> decided_at;
};

std::int64_t to_count(const std::optional<std::string>& stored) {
  std::int64_t count = 0;
  if (stored)
    std::from_chars(stored->data(), stored->data() + stored->size(), count);
  return count;
}

class ReserveNode final : public streamrun::detail::Input<dsl::Key, nlohmann::json>,
                          public streamrun::detail::Output<dsl::Key, nlohmann::json> {
 public:
  ReserveNode(std::string name, Settings settings)
      : NodeInstance(std::move(name)), settings_(std::move(settings)) {}

  void init(streamrun::detail::TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    reserved_ = &environment.store(settings_.store);
    limits_ = &environment.store(settings_.limit_table);
    if (settings_.once_per)
      once_ = &environment.store(settings_.store + "-once");
  }

  void receive(Record<dsl::Key, nlohmann::json>&& record) override {
    std::optional<Record<dsl::Key, nlohmann::json>> out;
    this->guarded([&] {
      // A value that is not an object keeps its identity under "value", as join does.
      nlohmann::json value =
          record.value.is_object() ? record.value : nlohmann::json{{"value", record.value}};
      const auto decided = decide(record.key, value);
      value["decision"] = decided.reason == "accepted" ? "accepted" : "rejected";
      value["reason"] = decided.reason;
      value["remaining"] = decided.remaining;
      if (settings_.decided_at)
        value[*settings_.decided_at] = this->environment().now_ms();
      out = std::move(record).with_value(std::move(value));
    });
    this->emit(std::move(*out));
  }

 private:
  struct Decision {
    std::string reason;
    std::int64_t remaining = 0;
  };

  Decision decide(const dsl::Key& key, const nlohmann::json& value) {
    if (!key)
      return {"invalid", 0};
    for (const auto& field : settings_.required) {
      const auto* present = find_field(value, field);
      if (present == nullptr || present->is_null())
        return {"invalid", 0};
    }
    std::optional<std::string> once_key;
    if (settings_.once_per) {
      const auto* by = find_field(value, *settings_.once_per);
      if (by == nullptr || by->is_null())
        return {"invalid", 0};
      once_key = *key + '\0' + key_text(*by);
    }
    const auto limit = limit_of(*key);
    const auto reserved = to_count(reserved_->get(*key));
    if (!limit)
      return {"unknown_item", 0};
    const auto remaining = std::max<std::int64_t>(0, *limit - reserved);
    if (once_key && once_->get(*once_key))
      return {"duplicate", remaining};
    if (remaining == 0)
      return {"sold_out", 0};
    reserved_->put(*key, std::to_string(reserved + 1));
    if (once_key)
      once_->put(*once_key, "1");
    return {"accepted", remaining - 1};
  }

  // The limit of `key`: its table row, a number, or the row's limit_field.
  std::optional<std::int64_t> limit_of(const std::string& key) const {
    const auto row_text = limits_->get(key);
    if (!row_text)
      return std::nullopt;
    const auto row = nlohmann::json::parse(*row_text, nullptr, /*allow_exceptions=*/false);
    const nlohmann::json* limit = &row;
    if (settings_.limit_field)
      limit = find_field(row, *settings_.limit_field);
    if (limit == nullptr || !limit->is_number())
      throw std::invalid_argument(
          "the row of '" + key + "' in table '" + settings_.limit_table + "' has no numeric limit" +
          (settings_.limit_field ? " in field '" + *settings_.limit_field + "'" : std::string()));
    return limit->get<std::int64_t>();
  }

  Settings settings_;
  KeyValueStore* reserved_ = nullptr;
  KeyValueStore* limits_ = nullptr;
  KeyValueStore* once_ = nullptr;
};

dsl::Stream add_reserve(const dsl::Stream& input, Settings settings, const std::string& name) {
  if (settings.store.empty())
    throw std::invalid_argument("'reserve' needs a store");
  if (settings.limit_table.empty())
    throw std::invalid_argument("'reserve' needs limit_table: the table of limits per key");
  std::vector<std::string> owned{settings.store};
  if (settings.once_per)
    owned.push_back(settings.store + "-once");
  const std::string limits = settings.limit_table;
  return add_keyed_node(input, name, "reserve",
                        [settings = std::move(settings)](const std::string& node_name) {
                          return std::make_unique<ReserveNode>(node_name, settings);
                        },
                        owned, {limits});
}

}  // namespace

dsl::OperatorSpec reserve_spec() {
  return {.name = "reserve",
          .kind = dsl::OperatorKind::processor,
          .summary =
              "Decides each record against a per-key limit from a table (one unit each; "
              "optionally one per value of another field): adds decision "
              "(accepted/rejected), reason (accepted, sold_out, duplicate, invalid, "
              "unknown_item) and remaining",
          .fields = {{"limit_table", dsl::FieldType::table, true, std::nullopt,
                      "The table whose row for the key gives its limit (e.g. the stock)"},
                     {"limit_field", dsl::FieldType::string, false, std::nullopt,
                      "The field of the row that holds the limit (default: the row is a number)"},
                     {"once_per", dsl::FieldType::string, false, std::nullopt,
                      "Accept at most one record per key and value of this field (e.g. user_id)"},
                     {"required", dsl::FieldType::string_list, false, std::nullopt,
                      "Fields a record must have; without them it is rejected as invalid"},
                     {"store", dsl::FieldType::string, true, std::nullopt,
                      "The store of units taken per key (and <store>-once for once_per)"},
                     {"decided_at", dsl::FieldType::string, false, std::nullopt,
                      "Also add the time of the decision (ms since the epoch) under this field, "
                      "e.g. to measure how long orders wait"}},
          .example =
              "- reserve: {limit_table: stock, limit_field: units, once_per: user_id, "
              "store: reserved}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            Settings settings;
            settings.limit_table = config.string("limit_table");
            if (config.has("limit_field"))
              settings.limit_field = config.string("limit_field");
            if (config.has("once_per"))
              settings.once_per = config.string("once_per");
            if (config.has("required"))
              settings.required = config.string_list("required");
            settings.store = config.string("store");
            if (config.has("decided_at"))
              settings.decided_at = config.string("decided_at");
            return add_reserve(*input, std::move(settings), context.node_name);
          }};
}

}  // namespace streamrun::operators::detail

namespace streamrun::operators {

dsl::Stream reserve(const dsl::Stream& input, const ReserveOptions& options,
                    const std::string& name) {
  return detail::add_reserve(input,
                             {options.limit_table, options.limit_field, options.once_per,
                              options.required, options.store, options.decided_at},
                             name);
}

}  // namespace streamrun::operators
