#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <streamrun/base/log.h>
#include <streamrun/kafka/consumer.h>

#include "client.h"

namespace streamrun::kafka {

struct Consumer::Impl : ClientContext {
  Impl() : ClientContext("consumer") {}

  KafkaHandle rk;
  QueueHandle consumer_queue;  // where async commit results are delivered (served by poll)
  RebalanceListener* listener = nullptr;
  bool closed = false;
  // The batch poll() is filling, from `batch_start` on: records of partitions revoked while it
  // is being filled are taken out before the listener hears of the revocation, so the caller
  // never sees a record of a partition it no longer owns.
  std::vector<Message>* batch = nullptr;
  std::size_t batch_start = 0;
  // With partition queues: each assigned partition's own fetch queue, not forwarded to the
  // consumer queue (use_partition_queues()).
  bool partition_queues = false;
  std::map<TopicPartition, QueueHandle> queues;
  std::string commit_metadata;  // set_commit_metadata()

  // An offset list to commit, carrying commit_metadata.
  PartitionListHandle commit_list(const std::vector<PartitionOffset>& offsets) const {
    auto list = to_partition_list(offsets);
    if (commit_metadata.empty())
      return list;
    for (int i = 0; i < list->cnt; ++i) {
      // The list frees it with free().
      auto* copy = static_cast<char*>(std::malloc(commit_metadata.size()));
      std::memcpy(copy, commit_metadata.data(), commit_metadata.size());
      list->elems[i].metadata = copy;
      list->elems[i].metadata_size = commit_metadata.size();
    }
    return list;
  }

  void detach(rd_kafka_t* client, const std::vector<TopicPartition>& tps) {
    for (const auto& tp : tps) {
      QueueHandle queue(
          rd_kafka_queue_get_partition(client, tp.topic.value().c_str(), tp.partition.value()));
      if (!queue)
        continue;
      rd_kafka_queue_forward(queue.get(), nullptr);
      queues.insert_or_assign(tp, std::move(queue));
    }
  }
};

using CommitDone = std::function<void(Result<void>)>;

namespace {

Consumer::Impl* impl_of(void* opaque) {
  return static_cast<Consumer::Impl*>(static_cast<ClientContext*>(opaque));
}

// The first per-partition error in a commit result, if any.
Result<void> commit_result(rd_kafka_resp_err_t err,
                           const rd_kafka_topic_partition_list_t* offsets) {
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
    return {};  // nothing to commit
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    auto e = make_error(
        err, fmt::format("offset commit of {}", fmt::join(to_topic_partitions(offsets), ", ")));
    return Error(errc::commit_failed, e.message());
  }
  for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
    const auto& p = offsets->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Error(errc::commit_failed,
                   fmt::format("offset commit of {}[{}] at {}: {} ({})", p.topic, p.partition,
                               p.offset, rd_kafka_err2str(p.err), rd_kafka_err2name(p.err)));
    }
  }
  return {};
}

void commit_callback(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  std::unique_ptr<CommitDone> done(static_cast<CommitDone*>(opaque));
  if (done && *done)
    (*done)(commit_result(err, offsets));
}

// Applies an assignment change the way the group's rebalance protocol wants it.
void change_assignment(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* partitions, bool add,
                       bool cooperative, spdlog::logger& logger) {
  std::optional<Error> failure;
  if (cooperative) {
    ErrorHandle error(add ? rd_kafka_incremental_assign(rk, partitions)
                          : rd_kafka_incremental_unassign(rk, partitions));
    if (error)
      failure = make_error(std::move(error), add ? "incremental assign" : "incremental unassign");
  } else if (auto err = rd_kafka_assign(rk, add ? partitions : nullptr); err) {
    failure = make_error(err, add ? "assign" : "unassign");
  }
  if (failure)
    logger.error("{}: {} of {}", rd_kafka_name(rk), failure->message(),
                 fmt::join(to_topic_partitions(partitions), ", "));
}

// Listener exceptions must not unwind through librdkafka's C frames.
template <typename Call>
void call_listener(Call&& call, std::string_view change, const std::vector<TopicPartition>& tps,
                   spdlog::logger& logger) {
  try {
    call();
  } catch (const std::exception& e) {
    logger.error("rebalance listener failed on {} of {}: {}", change, fmt::join(tps, ", "),
                 e.what());
  }
}

void rebalance_callback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* impl = impl_of(opaque);
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  const auto tps = to_topic_partitions(partitions);
  auto& logger = *impl->logger();

  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    StartOffsets start_at;
    if (impl->listener != nullptr) {
      call_listener([&] { impl->listener->on_assigned(tps, start_at); }, "assignment", tps, logger);
    }
    for (int i = 0; i < partitions->cnt; ++i) {
      auto& p = partitions->elems[i];
      auto it = start_at.find({TopicName(p.topic), PartitionId(p.partition)});
      if (it != start_at.end())
        p.offset = it->second.value();
    }
    if (tps.empty()) {
      // A cooperative rebalance that moves nothing here: nothing to say at info level.
      logger.debug("{}: rebalance with no new partitions for this member", rd_kafka_name(rk));
    } else {
      logger.info("{}: assigned {} ({})", rd_kafka_name(rk), fmt::join(tps, ", "),
                  cooperative ? "incremental" : "eager");
    }
    change_assignment(rk, partitions, true, cooperative, logger);
    if (impl->partition_queues)
      impl->detach(rk, tps);
    return;
  }

  const bool lost = rd_kafka_assignment_lost(rk) != 0;
  if (impl->batch != nullptr) {
    const std::set<TopicPartition> revoked(tps.begin(), tps.end());
    auto& batch = *impl->batch;
    batch.erase(
        std::remove_if(batch.begin() + static_cast<std::ptrdiff_t>(impl->batch_start), batch.end(),
                       [&](const Message& m) { return revoked.contains(m.topic_partition()); }),
        batch.end());
  }
  if (impl->listener != nullptr) {
    call_listener([&] { lost ? impl->listener->on_lost(tps) : impl->listener->on_revoked(tps); },
                  "revocation", tps, logger);
  }
  logger.info("{}: {} {}", rd_kafka_name(rk), lost ? "lost" : "revoked", fmt::join(tps, ", "));
  for (const auto& tp : tps)
    impl->queues.erase(tp);
  change_assignment(rk, partitions, false, cooperative, logger);
}

const ClientProperties& consumer_defaults() {
  static const ClientProperties defaults = {
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"log.connection.close", "false"},
  };
  return defaults;
}

}  // namespace

Consumer::Consumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Consumer::~Consumer() {
  if (auto result = close(); !result)
    impl_->logger()->warn("{}", result.error().message());
  impl_->consumer_queue.reset();
}

Result<void> Consumer::validate(const ClientProperties& properties) {
  for (const char* key : {"enable.auto.commit", "enable.auto.offset.store"}) {
    if (auto it = properties.find(key); it != properties.end() && it->second != "false") {
      return Error(errc::invalid_config,
                   fmt::format("consumer property '{}' = '{}': streamrun commits offsets itself, "
                               "only after the records' results are durable; leave it unset",
                               key, it->second));
    }
  }
  if (!properties.contains("group.id")) {
    return Error(errc::invalid_config,
                 "consumer property 'group.id' is required (the application id names the group)");
  }
  Impl scratch;
  if (auto conf = scratch.make_conf(consumer_defaults(), properties); !conf)
    return conf.error();
  return {};
}

Result<std::unique_ptr<Consumer>> Consumer::create(const ClientProperties& properties,
                                                   RebalanceListener* listener) {
  if (auto valid = validate(properties); !valid)
    return valid.error();
  auto impl = std::make_unique<Impl>();
  impl->listener = listener;
  auto conf = impl->make_conf(consumer_defaults(), properties);
  if (!conf)
    return conf.error();
  rd_kafka_conf_set_rebalance_cb(conf->get(), rebalance_callback);
  char errstr[512];
  impl->rk.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof errstr));
  if (!impl->rk) {
    return Error(errc::invalid_config, fmt::format("cannot create consumer: {}", errstr));
  }
  conf->release();  // owned by rk now
  // One queue for everything (fetched records, rebalances, errors, commit results), served by
  // rd_kafka_consumer_poll.
  rd_kafka_poll_set_consumer(impl->rk.get());
  impl->consumer_queue.reset(rd_kafka_queue_get_consumer(impl->rk.get()));
  return std::unique_ptr<Consumer>(new Consumer(std::move(impl)));
}

Result<void> Consumer::subscribe(const std::vector<std::string>& topics) {
  PartitionListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& topic : topics) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (auto err = rd_kafka_subscribe(impl_->rk.get(), list.get()); err) {
    return make_error(err, fmt::format("subscribe to {}", fmt::join(topics, ", ")));
  }
  return {};
}

Result<std::size_t> Consumer::poll(std::vector<Message>& out, std::size_t max_records,
                                   std::chrono::milliseconds timeout) {
  if (impl_->closed)
    return Error(errc::closed, "poll on a closed consumer");
  const std::size_t start = out.size();
  impl_->batch = &out;
  impl_->batch_start = start;
  struct BatchReset {
    Impl& impl;
    ~BatchReset() { impl.batch = nullptr; }
  } reset{*impl_};
  int wait_ms = static_cast<int>(timeout.count());
  while (out.size() - start < max_records) {
    rd_kafka_message_t* raw = rd_kafka_consumer_poll(impl_->rk.get(), wait_ms);
    wait_ms = 0;
    if (raw == nullptr)
      break;
    if (raw->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out.emplace_back(raw);
      continue;
    }
    Message error_message(raw);  // owns it from here
    if (raw->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
      continue;
    if (raw->err == RD_KAFKA_RESP_ERR__FATAL) {
      char reason[512];
      const auto fatal = rd_kafka_fatal_error(impl_->rk.get(), reason, sizeof reason);
      return Error(errc::fatal,
                   fmt::format("consumer of {} cannot continue: {} ({})",
                               impl_->bootstrap_servers(), reason, rd_kafka_err2name(fatal)));
    }
    const std::string where = error_location(raw);
    impl_->record_error(raw->err, where + rd_kafka_message_errstr(raw));
  }
  return out.size() - start;
}

void Consumer::use_partition_queues() {
  impl_->partition_queues = true;
}

Result<std::size_t> Consumer::fetch(const TopicPartition& partition, std::vector<Message>& out,
                                    std::size_t max_records) {
  auto it = impl_->queues.find(partition);
  if (it == impl_->queues.end() || max_records == 0)
    return std::size_t{0};
  constexpr std::size_t kChunk = 256;
  rd_kafka_message_t* raw[kChunk];
  const std::size_t start = out.size();
  while (out.size() - start < max_records) {
    const auto want = std::min(kChunk, max_records - (out.size() - start));
    const auto n = rd_kafka_consume_batch_queue(it->second.get(), 0, raw, want);
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n; ++i) {
      if (raw[i]->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        out.emplace_back(raw[i]);
        continue;
      }
      Message error_message(raw[i]);  // owns it from here
      if (raw[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        impl_->record_error(raw[i]->err, error_location(raw[i]) + rd_kafka_message_errstr(raw[i]));
    }
    if (static_cast<std::size_t>(n) < want)
      break;
  }
  return out.size() - start;
}

Result<void> Consumer::commit(const std::vector<PartitionOffset>& offsets) {
  if (offsets.empty())
    return {};
  auto list = impl_->commit_list(offsets);
  const auto err = rd_kafka_commit(impl_->rk.get(), list.get(), 0);
  return commit_result(err, list.get());
}

Result<void> Consumer::commit_async(const std::vector<PartitionOffset>& offsets, CommitDone done) {
  if (offsets.empty()) {
    if (done)
      done({});
    return {};
  }
  auto list = impl_->commit_list(offsets);
  auto* opaque = new CommitDone(std::move(done));
  const auto err = rd_kafka_commit_queue(impl_->rk.get(), list.get(), impl_->consumer_queue.get(),
                                         commit_callback, opaque);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    delete opaque;
    return make_error(err, "offset commit");
  }
  return {};
}

namespace {

// rd_kafka_committed() for `partitions`; `visit` sees each partition the group committed.
Result<void> fetch_committed(rd_kafka_t* rk, const std::vector<TopicPartition>& partitions,
                             std::chrono::milliseconds timeout,
                             const std::function<void(const rd_kafka_topic_partition_t&)>& visit) {
  auto list = to_partition_list(partitions);
  const auto err = rd_kafka_committed(rk, list.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(err, "fetch committed offsets");
  for (int i = 0; i < list->cnt; ++i) {
    const auto& p = list->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return make_error(p.err, fmt::format("committed offset of {}[{}]", p.topic, p.partition));
    }
    if (p.offset >= 0)
      visit(p);
  }
  return {};
}

TopicPartition topic_partition_of(const rd_kafka_topic_partition_t& p) {
  return {TopicName(p.topic), PartitionId(p.partition)};
}

}  // namespace

Result<std::vector<PartitionOffset>> Consumer::committed(
    const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) {
  std::vector<PartitionOffset> result;
  auto fetched = fetch_committed(impl_->rk.get(), partitions, timeout, [&](const auto& p) {
    result.push_back({topic_partition_of(p), Offset(p.offset)});
  });
  if (!fetched)
    return fetched.error();
  return result;
}

void Consumer::set_commit_metadata(std::string metadata) {
  impl_->commit_metadata = std::move(metadata);
}

Result<std::map<TopicPartition, std::string>> Consumer::committed_metadata(
    const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) const {
  std::map<TopicPartition, std::string> result;
  auto fetched = fetch_committed(impl_->rk.get(), partitions, timeout, [&](const auto& p) {
    result[topic_partition_of(p)] =
        p.metadata ? std::string(static_cast<const char*>(p.metadata), p.metadata_size) : "";
  });
  if (!fetched)
    return fetched.error();
  return result;
}

namespace {
Result<void> partition_op(rd_kafka_t* rk, const std::vector<TopicPartition>& partitions,
                          bool pause) {
  auto list = to_partition_list(partitions);
  auto err = pause ? rd_kafka_pause_partitions(rk, list.get())
                   : rd_kafka_resume_partitions(rk, list.get());
  const char* what = pause ? "pause" : "resume";
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(err, fmt::format("{} {}", what, fmt::join(partitions, ", ")));
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return make_error(list->elems[i].err, fmt::format("{} {}[{}]", what, list->elems[i].topic,
                                                        list->elems[i].partition));
    }
  }
  return {};
}
}  // namespace

Result<void> Consumer::pause(const std::vector<TopicPartition>& partitions) {
  return partition_op(impl_->rk.get(), partitions, true);
}

Result<void> Consumer::resume(const std::vector<TopicPartition>& partitions) {
  return partition_op(impl_->rk.get(), partitions, false);
}

Result<void> Consumer::seek(const PartitionOffset& position) {
  if (impl_->batch != nullptr) {
    // Records of this partition already in the batch being filled come from the old position.
    auto& batch = *impl_->batch;
    batch.erase(
        std::remove_if(
            batch.begin() + static_cast<std::ptrdiff_t>(impl_->batch_start), batch.end(),
            [&](const Message& m) { return m.topic_partition() == position.topic_partition; }),
        batch.end());
  }
  auto list = to_partition_list(std::vector<PartitionOffset>{position});
  ErrorHandle error(rd_kafka_seek_partitions(impl_->rk.get(), list.get(), 10'000));
  if (error) {
    return make_error(std::move(error), fmt::format("seek {} to {}", position.topic_partition,
                                                    position.offset.value()));
  }
  if (list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(list->elems[0].err, fmt::format("seek {} to {}", position.topic_partition,
                                                      position.offset.value()));
  }
  return {};
}

std::vector<TopicPartition> Consumer::assignment() const {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(impl_->rk.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return {};
  PartitionListHandle list(raw);
  return to_topic_partitions(list.get());
}

std::optional<std::int64_t> Consumer::cached_end_offset(const TopicPartition& partition) const {
  std::int64_t low = -1;
  std::int64_t high = -1;
  if (rd_kafka_get_watermark_offsets(impl_->rk.get(), partition.topic.value().c_str(),
                                     partition.partition.value(), &low,
                                     &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      high < 0)
    return std::nullopt;
  return high;
}

std::int64_t Consumer::offset_resets() const noexcept {
  return impl_->offset_resets();
}

std::string Consumer::member_id() const {
  char* id = rd_kafka_memberid(impl_->rk.get());
  if (id == nullptr)
    return {};
  std::string result(id);
  rd_kafka_mem_free(impl_->rk.get(), id);
  return result;
}

Result<void> Consumer::check_connection(std::chrono::milliseconds timeout) {
  return impl_->check_connection(impl_->rk.get(), timeout);
}

Result<void> Consumer::close() {
  if (impl_->closed)
    return {};
  impl_->closed = true;
  if (auto err = rd_kafka_consumer_close(impl_->rk.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(err, fmt::format("leave consumer group at {}", impl_->bootstrap_servers()));
  }
  return {};
}

}  // namespace streamrun::kafka
