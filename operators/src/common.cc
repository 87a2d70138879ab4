#include "common.h"

#include <fmt/format.h>

namespace streamrun::operators::detail {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos)
      return parts;
    start = dot + 1;
  }
}

}  // namespace

const nlohmann::json* find_field(const nlohmann::json& value, const std::string& path) {
  const nlohmann::json* at = &value;
  for (const auto& part : split_path(path)) {
    if (!at->is_object())
      return nullptr;
    auto it = at->find(part);
    if (it == at->end())
      return nullptr;
    at = &*it;
  }
  return at;
}

bool set_field(nlohmann::json& value, const std::string& path, nlohmann::json field) {
  nlohmann::json* at = &value;
  const auto parts = split_path(path);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (at->is_null())
      *at = nlohmann::json::object();
    if (!at->is_object())
      return false;
    at = &(*at)[parts[i]];
  }
  if (at->is_null())
    *at = nlohmann::json::object();
  if (!at->is_object())
    return false;
  (*at)[parts.back()] = std::move(field);
  return true;
}

std::optional<nlohmann::json> remove_field(nlohmann::json& value, const std::string& path) {
  const auto parts = split_path(path);
  nlohmann::json* at = &value;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!at->is_object() || !at->contains(parts[i]))
      return std::nullopt;
    at = &(*at)[parts[i]];
  }
  if (!at->is_object() || !at->contains(parts.back()))
    return std::nullopt;
  auto removed = std::move((*at)[parts.back()]);
  at->erase(parts.back());
  return removed;
}

std::string key_text(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

dsl::FieldSpec format_field() {
  return {"format",
          dsl::FieldType::string,
          false,
          "json",
          "How values are encoded: json (a JSON document) or string (text)",
          {"json", "string"}};
}

nlohmann::json evaluate(const dsl::Expression& expression, const dsl::Key& key,
                        const nlohmann::json& value) {
  const nlohmann::json key_value = key ? nlohmann::json(*key) : nlohmann::json();
  const nlohmann::json* arguments[] = {&key_value, &value};
  return expression.evaluate(arguments);
}

bool test(const dsl::Expression& expression, const dsl::Key& key, const nlohmann::json& value) {
  const nlohmann::json key_value = key ? nlohmann::json(*key) : nlohmann::json();
  const nlohmann::json* arguments[] = {&key_value, &value};
  return expression.test(arguments);
}

FieldOrExpression::FieldOrExpression(const dsl::OperatorConfig& config,
                                     const std::string& field_name,
                                     const std::string& expression_name) {
  if (config.has(field_name) == config.has(expression_name)) {
    throw std::invalid_argument(
        fmt::format("'{}' takes one of '{}' (a field) or '{}' (an "
                    "expression), {}",
                    config.op(), field_name, expression_name,
                    config.has(field_name) ? "not both" : "and has neither"));
  }
  if (config.has(field_name))
    field_ = config.string(field_name);
  else
    expression_ = config.expression(expression_name);
}

nlohmann::json FieldOrExpression::operator()(const dsl::Key& key,
                                             const nlohmann::json& value) const {
  if (expression_)
    return evaluate(*expression_, key, value);
  const auto* found = find_field(value, *field_);
  return found != nullptr ? *found : nlohmann::json();
}

KGroupedStream<dsl::Key, nlohmann::json> group_values(const dsl::Stream& input,
                                                      const std::string& node_name) {
  return input
      .filter([](const dsl::Key&, const nlohmann::json& value) { return !value.is_null(); },
              node_name + "-values")
      .group_by_key(record_serdes("json"), node_name + "-by-key");
}

namespace {
nlohmann::json evaluate_fold(const dsl::Expression& expression, const dsl::Key& key,
                             const nlohmann::json& agg, const nlohmann::json& value) {
  const nlohmann::json key_value = key ? nlohmann::json(*key) : nullptr;
  const nlohmann::json* arguments[] = {&agg, &value, &key_value};
  return expression.evaluate(arguments);
}
}  // namespace

dsl::Stream fold_by_expression(const dsl::Stream& input, const dsl::OperatorConfig& config,
                               const std::string& node_name, const dsl::Expression& expression,
                               std::optional<nlohmann::json> initial,
                               std::optional<dsl::Expression> merge) {
  const bool first_is_aggregate = !initial;
  Merge merge_fn;
  if (merge) {
    merge_fn = [merge = *merge](const dsl::Key& key, nlohmann::json older, nlohmann::json newer) {
      return evaluate_fold(merge, key, older, newer);
    };
  }
  return fold_per_key(
      input, config, node_name, [initial] { return initial.value_or(nlohmann::json()); },
      [expression, first_is_aggregate](const dsl::Key& key, const nlohmann::json& value,
                                       const nlohmann::json& agg) {
        if (first_is_aggregate && agg.is_null())
          return value;  // the key's first value
        return evaluate_fold(expression, key, agg, value);
      },
      "", merge_fn);
}

dsl::Stream add_keyed_node(
    const dsl::Stream& input, const std::string& node_name, const std::string& kind,
    std::function<std::unique_ptr<streamrun::detail::NodeInstance>(const std::string&)> make,
    const std::vector<std::string>& owned, const std::vector<std::string>& read) {
  dsl::Stream stream = input;
  if (stream.key_changed())
    stream = stream.repartition(record_serdes("json"), node_name + "-by-key");
  auto& builder = stream.builder();
  const int id = builder.add_node(kind, node_name, {stream.node_id()}, {}, std::move(make));
  for (const auto& store : owned)
    builder.attach_store(id, store);
  for (const auto& store : read)
    builder.use_store(id, store);
  return dsl::Stream(&builder, id);
}

std::vector<dsl::FieldSpec> window_fields() {
  return {
      {"window_ms", dsl::FieldType::integer, false, std::nullopt,
       "Aggregate per time window of this size (ms, by record timestamp; docs/time.md) instead "
       "of for ever"},
      {"advance_ms", dsl::FieldType::integer, false, std::nullopt,
       "With window_ms: a window starts every advance_ms (hopping windows; default window_ms: "
       "tumbling)"},
      {"session_gap_ms", dsl::FieldType::integer, false, std::nullopt,
       "Aggregate per session instead: a key's records at most this far apart (ms, by record "
       "timestamp) are one session, and a record between two sessions merges them"},
      {"grace_ms", dsl::FieldType::integer, false, "0",
       "With window_ms or session_gap_ms: how long after its end a window (after its end plus "
       "the gap, a session) still takes late records"},
      {"emit",
       dsl::FieldType::string,
       false,
       "updates",
       "With window_ms or session_gap_ms: every update, or one final result per window once it "
       "closes",
       {"updates", "final"}},
      {"emit_every_ms", dsl::FieldType::integer, false, std::nullopt,
       "With window_ms and emit: updates: the windows updated since the last time, each once "
       "with its latest aggregate, every this many ms of wall-clock time (instead of every "
       "update)"},
      {"late",
       dsl::FieldType::string,
       false,
       "drop",
       "With window_ms or session_gap_ms: a record too late for its windows is dropped "
       "(counted), or fails (the error policy applies)",
       {"drop", "fail"}},
  };
}

std::vector<dsl::FieldSpec> aggregate_fields(std::vector<dsl::FieldSpec> own) {
  own.push_back(store_field());
  for (auto& field : window_fields())
    own.push_back(std::move(field));
  return own;
}

bool windowed_step(const dsl::OperatorConfig& config) {
  for (const auto& field : window_fields()) {
    if (config.given(field.name))
      return true;
  }
  return false;
}

namespace {

// The windows a step asks for: time windows (window_ms), sessions (session_gap_ms) or none.
struct WindowChoice {
  std::optional<TimeWindows> time;
  std::optional<SessionWindows> session;
  bool final = false;
  std::int64_t emit_every_ms = 0;  // time windows only
  bool fail = false;
};

WindowChoice windows_of(const dsl::OperatorConfig& config) {
  std::vector<dsl::FieldErrors::Problem> problems;
  const bool time = config.given("window_ms");
  const bool session = config.given("session_gap_ms");
  constexpr auto kMax = TimeWindows::kMaxMs;
  if (time && session) {
    problems.push_back({"session_gap_ms",
                        "'window_ms' and 'session_gap_ms' are two kinds of "
                        "windows: give one"});
  } else if (!time && !session) {
    for (const auto& field : window_fields()) {
      if (config.given(field.name) && field.name != "advance_ms" && field.name != "emit_every_ms")
        problems.push_back(
            {field.name,
             fmt::format("'{}' is used only with 'window_ms' or 'session_gap_ms'", field.name)});
    }
  }
  for (const auto* only_time : {"advance_ms", "emit_every_ms"}) {
    if (!time && config.given(only_time))
      problems.push_back({only_time, fmt::format("'{}' is used only with 'window_ms'", only_time)});
  }
  const auto emit_every = config.given("emit_every_ms") ? config.integer("emit_every_ms") : 0;
  if (time && config.given("emit_every_ms")) {
    if (config.string("emit") == "final")
      problems.push_back({"emit_every_ms",
                          "'emit_every_ms' is used only with 'emit: updates' (with "
                          "'emit: final' each window comes once anyway)"});
    else if (emit_every < 1 || emit_every > kMax)
      problems.push_back(
          {"emit_every_ms",
           fmt::format("'emit_every_ms' must be in [1, {}] (got {})", kMax, emit_every)});
  }
  const auto size = time ? config.integer("window_ms") : 1;
  const auto advance = config.given("advance_ms") ? config.integer("advance_ms") : size;
  const auto gap = session ? config.integer("session_gap_ms") : 1;
  const auto grace = config.integer("grace_ms");
  if (size < 1 || size > kMax)
    problems.push_back(
        {"window_ms", fmt::format("'window_ms' must be in [1, {}] (got {})", kMax, size)});
  else if (time && (advance < 1 || advance > size))
    problems.push_back({"advance_ms", fmt::format("'advance_ms' must be in [1, window_ms = {}] "
                                                  "(got {})",
                                                  size, advance)});
  if (gap < 1 || gap > kMax)
    problems.push_back(
        {"session_gap_ms", fmt::format("'session_gap_ms' must be in [1, {}] (got {})", kMax, gap)});
  if (grace < 0 || grace > kMax)
    problems.push_back(
        {"grace_ms", fmt::format("'grace_ms' must be in [0, {}] (got {})", kMax, grace)});
  if (!problems.empty())
    throw dsl::FieldErrors(std::move(problems));
  WindowChoice choice;
  if (time) {
    choice.time = TimeWindows::of(std::chrono::milliseconds(size))
                      .advance_by(std::chrono::milliseconds(advance))
                      .grace(std::chrono::milliseconds(grace));
  } else if (session) {
    choice.session = SessionWindows::with_inactivity_gap(std::chrono::milliseconds(gap))
                         .grace(std::chrono::milliseconds(grace));
  }
  choice.final = config.string("emit") == "final";
  choice.emit_every_ms = emit_every;
  choice.fail = config.string("late") == "fail";
  return choice;
}

// A windowed aggregate's output value: {window_start, window_end, `name`: aggregate} (an object
// aggregate's fields taking the place of `name` when it is empty).
nlohmann::json window_value(const std::string& name, const Window& window,
                            const nlohmann::json& aggregate) {
  nlohmann::json value = nlohmann::json::object();
  if (name.empty() && aggregate.is_object())
    value = aggregate;
  else
    value[name.empty() ? "value" : name] = aggregate;
  // The window's own bounds, whatever the aggregate holds under these names.
  value["window_start"] = window.start_ms;
  value["window_end"] = window.end_ms;
  return value;
}

template <typename Windowed>
Windowed with_options(Windowed stream, const WindowChoice& choice) {
  if (choice.final)
    stream = stream.emit_on_window_close();
  if (choice.fail)
    stream = stream.late_records_fail();
  return stream;
}

}  // namespace

dsl::Stream fold_per_key(const dsl::Stream& input, const dsl::OperatorConfig& config,
                         const std::string& node_name, std::function<nlohmann::json()> init,
                         Fold add, const std::string& name, Merge merge) {
  const auto grouped = group_values(input, node_name);
  const auto& store = config.string("store");
  const auto serde = record_serdes("json").value;
  const auto choice = windows_of(config);
  if (choice.time) {
    auto windowed = grouped.windowed_by(*choice.time);
    if (choice.emit_every_ms > 0)
      windowed = windowed.emit_every(std::chrono::milliseconds(choice.emit_every_ms));
    return with_options(windowed, choice)
        .aggregate(init, add, store, serde, node_name)
        .to_stream()
        .map(
            [name](const Windowed<dsl::Key>& key, const nlohmann::json& aggregate) {
              return KeyValue<dsl::Key, nlohmann::json>{key.key,
                                                        window_value(name, key.window, aggregate)};
            },
            node_name + "-window");
  }
  if (choice.session) {
    if (!merge) {
      throw dsl::FieldErrors(std::vector<dsl::FieldErrors::Problem>{
          {"session_gap_ms", fmt::format("'{}' with 'session_gap_ms' needs "
                                         "'merge': how two sessions' "
                                         "aggregates combine",
                                         config.op())}});
    }
    // Outputs are keyed by the plain key, where a tombstone for a merged-away session would
    // read as deleting the key: the merged session's update (its window_start and window_end
    // cover those it merged) is what announces a merge.
    return with_options(grouped.windowed_by(*choice.session), choice)
        .aggregate(init, add, merge, store, serde, node_name)
        .to_stream()
        .filter(
            [](const Windowed<dsl::Key>&, const std::optional<nlohmann::json>& aggregate) {
              return aggregate.has_value();
            },
            node_name + "-merged")
        .map(
            [name](const Windowed<dsl::Key>& key, const std::optional<nlohmann::json>& aggregate) {
              return KeyValue<dsl::Key, nlohmann::json>{key.key,
                                                        window_value(name, key.window, *aggregate)};
            },
            node_name + "-session");
  }
  return grouped.aggregate(init, add, store, serde, node_name).to_stream();
}

dsl::FieldSpec store_field() {
  return {"store", dsl::FieldType::string, true, std::nullopt,
          "The state store (and changelog topic <application>-<store>-changelog)"};
}

}  // namespace streamrun::operators::detail
