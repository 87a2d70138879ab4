#include <fmt/format.h>

#include <streamrun/kafka/log_reader.h>

#include "client.h"

namespace streamrun::kafka {

struct LogReader::Impl : ClientContext {
  Impl() : ClientContext("changelog reader") {}
  KafkaHandle rk;
  QueueHandle queue;
};

LogReader::LogReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LogReader::~LogReader() {
  if (impl_->rk)
    static_cast<void>(rd_kafka_assign(impl_->rk.get(), nullptr));
  impl_->queue.reset();
}

Result<std::unique_ptr<LogReader>> LogReader::create(ClientProperties properties) {
  // Not a group member: only assign() is used, nothing is committed.
  for (const char* key :
       {"group.id", "group.instance.id", "enable.auto.commit", "enable.auto.offset.store",
        "partition.assignment.strategy", "session.timeout.ms", "max.poll.interval.ms"}) {
    properties.erase(key);
  }
  static const ClientProperties defaults = {
      // librdkafka's assign() wants a group id; it never joins the group nor commits to it.
      {"group.id", "streamrun.log-reader"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      {"log.connection.close", "false"},
      // An offset the partition no longer holds is an error to report, not a silent jump.
      {"auto.offset.reset", "error"},
      // Restores read whole partitions: fetch in large chunks.
      {"max.partition.fetch.bytes", "16777216"},
      {"fetch.max.bytes", "67108864"},
      {"queued.max.messages.kbytes", "262144"},
      // A restore waits for nothing but the records already there.
      {"fetch.wait.max.ms", "10"},
      {"fetch.error.backoff.ms", "10"},
  };
  auto impl = std::make_unique<Impl>();
  auto conf = impl->make_conf(defaults, properties);
  if (!conf)
    return conf.error();
  char errstr[512];
  impl->rk.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof errstr));
  if (!impl->rk)
    return Error(errc::invalid_config, fmt::format("cannot create changelog reader: {}", errstr));
  conf->release();
  rd_kafka_poll_set_consumer(impl->rk.get());
  impl->queue.reset(rd_kafka_queue_get_consumer(impl->rk.get()));
  return std::unique_ptr<LogReader>(new LogReader(std::move(impl)));
}

Result<Watermarks> LogReader::watermarks(const TopicPartition& partition,
                                         std::chrono::milliseconds timeout) {
  Watermarks marks;
  const auto err = rd_kafka_query_watermark_offsets(
      impl_->rk.get(), partition.topic.value().c_str(), partition.partition.value(), &marks.low,
      &marks.high, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(err, fmt::format("offsets of {} from {}", to_string(partition),
                                       impl_->bootstrap_servers()));
  }
  return marks;
}

Result<void> LogReader::assign(const TopicPartition& partition, std::int64_t offset) {
  PartitionListHandle list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), partition.topic.value().c_str(),
                                    partition.partition.value())
      ->offset = offset;
  if (auto err = rd_kafka_assign(impl_->rk.get(), list.get()); err)
    return make_error(err, fmt::format("read {} from offset {}", to_string(partition), offset));
  return {};
}

Result<std::size_t> LogReader::read(std::vector<Message>& out, std::size_t max_records,
                                    std::chrono::milliseconds timeout) {
  const std::size_t start = out.size();
  int wait_ms = static_cast<int>(timeout.count());
  while (out.size() - start < max_records) {
    rd_kafka_message_t* raw = rd_kafka_consumer_poll(impl_->rk.get(), wait_ms);
    wait_ms = 0;
    if (raw == nullptr)
      break;
    Message message(raw);
    if (raw->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out.push_back(std::move(message));
      continue;
    }
    if (raw->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
      continue;
    const std::string where = error_location(raw);
    // A partition that no longer holds the offset asked for, or that does not exist, cannot be
    // read past: the caller must know. Anything else is transient and retried by the client.
    if (raw->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
        raw->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
        raw->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        raw->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || raw->err == RD_KAFKA_RESP_ERR__FATAL) {
      return make_error(raw->err, where + rd_kafka_message_errstr(raw));
    }
    impl_->record_error(raw->err, where + rd_kafka_message_errstr(raw));
  }
  return out.size() - start;
}

}  // namespace streamrun::kafka
