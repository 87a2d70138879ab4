#include "common.h"

namespace streamrun::operators::detail {

dsl::OperatorSpec to_spec() {
  return {.name = "to",
          .kind = dsl::OperatorKind::sink,
          .summary = "Writes the records to a Kafka topic, partitioned by key",
          .fields = {{"topic", dsl::FieldType::string, true, std::nullopt, "The topic to write"},
                     format_field()},
          .example = "- to: {topic: decisions}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            input->to(config.string("topic"), record_serdes(config.string("format")),
                      context.node_name);
            return std::nullopt;
          }};
}

}  // namespace streamrun::operators::detail
