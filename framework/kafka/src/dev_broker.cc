#include <charconv>

#include <fmt/format.h>

#include <streamrun/base/log.h>
#include <streamrun/kafka/dev_broker.h>
#include <streamrun/kafka/errors.h>

#include "client.h"

namespace streamrun::kafka {

struct DevBroker::Impl : ClientContext {
  Impl() : ClientContext("development broker") {}
  // The cluster lives inside this client handle and must be destroyed first: declared after it.
  KafkaHandle rk;
  MockClusterHandle cluster;
  std::string bootstrap;
  int brokers = 0;
};

Result<TopicSpec> TopicSpec::parse(std::string_view text) {
  const auto colon = text.rfind(':');
  auto invalid = [&](std::string_view why) {
    return Error(
        errc::invalid_config,
        fmt::format("topic '{}': {} (expected NAME:PARTITIONS, e.g. orders:8)", text, why));
  };
  if (colon == std::string_view::npos)
    return invalid("no partition count");
  TopicSpec spec;
  spec.name = std::string(text.substr(0, colon));
  const auto count = text.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(count.data(), count.data() + count.size(), spec.partitions);
  if (ec != std::errc() || ptr != count.data() + count.size() || spec.partitions < 1 ||
      spec.partitions > 10000) {
    return invalid("partition count must be an integer in [1, 10000]");
  }
  if (spec.name.empty() || spec.name.size() > 249 ||
      spec.name.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
          std::string::npos) {
    return invalid("a topic name is 1-249 characters of [a-zA-Z0-9._-]");
  }
  return spec;
}

DevBroker::DevBroker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DevBroker::~DevBroker() = default;

Result<std::unique_ptr<DevBroker>> DevBroker::start(const DevBrokerOptions& options) {
  if (options.brokers < 1 || options.brokers > 16) {
    return Error(errc::invalid_config,
                 fmt::format("broker count must be in [1, 16], got {}", options.brokers));
  }
  auto impl = std::make_unique<Impl>();
  auto conf = impl->make_conf({}, {});
  if (!conf)
    return conf.error();
  char errstr[512];
  impl->rk.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof errstr));
  if (!impl->rk)
    return Error(errc::other, fmt::format("cannot start the development broker: {}", errstr));
  conf->release();
  impl->cluster.reset(rd_kafka_mock_cluster_new(impl->rk.get(), options.brokers));
  if (!impl->cluster) {
    return Error(errc::port_in_use,
                 "cannot start the development broker: its listeners could not be bound");
  }
  impl->bootstrap = rd_kafka_mock_cluster_bootstraps(impl->cluster.get());
  impl->brokers = options.brokers;
  auto broker = std::unique_ptr<DevBroker>(new DevBroker(std::move(impl)));
  for (const auto& topic : options.topics) {
    if (auto created = broker->create_topic(topic); !created)
      return created.error();
  }
  return broker;
}

const std::string& DevBroker::bootstrap_servers() const noexcept {
  return impl_->bootstrap;
}
int DevBroker::broker_count() const noexcept {
  return impl_->brokers;
}

Result<void> DevBroker::create_topic(const TopicSpec& topic) {
  const int replication =
      topic.replication_factor > 0 ? topic.replication_factor : std::min(3, impl_->brokers);
  const auto err = rd_kafka_mock_topic_create(impl_->cluster.get(), topic.name.c_str(),
                                              topic.partitions, replication);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(
        err, fmt::format("create topic '{}' with {} partitions", topic.name, topic.partitions));
  }
  return {};
}

namespace {
Result<void> broker_op(rd_kafka_resp_err_t err, int broker_id, std::string_view what) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    return {};
  return make_error(err, fmt::format("{} broker {}", what, broker_id));
}
}  // namespace

Result<void> DevBroker::set_broker_down(int broker_id) {
  return broker_op(rd_kafka_mock_broker_set_down(impl_->cluster.get(), broker_id), broker_id,
                   "take down");
}

Result<void> DevBroker::set_broker_up(int broker_id) {
  return broker_op(rd_kafka_mock_broker_set_up(impl_->cluster.get(), broker_id), broker_id,
                   "bring up");
}

Result<void> DevBroker::set_partition_leader(const std::string& topic, int partition,
                                             int broker_id) {
  return broker_op(
      rd_kafka_mock_partition_set_leader(impl_->cluster.get(), topic.c_str(), partition, broker_id),
      broker_id, "make leader of " + topic + "[" + std::to_string(partition) + "]");
}

void DevBroker::fail_next_requests(Request request, int count, RetriableError error) {
  // Kafka protocol API keys.
  const std::int16_t api_key = request == Request::produce ? 0 : request == Request::fetch ? 1 : 8;
  const std::vector<rd_kafka_resp_err_t> errors(static_cast<std::size_t>(count),
                                                error == RetriableError::not_leader
                                                    ? RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION
                                                    : RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  rd_kafka_mock_push_request_errors_array(impl_->cluster.get(), api_key, errors.size(),
                                          errors.data());
}

Result<void> DevBroker::set_group_coordinator(const std::string& group, int broker_id) {
  return broker_op(
      rd_kafka_mock_coordinator_set(impl_->cluster.get(), "group", group.c_str(), broker_id),
      broker_id, "make coordinator of group " + group);
}

Result<void> DevBroker::set_broker_rtt(int broker_id, std::chrono::milliseconds rtt) {
  return broker_op(
      rd_kafka_mock_broker_set_rtt(impl_->cluster.get(), broker_id, static_cast<int>(rtt.count())),
      broker_id, "set round-trip time of");
}

}  // namespace streamrun::kafka
