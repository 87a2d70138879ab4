#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <streamrun/base/ids.h>

struct rd_kafka_message_s;

namespace streamrun::kafka {

// Kafka distinguishes an empty value from a missing one (null); so does streamrun.
struct Header {
  std::string key;
  std::optional<std::string> value;
  bool operator==(const Header&) const = default;
};

struct HeaderView {
  std::string_view key;
  std::optional<std::string_view> value;
};

enum class TimestampType { none, create_time, log_append_time };

// A consumed record. Owns librdkafka's message (no copy of key or value); views stay valid for
// the Message's lifetime. Must be destroyed before the Consumer that returned it.
class Message {
 public:
  Message() noexcept : message_(nullptr) {}
  explicit Message(rd_kafka_message_s* message) noexcept : message_(message) {}
  Message(Message&& other) noexcept : message_(std::exchange(other.message_, nullptr)) {}
  Message& operator=(Message&& other) noexcept;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message();

  // A default-constructed (or moved-from) message holds nothing.
  [[nodiscard]] bool is_null() const noexcept { return message_ == nullptr; }
  [[nodiscard]] std::string_view topic() const;
  [[nodiscard]] PartitionId partition() const;
  [[nodiscard]] Offset offset() const;
  [[nodiscard]] TopicPartition topic_partition() const {
    return {TopicName(std::string(topic())), partition()};
  }
  [[nodiscard]] std::optional<std::string_view> key() const;
  [[nodiscard]] std::optional<std::string_view> value() const;
  // Milliseconds since the epoch, and what they mean.
  [[nodiscard]] std::int64_t timestamp_ms() const;
  [[nodiscard]] TimestampType timestamp_type() const;
  [[nodiscard]] std::vector<Header> headers() const;
  // The value of the last header named `key`; nullopt when absent (or null).
  [[nodiscard]] std::optional<std::string_view> header(std::string_view key) const;

 private:
  rd_kafka_message_s* message_;
};

// A record to produce. Views only: the producer copies what it keeps before send() returns.
struct ProducerRecord {
  std::string_view topic;
  std::optional<std::int32_t> partition;  // nullopt: partitioned by key
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::span<const HeaderView> headers;
  std::optional<std::int64_t> timestamp_ms;  // nullopt: now
};

}  // namespace streamrun::kafka
