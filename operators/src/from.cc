#include <cmath>

#include "common.h"

namespace streamrun::operators::detail {

dsl::OperatorSpec from_spec() {
  return {
      .name = "from",
      .kind = dsl::OperatorKind::source,
      .summary = "Reads the records of a Kafka topic (key as text, value as JSON or text)",
      .fields = {{"topic", dsl::FieldType::string, true, std::nullopt, "The topic to read"},
                 format_field(),
                 {"timestamp", dsl::FieldType::string, false, std::nullopt,
                  "A field of the value holding the record's event time (ms since the "
                  "epoch), used instead of Kafka's timestamp by windows and outputs; a "
                  "record without it fails (docs/time.md)"}},
      .example = "- from: {topic: orders, format: json, timestamp: placed_at_ms}",
      .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                  std::optional<dsl::Stream>) -> std::optional<dsl::Stream> {
        auto stream = context.builder.stream(
            config.string("topic"), record_serdes(config.string("format")), context.node_name);
        if (!config.has("timestamp"))
          return stream;
        const auto field = config.string("timestamp");
        if (field.empty())
          throw dsl::FieldErrors(std::vector<dsl::FieldErrors::Problem>{
              {"timestamp", "'timestamp' must name a field"}});
        if (config.string("format") != "json")
          throw dsl::FieldErrors(std::vector<dsl::FieldErrors::Problem>{
              {"timestamp",
               "'timestamp' names a field of a JSON value: it needs 'format: json' "
               "(got '" +
                   config.string("format") + "')"}});
        return stream.with_timestamp(
            [field](const dsl::Key&, const nlohmann::json& value, std::int64_t) {
              const auto* time = find_field(value, field);
              if (time == nullptr)
                throw std::invalid_argument("the record has no timestamp field '" + field + "'");
              if (time->is_null())
                throw std::invalid_argument("timestamp field '" + field + "' is null");
              if (time->is_number_integer())
                return time->get<std::int64_t>();
              // 1500.0, as some JSON writers put a whole number.
              if (time->is_number_float()) {
                const double ms = time->get<double>();
                if (std::trunc(ms) == ms && std::abs(ms) < 9.0e15)
                  return static_cast<std::int64_t>(ms);
              }
              throw std::invalid_argument("timestamp field '" + field +
                                          "' is not a whole number of ms (got " + time->dump() +
                                          ")");
            },
            context.node_name + "-timestamp");
      }};
}

}  // namespace streamrun::operators::detail
