// dedupe: passes the first record of each key and identity (a field or expression of the value,
// or the whole value), drops the repeats; a record without an identity passes; with a time-to-live,
// an identity is forgotten that long after it was first seen (record time), and forgotten entries
// leave the store.

#include <charconv>

#include <fmt/format.h>

#include <streamrun/operators/operators.h>

#include "common.h"

namespace streamrun::operators::detail {
namespace {

struct Settings {
  std::optional<std::string> field;
  std::optional<dsl::Expression> by;
  std::optional<std::int64_t> ttl_ms;
  std::string store;
};

// Expired entries leave the store a few at a time, as records arrive: this many are looked at
// per record, so that a store of N entries is swept once every N/kSweepPerRecord records. A
// sweep is a range scan, which costs far more than a lookup (and makes the store hand its cached
// writes to RocksDB): one every kRecordsPerSweep records, over that many records' share.
constexpr int kSweepPerRecord = 4;
constexpr int kRecordsPerSweep = 32;
constexpr int kSweepEntries = kSweepPerRecord * kRecordsPerSweep;

std::int64_t to_time(std::string_view stored) {
  std::int64_t time = 0;
  std::from_chars(stored.data(), stored.data() + stored.size(), time);
  return time;
}

class DedupeNode final : public streamrun::detail::Input<dsl::Key, nlohmann::json>,
                         public streamrun::detail::Output<dsl::Key, nlohmann::json> {
 public:
  DedupeNode(std::string name, Settings settings)
      : NodeInstance(std::move(name)), settings_(std::move(settings)) {}

  void init(streamrun::detail::TaskEnvironment& environment) override {
    NodeInstance::init(environment);
    seen_ = &environment.store(settings_.store);
  }

  void receive(Record<dsl::Key, nlohmann::json>&& record) override {
    if (!record.key || record.null_key) {
      this->environment().record_dropped(this->name(), "null key");
      return;
    }
    bool first = false;
    this->guarded([&] {
      const auto identified = identity(record.key, record.value);
      if (!identified) {
        first = true;  // nothing to tell it by: not a repeat of anything
        return;
      }
      const auto id = *record.key + '\0' + *identified;
      stream_time_ = std::max(stream_time_, record.timestamp_ms);
      const auto stored = seen_->get(id);
      first = !stored || expired(to_time(*stored));
      if (first)
        seen_->put(id, std::to_string(record.timestamp_ms));
      if (settings_.ttl_ms && ++since_sweep_ == kRecordsPerSweep) {
        since_sweep_ = 0;
        sweep();
      }
    });
    if (first)
      this->emit(std::move(record));
  }

 private:
  // The record's identity; nullopt when it has none (no field, or the expression gave nil).
  std::optional<std::string> identity(const dsl::Key& key, const nlohmann::json& value) const {
    if (settings_.by) {
      const auto id = evaluate(*settings_.by, key, value);
      if (id.is_null())
        return std::nullopt;
      return id.is_string() ? id.get<std::string>() : id.dump();
    }
    if (settings_.field) {
      const auto* found = find_field(value, *settings_.field);
      if (found == nullptr || found->is_null())
        return std::nullopt;
      return key_text(*found);
    }
    return value.dump();
  }

  bool expired(std::int64_t first_seen) const {
    return settings_.ttl_ms && first_seen + *settings_.ttl_ms <= stream_time_;
  }

  // Removes the expired entries among the next few after the last one looked at.
  void sweep() {
    std::vector<std::string> expired_keys;
    std::optional<std::string> last;
    int looked = 0;
    seen_->range(cursor_, {}, [&](std::string_view key, std::string_view value) {
      if (looked++ == kSweepEntries)
        return false;
      last = std::string(key);
      if (expired(to_time(value)))
        expired_keys.push_back(*last);
      return true;
    });
    for (const auto& key : expired_keys)
      seen_->remove(key);
    // Past the last key looked at; from the start again after the end.
    cursor_ = looked > kSweepEntries && last ? *last + '\0' : std::string();
  }

  Settings settings_;
  KeyValueStore* seen_ = nullptr;
  std::int64_t stream_time_ = 0;  // the largest record time this task has seen
  std::string cursor_;
  int since_sweep_ = 0;
};

dsl::Stream add_dedupe(const dsl::Stream& input, Settings settings, const std::string& name) {
  if (settings.ttl_ms && *settings.ttl_ms <= 0)
    throw std::invalid_argument(
        fmt::format("'dedupe' field 'ttl_ms' must be positive (got {})", *settings.ttl_ms));
  if (settings.store.empty())
    throw std::invalid_argument("'dedupe' needs a store");
  const std::string store = settings.store;
  return add_keyed_node(input, name, "dedupe",
                        [settings = std::move(settings)](const std::string& node_name) {
                          return std::make_unique<DedupeNode>(node_name, settings);
                        },
                        {store});
}

}  // namespace

dsl::OperatorSpec dedupe_spec() {
  return {
      .name = "dedupe",
      .kind = dsl::OperatorKind::processor,
      .summary =
          "Passes the first record per key and identity (a field, an expression, or the "
          "whole value) and drops repeats, optionally only within a time-to-live; "
          "repartitions first after a key change",
      .fields = {{"field", dsl::FieldType::string, false, std::nullopt,
                  "The field that identifies a record (e.g. order_id); a record without it "
                  "passes"},
                 {"by", dsl::FieldType::expression, false, std::nullopt,
                  "An expression that identifies a record, e.g. value.user .. '/' .. value.item "
                  "(nil: the record passes)"},
                 {"ttl_ms", dsl::FieldType::integer, false, std::nullopt,
                  "Forget an identity this many milliseconds (record time) after it was first "
                  "seen (default: never)"},
                 {"store", dsl::FieldType::string, true, std::nullopt,
                  "The store of identities seen (and its changelog topic)"}},
      .alternatives = {{{"field", "by"}, /*required=*/false}},
      .example = "- dedupe: {field: order_id, ttl_ms: 3600000, store: orders-seen}",
      .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                  std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
        Settings settings;
        if (config.has("field"))
          settings.field = config.string("field");
        if (config.has("by"))
          settings.by = config.expression("by");
        if (config.has("ttl_ms"))
          settings.ttl_ms = config.integer("ttl_ms");
        settings.store = config.string("store");
        return add_dedupe(*input, std::move(settings), context.node_name);
      }};
}

}  // namespace streamrun::operators::detail

namespace streamrun::operators {

dsl::Stream dedupe(const dsl::Stream& input, const DedupeOptions& options,
                   const std::string& name) {
  if (options.field.empty())
    throw std::invalid_argument("'dedupe' needs the field that identifies a record");
  return detail::add_dedupe(input, {options.field, std::nullopt, options.ttl_ms, options.store},
                            name);
}

}  // namespace streamrun::operators
