// call: calls a REST service per record without blocking the task (KStream::call_async with
// streamrun::http::Client): the request is built from the record's fields, the response goes
// into a field (or becomes the value). Retries, timeout, capacity, rate limit and circuit
// breaker per endpoint; an Idempotency-Key header lets the service tell a repeated call (calls
// are at least once).

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include <streamrun/http/client.h>
#include <streamrun/operators/operators.h>

#include "common.h"

namespace streamrun::operators::detail {
namespace {

struct Settings {
  std::string method;
  std::string url;  // with {field} placeholders
  std::optional<std::map<std::string, dsl::Expression>> body;
  std::map<std::string, std::string> headers;
  std::optional<dsl::Expression> idempotency_key;
  std::optional<std::string> into;
  std::optional<nlohmann::json> fallback;
  AsyncCallOptions options;
};

std::string url_encode(std::string_view text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// The URL with each {path} replaced by that field of the value (URL-encoded). Throws
// std::invalid_argument naming a missing field: the record's fault.
std::string expand_url(const std::string& pattern, const nlohmann::json& value) {
  std::string out;
  std::size_t at = 0;
  while (at < pattern.size()) {
    const auto open = pattern.find('{', at);
    if (open == std::string::npos) {
      out.append(pattern, at);
      break;
    }
    const auto close = pattern.find('}', open);
    out.append(pattern, at, open - at);
    const auto path = pattern.substr(open + 1, close - open - 1);
    const auto* field = find_field(value, path);
    if (field == nullptr || field->is_null())
      throw std::invalid_argument(fmt::format("the URL needs field '{}', which is missing", path));
    out += url_encode(key_text(*field));
    at = close + 1;
  }
  return out;
}

nlohmann::json parse_body(const http::Response& response) {
  if (response.body.empty())
    return nullptr;
  auto parsed = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? nlohmann::json(response.body) : parsed;
}

nlohmann::json merge(nlohmann::json value, const std::optional<std::string>& into,
                     nlohmann::json answer) {
  if (!into)
    return answer;
  if (!set_field(value, *into, std::move(answer)))
    throw std::invalid_argument("cannot set '" + *into + "': a part of it is not an object");
  return value;
}

dsl::Stream add_call(const dsl::Stream& input, Settings settings, const std::string& name) {
  auto client = http::Client::shared();
  auto shared = std::make_shared<const Settings>(std::move(settings));
  auto call = [client, shared](const Record<dsl::Key, nlohmann::json>& record,
                               CallCompletion<nlohmann::json> completion) {
    const auto& s = *shared;
    http::Request request;
    request.method = s.method;
    request.url = expand_url(s.url, record.value);
    request.timeout = s.options.timeout;
    for (const auto& [header, text] : s.headers)
      request.headers.emplace_back(header, text);
    const auto key = s.idempotency_key
                         ? key_text(evaluate(*s.idempotency_key, record.key, record.value))
                         : fmt::format("{}-{}-{}", record.origin.topic, record.origin.partition,
                                       record.origin.offset);
    request.headers.emplace_back("Idempotency-Key", key);
    if (s.body) {
      nlohmann::json body = nlohmann::json::object();
      for (const auto& [field, expression] : *s.body)
        body[field] = evaluate(expression, record.key, record.value);
      request.body = body.dump();
    } else if (s.method == "POST" || s.method == "PUT" || s.method == "PATCH") {
      request.body = record.value.dump();
    }
    if (!request.body.empty())
      request.headers.emplace_back("Content-Type", "application/json");
    const std::string what = request.method + " " + request.url;
    client->send(std::move(request), [completion, shared, value = record.value,
                                      what](Result<http::Response> answer) mutable {
      http::complete(completion, answer, what, [&](const http::Response& response) {
        return merge(std::move(value), shared->into, parse_body(response));
      });
    });
  };
  std::function<nlohmann::json(const Record<dsl::Key, nlohmann::json>&)> fallback;
  if (shared->fallback) {
    fallback = [shared](const Record<dsl::Key, nlohmann::json>& record) {
      return merge(record.value, shared->into, *shared->fallback);
    };
  }
  return input.call_async<nlohmann::json>(std::move(call), shared->options, name,
                                          std::move(fallback));
}

WhenOpen when_open_of(const std::string& text) {
  if (text == "fail")
    return WhenOpen::fail;
  if (text == "skip")
    return WhenOpen::skip;
  if (text == "dead_letter")
    return WhenOpen::dead_letter;
  if (text == "fallback")
    return WhenOpen::fallback;
  return WhenOpen::wait;
}

}  // namespace

// An HTTP header name (RFC 9110 token).
bool valid_header_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// The settings of one `call` step; every problem with its fields at once (dsl::FieldErrors),
// each under its YAML name with the value given.
Settings read_settings(const dsl::OperatorConfig& config, const std::string& node_name) {
  std::vector<dsl::FieldErrors::Problem> problems;
  const auto problem = [&](const std::string& field, std::string message) {
    problems.push_back({field, std::move(message)});
  };
  // An integer field within [low, high]; `unit` follows the numbers in the message.
  const auto bounded = [&](const std::string& field, std::int64_t low, std::int64_t high,
                           std::string_view unit = "") {
    const auto value = config.integer(field);
    if (value < low || value > high)
      problem(field,
              fmt::format("'{}' must be in [{}, {}]{} (got {})", field, low, high, unit, value));
    return std::clamp(value, low, high);
  };
  constexpr std::int64_t kHourMs = 3'600'000;

  Settings settings;
  settings.method = config.string("method");
  settings.url = config.string("url");
  if (!settings.url.starts_with("http://") && !settings.url.starts_with("https://"))
    problem("url", "'url' must start with http:// or https:// (got '" + settings.url + "')");
  for (auto open = settings.url.find('{'); open != std::string::npos;
       open = settings.url.find('{', open + 1)) {
    const auto close = settings.url.find('}', open);
    if (close == std::string::npos) {
      problem("url", "'url' has a '{' without its '}'");
      break;
    }
    if (close == open + 1)
      problem("url", "'url' has an empty placeholder '{}': name a field");
  }
  if (config.has("body")) {
    settings.body = config.expression_map("body");
    if (settings.method == "GET" || settings.method == "DELETE")
      problem("body", fmt::format("'body' is sent only with POST, PUT or PATCH (method is {})",
                                  settings.method));
  }
  if (config.has("headers")) {
    settings.headers = config.string_map("headers");
    for (const auto& [name, value] : settings.headers) {
      if (!valid_header_name(name))
        problem("headers", fmt::format("header name '{}' is not a valid HTTP header name", name));
    }
  }
  if (config.has("idempotency_key"))
    settings.idempotency_key = config.expression("idempotency_key");
  if (config.has("into")) {
    settings.into = config.string("into");
    if (settings.into->empty())
      problem("into", "'into' must name a field (leave it out to make the response the value)");
  }
  auto& options = settings.options;
  options.endpoint = config.has("endpoint") ? config.string("endpoint") : node_name;
  options.timeout = std::chrono::milliseconds(bounded("timeout_ms", 1, kHourMs, " ms"));
  options.capacity = static_cast<std::size_t>(bounded("capacity", 1, 100'000));
  options.ordered = config.boolean("ordered");
  options.retries = static_cast<int>(bounded("retries", 0, 1'000));
  options.backoff = std::chrono::milliseconds(bounded("backoff_ms", 0, kHourMs, " ms"));
  options.max_backoff = std::chrono::milliseconds(bounded("max_backoff_ms", 0, kHourMs, " ms"));
  if (options.backoff > options.max_backoff)
    problem("backoff_ms", fmt::format("'backoff_ms' ({}) must not exceed 'max_backoff_ms' ({})",
                                      options.backoff.count(), options.max_backoff.count()));
  if (config.has("rate_limit")) {
    const auto rate = config.scalar("rate_limit");
    if (!rate.is_number() || rate.get<double>() <= 0)
      problem("rate_limit", fmt::format("'rate_limit' must be a positive number of calls per "
                                        "second (got {})",
                                        rate.dump()));
    else
      options.rate_limit = rate.get<double>();
  }
  if (config.has("burst")) {
    if (!config.has("rate_limit"))
      problem("burst", "'burst' is used only with 'rate_limit'");
    options.burst = static_cast<double>(bounded("burst", 1, 1'000'000));
  }
  if (config.boolean("breaker")) {
    CircuitBreakerOptions breaker;
    breaker.consecutive_failures = static_cast<int>(bounded("breaker_failures", 0, 1'000'000));
    const auto rate = config.scalar("breaker_failure_rate");
    if (!rate.is_number() || rate.get<double>() <= 0 || rate.get<double>() > 1)
      problem(
          "breaker_failure_rate",
          fmt::format("'breaker_failure_rate' must be a number in (0, 1] (got {})", rate.dump()));
    else
      breaker.failure_rate = rate.get<double>();
    breaker.minimum_calls = static_cast<int>(bounded("breaker_minimum_calls", 1, 1'000'000));
    breaker.window = std::chrono::milliseconds(bounded("breaker_window_ms", 10, kHourMs, " ms"));
    breaker.open_for = std::chrono::milliseconds(bounded("breaker_open_ms", 1, kHourMs, " ms"));
    breaker.half_open_probes = static_cast<int>(bounded("breaker_probes", 1, 1'000));
    options.breaker = breaker;
  } else {
    options.breaker.reset();
    for (const auto* field : {"breaker_failures", "breaker_failure_rate", "breaker_minimum_calls",
                              "breaker_window_ms", "breaker_open_ms", "breaker_probes"}) {
      if (config.given(field))
        problem(field, fmt::format("'{}' has no effect with 'breaker: false'", field));
    }
  }
  options.when_open = when_open_of(config.string("when_open"));
  if (!options.breaker && options.when_open != WhenOpen::wait)
    problem("when_open", fmt::format("'when_open: {}' needs the breaker ('breaker: false' given)",
                                     to_string(options.when_open)));
  if (config.has("fallback")) {
    const auto text = config.string("fallback");
    auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    settings.fallback = parsed.is_discarded() ? nlohmann::json(text) : parsed;
  }
  if (options.when_open == WhenOpen::fallback && !settings.fallback)
    problem("when_open", "'when_open: fallback' needs 'fallback'");
  if (settings.fallback && options.when_open != WhenOpen::fallback)
    problem("fallback", "'fallback' is used only with 'when_open: fallback'");
  if (problems.empty()) {
    if (auto why = options.invalid(); !why.empty())
      problem("call", why);  // a bug here: the checks above cover every field
  }
  if (!problems.empty())
    throw dsl::FieldErrors(std::move(problems));
  return settings;
}

dsl::OperatorSpec call_spec() {
  using dsl::FieldType;
  return {.name = "call",
          .kind = dsl::OperatorKind::processor,
          .summary =
              "Calls a REST service per record without blocking (up to `capacity` calls in flight "
              "per partition) and puts the response into a field; retries with backoff and "
              "jitter, a rate limit and a circuit breaker per endpoint; while the breaker is open "
              "the partitions pause and records wait in Kafka",
          .fields =
              {{"url", FieldType::string, true, std::nullopt,
                "The URL; {field} is replaced by that field of the value, URL-encoded (a record "
                "without it is the record's failure)"},
               {"method",
                FieldType::string,
                false,
                "POST",
                "The HTTP method",
                {"GET", "POST", "PUT", "PATCH", "DELETE"}},
               {"body", FieldType::expression_map, false, std::nullopt,
                "The JSON body, field: expression (default for POST, PUT and PATCH: the value)"},
               {"headers", FieldType::string_map, false, std::nullopt, "Extra request headers"},
               {"idempotency_key", FieldType::expression, false, std::nullopt,
                "The Idempotency-Key header, an expression (default: topic-partition-offset of "
                "the input record, the same on every repeat)"},
               {"into", FieldType::string, false, std::nullopt,
                "The field that gets the response (JSON, else text); default: the response "
                "becomes the value"},
               {"timeout_ms", FieldType::integer, false, "5000", "Per call, connecting included"},
               {"capacity", FieldType::integer, false, "16", "Calls in flight per partition"},
               {"ordered", FieldType::boolean, false, "true",
                "Results in input order (false: as they complete)"},
               {"retries", FieldType::integer, false, "3",
                "Retries of a failed call (timeout, refused, HTTP 5xx, 408, 429); other 4xx are "
                "the record's fault and not retried"},
               {"backoff_ms", FieldType::integer, false, "100",
                "First retry's backoff; doubles per retry, full jitter"},
               {"max_backoff_ms", FieldType::integer, false, "5000", "Backoff cap"},
               {"rate_limit", FieldType::scalar, false, std::nullopt,
                "Calls per second to the endpoint from this process (default: unlimited)"},
               {"burst", FieldType::integer, false, std::nullopt,
                "Calls allowed at once above the rate (default: the rate)"},
               {"breaker", FieldType::boolean, false, "true", "A circuit breaker for the endpoint"},
               {"breaker_failures", FieldType::integer, false, "5",
                "Failures in a row that open the breaker (0: only the rate)"},
               {"breaker_failure_rate", FieldType::scalar, false, "0.5",
                "Share of failed calls in the window that opens it"},
               {"breaker_minimum_calls", FieldType::integer, false, "20",
                "Calls in the window before the rate counts"},
               {"breaker_window_ms", FieldType::integer, false, "10000", "The rate's window"},
               {"breaker_open_ms", FieldType::integer, false, "5000",
                "How long it stays open before probing"},
               {"breaker_probes", FieldType::integer, false, "1",
                "Probe calls that must succeed to close it"},
               {"when_open",
                FieldType::string,
                false,
                "wait",
                "While the breaker is open: wait (records wait in Kafka), or degrade: fail, skip, "
                "dead_letter, fallback",
                {"wait", "fail", "skip", "dead_letter", "fallback"}},
               {"fallback", FieldType::string, false, std::nullopt,
                "With when_open: fallback, what goes into `into` instead (a JSON literal, else "
                "text)"},
               {"endpoint", FieldType::string, false, std::nullopt,
                "Name that shares breaker and rate limit between steps (default: the step's "
                "name)"}},
          .example =
              "- call: {url: 'http://127.0.0.1:9096/confirmations', body: {order_id: "
              "value.order_id}, idempotency_key: value.order_id, into: confirmation, capacity: 64}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            auto settings = read_settings(config, context.node_name);
            return add_call(*input, std::move(settings), context.node_name);
          }};
}

}  // namespace streamrun::operators::detail
