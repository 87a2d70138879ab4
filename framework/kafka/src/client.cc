#include "client.h"

#include <fmt/format.h>

#include <streamrun/base/log.h>

namespace streamrun::kafka {
namespace {

ClientContext* context_of(void* opaque) {
  return static_cast<ClientContext*>(opaque);
}

void log_callback(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  auto* context = context_of(rd_kafka_opaque(rk));
  if (context == nullptr)
    return;
  // A consumer whose position the broker no longer has (it deleted the records: retention)
  // moves on by auto.offset.reset and says so only here, at warning level: the records in
  // between are never read. Nothing else reports it, and nothing is worse to miss.
  if (level <= 4 && std::string_view(facility) == "OFFSET") {
    context->count_offset_reset();
    context->logger()->error(
        "librdkafka {}: {} (the records between the two offsets were deleted by the broker "
        "before they were read: they are lost to this consumer; a topic's retention must "
        "outlast the longest backlog)",
        facility, text);
    return;
  }
  // librdkafka reports every problem that matters through the error callback as well; its log
  // lines are detail for debugging, except the critical ones.
  const auto spd_level = level <= 2 ? spdlog::level::err : spdlog::level::debug;
  context->logger()->log(spd_level, "librdkafka {}: {}", facility, text);
}

void error_callback(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* context = context_of(opaque);
  if (rk != nullptr && err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal_reason[512];
    const auto fatal = rd_kafka_fatal_error(rk, fatal_reason, sizeof fatal_reason);
    context->logger()->error("fatal client error: {} ({})", fatal_reason, rd_kafka_err2name(fatal));
  }
  context->record_error(static_cast<rd_kafka_resp_err_t>(err), reason);
}

}  // namespace

ClientContext::ClientContext(std::string role)
    : role_(std::move(role)), logger_(log::get("kafka")) {}

Result<ConfHandle> ClientContext::make_conf(const ClientProperties& defaults,
                                            const ClientProperties& properties) {
  ConfHandle conf(rd_kafka_conf_new());
  char errstr[512];
  auto apply = [&](const ClientProperties& props) -> Result<void> {
    for (const auto& [key, value] : props) {
      if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        const std::string shown = is_secret_property(key) ? "(redacted)" : "'" + value + "'";
        return Error(errc::invalid_config,
                     fmt::format("{} property '{}' = {}: {}", role_, key, shown,
                                 is_secret_property(key) ? "rejected by librdkafka" : errstr));
      }
    }
    return {};
  };
  if (auto r = apply(defaults); !r)
    return r.error();
  if (auto r = apply(properties); !r)
    return r.error();

  char buf[1024];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(conf.get(), "bootstrap.servers", buf, &size) == RD_KAFKA_CONF_OK) {
    bootstrap_ = buf;
  }
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_log_cb(conf.get(), log_callback);
  rd_kafka_conf_set_error_cb(conf.get(), error_callback);
  return conf;
}

void ClientContext::record_error(rd_kafka_resp_err_t err, std::string_view reason) {
  const auto text = fmt::format("{} ({})", reason, rd_kafka_err2name(err));
  const auto now = std::chrono::steady_clock::now();
  bool log_it = false;
  {
    std::lock_guard lock(mutex_);
    last_error_ = text;
    // A broker that is down reports the same error many times a second: say it once per 10 s.
    if (text != last_logged_text_ || now - last_logged_ > std::chrono::seconds(10)) {
      last_logged_text_ = text;
      last_logged_ = now;
      log_it = true;
    }
  }
  if (log_it)
    logger_->warn("{} ({}): {}", role_, bootstrap_, text);
}

std::string ClientContext::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

Result<void> ClientContext::check_connection(rd_kafka_t* rk, std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, nullptr, &raw, static_cast<int>(timeout.count()));
  MetadataHandle metadata(raw);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    return {};
  auto last = last_error();
  return Error(errc::unreachable,
               fmt::format("cannot reach Kafka at bootstrap.servers={} within {} ms: {}",
                           bootstrap_.empty() ? "(not set)" : bootstrap_, timeout.count(),
                           last.empty() ? rd_kafka_err2str(err) : last));
}

Result<std::map<std::string, int>> ClientContext::list_topics(rd_kafka_t* rk,
                                                              std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  const auto err = rd_kafka_metadata(rk, 1, nullptr, &raw, static_cast<int>(timeout.count()));
  MetadataHandle metadata(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(err, fmt::format("list of topics from {}", bootstrap_));
  std::map<std::string, int> topics;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const auto& t = metadata->topics[i];
    if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR)
      topics.emplace(t.topic, t.partition_cnt);
  }
  return topics;
}

Result<int> ClientContext::partition_count(rd_kafka_t* rk, std::string_view topic,
                                           std::chrono::milliseconds timeout) {
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> handle(
      rd_kafka_topic_new(rk, std::string(topic).c_str(), nullptr), &rd_kafka_topic_destroy);
  const rd_kafka_metadata_t* raw = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, handle.get(), &raw, static_cast<int>(timeout.count()));
  MetadataHandle metadata(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(err, fmt::format("metadata for topic '{}' from {}", topic, bootstrap_));
  }
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const auto& t = metadata->topics[i];
    if (topic != t.topic)
      continue;
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return make_error(t.err, fmt::format("topic '{}'", topic));
    }
    return t.partition_cnt;
  }
  return Error(errc::unknown_topic, fmt::format("topic '{}' does not exist", topic));
}

}  // namespace streamrun::kafka
