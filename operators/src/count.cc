#include "common.h"

namespace streamrun::operators::detail {

dsl::OperatorSpec count_spec() {
  return {.name = "count",
          .kind = dsl::OperatorKind::processor,
          .summary =
              "Counts records per key in a state store and emits the new count (a number) per "
              "record; records with a null key or value are dropped",
          .fields = aggregate_fields({}),
          .example = "- count: {store: orders-per-sku}",
          .build = [](dsl::BuildContext& context, const dsl::OperatorConfig& config,
                      std::optional<dsl::Stream> input) -> std::optional<dsl::Stream> {
            if (windowed_step(config)) {
              return fold_per_key(
                  *input, config, context.node_name, [] { return nlohmann::json(0); },
                  [](const dsl::Key&, const nlohmann::json&, nlohmann::json count) {
                    return nlohmann::json(count.get<std::int64_t>() + 1);
                  },
                  "count",
                  [](const dsl::Key&, nlohmann::json older, nlohmann::json newer) {
                    return nlohmann::json(older.get<std::int64_t>() + newer.get<std::int64_t>());
                  });
            }
            return group_values(*input, context.node_name)
                .count(config.string("store"), context.node_name)
                .to_stream()
                .map_values([](std::int64_t count) { return nlohmann::json(count); },
                            context.node_name + "-json");
          }};
}

}  // namespace streamrun::operators::detail
