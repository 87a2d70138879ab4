#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace streamrun {

// A value with a name in the type system, so that a partition can't be passed as an offset.
template <typename T, typename Tag>
class NamedType {
 public:
  using value_type = T;
  constexpr NamedType() = default;
  constexpr explicit NamedType(T value) : value_(std::move(value)) {}
  [[nodiscard]] constexpr const T& value() const noexcept { return value_; }
  constexpr auto operator<=>(const NamedType&) const = default;

 private:
  T value_{};
};

using TopicName = NamedType<std::string, struct TopicNameTag>;
using PartitionId = NamedType<std::int32_t, struct PartitionIdTag>;
using Offset = NamedType<std::int64_t, struct OffsetTag>;

struct TopicPartition {
  TopicName topic;
  PartitionId partition;
  auto operator<=>(const TopicPartition&) const = default;
};

// "orders[3]" — the form every log line and error message uses.
std::string to_string(const TopicPartition& tp);

// Why `name` cannot be a Kafka topic name (empty when it can): Kafka allows 1 to 249 of
// [a-zA-Z0-9._-], and not "." or "..". Names the streamrun derives topics from (application.id,
// store and operator names) are held to the same rule, which also keeps them safe as paths.
[[nodiscard]] std::string invalid_topic_name(std::string_view name);

inline std::ostream& operator<<(std::ostream& os, const TopicPartition& tp) {
  return os << to_string(tp);
}

template <typename T, typename Tag>
std::ostream& operator<<(std::ostream& os, const NamedType<T, Tag>& v) {
  return os << v.value();
}

}  // namespace streamrun

template <>
struct std::hash<streamrun::TopicPartition> {
  std::size_t operator()(const streamrun::TopicPartition& tp) const noexcept {
    return std::hash<std::string>{}(tp.topic.value()) * 31 +
           static_cast<std::size_t>(tp.partition.value());
  }
};
