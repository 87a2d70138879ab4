#include "common.h"

namespace streamrun::operators::detail {

dsl::OperatorSpec from_spec() {
  return {.name = "from",
          .kind = dsl::OperatorKind::source,
          .summary = "Reads the records of a Kafka topic (key as text, value as JSON or text)",
          .fields = {{"topic", dsl::FieldType::string, true, std::nullopt, "The topic to read"},
                     format_field()},
          .example = "- from: {topic: orders, format: json}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream>) -> std::optional<dsl::Stream> {
            return context.builder.stream(
                config.string("topic"), record_serdes(config.string("format")), context.node_name);
          }};
}

}  // namespace streamrun::operators::detail
