#include <streamrun/kafka/message.h>

#include "handles.h"

namespace streamrun::kafka {

Message& Message::operator=(Message&& other) noexcept {
  if (this != &other) {
    if (message_ != nullptr)
      rd_kafka_message_destroy(message_);
    message_ = std::exchange(other.message_, nullptr);
  }
  return *this;
}

Message::~Message() {
  if (message_ != nullptr)
    rd_kafka_message_destroy(message_);
}

std::string_view Message::topic() const {
  return rd_kafka_topic_name(message_->rkt);
}
PartitionId Message::partition() const {
  return PartitionId(message_->partition);
}
Offset Message::offset() const {
  return Offset(message_->offset);
}

std::optional<std::string_view> Message::key() const {
  if (message_->key == nullptr)
    return std::nullopt;
  return std::string_view(static_cast<const char*>(message_->key), message_->key_len);
}

std::optional<std::string_view> Message::value() const {
  if (message_->payload == nullptr)
    return std::nullopt;
  return std::string_view(static_cast<const char*>(message_->payload), message_->len);
}

std::int64_t Message::timestamp_ms() const {
  rd_kafka_timestamp_type_t type;
  return rd_kafka_message_timestamp(message_, &type);
}

TimestampType Message::timestamp_type() const {
  rd_kafka_timestamp_type_t type;
  rd_kafka_message_timestamp(message_, &type);
  switch (type) {
    case RD_KAFKA_TIMESTAMP_CREATE_TIME:
      return TimestampType::create_time;
    case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
      return TimestampType::log_append_time;
    default:
      return TimestampType::none;
  }
}

std::vector<Header> Message::headers() const {
  std::vector<Header> result;
  rd_kafka_headers_t* headers = nullptr;  // owned by the message
  if (rd_kafka_message_headers(message_, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return result;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    Header header{name, std::nullopt};
    if (value != nullptr)
      header.value.emplace(static_cast<const char*>(value), size);
    result.push_back(std::move(header));
  }
  return result;
}

std::optional<std::string_view> Message::header(std::string_view key) const {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(message_, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(headers, std::string(key).c_str(), &value, &size) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      value == nullptr) {
    return std::nullopt;
  }
  return std::string_view(static_cast<const char*>(value), size);
}

}  // namespace streamrun::kafka
