#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <streamrun/base/result.h>
#include <streamrun/config/properties.h>
#include <streamrun/core/topology.h>

namespace streamrun::runtime {

// Counters of a running application, for tests, benchmarks and metrics.
struct ApplicationStats {
  std::int64_t records_processed = 0;
  std::int64_t records_restored = 0;       // changelog entries applied to state by restores
  std::int64_t records_skipped = 0;        // failed records dropped by a skip policy
  std::int64_t records_dead_lettered = 0;  // failed records written to a dead-letter topic
  std::int64_t retries = 0;                // attempts after a record's first
  std::int64_t records_produced = 0;       // outputs sent by sinks (not changelogs, dead letters)
  std::int64_t records_dropped = 0;  // dropped on purpose: null keys/values in keyed operators
  std::int64_t records_late = 0;     // of those: too late for their windows (past the grace)
  std::int64_t commits = 0;
  std::int64_t commit_failures = 0;
  bool last_commit_ok = true;          // the most recent commit (e.g. the final one) succeeded
  std::int64_t partitions_paused = 0;  // times a full channel paused a partition
  std::int64_t max_channel_depth = 0;  // deepest any task's input channel has been
  std::int64_t channel_bound = 0;      // buffered.records.per.partition
  // Most records held back for one paused partition (already fetched when it was paused).
  std::int64_t max_backlog = 0;
  std::int64_t active_tasks = 0;
  // The longest a stateful task took from its assignment until it could process (opening its
  // state, restoring from the changelog).
  std::int64_t max_task_start_ms = 0;
  // Records after the tasks' positions, to each partition's end as of the last fetch.
  std::int64_t lag_records = 0;
  // Positions moved on because the broker had deleted the records before they were read
  // (retention): those records were never processed.
  std::int64_t offset_resets = 0;
  // RocksDB's estimate of the tasks' state (files and memtables), as of their last commits.
  std::int64_t state_bytes = 0;
};

// A topic the application keeps for itself: repartition topics, changelogs, dead-letter topics.
struct InternalTopic {
  std::string name;
  int partitions = 0;
  std::string role;                            // "repartition topic", "changelog of store 's'"
  std::map<std::string, std::string> configs;  // what the application creates it with
  bool changelog = false;
  // A window store's changelog: entries older than this may go (cleanup.policy=compact,delete).
  std::optional<std::int64_t> window_retention_ms;
};

// Runs a topology on Kafka.
//
// Lifecycle: create() validates the configuration and the cluster's reachability; run() blocks
// until stop() is called (from any thread) or, with handle_signals, SIGINT/SIGTERM arrives —
// a second signal exits the process at once. run() returns an error when a task failed.
// Threads: run() starts num.threads worker threads (they run the I/O fiber and the task
// fibers) and blocks the calling thread until they end; nothing runs before or after it.
class Application {
 public:
  struct Options {
    bool handle_signals = false;
  };

  [[nodiscard]] static Result<std::unique_ptr<Application>> create(
      const Topology& topology, const config::Properties& properties);
  [[nodiscard]] static Result<std::unique_ptr<Application>> create(
      const Topology& topology, const config::Properties& properties, Options options);
  ~Application();
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  [[nodiscard]] Result<void> run();
  // Asks run() to stop gracefully: finish in-flight records, flush, commit, leave the group.
  void stop() noexcept;

  [[nodiscard]] ApplicationStats stats() const;
  // "HOST:PORT" of the admin endpoint (/metrics, /healthz, /readyz: admin.listen) while run()
  // serves it; nullopt before, after, and with admin.listen=0. Any thread.
  [[nodiscard]] std::optional<std::string> admin_address() const;

  // The internal topics an application of `topology` with `properties` uses when its input
  // topics have `input_partitions` partitions each — what it creates at start where the cluster
  // has an Admin API, and what to create beforehand where it has none (e.g. `streamrun broker
  // --topic NAME:PARTITIONS`). Contacts nothing; fails on invalid properties.
  [[nodiscard]] static Result<std::vector<InternalTopic>> internal_topics(
      const Topology& topology, const config::Properties& properties, int input_partitions);
  // Every topic the application reads or writes, one per line, "NAME:PARTITIONS<tab>ROLE": its
  // inputs and outputs (created by whoever owns them, here given `input_partitions`), then its
  // internal topics. The lines `streamrun topics` prints.
  [[nodiscard]] static Result<std::string> topic_listing(const Topology& topology,
                                                         const config::Properties& properties,
                                                         int input_partitions);

  class Impl;

 private:
  explicit Application(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrun::runtime
