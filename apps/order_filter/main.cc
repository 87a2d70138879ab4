// order-filter: a stateless streamrun pipeline.
//
// Reads order requests "user,sku,quantity" from `orders`, writes malformed ones unchanged to
// `orders-rejected` with the reason in a "reason" header (a null key or value stays null),
// normalises the rest to "sku:user:quantity" keyed by SKU, and writes them to `orders-valid`. Stop
// with Ctrl-C (a second one exits at once).
//
//   order-filter --bootstrap 127.0.0.1:9092

#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <streamrun/base/log.h>
#include <streamrun/core/stream_builder.h>
#include <streamrun/runtime/application.h>

namespace {

using streamrun::KeyValue;
using streamrun::Record;
using streamrun::Serdes;
using MaybeString = std::optional<std::string>;

struct Order {
  std::string user;
  std::string sku;
  int quantity = 0;
};

// The order in `text`, or why there is none.
struct Parsed {
  std::optional<Order> order;
  std::string reason;
};

Parsed parse(const MaybeString& value) {
  if (!value)
    return {std::nullopt, "no value (null)"};
  const std::string& text = *value;
  const auto first = text.find(',');
  const auto second = text.find(',', first == std::string::npos ? first : first + 1);
  if (first == std::string::npos || second == std::string::npos)
    return {std::nullopt, "expected user,sku,quantity"};
  Order order{text.substr(0, first), text.substr(first + 1, second - first - 1), 0};
  if (order.user.empty())
    return {std::nullopt, "empty user"};
  if (order.sku.empty())
    return {std::nullopt, "empty sku"};
  const auto quantity = text.substr(second + 1);
  auto [ptr, ec] =
      std::from_chars(quantity.data(), quantity.data() + quantity.size(), order.quantity);
  if (ec != std::errc() || ptr != quantity.data() + quantity.size() || order.quantity <= 0)
    return {std::nullopt, "quantity '" + quantity + "' is not a positive integer"};
  return {order, {}};
}

// Passes a rejected order on unchanged, with why it was rejected in the "reason" header.
class AddReason : public streamrun::Processor<MaybeString, MaybeString> {
 public:
  void process(Record<MaybeString, MaybeString> record) override {
    record.headers.push_back({"reason", parse(record.value).reason});
    context().forward(std::move(record));
  }
};

streamrun::Topology build_topology() {
  // Nullable: a record without a key or value is passed on as it came, not as "".
  const Serdes<MaybeString, MaybeString> nullable{streamrun::serdes::nullable_string(),
                                                  streamrun::serdes::nullable_string()};
  const Serdes<std::string, std::string> strings{streamrun::serdes::string(),
                                                 streamrun::serdes::string()};
  streamrun::StreamBuilder builder;
  auto routed =
      builder.stream("orders", nullable)
          .split("validate")
          .branch("valid", [](const MaybeString&,
                              const MaybeString& value) { return parse(value).order.has_value(); })
          .default_branch("rejected");
  routed.at("valid")
      .map(
          [](const MaybeString&, const MaybeString& value) {
            const auto order = *parse(value).order;
            return KeyValue<std::string, std::string>{
                order.sku, order.sku + ":" + order.user + ":" + std::to_string(order.quantity)};
          },
          "normalise")
      .to("orders-valid", strings);
  routed.at("rejected")
      .process<MaybeString, MaybeString>([] { return std::make_unique<AddReason>(); }, "reason")
      .to("orders-rejected", nullable);
  return builder.build();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Validate and normalise order requests (a stateless streamrun pipeline)."};
  std::string bootstrap = "127.0.0.1:9092";
  std::string application_id = "order-filter";
  std::vector<std::string> overrides;
  cli.add_option("--bootstrap", bootstrap, "bootstrap.servers")->capture_default_str();
  cli.add_option("--application-id", application_id, "application.id")->capture_default_str();
  cli.add_option("--set", overrides, "Any other property, KEY=VALUE (repeatable)");
  CLI11_PARSE(cli, argc, argv);
  streamrun::log::configure();
  auto logger = streamrun::log::get("order-filter");

  streamrun::config::Properties properties{{"application.id", application_id},
                                           {"bootstrap.servers", bootstrap}};
  auto extra = streamrun::config::Properties::from_assignments(overrides, "--set");
  if (!extra) {
    logger->error("{}", extra.error().message());
    return 2;
  }
  properties.merge(*extra);

  auto app = streamrun::runtime::Application::create(build_topology(), properties,
                                                     {.handle_signals = true});
  if (!app) {
    logger->error("{}", app.error().message());
    return 1;
  }
  if (auto ran = (*app)->run(); !ran) {
    logger->error("{}", ran.error().message());
    return 1;
  }
  return 0;
}
