#include <atomic>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <streamrun/base/log.h>
#include <streamrun/kafka/producer.h>

#include "client.h"

namespace streamrun::kafka {

struct Producer::Impl : ClientContext {
  Impl() : ClientContext("producer") {}
  ~Impl() {
    for (auto& [name, topic] : topics)
      rd_kafka_topic_destroy(topic);
    topics.clear();
  }

  // Task fibers on several threads send at once.
  rd_kafka_topic_t* topic_handle(std::string_view name) {
    std::lock_guard lock(topics_mutex);
    if (auto it = topics.find(name); it != topics.end())
      return it->second;
    auto* handle = rd_kafka_topic_new(rk.get(), std::string(name).c_str(), nullptr);
    if (handle != nullptr)
      topics.emplace(std::string(name), handle);
    return handle;
  }

  // Declared first so that it is destroyed last, after the topic handles.
  KafkaHandle rk;
  std::mutex topics_mutex;
  std::map<std::string, rd_kafka_topic_t*, std::less<>> topics;
  std::atomic<std::int64_t> in_flight{0};
  std::size_t max_message_bytes = 1000000;  // message.max.bytes
  // Set while the producer is destroyed: callbacks are released without being invoked, since
  // what they capture may already be gone.
  bool destroying = false;
};

namespace {

// A DeliveryCallback as a Delivery: owned by the record, deleted after its report.
class CallbackDelivery final : public Delivery {
 public:
  CallbackDelivery(DeliveryCallback callback, Producer::Impl& impl)
      : callback_(std::move(callback)), impl_(impl) {}
  void delivered(const DeliveryReport& report) noexcept override {
    try {
      callback_(report);
    } catch (const std::exception& e) {
      // An exception must not unwind through librdkafka's C frames.
      impl_.logger()->error("delivery callback for {}[{}] threw: {}", report.topic,
                            report.partition.value(), e.what());
    }
    delete this;
  }
  void released() noexcept override { delete this; }

 private:
  ~CallbackDelivery() = default;
  DeliveryCallback callback_;
  Producer::Impl& impl_;
};

void delivery_callback(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message, void* opaque) {
  auto* impl = static_cast<Producer::Impl*>(static_cast<ClientContext*>(opaque));
  impl->in_flight.fetch_sub(1, std::memory_order_relaxed);
  auto* delivery = static_cast<Delivery*>(message->_private);
  if (delivery == nullptr)
    return;
  if (impl->destroying) {
    delivery->released();
    return;
  }
  DeliveryReport report{rd_kafka_topic_name(message->rkt), PartitionId(message->partition),
                        Offset(message->offset), std::nullopt};
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    auto error = make_error(
        message->err, fmt::format("delivery to {}[{}]", report.topic, report.partition.value()));
    report.error = Error(message->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                             ? make_error_code(errc::record_too_large)
                             : make_error_code(errc::delivery_failed),
                         error.message());
  }
  delivery->delivered(report);
}

const ClientProperties& producer_defaults() {
  static const ClientProperties defaults = {
      // No duplicates or reordering from client retries.
      {"enable.idempotence", "true"},
      // Same key -> same partition as the Java client, so topics are co-partitioned with
      // producers written in other languages.
      {"partitioner", "murmur2_random"},
      {"linger.ms", "5"},
      {"log.connection.close", "false"},
  };
  return defaults;
}

}  // namespace

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Producer::~Producer() {
  if (const auto pending = in_flight(); pending > 0) {
    impl_->logger()->warn(
        "producer for {} destroyed with {} records unacknowledged; they may or "
        "may not have been written",
        impl_->bootstrap_servers(), pending);
  }
  impl_->destroying = true;
  rd_kafka_purge(impl_->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  // Serves the purge reports so that every callback is released.
  static_cast<void>(rd_kafka_flush(impl_->rk.get(), 1000));
}

Result<void> Producer::validate(const ClientProperties& properties) {
  Impl scratch;
  if (auto conf = scratch.make_conf(producer_defaults(), properties); !conf)
    return conf.error();
  return {};
}

Result<std::unique_ptr<Producer>> Producer::create(const ClientProperties& properties) {
  auto impl = std::make_unique<Impl>();
  auto conf = impl->make_conf(producer_defaults(), properties);
  if (!conf)
    return conf.error();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), delivery_callback);
  char errstr[512];
  impl->rk.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof errstr));
  if (!impl->rk) {
    return Error(errc::invalid_config, fmt::format("cannot create producer: {}", errstr));
  }
  conf->release();  // owned by rk now
  char value[64];
  std::size_t size = sizeof value;
  if (rd_kafka_conf_get(rd_kafka_conf(impl->rk.get()), "message.max.bytes", value, &size) ==
      RD_KAFKA_CONF_OK) {
    impl->max_message_bytes = std::stoull(value);
  }
  return std::unique_ptr<Producer>(new Producer(std::move(impl)));
}

Result<void> Producer::send(const ProducerRecord& record, DeliveryCallback on_delivery) {
  if (!on_delivery)
    return send(record, static_cast<Delivery*>(nullptr));
  auto* delivery = new CallbackDelivery(std::move(on_delivery), *impl_);
  auto sent = send(record, static_cast<Delivery*>(delivery));
  if (!sent)
    delivery->released();  // never given to librdkafka
  return sent;
}

Result<void> Producer::send(const ProducerRecord& record, Delivery* delivery) {
  auto* topic = impl_->topic_handle(record.topic);
  if (topic == nullptr) {
    return make_error(rd_kafka_last_error(), fmt::format("topic '{}'", record.topic));
  }

  std::array<rd_kafka_vu_t, 8> vus{};
  std::size_t n = 0;
  vus[n].vtype = RD_KAFKA_VTYPE_RKT;
  vus[n++].u.rkt = topic;
  vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
  vus[n++].u.i32 = record.partition.value_or(RD_KAFKA_PARTITION_UA);
  vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
  if (record.key) {
    vus[n].vtype = RD_KAFKA_VTYPE_KEY;
    vus[n].u.mem.ptr = const_cast<char*>(record.key->data());
    vus[n++].u.mem.size = record.key->size();
  }
  if (record.value) {
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = const_cast<char*>(record.value->data());
    vus[n++].u.mem.size = record.value->size();
  }
  if (record.timestamp_ms) {
    vus[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
    vus[n++].u.i64 = *record.timestamp_ms;
  }
  rd_kafka_headers_t* headers = nullptr;
  if (!record.headers.empty()) {
    headers = rd_kafka_headers_new(record.headers.size());
    for (const auto& header : record.headers) {
      rd_kafka_header_add(headers, header.key.data(), static_cast<ssize_t>(header.key.size()),
                          header.value ? header.value->data() : nullptr,
                          header.value ? static_cast<ssize_t>(header.value->size()) : 0);
    }
    vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
    vus[n++].u.headers = headers;
  }
  vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vus[n++].u.ptr = delivery;

  impl_->in_flight.fetch_add(1, std::memory_order_relaxed);
  ErrorHandle error(rd_kafka_produceva(impl_->rk.get(), vus.data(), n));
  if (error) {
    impl_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (headers != nullptr)
      rd_kafka_headers_destroy(headers);  // not taken on failure
    return make_error(std::move(error), fmt::format("produce to topic '{}'", record.topic));
  }
  return {};
}

namespace {

// Bytes of a zig-zag varint, as the record format (v2) writes lengths.
std::size_t varint_size(std::int64_t value) {
  auto zigzag = (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
  std::size_t bytes = 1;
  while (zigzag >= 0x80) {
    zigzag >>= 7;
    ++bytes;
  }
  return bytes;
}

}  // namespace

Result<void> Producer::check_size(const ProducerRecord& record) const {
  // A record's largest possible overhead in a v2 batch (librdkafka's
  // RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: length, attributes, timestamp and offset deltas, key and
  // value lengths, header count), plus its headers as serialized.
  constexpr std::size_t kMaxOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5;
  std::size_t size = kMaxOverhead + (record.key ? record.key->size() : 0) +
                     (record.value ? record.value->size() : 0);
  for (const auto& header : record.headers) {
    size += varint_size(static_cast<std::int64_t>(header.key.size())) + header.key.size();
    size += header.value ? varint_size(static_cast<std::int64_t>(header.value->size())) +
                               header.value->size()
                         : varint_size(-1);
  }
  if (size <= impl_->max_message_bytes)
    return {};
  return Error(errc::record_too_large,
               fmt::format("a record of {} bytes for topic '{}' is larger than the producer's "
                           "message.max.bytes ({}); raise producer.message.max.bytes (and the "
                           "topic's max.message.bytes) or make the record smaller",
                           size, record.topic, impl_->max_message_bytes));
}

int Producer::poll(std::chrono::milliseconds timeout) {
  return rd_kafka_poll(impl_->rk.get(), static_cast<int>(timeout.count()));
}

std::int64_t Producer::in_flight() const noexcept {
  return impl_->in_flight.load(std::memory_order_relaxed);
}

Result<void> Producer::flush(std::chrono::milliseconds timeout) {
  const auto err = rd_kafka_flush(impl_->rk.get(), static_cast<int>(timeout.count()));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    return {};
  return Error(errc::timed_out,
               fmt::format("{} records still unacknowledged by {} after {} ms", in_flight(),
                           impl_->bootstrap_servers(), timeout.count()));
}

Result<void> Producer::check_connection(std::chrono::milliseconds timeout) {
  return impl_->check_connection(impl_->rk.get(), timeout);
}

Result<int> Producer::partition_count(std::string_view topic, std::chrono::milliseconds timeout) {
  return impl_->partition_count(impl_->rk.get(), topic, timeout);
}

Result<std::map<std::string, int>> Producer::list_topics(std::chrono::milliseconds timeout) {
  return impl_->list_topics(impl_->rk.get(), timeout);
}

Result<void> Producer::create_topic(const NewTopic& spec, std::chrono::milliseconds timeout) {
  auto created = create_topics({spec}, timeout);
  if (!created)
    return created.error();
  if (auto it = created->find(spec.name); it != created->end() && it->second)
    return *it->second;
  return {};
}

namespace {

using AdminOptionsHandle =
    std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)>;
using EventHandle = std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)>;

AdminOptionsHandle admin_options(rd_kafka_t* rk, rd_kafka_admin_op_t op,
                                 std::chrono::milliseconds timeout) {
  AdminOptionsHandle options(rd_kafka_AdminOptions_new(rk, op), &rd_kafka_AdminOptions_destroy);
  char errstr[512];
  static_cast<void>(rd_kafka_AdminOptions_set_request_timeout(
      options.get(), static_cast<int>(timeout.count()), errstr, sizeof errstr));
  return options;
}

// Waits for an admin request's answer: within the request timeout, plus a little.
Result<EventHandle> await_admin_result(rd_kafka_queue_t* queue, std::chrono::milliseconds timeout,
                                       const std::string& what) {
  EventHandle event(rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 1000),
                    &rd_kafka_event_destroy);
  if (!event)
    return Error(errc::timed_out, what + ": no answer");
  if (auto err = rd_kafka_event_error(event.get()); err)
    return make_error(err, what);
  return event;
}

}  // namespace

Result<std::map<std::string, std::optional<Error>>> Producer::create_topics(
    const std::vector<NewTopic>& specs, std::chrono::milliseconds timeout) {
  std::map<std::string, std::optional<Error>> outcome;
  if (specs.empty())
    return outcome;
  char errstr[512];
  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, decltype(&rd_kafka_NewTopic_destroy)>> topics;
  std::vector<rd_kafka_NewTopic_t*> raw;
  std::vector<std::string> names;
  for (const auto& spec : specs) {
    topics.emplace_back(rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions,
                                              spec.replication_factor, errstr, sizeof errstr),
                        &rd_kafka_NewTopic_destroy);
    if (!topics.back())
      return Error(errc::invalid_config, fmt::format("topic '{}': {}", spec.name, errstr));
    for (const auto& [key, value] : spec.configs) {
      if (auto err = rd_kafka_NewTopic_set_config(topics.back().get(), key.c_str(), value.c_str());
          err) {
        return make_error(err, fmt::format("topic '{}' config '{}'", spec.name, key));
      }
    }
    raw.push_back(topics.back().get());
    names.push_back(spec.name);
  }
  QueueHandle queue(rd_kafka_queue_new(impl_->rk.get()));
  auto options = admin_options(impl_->rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
  rd_kafka_CreateTopics(impl_->rk.get(), raw.data(), raw.size(), options.get(), queue.get());
  auto event = await_admin_result(queue.get(), timeout,
                                  fmt::format("create topics {}", fmt::join(names, ", ")));
  if (!event)
    return event.error();
  const auto* result = rd_kafka_event_CreateTopics_result(event->get());
  std::size_t count = 0;
  const auto* const* results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::string name = rd_kafka_topic_result_name(results[i]);
    const auto err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      outcome[name] = std::nullopt;
    } else {
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      outcome[name] = make_error(err, fmt::format("create topic '{}'{}", name,
                                                  message ? std::string(": ") + message : ""));
    }
  }
  return outcome;
}

Result<std::map<std::string, std::map<std::string, std::string>>> Producer::describe_topic_configs(
    const std::vector<std::string>& topics, std::chrono::milliseconds timeout) {
  std::map<std::string, std::map<std::string, std::string>> described;
  if (topics.empty())
    return described;
  using ResourceHandle =
      std::unique_ptr<rd_kafka_ConfigResource_t, decltype(&rd_kafka_ConfigResource_destroy)>;
  std::vector<ResourceHandle> resources;
  std::vector<rd_kafka_ConfigResource_t*> raw;
  for (const auto& topic : topics) {
    resources.emplace_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()),
                           &rd_kafka_ConfigResource_destroy);
    raw.push_back(resources.back().get());
  }
  QueueHandle queue(rd_kafka_queue_new(impl_->rk.get()));
  auto options = admin_options(impl_->rk.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout);
  rd_kafka_DescribeConfigs(impl_->rk.get(), raw.data(), raw.size(), options.get(), queue.get());
  auto event =
      await_admin_result(queue.get(), timeout,
                         fmt::format("describe the configuration of {}", fmt::join(topics, ", ")));
  if (!event)
    return event.error();
  const auto* result = rd_kafka_event_DescribeConfigs_result(event->get());
  std::size_t count = 0;
  const auto* const* results = rd_kafka_DescribeConfigs_result_resources(result, &count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::string name = rd_kafka_ConfigResource_name(results[i]);
    if (auto err = rd_kafka_ConfigResource_error(results[i]); err) {
      const char* message = rd_kafka_ConfigResource_error_string(results[i]);
      return make_error(err, fmt::format("describe the configuration of topic '{}'{}", name,
                                         message ? std::string(": ") + message : ""));
    }
    auto& entries = described[name];
    std::size_t entry_count = 0;
    const auto* const* configs = rd_kafka_ConfigResource_configs(results[i], &entry_count);
    for (std::size_t e = 0; e < entry_count; ++e) {
      const char* value = rd_kafka_ConfigEntry_value(configs[e]);
      entries[rd_kafka_ConfigEntry_name(configs[e])] = value != nullptr ? value : "";
    }
  }
  return described;
}

}  // namespace streamrun::kafka
