#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <streamrun/base/ids.h>
#include <streamrun/base/result.h>
#include <streamrun/kafka/client_config.h>
#include <streamrun/kafka/errors.h>
#include <streamrun/kafka/message.h>

namespace streamrun::kafka {

// An offset to commit or to start from. By Kafka convention it is the offset of the *next*
// record to read, i.e. last processed + 1.
struct PartitionOffset {
  TopicPartition topic_partition;
  Offset offset;
  bool operator==(const PartitionOffset&) const = default;
};

using StartOffsets = std::map<TopicPartition, Offset>;

// Kafka's logical offset for "the first record still in the partition".
inline const Offset kBeginningOffset{-2};

// Told about every change of the consumer's assignment. Called inside Consumer::poll() or
// close(), on the polling thread, before the change takes effect in the client.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // Partitions newly given to this member. Entries put into `start_at` override the committed
  // offset for that partition (e.g. an offset stored with local state).
  virtual void on_assigned(const std::vector<TopicPartition>& partitions,
                           StartOffsets& start_at) = 0;
  // Partitions about to be taken away in an orderly rebalance: commit them now, the consumer
  // gives them up when this returns.
  virtual void on_revoked(const std::vector<TopicPartition>& partitions) = 0;
  // Partitions already owned by someone else (session timed out): committing them would be
  // rejected, so only drop local work.
  virtual void on_lost(const std::vector<TopicPartition>& partitions) { on_revoked(partitions); }
};

// A consumer-group member with manual commits.
//
// Offsets are never committed automatically (enable.auto.commit=false): callers commit exactly
// what they have made durable. The assignment strategy defaults to cooperative-sticky, so a
// rebalance only revokes the partitions that move. Polling with a zero timeout never blocks,
// which is what a fiber scheduler needs. Not thread-safe: one owner polls it.
class Consumer {
 public:
  // Checks `properties` as create() would (librdkafka accepts every property; no
  // auto-commit; a group.id), without creating a client or touching the network.
  [[nodiscard]] static Result<void> validate(const ClientProperties& properties);
  // `listener` (may be null) must outlive the consumer.
  [[nodiscard]] static Result<std::unique_ptr<Consumer>> create(const ClientProperties& properties,
                                                                RebalanceListener* listener);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  [[nodiscard]] Result<void> subscribe(const std::vector<std::string>& topics);

  // Appends up to `max_records` records to `out`; waits at most `timeout` for the first one.
  // Serves rebalance and commit callbacks. Returns an error only when the consumer cannot go
  // on (fatal client error); transient broker errors are logged and retried by the client.
  [[nodiscard]] Result<std::size_t> poll(
      std::vector<Message>& out, std::size_t max_records,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Experimental (issue 17): from the next assignment on, each assigned partition's records stay
  // in its own fetch queue, bounded by librdkafka's per-partition prefetch limits
  // (queued.min.messages, queued.max.messages.kbytes), and are taken with fetch(); poll() then
  // serves rebalances, errors and commit results. Call before subscribe().
  void use_partition_queues();
  // Appends up to `max_records` records of `partition` that its fetch queue holds, without
  // waiting. Fiber: the one that polls.
  [[nodiscard]] Result<std::size_t> fetch(const TopicPartition& partition,
                                          std::vector<Message>& out, std::size_t max_records);

  // Commits and waits for the broker's answer.
  [[nodiscard]] Result<void> commit(const std::vector<PartitionOffset>& offsets);
  // Commits without waiting; `done` runs inside a later poll() with the broker's answer.
  [[nodiscard]] Result<void> commit_async(const std::vector<PartitionOffset>& offsets,
                                          std::function<void(Result<void>)> done);
  // The group's committed offsets; partitions without one are left out.
  [[nodiscard]] Result<std::vector<PartitionOffset>> committed(
      const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout);
  // Text stored with every offset this consumer commits from now on (Kafka's commit metadata,
  // at most offset.metadata.max.bytes: 4096 by default); the group keeps it until the next
  // commit of the partition. Empty: none.
  void set_commit_metadata(std::string metadata);
  // The metadata stored with each partition's committed offset; partitions never committed are
  // left out. Blocks up to `timeout` for the group coordinator. Any thread (it only asks the
  // broker).
  [[nodiscard]] Result<std::map<TopicPartition, std::string>> committed_metadata(
      const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) const;

  // Stops (resumes) fetching from the partitions; the position is kept.
  [[nodiscard]] Result<void> pause(const std::vector<TopicPartition>& partitions);
  [[nodiscard]] Result<void> resume(const std::vector<TopicPartition>& partitions);

  // Moves the fetch position of an assigned partition (e.g. back to its committed offset).
  // Called from a rebalance callback, it also takes the partition's records out of the batch
  // poll() is filling. kBeginningOffset means the beginning of the partition.
  [[nodiscard]] Result<void> seek(const PartitionOffset& position);

  [[nodiscard]] std::vector<TopicPartition> assignment() const;
  [[nodiscard]] std::string member_id() const;
  // Times a partition's position was moved on by auto.offset.reset because the broker no
  // longer had its records (deleted by retention before they were read: lost to this
  // consumer). Each is logged as an error. Any thread.
  [[nodiscard]] std::int64_t offset_resets() const noexcept;
  // The partition's end (high watermark) as of the last fetch response, without asking the
  // broker; nullopt before the first. Any thread.
  [[nodiscard]] std::optional<std::int64_t> cached_end_offset(
      const TopicPartition& partition) const;

  [[nodiscard]] Result<void> check_connection(std::chrono::milliseconds timeout);

  // Leaves the group (the listener gets on_revoked for what is still assigned). Idempotent;
  // the destructor calls it.
  [[nodiscard]] Result<void> close();

  struct Impl;

 private:
  explicit Consumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrun::kafka
