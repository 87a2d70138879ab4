#include <fmt/format.h>

#include <streamrun/base/errc.h>
#include <streamrun/kafka/errors.h>

#include "client.h"

namespace streamrun::kafka {
namespace {

std::string_view describe(errc value) noexcept {
  switch (value) {
    case errc::queue_full:
      return "producer queue full";
    case errc::timed_out:
      return "timed out";
    case errc::unreachable:
      return "no broker reachable";
    case errc::invalid_config:
      return "invalid client configuration";
    case errc::unknown_topic:
      return "unknown topic or partition";
    case errc::record_too_large:
      return "record too large";
    case errc::delivery_failed:
      return "delivery failed";
    case errc::commit_failed:
      return "offset commit failed";
    case errc::rebalance_in_progress:
      return "rebalance in progress";
    case errc::fatal:
      return "fatal client error";
    case errc::closed:
      return "client closed";
    case errc::port_in_use:
      return "port in use";
    case errc::other:
      return "kafka error";
  }
  return {};
}

}  // namespace

const std::error_category& kafka_category() noexcept {
  static const EnumCategory<errc> category("streamrun.kafka", describe);
  return category;
}

errc to_errc(rd_kafka_resp_err_t err) noexcept {
  switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return errc::queue_full;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return errc::timed_out;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
      return errc::unreachable;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
      return errc::invalid_config;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return errc::unknown_topic;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      return errc::record_too_large;
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
      return errc::rebalance_in_progress;
    case RD_KAFKA_RESP_ERR__FATAL:
      return errc::fatal;
    case RD_KAFKA_RESP_ERR__DESTROY:
      return errc::closed;
    default:
      return errc::other;
  }
}

Error make_error(rd_kafka_resp_err_t err, std::string_view context) {
  return Error(to_errc(err),
               fmt::format("{}: {} ({})", context, rd_kafka_err2str(err), rd_kafka_err2name(err)));
}

Error make_error(ErrorHandle error, std::string_view context) {
  const auto code = rd_kafka_error_code(error.get());
  return Error(rd_kafka_error_is_fatal(error.get()) ? errc::fatal : to_errc(code),
               fmt::format("{}: {} ({})", context, rd_kafka_error_string(error.get()),
                           rd_kafka_error_name(error.get())));
}

std::string error_location(const rd_kafka_message_t* message) {
  if (message->rkt == nullptr)
    return {};
  return fmt::format("{}[{}]: ", rd_kafka_topic_name(message->rkt), message->partition);
}

PartitionListHandle to_partition_list(const std::vector<TopicPartition>& partitions) {
  PartitionListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.value().c_str(), tp.partition.value());
  }
  return list;
}

PartitionListHandle to_partition_list(const std::vector<PartitionOffset>& offsets) {
  PartitionListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& po : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), po.topic_partition.topic.value().c_str(),
                                      po.topic_partition.partition.value())
        ->offset = po.offset.value();
  }
  return list;
}

std::vector<TopicPartition> to_topic_partitions(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> result;
  if (list == nullptr)
    return result;
  result.reserve(static_cast<std::size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    result.push_back({TopicName(list->elems[i].topic), PartitionId(list->elems[i].partition)});
  }
  return result;
}

}  // namespace streamrun::kafka
