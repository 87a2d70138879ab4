#include <cstring>
#include <deque>
#include <filesystem>
#include <set>
#include <thread>
#include <unistd.h>

#include <boost/fiber/operations.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <streamrun/base/errc.h>
#include <streamrun/base/log.h>
#include <streamrun/core/async_call.h>
#include <streamrun/core/partitioner.h>
#include <streamrun/kafka/client_config.h>
#include <streamrun/runtime/application.h>
#include <streamrun/runtime/runtime_config.h>

#include "admin_server.h"
#include "metrics.h"
#include "prefetch.h"
#include "signal_handling.h"
#include "state_query.h"
#include "status_page.h"
#include "stream_task.h"
#include "topic_provisioning.h"
#include "worker_pool.h"

namespace streamrun::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

}  // namespace

class Application::Impl final : public kafka::RebalanceListener, public TaskFailureListener {
 public:
  Impl(const Topology& topology, config::Config config, Options options)
      : topology_(topology),
        config_(std::move(config)),
        options_(options),
        application_id_(config_.get(RuntimeProperties::application_id)),
        commit_interval_(config_.get(RuntimeProperties::commit_interval_ms)),
        channel_bound_(static_cast<std::size_t>(
            config_.get(RuntimeProperties::buffered_records_per_partition))),
        poll_batch_(static_cast<std::size_t>(config_.get(RuntimeProperties::poll_batch_records))),
        partition_queues_(config_.get(RuntimeProperties::input_partition_queues)),
        shutdown_timeout_(config_.get(RuntimeProperties::shutdown_timeout_ms)),
        error_policy_(RuntimeProperties::error_policy(config_)),
        logger_(log::get("runtime")) {}

  // Checks the configuration and the topology as far as can be done without the cluster or the
  // disk: nothing is created or contacted before this passes.
  [[nodiscard]] Result<void> validate() const;
  [[nodiscard]] static Result<void> check_state_dir(const std::filesystem::path& state_dir);
  Result<void> connect();
  Result<void> run();
  void stop() noexcept { stop_requested_ = true; }
  ApplicationStats stats() const;

  // RebalanceListener: on the I/O fiber, inside consumer poll.
  void on_assigned(const std::vector<TopicPartition>& partitions, kafka::StartOffsets&) override;
  void on_revoked(const std::vector<TopicPartition>& partitions) override {
    close_tasks_of(partitions, /*lost=*/false);
  }
  void on_lost(const std::vector<TopicPartition>& partitions) override {
    close_tasks_of(partitions, /*lost=*/true);
  }

  // TaskFailureListener: any fiber.
  void on_task_failed(const std::string& reason) override {
    {
      std::lock_guard lock(failure_mutex_);
      if (!failure_)
        failure_ = reason;
    }
    logger_->error("{}", reason);
    stop_requested_ = true;
  }

 private:
  using TaskKey = std::pair<int, std::int32_t>;  // sub-topology, partition
  struct TaskSlot {
    std::unique_ptr<StreamTask> task;
    std::set<TopicPartition> partitions;
    std::deque<kafka::Message> backlog;  // records the full channel could not take yet
    bool paused = false;
    // Stateful tasks restore before they get records; what arrives meanwhile waits in the
    // backlog (the partitions are paused once it is full).
    bool restoring = false;
    // Where the consumer began reading each partition for this task (nullopt: the group's
    // committed offset). A restore that ends elsewhere repositions the partition.
    std::map<TopicPartition, std::optional<std::int64_t>> start_positions;
    // Restored offsets to move the consumer to; a partition just assigned may refuse a seek for
    // a moment. Its records are dropped until the seek succeeds.
    std::map<TopicPartition, std::int64_t> pending_seeks;
    Clock::time_point assigned_at = Clock::now();
    Clock::time_point stall_reported_at{};
    // The restored task's offsets are to be committed again with this instance's
    // application.server (or none), so that state queries find it before it commits progress.
    bool claim_pending = false;
  };

  void io_loop();
  void dispatch(std::vector<kafka::Message>& batch);
  // Hands waiting records to their tasks; returns how many came from partition queues.
  std::size_t drain_backlogs();
  std::size_t fetch_into(TaskSlot& slot);
  void commit_progress();
  StreamTask* start_task(const TaskKey& key, const std::set<TopicPartition>& partitions);
  // Stops tasks (after their in-flight record), waits for their outputs and destroys them;
  // returns the offsets to commit. Tasks of `lost` partitions (another member may own them
  // already) write nothing more and return nothing to commit.
  std::vector<kafka::PartitionOffset> finish_tasks(const std::vector<TaskKey>& keys,
                                                   bool lost = false);
  void close_tasks_of(const std::vector<TopicPartition>& partitions, bool lost);
  void shutdown();
  // Commits the last offsets of partitions this instance gives up, saying so in their metadata:
  // state queries then answer "moving" instead of naming this instance until the next owner
  // commits.
  Result<void> commit_released(const std::vector<kafka::PartitionOffset>& offsets) {
    consumer_->set_commit_metadata(released_metadata());
    auto committed = consumer_->commit(offsets);
    consumer_->set_commit_metadata(owner_metadata(application_server()));
    return committed;
  }
  void reposition(StreamTask& task, const std::set<TopicPartition>& partitions);
  // Hands restored tasks their partitions, from the offsets their state records.
  void activate_restored_tasks();
  void apply_pending_seeks(TaskSlot& slot);
  // Fails the application when the group committed progress that the task's state knows
  // nothing of (its changelog was lost): starting empty would forget what was counted.
  [[nodiscard]] bool state_matches_group(StreamTask& task,
                                         const std::set<TopicPartition>& partitions);
  // Dead-letter topics: the pipeline's and the operators' own.
  [[nodiscard]] std::set<std::string> dead_letter_topics() const;
  [[nodiscard]] kafka::ClientProperties consumer_client_properties() const;
  [[nodiscard]] kafka::ClientProperties producer_client_properties() const;
  std::unique_ptr<state::TaskState> open_task_state(const TaskInfo& info,
                                                    const std::vector<std::string>& stores);
  // A failed commit loses nothing: the records after the last successful commit of those
  // partitions are processed again by whoever owns them next (at-least-once).
  void record_commit(const Result<void>& result, std::string_view what) {
    last_commit_ok_ = result.ok();
    if (result) {
      ++commits_;
      return;
    }
    ++commit_failures_;
    // Tasks remember what they handed over for committing; after a refusal they must hand it
    // over again, or a partition with no new records would stay uncommitted for good.
    recommit_ = true;
    // During a rebalance every commit interval fails alike: say it once, then at most every
    // 10 s with how many more failed (the counter and /metrics have them all).
    const auto now = Clock::now();
    if (what == "periodic commit" && now - last_commit_warning_ < std::chrono::seconds(10)) {
      ++commit_warnings_suppressed_;
      return;
    }
    logger_->warn("{}: {}; records after the last successful commit will be processed again{}",
                  what, result.error().message(),
                  commit_warnings_suppressed_ > 0
                      ? fmt::format(" ({} more commit(s) failed since the last warning)",
                                    commit_warnings_suppressed_)
                      : std::string());
    last_commit_warning_ = now;
    commit_warnings_suppressed_ = 0;
  }
  Clock::time_point last_commit_warning_{};  // I/O fiber
  std::int64_t commit_warnings_suppressed_ = 0;
  // Serves delivery reports until `done()` or the deadline; false on timeout.
  bool serve_until(const std::function<bool()>& done, Clock::time_point deadline);

  Topology topology_;
  config::Config config_;
  Options options_;
  std::string application_id_;
  std::chrono::milliseconds commit_interval_;
  std::size_t channel_bound_;
  std::size_t poll_batch_;
  bool partition_queues_;  // input.partition.queues: see fetch_into()
  std::vector<kafka::Message> fetch_buffer_;
  std::chrono::milliseconds shutdown_timeout_;
  ErrorPolicy error_policy_;
  std::shared_ptr<spdlog::logger> logger_;

  // Destroyed in the reverse order: the producer first (it tells the tasks' pending outputs
  // that their reports will never come, so the tasks must still exist), then the tasks (they
  // hold records that belong to the consumer), then the consumer.
  std::unique_ptr<kafka::Consumer> consumer_;
  std::vector<std::unique_ptr<StreamTask>> unreported_tasks_;
  std::map<TaskKey, TaskSlot> tasks_;
  std::map<TopicPartition, TaskKey> task_of_;
  std::unique_ptr<kafka::Producer> producer_;
  std::shared_ptr<state::StateEnvironment> state_;  // stateful topologies only
  WorkerPool* pool_ = nullptr;
  int next_thread_ = 0;

  std::atomic<bool> stop_requested_{false};
  mutable std::mutex failure_mutex_;
  std::optional<std::string> failure_;

  std::atomic<std::int64_t> processed_before_{0};  // by tasks already closed
  std::atomic<std::int64_t> produced_before_{0};
  std::atomic<std::int64_t> dropped_before_{0};
  std::atomic<std::int64_t> late_before_{0};
  std::atomic<std::int64_t> commits_{0};
  std::atomic<std::int64_t> commit_failures_{0};
  std::atomic<bool> last_commit_ok_{true};
  std::atomic<bool> recommit_{false};  // a commit was refused: offer every offset again
  std::atomic<std::int64_t> paused_{0};
  std::atomic<std::int64_t> max_depth_{0};
  std::atomic<std::int64_t> max_backlog_{0};
  std::atomic<std::int64_t> active_tasks_{0};
  std::atomic<std::int64_t> restored_before_{0};
  std::atomic<std::int64_t> skipped_before_{0};
  std::atomic<std::int64_t> dead_lettered_before_{0};
  std::atomic<std::int64_t> retries_before_{0};
  std::atomic<std::int64_t> max_task_start_ms_{0};
  mutable std::mutex tasks_mutex_;  // guards tasks_ against stats() from other threads

  // --- the admin endpoint (admin.listen) --------------------------------------------------
  // What the I/O fiber alone knows of each task, published every commit interval for /metrics
  // and /readyz (other threads must not read TaskSlot).
  struct SlotView {
    std::string task;
    std::vector<TopicPartition> partitions;
    bool paused = false;
    bool restoring = false;
    std::size_t backlog = 0;
    // Per partition the task has read: records after its position, to the partition's end as of
    // the last fetch.
    std::vector<std::pair<TopicPartition, std::int64_t>> lag;
  };
  void publish_slot_views();
  // Records/s into each operator and through the application, over the last seconds; sampled
  // with the views (the status page shows them).
  struct Rates {
    std::map<std::string, double> node_in;
    double processed = 0;
    double produced = 0;
    double dead_lettered = 0;
  };
  void sample_rates(const ApplicationStats& stats);
  [[nodiscard]] std::string metrics_text() const;
  // Async call endpoints (KStream::call_async): breaker, outcomes, retries, in flight.
  void render_call_metrics(PrometheusText& out) const;
  [[nodiscard]] std::string not_ready() const;
  Result<void> start_admin();
  // GET /state/...: answered from a local task's committed state, or naming the instance whose
  // commits say it owns the partition (owner_metadata()).
  [[nodiscard]] HttpAnswer answer_state(const std::string& store,
                                        const std::optional<std::string>& key,
                                        const AdminServer::Params& params) const;
  [[nodiscard]] Result<std::int32_t> partitions_of(int subtopology) const;
  // GET /api/status: the status page's figures (JSON).
  [[nodiscard]] std::string status_json() const;
  [[nodiscard]] nlohmann::json recent_windows_json() const;
  // Who the last commit of each partition of the sub-topology's tasks names (nullopt: no commit,
  // or a client that did not say).
  [[nodiscard]] Result<std::map<std::int32_t, std::optional<PartitionOwner>>> owners_of(
      int subtopology, const std::vector<std::int32_t>& partitions) const;

 public:
  std::optional<std::string> admin_address() const {
    std::lock_guard lock(views_mutex_);
    return admin_address_;
  }

 private:
  mutable std::mutex views_mutex_;
  std::vector<SlotView> slot_views_;
  bool views_published_ = false;              // under views_mutex_: the I/O fiber has run
  std::optional<std::string> admin_address_;  // under views_mutex_
  Rates rates_;                               // under views_mutex_
  struct RateSample {
    Clock::time_point at;
    std::map<std::string, std::int64_t> node_in;
    std::int64_t processed, produced, dead_lettered;
  };
  std::deque<RateSample> rate_samples_;         // I/O fiber
  LatencyHistogram commit_latency_;             // I/O fiber: from a commit's request to its result
  std::atomic<std::int64_t> lag_records_{0};    // published with the views
  std::atomic<std::int64_t> offset_resets_{0};  // likewise
  std::atomic<std::int64_t> state_bytes_{0};
  // Under views_mutex_ (the admin endpoint serves before start_admin() has set it); empty: no
  // admin endpoint.
  std::string application_server_;
  [[nodiscard]] std::string application_server() const {
    std::lock_guard lock(views_mutex_);
    return application_server_;
  }
  mutable std::mutex partition_counts_mutex_;
  mutable std::map<int, std::int32_t> partition_counts_;  // per sub-topology
  std::unique_ptr<AdminServer> admin_;
};

Result<void> Application::Impl::validate() const {
  const auto consumer_properties = consumer_client_properties();
  if (!consumer_properties.contains("bootstrap.servers")) {
    return Error(config::errc::missing_required,
                 "missing required configuration 'bootstrap.servers': the Kafka cluster to use "
                 "(host:port[,host:port...])");
  }
  if (config_.passthrough_for("consumer").contains("group.id")) {
    return Error(config::errc::invalid_value,
                 "'group.id' is set by 'application.id'; remove it from the configuration");
  }
  if (auto valid = kafka::Consumer::validate(consumer_properties); !valid)
    return valid.error();
  if (const auto listen = config_.get(RuntimeProperties::admin_listen);
      listen != "0" && !is_loopback_listen(listen) &&
      !config_.get(RuntimeProperties::admin_allow_remote)) {
    return Error(config::errc::invalid_value,
                 fmt::format("admin.listen '{}' is not a loopback address: the admin endpoint has "
                             "no authentication; set admin.allow.remote=true to serve it there",
                             listen));
  }
  if (auto valid = kafka::Producer::validate(producer_client_properties()); !valid)
    return valid.error();
  // Every topic name the application will use, with application.id in place.
  std::vector<std::string> topics = topology_.source_topics();
  for (auto& topic : topology_.sink_topics())
    topics.push_back(std::move(topic));
  for (int s = 0; s < topology_.subtopology_count(); ++s) {
    for (const auto& store : topology_.stores(s))
      topics.push_back(changelog_topic(application_id_, store));
  }
  for (const auto& topic : dead_letter_topics())
    topics.push_back(topic);
  for (const auto& topic : topics) {
    if (auto invalid = invalid_topic_name(topic); !invalid.empty()) {
      return Error(errc::invalid_argument,
                   fmt::format("topic '{}' (application.id '{}' and the topology's names) {}",
                               topic, application_id_, invalid));
    }
  }
  if (topology_.stateful())
    return check_state_dir(config_.get(RuntimeProperties::state_dir));
  return {};
}

Result<void> Application::Impl::check_state_dir(const std::filesystem::path& state_dir) {
  // The directory is created when the application connects; here only whether it can be: the
  // nearest part of the path that exists must be a directory this process may write in.
  std::error_code ec;
  auto existing = std::filesystem::absolute(state_dir, ec);
  while (!existing.empty() && !std::filesystem::exists(existing, ec) &&
         existing != existing.parent_path()) {
    existing = existing.parent_path();
  }
  const auto refuse = [&](std::string_view why) {
    return Error(config::errc::invalid_value,
                 fmt::format("state.dir '{}': '{}' {}; set state.dir to a directory this process "
                             "may create and write (stateful tasks keep their RocksDB state there)",
                             state_dir.string(), existing.string(), why));
  };
  if (!std::filesystem::is_directory(existing, ec))
    return refuse("is not a directory");
  if (::access(existing.c_str(), W_OK | X_OK) != 0)
    return refuse(fmt::format("cannot be written ({})", std::strerror(errno)));
  return {};
}

kafka::ClientProperties Application::Impl::consumer_client_properties() const {
  auto properties = config_.passthrough_for("consumer");
  properties["group.id"] = application_id_;
  return properties;
}

kafka::ClientProperties Application::Impl::producer_client_properties() const {
  auto properties = config_.passthrough_for("producer");
  // Broker outages are waited out, not turned into lost records: outputs are retried until they
  // are acknowledged (the runtime never commits past an unacknowledged output).
  properties.try_emplace("message.timeout.ms", "0");
  return properties;
}

namespace {

Result<config::Config> load_config(const config::Properties& properties) {
  return config::Config::load(properties, RuntimeProperties::definition(),
                              &kafka::client_property_schema());
}

// Where the application's error policies (its own and its operators') write dead letters.
std::set<std::string> dead_letter_topics_of(const Topology& topology, const ErrorPolicy& policy,
                                            const std::string& application_id) {
  std::set<std::string> topics;
  if (policy.action == ErrorPolicy::Action::dead_letter)
    topics.insert(detail::resolve_topic(policy.dead_letter_topic, application_id));
  for (const auto& node : topology.nodes()) {
    if (node.error_policy && node.error_policy->action == ErrorPolicy::Action::dead_letter)
      topics.insert(detail::resolve_topic(node.error_policy->dead_letter_topic, application_id));
  }
  return topics;
}

}  // namespace

std::set<std::string> Application::Impl::dead_letter_topics() const {
  return dead_letter_topics_of(topology_, error_policy_, application_id_);
}

Result<void> Application::Impl::connect() {
  auto producer = kafka::Producer::create(producer_client_properties());
  if (!producer)
    return producer.error();
  producer_ = std::move(producer).value();
  const auto startup_timeout =
      std::chrono::milliseconds(config_.get(RuntimeProperties::startup_timeout_ms));
  // A cluster that is starting (or down) answers late: say what the wait is for once it is
  // longer than a moment, then keep trying until startup.timeout.ms.
  const auto connect_deadline = Clock::now() + startup_timeout;
  auto reachable = producer_->check_connection(std::min(startup_timeout, 3000ms));
  if (!reachable && Clock::now() < connect_deadline) {
    logger_->info("waiting for the Kafka cluster at '{}' (up to startup.timeout.ms = {} ms): {}",
                  consumer_client_properties().at("bootstrap.servers"), startup_timeout.count(),
                  reachable.error().message());
    reachable = producer_->check_connection(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max<Clock::duration>(connect_deadline - Clock::now(), 1ms)));
  }
  if (!reachable) {
    return Error(reachable.error().code(),
                 reachable.error().message() +
                     fmt::format(" ({} ms in all)", startup_timeout.count()) +
                     "; check bootstrap.servers and that the cluster is up (start-up waits "
                     "startup.timeout.ms for it)");
  }
  // Asking for every topic never creates one; asking for one by name may (auto-creation), and
  // a mistyped source topic must not be created as a side effect.
  auto existing = producer_->list_topics(startup_timeout);
  if (!existing)
    return existing.error();
  const auto sinks = topology_.sink_topics();
  std::map<std::string, int> source_partitions;
  std::vector<std::string> missing;
  for (const auto& topic : topology_.source_topics()) {
    if (std::find(sinks.begin(), sinks.end(), topic) != sinks.end())
      continue;  // internal: created below
    if (auto it = existing->find(topic); it != existing->end()) {
      source_partitions[topic] = it->second;
    } else {
      missing.push_back(topic);
    }
  }
  if (!missing.empty()) {
    return Error(errc::invalid_argument,
                 fmt::format("source topic{} {} of the topology do{} not exist on {}; create {} "
                             "(with as many partitions as the parallelism you want), or correct "
                             "the name — streamrun never creates the topics it reads",
                             missing.size() > 1 ? "s" : "", fmt::join(quoted(missing), ", "),
                             missing.size() > 1 ? "" : "es",
                             config_.passthrough_for("consumer").at("bootstrap.servers"),
                             missing.size() > 1 ? "them" : "it"));
  }
  if (auto checked = check_co_partitioning(topology_, source_partitions); !checked)
    return checked.error();
  const TopicProvisioning provisioning{
      application_id_, dead_letter_topics(), startup_timeout,
      std::chrono::milliseconds(config_.get(RuntimeProperties::admin_timeout_ms))};
  if (auto ensured = ensure_internal_topics(topology_, provisioning, source_partitions, *existing,
                                            *producer_, *logger_);
      !ensured)
    return ensured.error();
  // Internal topics (repartition topics, changelogs) have as many partitions as the largest
  // input.
  int input_partitions = 1;
  for (const auto& [topic, count] : source_partitions)
    input_partitions = std::max(input_partitions, count);
  if (topology_.stateful()) {
    // A quarter of the budget goes to the stores' record caches, shared evenly by every store
    // of every task this instance can run; the rest to RocksDB's block cache and memtables.
    const auto budget =
        static_cast<std::size_t>(config_.get(RuntimeProperties::state_memory_budget_bytes));
    std::size_t stores = 0;
    for (int s = 0; s < topology_.subtopology_count(); ++s)
      stores += topology_.stores(s).size() * static_cast<std::size_t>(input_partitions);
    const std::size_t cache_per_store = std::clamp<std::size_t>(
        budget / 4 / std::max<std::size_t>(stores, 1), 64u << 10, 16u << 20);
    auto environment = state::StateEnvironment::create(
        {std::filesystem::path(config_.get(RuntimeProperties::state_dir)) / application_id_,
         application_id_, budget - budget / 4, cache_per_store});
    if (!environment)
      return environment.error();
    state_ = std::move(environment).value();
  }
  auto consumer_properties = consumer_client_properties();
  if (partition_queues_) {
    // The most partitions this instance can be assigned: every source partition of the
    // topology (repartition topics have as many as the largest input).
    int partitions = 0;
    for (const auto& topic : topology_.source_topics()) {
      auto it = source_partitions.find(topic);
      partitions += it != source_partitions.end() ? it->second : input_partitions;
    }
    const auto limits = prefetch_limits(config_.get(RuntimeProperties::input_buffer_max_bytes),
                                        partitions, consumer_properties);
    std::vector<std::string> described;
    for (const auto& [key, value] : limits)
      described.push_back(fmt::format("{}={}", key, value));
    logger_->info("input prefetch per partition (input.buffer.max.bytes over {} partitions): {}",
                  partitions, fmt::join(described, ", "));
    consumer_properties.insert(limits.begin(), limits.end());
  }
  auto consumer = kafka::Consumer::create(consumer_properties, this);
  if (!consumer)
    return consumer.error();
  consumer_ = std::move(consumer).value();
  if (partition_queues_)
    consumer_->use_partition_queues();
  return {};
}

Result<void> Application::Impl::run() {
  auto threads = config_.get(RuntimeProperties::num_threads);
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  logger_->info("application '{}' starting on {} thread(s); topology:\n{}", application_id_,
                threads, topology_.describe());
  logger_->info("configuration: {}", config_.to_log_string());

  std::optional<GracefulStopSignals> signals;
  if (options_.handle_signals)
    signals.emplace(stop_requested_);
  if (auto admin = start_admin(); !admin)
    return admin.error();
  // Every offset commit names this instance (or says it serves no queries): others read it to
  // send state queries here.
  consumer_->set_commit_metadata(owner_metadata(application_server()));

  {
    WorkerPool pool(static_cast<int>(threads));
    pool_ = &pool;
    auto io = pool.launch(0, [this] { io_loop(); });
    io.get();
    pool_ = nullptr;
  }

  admin_.reset();  // before the tasks and clients it reads go
  {
    std::lock_guard lock(views_mutex_);
    admin_address_.reset();
  }
  signals.reset();
  std::lock_guard lock(failure_mutex_);
  if (failure_)
    return Error(errc::unavailable, *failure_);
  logger_->info("application '{}' stopped", application_id_);
  return {};
}

void Application::Impl::io_loop() {
  if (auto subscribed = consumer_->subscribe(topology_.source_topics()); !subscribed) {
    on_task_failed(subscribed.error().message());
    return;
  }
  std::vector<kafka::Message> batch;
  auto next_commit = Clock::now() + commit_interval_;
  auto unassigned_since = Clock::now();
  auto next_unassigned_report = unassigned_since + 10s;
  while (!stop_requested_) {
    if (!tasks_.empty()) {
      unassigned_since = Clock::now();
      next_unassigned_report = unassigned_since + 10s;
    } else if (Clock::now() >= next_unassigned_report) {
      // Silence here looks like a hang: a group waits for members that left without saying so
      // (killed) until their session times out, and other members may hold every partition.
      const auto consumer_properties = consumer_client_properties();
      const auto session = consumer_properties.find("session.timeout.ms");
      logger_->info(
          "no partitions assigned to this member of group '{}' after {} s; waiting for the "
          "group's assignment. A rebalance waits for members that stopped without leaving until "
          "their session times out (consumer.session.timeout.ms = {} ms); a restarted instance "
          "without consumer.group.instance.id is a new member, so its old self is such a member. "
          "Other members may also hold every partition (more instances than partitions)",
          application_id_,
          std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - unassigned_since).count(),
          session == consumer_properties.end() ? "45000 (librdkafka's default)" : session->second);
      next_unassigned_report = Clock::now() + 30s;
    }
    // Before polling: a seek must not leave records fetched from the old position in hand.
    activate_restored_tasks();
    batch.clear();
    auto polled = consumer_->poll(batch, poll_batch_);
    if (!polled) {
      on_task_failed(polled.error().message());
      break;
    }
    dispatch(batch);
    const std::size_t fetched = drain_backlogs();
    const int served = producer_->poll();
    if (Clock::now() >= next_commit) {
      commit_progress();
      publish_slot_views();
      next_commit = Clock::now() + commit_interval_;
    }
    if (batch.empty() && fetched == 0 && served == 0) {
      boost::this_fiber::sleep_for(1ms);  // idle: nothing fetched, nothing acknowledged
    } else {
      boost::this_fiber::yield();  // let task fibers on this thread run
    }
  }
  shutdown();
}

void Application::Impl::dispatch(std::vector<kafka::Message>& batch) {
  for (auto& message : batch) {
    auto owner = task_of_.find(message.topic_partition());
    if (owner == task_of_.end()) {
      logger_->warn("record from {} offset {} has no task; dropped, not committed",
                    to_string(message.topic_partition()), message.offset().value());
      continue;
    }
    auto& slot = tasks_.at(owner->second);
    if (slot.pending_seeks.contains(message.topic_partition()))
      continue;  // from before the restored position; read again after the seek
    if (!slot.restoring && slot.backlog.empty() && slot.task->offer(message))
      continue;
    slot.backlog.push_back(std::move(message));
    if (static_cast<std::int64_t>(slot.backlog.size()) > max_backlog_) {
      max_backlog_ = static_cast<std::int64_t>(slot.backlog.size());
    }
    if (!slot.paused && (!slot.restoring || slot.backlog.size() >= slot.task->bound())) {
      // Backpressure: the task is behind, so stop fetching for it until it catches up.
      auto paused = consumer_->pause({slot.partitions.begin(), slot.partitions.end()});
      if (!paused)
        logger_->warn("task {}: {}", slot.task->id(), paused.error().message());
      slot.paused = true;
      ++paused_;
    }
  }
}

std::size_t Application::Impl::drain_backlogs() {
  std::size_t fetched = 0;
  for (auto& [key, slot] : tasks_) {
    if (slot.restoring)
      continue;
    const bool retrying = slot.task->retrying();
    if (retrying && !slot.paused) {
      // A record waits for its retry, or its calls for an open breaker: fetch nothing more for
      // the task meanwhile.
      if (auto paused = consumer_->pause({slot.partitions.begin(), slot.partitions.end()}); !paused)
        logger_->warn("task {}: {}", slot.task->id(), paused.error().message());
      slot.paused = true;
      ++paused_;
    }
    while (!slot.backlog.empty() && slot.task->offer(slot.backlog.front())) {
      slot.backlog.pop_front();
    }
    if (partition_queues_ && !retrying && slot.backlog.empty())
      fetched += fetch_into(slot);
    if (slot.paused && !retrying && slot.backlog.empty() &&
        slot.task->depth() <= slot.task->bound() / 2) {
      auto resumed = consumer_->resume({slot.partitions.begin(), slot.partitions.end()});
      if (!resumed)
        logger_->warn("task {}: {}", slot.task->id(), resumed.error().message());
      slot.paused = false;
    }
  }
  return fetched;
}

// With input.partition.queues: takes from each of the task's partition queues as many records
// as the task has room for, so that librdkafka's own bounded prefetch holds the rest and no
// partition is paused (a pause drops what was prefetched). Returns how many were taken.
std::size_t Application::Impl::fetch_into(TaskSlot& slot) {
  std::size_t taken = 0;
  for (const auto& partition : slot.partitions) {
    const auto depth = slot.task->depth();
    if (depth >= slot.task->bound())
      break;
    fetch_buffer_.clear();
    auto fetched = consumer_->fetch(partition, fetch_buffer_, slot.task->bound() - depth);
    if (!fetched) {
      logger_->warn("task {}: {}", slot.task->id(), fetched.error().message());
      continue;
    }
    for (auto& message : fetch_buffer_) {
      ++taken;
      if (slot.pending_seeks.contains(message.topic_partition()))
        continue;  // from before the restored position; read again after the seek
      if (!slot.backlog.empty() || !slot.task->offer(message))
        slot.backlog.push_back(std::move(message));
    }
  }
  return taken;
}

void Application::Impl::commit_progress() {
  std::vector<kafka::PartitionOffset> offsets;
  const bool recommit = recommit_.exchange(false);
  for (auto& [key, slot] : tasks_) {
    if (recommit)
      slot.task->forget_committed();
    // Outputs the broker does not take (it is down, a topic is unreachable) are retried
    // without end and hold the task's commits back; say so now and then.
    constexpr auto kStallReport = std::chrono::seconds(30);
    if (slot.task->oldest_unacknowledged() > kStallReport &&
        Clock::now() - slot.stall_reported_at > kStallReport) {
      slot.stall_reported_at = Clock::now();
      logger_->warn(
          "task {}: outputs unacknowledged for {} s; still retrying, nothing after them is "
          "committed (processed so far: {}); see the client errors for why",
          slot.task->id(),
          std::chrono::duration_cast<std::chrono::seconds>(slot.task->oldest_unacknowledged())
              .count(),
          slot.task->processed_positions());
    }
    slot.task->mark_commit_point();
    auto ready = slot.task->take_committable();
    if (recommit && !slot.restoring && slot.task->ready())
      slot.claim_pending = true;
    if (std::exchange(slot.claim_pending, false)) {
      // The offsets the restored state reflects are committable as they are (their outputs
      // were acknowledged before that state was committed).
      for (const auto& tp : slot.partitions) {
        const auto stored = slot.task->stored_offset(tp);
        if (stored && std::none_of(ready.begin(), ready.end(),
                                   [&](const auto& po) { return po.topic_partition == tp; }))
          ready.push_back({tp, Offset(*stored)});
      }
    }
    offsets.insert(offsets.end(), ready.begin(), ready.end());
  }
  if (offsets.empty())
    return;
  auto started =
      consumer_->commit_async(offsets, [this, requested = Clock::now()](Result<void> result) {
        commit_latency_.observe(std::chrono::duration<double>(Clock::now() - requested).count());
        record_commit(result, "periodic commit");
      });
  if (!started)
    record_commit(started, "periodic commit");
}

void Application::Impl::on_assigned(const std::vector<TopicPartition>& partitions,
                                    kafka::StartOffsets& start_at) {
  std::map<TaskKey, std::set<TopicPartition>> grouped;
  for (const auto& tp : partitions) {
    const int subtopology = topology_.subtopology_of_topic(tp.topic.value());
    grouped[{subtopology, tp.partition.value()}].insert(tp);
  }
  for (const auto& [key, tps] : grouped) {
    auto existing = tasks_.find(key);
    if (existing == tasks_.end()) {
      if (auto* task = start_task(key, tps)) {
        // A task with local state resumes where its state says: that is what its stores
        // reflect, whether Kafka's committed offset is ahead of it or behind. (A restoring task
        // is repositioned once restored.)
        auto& slot = tasks_.at(key);
        for (const auto& tp : tps) {
          const auto stored = task->stored_offset(tp);
          if (stored)
            start_at[tp] = Offset(*stored);
          slot.start_positions[tp] = stored;
        }
      }
      continue;
    }
    // Another topic's partition of a running task: restart the task with all of them, so that
    // one task owns one partition of every topic of its sub-topology.
    auto all = existing->second.partitions;
    auto offsets = finish_tasks({key});
    if (!offsets.empty())
      record_commit(consumer_->commit(offsets), "commit before task restart");
    if (auto* task = start_task(key, all))
      reposition(*task, all);  // the partitions it had
    if (auto it = tasks_.find(key); it != tasks_.end()) {
      // The new partitions start like any new assignment.
      for (const auto& tp : tps) {
        it->second.partitions.insert(tp);
        task_of_[tp] = key;
        const auto stored = it->second.task->stored_offset(tp);
        if (stored)
          start_at[tp] = Offset(*stored);
        it->second.start_positions[tp] = stored;
      }
    }
  }
}

void Application::Impl::activate_restored_tasks() {
  for (auto& [key, slot] : tasks_) {
    if (!slot.pending_seeks.empty())
      apply_pending_seeks(slot);
    if (!slot.restoring || !slot.task->ready())
      continue;
    slot.restoring = false;
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - slot.assigned_at)
            .count();
    max_task_start_ms_ = std::max<std::int64_t>(max_task_start_ms_, took);
    if (!state_matches_group(*slot.task, slot.partitions))
      continue;
    for (const auto& tp : slot.partitions) {
      const auto restored = slot.task->stored_offset(tp);
      const auto started = slot.start_positions[tp];
      if (!restored || restored == started)
        continue;  // the consumer already reads from where the state needs it
      // The changelog knew of a later commit than local state: what was fetched from the old
      // position is not for this task.
      std::erase_if(slot.backlog,
                    [&](const kafka::Message& m) { return m.topic_partition() == tp; });
      slot.pending_seeks[tp] = *restored;
    }
    apply_pending_seeks(slot);
    slot.claim_pending = true;
    // drain_backlogs() hands over what waited and resumes the partitions once it is drained.
  }
}

void Application::Impl::apply_pending_seeks(TaskSlot& slot) {
  for (auto it = slot.pending_seeks.begin(); it != slot.pending_seeks.end();) {
    const kafka::PartitionOffset position{it->first, Offset(it->second)};
    auto seeked = consumer_->seek(position);
    logger_->debug("task {}: seek {} to {}: {}", slot.task->id(), to_string(it->first), it->second,
                   seeked ? "done" : seeked.error().message());
    if (seeked) {
      it = slot.pending_seeks.erase(it);
      continue;
    }
    if (Clock::now() - slot.assigned_at > shutdown_timeout_) {
      on_task_failed(fmt::format("task {}: {}", slot.task->id(), seeked.error().message()));
      return;
    }
    ++it;  // not fetchable yet: try again on the next round
  }
}

bool Application::Impl::state_matches_group(StreamTask& task,
                                            const std::set<TopicPartition>& partitions) {
  std::vector<TopicPartition> unknown;
  for (const auto& tp : partitions) {
    if (!task.stored_offset(tp))
      unknown.push_back(tp);
  }
  if (unknown.empty())
    return true;
  auto committed = consumer_->committed(unknown, shutdown_timeout_);
  if (!committed) {
    on_task_failed(fmt::format("task {}: {}", task.id(), committed.error().message()));
    return false;
  }
  if (committed->empty())
    return true;  // nothing processed yet: empty state is right
  on_task_failed(fmt::format(
      "task {}: the group has committed offsets for {} but neither local state under '{}' nor "
      "the changelogs know of any commit; the changelog topics were deleted or lost their "
      "data. Starting empty would forget what was processed: restore the changelogs, or reset "
      "the application (delete its state and the group's offsets) to reprocess from the start",
      task.id(), fmt::join(unknown, ", "), config_.get(RuntimeProperties::state_dir)));
  return false;
}

void Application::Impl::reposition(StreamTask& task, const std::set<TopicPartition>& partitions) {
  // The old task dropped the records it had fetched but not processed, and the consumer has
  // read past them: move every partition back to where the new task must begin — its stored
  // state's offset, else the group's committed offset, else the beginning.
  std::vector<TopicPartition> without_state;
  std::vector<kafka::PartitionOffset> positions;
  for (const auto& tp : partitions) {
    if (auto stored = task.stored_offset(tp)) {
      positions.push_back({tp, Offset(*stored)});
    } else {
      without_state.push_back(tp);
    }
  }
  if (!without_state.empty()) {
    auto committed = consumer_->committed(without_state, shutdown_timeout_);
    if (!committed) {
      on_task_failed(fmt::format("task {}: {}", task.id(), committed.error().message()));
      return;
    }
    for (const auto& tp : without_state) {
      Offset position = kafka::kBeginningOffset;
      for (const auto& po : *committed) {
        if (po.topic_partition == tp)
          position = po.offset;
      }
      positions.push_back({tp, position});
    }
  }
  if (auto slot = tasks_.find({task.info().subtopology, task.info().partition});
      slot != tasks_.end()) {
    for (const auto& position : positions)
      slot->second.start_positions[position.topic_partition] = position.offset.value();
  }
  for (const auto& position : positions) {
    if (auto seeked = consumer_->seek(position); !seeked) {
      on_task_failed(fmt::format("task {}: {}", task.id(), seeked.error().message()));
      return;
    }
  }
}

StreamTask* Application::Impl::start_task(const TaskKey& key,
                                          const std::set<TopicPartition>& partitions) {
  const auto assigned_at = Clock::now();
  const TaskInfo info{application_id_, key.first, key.second};
  std::unique_ptr<state::TaskState> task_state;
  if (const auto stores = topology_.stores(key.first); !stores.empty()) {
    task_state = open_task_state(info, stores);
    if (!task_state)
      return nullptr;
  }
  TaskSlot slot;
  slot.assigned_at = assigned_at;
  slot.restoring = task_state != nullptr;
  ChangelogOptions changelog{
      application_id_,
      [this] { return open_kafka_changelog_source(config_.passthrough_for("consumer")); }};
  try {
    slot.task = std::make_unique<StreamTask>(topology_, info, *producer_, channel_bound_, *this,
                                             std::move(task_state), shutdown_timeout_,
                                             std::move(changelog), error_policy_);
  } catch (const std::exception& e) {
    // An operator's init() failed: no task can run these partitions.
    on_task_failed(fmt::format(
        "task {} for {} could not start: {}", info.id(),
        fmt::join(std::vector<TopicPartition>(partitions.begin(), partitions.end()), ", "),
        e.what()));
    return nullptr;
  }
  slot.partitions = partitions;
  auto* task = slot.task.get();
  task->set_latency_sampling(config_.get(RuntimeProperties::metrics_latency_sample_records));
  // Completion is observed through task->finished(), not the launch future.
  static_cast<void>(pool_->launch(next_thread_++, [task] { task->run(); }));
  for (const auto& tp : partitions)
    task_of_[tp] = key;
  logger_->info("task {} started for {}", task->id(),
                fmt::join(std::vector<TopicPartition>(partitions.begin(), partitions.end()), ", "));
  std::lock_guard lock(tasks_mutex_);
  tasks_.emplace(key, std::move(slot));
  active_tasks_ = static_cast<std::int64_t>(tasks_.size());
  return task;
}

std::unique_ptr<state::TaskState> Application::Impl::open_task_state(
    const TaskInfo& info, const std::vector<std::string>& stores) {
  auto opened = state::TaskState::open(state_, info.id(), stores);
  if (!opened && opened.error().code() == make_error_code(state::errc::unusable)) {
    // Another application's directory, or a corrupt one: never use it; the changelogs hold
    // the task's state.
    logger_->warn("task {}: {}; deleting it and restoring the state from the changelogs", info.id(),
                  opened.error().message());
    if (auto wiped = state::TaskState::wipe(*state_, info.id()); !wiped) {
      on_task_failed(fmt::format("task {}: {}", info.id(), wiped.error().message()));
      return nullptr;
    }
    opened = state::TaskState::open(state_, info.id(), stores);
  }
  if (!opened) {
    on_task_failed(fmt::format("task {}: {}", info.id(), opened.error().message()));
    return nullptr;
  }
  return std::move(opened).value();
}

bool Application::Impl::serve_until(const std::function<bool()>& done, Clock::time_point deadline) {
  while (!done()) {
    if (Clock::now() > deadline)
      return false;
    if (producer_->poll() == 0)
      boost::this_fiber::sleep_for(1ms);
  }
  return true;
}

std::vector<kafka::PartitionOffset> Application::Impl::finish_tasks(
    const std::vector<TaskKey>& keys, bool lost) {
  const auto deadline = Clock::now() + shutdown_timeout_;
  for (const auto& key : keys)
    tasks_.at(key).task->request_stop(lost);
  std::vector<kafka::PartitionOffset> offsets;
  for (const auto& key : keys) {
    auto& slot = tasks_.at(key);
    auto* task = slot.task.get();
    serve_until([&] { return task->finished(); }, Clock::time_point::max());
    // A failed task's outputs may never all be acknowledged, but their reports still arrive.
    const bool settled = serve_until(
        [&] { return task->flushed() || (task->failed() && task->reports_pending() == 0); },
        deadline);
    if (!settled) {
      logger_->warn(
          "task {}: outputs still unacknowledged after {} ms; its last records will be "
          "processed again",
          task->id(), shutdown_timeout_.count());
    }
    task->drop_buffered();
    if (!lost) {
      auto ready = task->final_offsets();
      offsets.insert(offsets.end(), ready.begin(), ready.end());
    }
    processed_before_ += task->processed();
    produced_before_ += task->produced();
    dropped_before_ += task->dropped();
    late_before_ += task->late();
    restored_before_ += task->restored();
    skipped_before_ += task->skipped();
    dead_lettered_before_ += task->dead_lettered();
    retries_before_ += task->retries();
    max_depth_ = std::max<std::int64_t>(max_depth_, static_cast<std::int64_t>(task->max_depth()));
    for (const auto& tp : slot.partitions)
      task_of_.erase(tp);
    if (slot.paused) {
      // Leave the consumer as it found the partition for whoever gets it next in this process.
      static_cast<void>(consumer_->resume({slot.partitions.begin(), slot.partitions.end()}));
    }
    logger_->info("task {} closed after {} records", task->id(), task->processed());
    std::lock_guard lock(tasks_mutex_);
    if (task->reports_pending() > 0) {
      // Delivery callbacks still point at the task: keep it until the producer is gone.
      unreported_tasks_.push_back(std::move(slot.task));
    }
    tasks_.erase(key);
    active_tasks_ = static_cast<std::int64_t>(tasks_.size());
  }
  return offsets;
}

void Application::Impl::close_tasks_of(const std::vector<TopicPartition>& partitions, bool lost) {
  std::set<TaskKey> keys;
  for (const auto& tp : partitions) {
    if (auto it = task_of_.find(tp); it != task_of_.end())
      keys.insert(it->second);
  }
  if (keys.empty())
    return;
  // Partitions of these tasks that stay assigned get a fresh task afterwards.
  std::map<TaskKey, std::set<TopicPartition>> keep;
  const std::set<TopicPartition> leaving(partitions.begin(), partitions.end());
  for (const auto& key : keys) {
    for (const auto& tp : tasks_.at(key).partitions) {
      if (!leaving.contains(tp))
        keep[key].insert(tp);
    }
  }
  auto offsets = finish_tasks({keys.begin(), keys.end()}, lost);
  if (!offsets.empty())
    record_commit(commit_released(offsets), "commit on revocation");
  for (const auto& [key, tps] : keep) {
    if (auto* task = start_task(key, tps))
      reposition(*task, tps);
  }
}

void Application::Impl::shutdown() {
  logger_->info("stopping: finishing {} task(s)", tasks_.size());
  std::vector<TaskKey> keys;
  for (const auto& [key, slot] : tasks_)
    keys.push_back(key);
  auto offsets = finish_tasks(keys);
  if (!offsets.empty())
    record_commit(commit_released(offsets), "final commit");
  if (auto closed = consumer_->close(); !closed)
    logger_->warn("{}", closed.error().message());
  if (auto flushed = producer_->flush(shutdown_timeout_); !flushed) {
    logger_->warn("{}", flushed.error().message());
  }
}

Result<void> Application::Impl::start_admin() {
  const auto listen = config_.get(RuntimeProperties::admin_listen);
  if (listen == "0")
    return {};
  const bool is_default = !config_.is_set(RuntimeProperties::admin_listen.key());
  auto server = AdminServer::start(
      listen, /*any_port_if_taken=*/is_default,
      {.metrics = [this] { return metrics_text(); },
       .not_ready = [this] { return not_ready(); },
       .state = [this](
                    const std::string& store, const std::optional<std::string>& key,
                    const AdminServer::Params& params) { return answer_state(store, key, params); },
       .status = [this] { return status_json(); }});
  if (!server)
    return server.error();
  admin_ = std::move(server).value();
  {
    std::lock_guard lock(views_mutex_);
    admin_address_ = admin_->address();
  }
  auto advertised = config_.get(RuntimeProperties::application_server);
  if (advertised.empty())
    advertised = advertised_address(admin_->address());
  {
    std::lock_guard lock(views_mutex_);
    application_server_ = std::move(advertised);
  }
  if (is_default && admin_->address() != listen) {
    logger_->info("admin endpoint on http://{} ({} is taken: another instance on this host?)",
                  admin_->address(), listen);
  } else {
    logger_->info(
        "admin endpoint on http://{} (/ status page, /metrics, /healthz, /readyz, "
        "/state/<store>/<key>)",
        admin_->address());
  }
  return {};
}

Result<std::int32_t> Application::Impl::partitions_of(int subtopology) const {
  {
    std::lock_guard lock(partition_counts_mutex_);
    if (auto it = partition_counts_.find(subtopology); it != partition_counts_.end())
      return it->second;
  }
  // Every source topic of a sub-topology has the same count (checked at start).
  const auto topics = topology_.source_topics(subtopology);
  auto count = producer_->partition_count(
      topics.front(), std::chrono::milliseconds(config_.get(RuntimeProperties::admin_timeout_ms)));
  if (!count)
    return count.error();
  std::lock_guard lock(partition_counts_mutex_);
  partition_counts_[subtopology] = *count;
  return *count;
}

Result<std::map<std::int32_t, std::optional<PartitionOwner>>> Application::Impl::owners_of(
    int subtopology, const std::vector<std::int32_t>& partitions) const {
  std::map<std::int32_t, std::optional<PartitionOwner>> owners;
  if (partitions.empty())
    return owners;
  // A task commits its input partitions together (and a restored one claims every partition
  // its state has an offset for): whichever of them was committed names the owner. A topic the
  // task has read nothing from yet has no commit.
  std::vector<TopicPartition> tps;
  for (const auto& topic : topology_.source_topics(subtopology)) {
    for (const auto partition : partitions)
      tps.push_back({TopicName(topic), PartitionId(partition)});
  }
  for (const auto partition : partitions)
    owners[partition] = std::nullopt;
  auto metadata = consumer_->committed_metadata(
      tps, std::chrono::milliseconds(config_.get(RuntimeProperties::admin_timeout_ms)));
  if (!metadata)
    return metadata.error();
  for (const auto& [tp, text] : *metadata) {
    auto& owner = owners[tp.partition.value()];
    if (!owner)
      owner = owner_of_metadata(text);
  }
  return owners;
}

HttpAnswer Application::Impl::answer_state(const std::string& store,
                                           const std::optional<std::string>& key,
                                           const AdminServer::Params& params) const {
  if (store.empty() && !key && params.empty()) {
    // GET /state: which stores there are to ask, and what their entries are.
    nlohmann::json stores = nlohmann::json::array();
    for (int i = 0; i < topology_.subtopology_count(); ++i) {
      for (const auto& name : topology_.stores(i)) {
        const auto window = topology_.window_store(name);
        stores.push_back(
            {{"store", name},
             {"kind", !window                                          ? "key-value"
                      : window->kind == WindowStoreSpec::Kind::session ? "session windows"
                                                                       : "time windows"}});
      }
    }
    return {200, "application/json", nlohmann::json{{"stores", std::move(stores)}}.dump(), {}};
  }
  auto parsed = parse_state_query(store, key, params);
  if (!parsed)
    return json_error(400, parsed.error().message());
  const auto& query = *parsed;
  int subtopology = -1;
  std::vector<std::string> stores;
  for (int i = 0; i < topology_.subtopology_count(); ++i) {
    for (auto& name : topology_.stores(i)) {
      if (name == query.store)
        subtopology = i;
      stores.push_back(std::move(name));
    }
  }
  if (subtopology < 0) {
    return json_error(
        404, fmt::format("application '{}' has no state store '{}' (its stores: {})",
                         application_id_, query.store,
                         stores.empty() ? "none" : fmt::to_string(fmt::join(stores, ", "))));
  }
  auto counted = partitions_of(subtopology);
  if (!counted) {
    return json_error(503, fmt::format("cannot tell the partitions of store '{}' ({}); ask again "
                                       "shortly",
                                       query.store, counted.error().message()));
  }
  const std::int32_t count = *counted;
  if (query.partition && *query.partition >= count) {
    return json_error(400, fmt::format("parameter 'partition' = {}: store '{}' has partitions 0 "
                                       "to {}",
                                       *query.partition, query.store, count - 1));
  }
  std::vector<std::int32_t> partitions;
  if (query.partition) {
    partitions.push_back(*query.partition);
  } else if (query.key) {
    partitions.push_back(partition_for_key(*query.key, count));
  } else {
    for (std::int32_t p = 0; p < count; ++p)
      partitions.push_back(p);
  }

  // Local tasks first, under tasks_mutex_ (the I/O fiber destroys tasks under it).
  const auto window_store = topology_.window_store(query.store);
  RangeAnswer range;
  std::optional<StateEntry> found;
  std::vector<StateEntry> windows;  // of query.key, in a window store
  std::string task_id;
  std::vector<std::int32_t> elsewhere;
  std::optional<std::string> read_error;
  {
    std::lock_guard lock(tasks_mutex_);
    for (const auto partition : partitions) {
      const auto it = tasks_.find({subtopology, partition});
      if (it == tasks_.end()) {
        elsewhere.push_back(partition);
        continue;
      }
      const auto& task = *it->second.task;
      const bool read = task.read_committed_state([&](const state::TaskState& state) {
        if (window_store) {
          // A window store's entries are windows of many keys under binary prefixes: read them
          // all (they are bounded by its retention) and keep those asked for.
          task_id = task.id();
          auto [from, to] = window_entries_range();
          while (true) {
            auto entries = state.range_committed(query.store, from, to, StateQuery::kMaxLimit);
            if (!entries) {
              read_error = entries.error().message();
              return;
            }
            for (auto& [k, v] : entries->entries) {
              auto entry = window_entry(*window_store, k, v, partition);
              if (!entry)
                continue;
              if (query.key) {
                if (entry->key == *query.key)
                  windows.push_back(std::move(*entry));
              } else if (entry->key >= query.from && (query.to.empty() || entry->key < query.to)) {
                range.entries.push_back(std::move(*entry));
              }
            }
            if (!entries->more || entries->entries.empty())
              return;
            from = entries->entries.back().first + '\0';
          }
        }
        if (query.key) {
          task_id = task.id();
          auto value = state.get_committed(query.store, *query.key);
          if (!value)
            read_error = value.error().message();
          else if (*value)
            found = StateEntry{*query.key, std::move(**value), partition};
          return;
        }
        auto entries = state.range_committed(query.store, query.from, query.to, query.limit);
        if (!entries) {
          read_error = entries.error().message();
          return;
        }
        for (auto& [k, v] : entries->entries)
          range.entries.push_back({std::move(k), std::move(v), partition});
        range.more = range.more || entries->more;
      });
      (read ? range.local : range.restoring).push_back(partition);
    }
  }
  if (read_error)
    return json_error(500, *read_error);

  if (query.key || query.partition) {
    const auto partition = partitions.front();
    if (!range.restoring.empty()) {
      return json_error(503, fmt::format("partition {} of store '{}' is restoring its state on "
                                         "this instance; ask again shortly",
                                         partition, query.store));
    }
    if (!elsewhere.empty()) {
      auto owners = owners_of(subtopology, elsewhere);
      if (!owners) {
        return json_error(503, fmt::format("cannot tell which instance holds partition {} of "
                                           "store '{}' ({}); ask again shortly",
                                           partition, query.store, owners.error().message()));
      }
      const auto& owner = owners->at(partition);
      if (!owner) {
        return json_error(503, fmt::format("no instance holds partition {} of store '{}' yet "
                                           "(none has committed it since it was assigned); ask "
                                           "again shortly",
                                           partition, query.store));
      }
      if (owner->kind == PartitionOwner::Kind::no_endpoint) {
        auto answer = json_error(
            503, fmt::format("partition {} of store '{}' is held by an instance that serves no "
                             "state queries (its admin.listen is 0)",
                             partition, query.store));
        answer.headers.clear();  // asking again will not help
        return answer;
      }
      if (owner->kind == PartitionOwner::Kind::released || owner->address == application_server()) {
        return json_error(503, fmt::format("partition {} of store '{}' is moving to another "
                                           "instance (a rebalance); ask again shortly",
                                           partition, query.store));
      }
      return state_redirect(query, owner->address, partition);
    }
    if (query.key && window_store) {
      if (windows.empty()) {
        return json_error(404, fmt::format("no windows of key '{}' in window store '{}' "
                                           "(partition {}, as of its last commit)",
                                           *query.key, query.store, partition));
      }
      std::sort(windows.begin(), windows.end(),
                [](const auto& a, const auto& b) { return a.window < b.window; });
      if (windows.size() > query.limit)
        windows.erase(windows.begin(), windows.end() - static_cast<std::ptrdiff_t>(query.limit));
      return state_windows_answer(query, windows, partition, task_id);
    }
    if (query.key) {
      if (!found) {
        return json_error(404, fmt::format("no key '{}' in store '{}' (partition {}, as of its "
                                           "last commit)",
                                           *query.key, query.store, partition));
      }
      return state_value_answer(query, *found, task_id);
    }
  }
  // A range: what this instance holds, in key order, and where the rest is.
  std::sort(range.entries.begin(), range.entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.key, a.window) < std::tie(b.key, b.window);
  });
  if (range.entries.size() > query.limit) {
    range.entries.resize(query.limit);
    range.more = true;
  }
  if (!elsewhere.empty()) {
    if (auto owners = owners_of(subtopology, elsewhere); owners) {
      for (const auto& [partition, owner] : *owners) {
        range.elsewhere[partition] = owner && owner->kind == PartitionOwner::Kind::serving &&
                                             owner->address != application_server()
                                         ? std::optional<std::string>(owner->address)
                                         : std::nullopt;
      }
    } else {
      for (const auto partition : elsewhere)
        range.elsewhere[partition] = std::nullopt;
    }
  }
  return state_range_answer(query, range);
}

// The status page's windows: for each window store, the most recent windows of the tasks
// running here (as of their last commit), newest first, then by key; 20 at most per store.
nlohmann::json Application::Impl::recent_windows_json() const {
  using nlohmann::json;
  constexpr std::size_t kShown = 20;
  json stores = json::array();
  for (int i = 0; i < topology_.subtopology_count(); ++i) {
    for (const auto& store : topology_.stores(i)) {
      const auto spec = topology_.window_store(store);
      if (!spec)
        continue;
      std::vector<StateEntry> latest;
      {
        std::lock_guard lock(tasks_mutex_);
        for (const auto& [key, slot] : tasks_) {
          if (key.first != i)
            continue;
          static_cast<void>(slot.task->read_committed_state([&](const state::TaskState& state) {
            auto stream_time = state.get_committed(store, window_stream_time_key());
            if (!stream_time || !*stream_time)
              return;
            const auto range = recent_windows_range(*spec, **stream_time);
            if (!range)
              return;
            auto entries =
                state.range_committed(store, range->from, range->to, StateQuery::kMaxLimit);
            if (!entries)
              return;
            for (const auto& [k, v] : entries->entries) {
              auto entry = window_entry(*spec, k, v, key.second);
              if (entry && range->recent(*entry))
                latest.push_back(std::move(*entry));
            }
          }));
        }
      }
      std::sort(latest.begin(), latest.end(), [](const auto& a, const auto& b) {
        return std::tie(b.window->first, a.key) < std::tie(a.window->first, b.key);
      });
      if (latest.size() > kShown)
        latest.resize(kShown);
      json windows = json::array();
      for (const auto& entry : latest)
        windows.push_back(window_entry_json(entry));
      stores.push_back({{"store", store},
                        {"kind", spec->kind == WindowStoreSpec::Kind::session ? "session" : "time"},
                        {"latest", std::move(windows)}});
    }
  }
  return stores;
}

std::string Application::Impl::status_json() const {
  using nlohmann::json;
  const auto stats = this->stats();
  // The topology as a graph: operators, and topics between them.
  json nodes = json::array();
  json edges = json::array();
  std::set<std::string> topics;
  for (int i = 0; i < topology_.subtopology_count(); ++i) {
    for (const int id : topology_.subtopology(i)) {
      const auto& node = topology_.nodes().at(static_cast<std::size_t>(id));
      nodes.push_back(
          {{"name", node.name}, {"kind", node.kind}, {"subtopology", i}, {"stores", node.stores}});
      for (const int parent : node.parents)
        edges.push_back({topology_.nodes().at(static_cast<std::size_t>(parent)).name, node.name});
      for (const auto& topic : node.topics) {
        topics.insert(topic);
        if (node.is_source())
          edges.push_back({"topic:" + topic, node.name});
        else
          edges.push_back({node.name, "topic:" + topic});
      }
    }
  }
  const auto dead_letters = dead_letter_topics();
  topics.insert(dead_letters.begin(), dead_letters.end());
  for (const auto& topic : topics) {
    nodes.push_back({{"name", "topic:" + topic},
                     {"kind", dead_letters.contains(topic) ? "dead-letter topic" : "topic"},
                     {"topic", topic}});
  }

  // Live figures: records into and out of each operator (over the tasks running here), and
  // each task's partitions.
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> counts;
  std::set<int> local_subtopologies;  // those this instance runs tasks of
  json tasks = json::array();
  std::vector<SlotView> views;
  Rates rates;
  {
    std::lock_guard lock(views_mutex_);
    views = slot_views_;
    rates = rates_;
  }
  {
    std::lock_guard lock(tasks_mutex_);
    for (const auto& [key, slot] : tasks_) {
      local_subtopologies.insert(key.first);
      for (const auto& count : slot.task->node_counts()) {
        counts[count.name].first += count.in;
        counts[count.name].second += count.out;
      }
      json task = {{"task", slot.task->id()},
                   {"processed", slot.task->processed()},
                   {"dead_lettered", slot.task->dead_lettered()},
                   {"skipped", slot.task->skipped()},
                   {"restored", slot.task->restored()},
                   {"state_bytes", slot.task->state_figures().bytes}};
      for (const auto& view : views) {
        if (view.task != task["task"])
          continue;
        task["paused"] = view.paused;
        task["restoring"] = view.restoring;
        task["buffered"] = view.backlog + slot.task->depth();
        json partitions = json::array();
        for (const auto& tp : view.partitions) {
          json partition = {{"topic", tp.topic.value()}, {"partition", tp.partition.value()}};
          for (const auto& [lag_tp, lag] : view.lag) {
            if (lag_tp == tp)
              partition["lag"] = lag;
          }
          partitions.push_back(std::move(partition));
        }
        task["partitions"] = std::move(partitions);
      }
      tasks.push_back(std::move(task));
    }
  }
  const auto why_not_ready = not_ready();
  json node_counts = json::object();
  for (const auto& [name, in_out] : counts) {
    const auto rate = rates.node_in.find(name);
    node_counts[name] = {{"in", in_out.first},
                         {"out", in_out.second},
                         {"in_per_second", rate == rates.node_in.end() ? 0.0 : rate->second}};
  }
  auto calls = json::array();
  for (const auto& e : call_endpoint_figures(application_id_)) {
    calls.push_back({{"endpoint", e.endpoint},
                     {"breaker", e.has_breaker ? to_string(e.state) : "none"},
                     {"in_flight", e.in_flight},
                     {"ok", e.succeeded},
                     {"failed", e.failed},
                     {"timed_out", e.timed_out},
                     {"rejected", e.rejected},
                     {"retried", e.retried},
                     {"opened", e.opened},
                     {"reopened", e.reopened},
                     {"closed", e.closed}});
  }
  return json{{"application_id", application_id_},
              {"instance", application_server()},
              {"calls", std::move(calls)},
              {"windows", recent_windows_json()},
              {"now_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count()},
              {"ready", why_not_ready.empty()},
              {"not_ready", why_not_ready},
              {"topology", {{"nodes", std::move(nodes)}, {"edges", std::move(edges)}}},
              {"local_subtopologies", local_subtopologies},
              {"node_counts", std::move(node_counts)},
              {"tasks", std::move(tasks)},
              {"rates",
               {{"processed", rates.processed},
                {"produced", rates.produced},
                {"dead_lettered", rates.dead_lettered}}},
              {"totals",
               {{"processed", stats.records_processed},
                {"produced", stats.records_produced},
                {"skipped", stats.records_skipped},
                {"dead_lettered", stats.records_dead_lettered},
                {"dropped", stats.records_dropped},
                {"restored", stats.records_restored},
                {"retries", stats.retries},
                {"commits", stats.commits},
                {"commit_failures", stats.commit_failures},
                {"lag", stats.lag_records},
                {"state_bytes", stats.state_bytes},
                {"active_tasks", stats.active_tasks},
                {"partitions_paused", stats.partitions_paused}}}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

void Application::Impl::sample_rates(const ApplicationStats& stats) {
  RateSample sample{Clock::now(),
                    {},
                    stats.records_processed,
                    stats.records_produced,
                    stats.records_dead_lettered};
  for (const auto& [key, slot] : tasks_) {
    for (const auto& count : slot.task->node_counts())
      sample.node_in[count.name] += count.in;
  }
  // Over about two seconds: steady enough to read, recent enough to follow a burst.
  while (rate_samples_.size() > 1 && sample.at - rate_samples_[1].at >= std::chrono::seconds(2))
    rate_samples_.pop_front();
  rate_samples_.push_back(std::move(sample));
  const auto& oldest = rate_samples_.front();
  const auto& newest = rate_samples_.back();
  const double seconds = std::chrono::duration<double>(newest.at - oldest.at).count();
  Rates rates;
  // Counts fall when a task closes (a rebalance): no negative rates.
  const auto per_second = [&](std::int64_t now, std::int64_t before) {
    return seconds > 0 ? static_cast<double>(std::max<std::int64_t>(0, now - before)) / seconds
                       : 0.0;
  };
  for (const auto& [name, in] : newest.node_in) {
    const auto before = oldest.node_in.find(name);
    rates.node_in[name] = per_second(in, before == oldest.node_in.end() ? in : before->second);
  }
  rates.processed = per_second(newest.processed, oldest.processed);
  rates.produced = per_second(newest.produced, oldest.produced);
  rates.dead_lettered = per_second(newest.dead_lettered, oldest.dead_lettered);
  std::lock_guard lock(views_mutex_);
  rates_ = std::move(rates);
}

void Application::Impl::publish_slot_views() {
  std::vector<SlotView> views;
  views.reserve(tasks_.size());
  std::int64_t lag = 0;
  std::int64_t state_bytes = 0;
  for (const auto& [key, slot] : tasks_) {
    state_bytes += slot.task->state_figures().bytes;
    SlotView view{slot.task->id(),     {slot.partitions.begin(), slot.partitions.end()},
                  slot.paused,         slot.restoring || !slot.task->ready(),
                  slot.backlog.size(), {}};
    for (const auto& [tp, position] : slot.task->positions()) {
      if (const auto end = consumer_->cached_end_offset(tp)) {
        view.lag.emplace_back(tp, std::max<std::int64_t>(0, *end - position));
        lag += view.lag.back().second;
      }
    }
    views.push_back(std::move(view));
  }
  lag_records_ = lag;
  offset_resets_ = consumer_->offset_resets();
  state_bytes_ = state_bytes;
  if (admin_)
    sample_rates(stats());
  std::lock_guard lock(views_mutex_);
  slot_views_ = std::move(views);
  views_published_ = true;
}

std::string Application::Impl::not_ready() const {
  if (stop_requested_)
    return "stopping";
  std::lock_guard lock(views_mutex_);
  if (!views_published_ || slot_views_.empty())
    return fmt::format("no partitions assigned yet (group '{}' is forming)", application_id_);
  std::vector<std::string> restoring;
  for (const auto& view : slot_views_) {
    if (view.restoring)
      restoring.push_back(view.task);
  }
  if (!restoring.empty())
    return fmt::format("task(s) {} restoring their state", fmt::join(restoring, ", "));
  return {};
}

std::string Application::Impl::metrics_text() const {
  PrometheusText out;
  const auto stats = this->stats();
  const Labels none;
  const auto counter = [&](std::string_view name, std::string_view help, double value) {
    out.family(name, "counter", help);
    out.sample(name, none, value);
  };
  const auto gauge = [&](std::string_view name, std::string_view help, double value) {
    out.family(name, "gauge", help);
    out.sample(name, none, value);
  };
  out.family("streamrun_application_info", "gauge", "The application; always 1");
  out.sample("streamrun_application_info", {{"application_id", application_id_}}, 1);
  counter("streamrun_records_processed_total", "Input records processed, by every task ever",
          static_cast<double>(stats.records_processed));
  counter("streamrun_records_produced_total", "Records sent by sinks",
          static_cast<double>(stats.records_produced));
  counter("streamrun_records_skipped_total", "Failed records dropped by errors.policy=skip",
          static_cast<double>(stats.records_skipped));
  counter("streamrun_records_dead_lettered_total", "Failed records written to a dead-letter topic",
          static_cast<double>(stats.records_dead_lettered));
  counter("streamrun_records_dropped_total",
          "Records operators dropped on purpose (null keys or values in keyed operators, "
          "records too late for their windows)",
          static_cast<double>(stats.records_dropped));
  counter("streamrun_records_late_total",
          "Records too late for all their windows (windowed aggregates, past the grace period)",
          static_cast<double>(stats.records_late));
  counter("streamrun_record_retries_total", "Attempts at failed records after their first",
          static_cast<double>(stats.retries));
  counter("streamrun_records_restored_total", "Changelog entries applied to state by restores",
          static_cast<double>(stats.records_restored));
  counter("streamrun_commits_total", "Offset commits that succeeded",
          static_cast<double>(stats.commits));
  counter("streamrun_consumer_offset_resets_total",
          "Times a partition's position was moved on because the broker had deleted its records "
          "before they were read (retention): those records are lost to the application",
          static_cast<double>(stats.offset_resets));
  counter("streamrun_commit_failures_total",
          "Offset commits that failed (the records after them are processed again)",
          static_cast<double>(stats.commit_failures));
  out.family("streamrun_commit_latency_seconds", "histogram",
             "Periodic offset commits, from the request to the broker's answer");
  out.histogram("streamrun_commit_latency_seconds", none, commit_latency_.snapshot());
  counter("streamrun_partition_pauses_total",
          "Times a task's partitions were paused: its input was full, a record waited for a "
          "retry, or its calls for an open circuit breaker",
          static_cast<double>(stats.partitions_paused));
  gauge("streamrun_active_tasks", "Tasks running in this instance",
        static_cast<double>(stats.active_tasks));
  gauge("streamrun_producer_queue_records",
        "Records handed to the producer whose delivery is not reported yet",
        producer_ ? static_cast<double>(producer_->in_flight()) : 0);
  if (state_) {
    gauge("streamrun_state_cache_bytes",
          "RocksDB block cache and memtables of all tasks (state.memory.budget.bytes bounds it)",
          static_cast<double>(state_->cache_usage_bytes()));
  }

  // Per task and partition. The views are at most one commit interval old.
  std::vector<SlotView> views;
  {
    std::lock_guard lock(views_mutex_);
    views = slot_views_;
  }
  std::map<std::string, const SlotView*> view_of;
  for (const auto& view : views)
    view_of[view.task] = &view;
  struct TaskFigures {
    Labels labels;
    std::int64_t processed, produced, skipped, dead_lettered, retries, restored;
    std::size_t buffered;
    bool ready;
    LatencyHistogram::Snapshot processing, end_to_end;
    state::TaskState::Figures state;
    std::vector<TaskInstance::NodeCount> nodes;
  };
  std::vector<TaskFigures> figures;
  {
    std::lock_guard lock(tasks_mutex_);
    for (const auto& [key, slot] : tasks_) {
      const auto& task = *slot.task;
      const auto view = view_of.find(task.id());
      figures.push_back({{{"task", task.id()}, {"subtopology", std::to_string(key.first)}},
                         task.processed(),
                         task.produced(),
                         task.skipped(),
                         task.dead_lettered(),
                         task.retries(),
                         task.restored(),
                         task.depth() + (view != view_of.end() ? view->second->backlog : 0),
                         task.ready() && (view == view_of.end() || !view->second->restoring),
                         task.processing_latency(),
                         task.end_to_end_latency(),
                         task.state_figures(),
                         task.node_counts()});
    }
  }
  const auto per_task = [&](std::string_view name, std::string_view type, std::string_view help,
                            auto value_of) {
    out.family(name, type, help);
    for (const auto& task : figures)
      out.sample(name, task.labels, static_cast<double>(value_of(task)));
  };
  per_task("streamrun_task_records_processed_total", "counter", "Input records the task processed",
           [](const TaskFigures& t) { return t.processed; });
  per_task("streamrun_task_records_produced_total", "counter", "Records the task's sinks sent",
           [](const TaskFigures& t) { return t.produced; });
  per_task("streamrun_task_records_skipped_total", "counter",
           "Failed records the task dropped (errors.policy=skip)",
           [](const TaskFigures& t) { return t.skipped; });
  per_task("streamrun_task_records_dead_lettered_total", "counter",
           "Failed records the task wrote to a dead-letter topic",
           [](const TaskFigures& t) { return t.dead_lettered; });
  per_task("streamrun_task_record_retries_total", "counter",
           "Attempts at failed records after their first",
           [](const TaskFigures& t) { return t.retries; });
  per_task("streamrun_task_records_restored_total", "counter",
           "Changelog entries the task's restore applied",
           [](const TaskFigures& t) { return t.restored; });
  per_task("streamrun_task_buffered_records", "gauge",
           "Records fetched for the task and not processed yet",
           [](const TaskFigures& t) { return t.buffered; });
  per_task("streamrun_task_ready", "gauge", "1 when the task runs with its state restored",
           [](const TaskFigures& t) { return t.ready ? 1 : 0; });
  if (state_) {
    per_task("streamrun_task_state_bytes", "gauge",
             "RocksDB's estimate of the task's state, files and memtables (as of its last commit)",
             [](const TaskFigures& t) { return t.state.bytes; });
    per_task("streamrun_task_state_keys", "gauge",
             "RocksDB's estimate of the keys in the task's stores (as of its last commit)",
             [](const TaskFigures& t) { return t.state.keys; });
    per_task("streamrun_task_state_pending_compaction_bytes", "gauge",
             "Bytes RocksDB's compaction is behind by in the task's state",
             [](const TaskFigures& t) { return t.state.pending_compaction_bytes; });
  }
  for (const auto* name : {"streamrun_node_records_in_total", "streamrun_node_records_out_total"}) {
    const bool in = std::string_view(name).find("_in_") != std::string_view::npos;
    out.family(name, "counter",
               in ? "Records into the operator (what its parents passed on; for a source, what "
                    "it read)"
                  : "Records the operator passed on (emitted, or written by a sink)");
    for (const auto& task : figures) {
      for (const auto& node : task.nodes) {
        Labels labels = task.labels;
        labels.emplace_back("node", node.name);
        out.sample(name, labels, static_cast<double>(in ? node.in : node.out));
      }
    }
  }
  const auto sampling = config_.get(RuntimeProperties::metrics_latency_sample_records);
  const std::string sampled =
      sampling > 0 ? fmt::format("; one record in {} (metrics.latency.sample.records)", sampling)
                   : std::string("; off (metrics.latency.sample.records=0)");
  out.family("streamrun_task_processing_latency_seconds", "histogram",
             "From the task taking a record to its outputs handed to the producer" + sampled);
  for (const auto& task : figures)
    out.histogram("streamrun_task_processing_latency_seconds", task.labels, task.processing);
  out.family("streamrun_task_end_to_end_latency_seconds", "histogram",
             "From a record's timestamp to the end of its processing" + sampled);
  for (const auto& task : figures)
    out.histogram("streamrun_task_end_to_end_latency_seconds", task.labels, task.end_to_end);

  // The partition series come from the views: lag and pauses as the I/O fiber last saw them.
  const auto partition_labels = [](const SlotView& view, const TopicPartition& tp) -> Labels {
    return {{"task", view.task},
            {"subtopology", view.task.substr(0, view.task.find('_'))},
            {"topic", tp.topic.value()},
            {"partition", std::to_string(tp.partition.value())}};
  };
  out.family("streamrun_partition_lag_records", "gauge",
             "Records in the partition after the task's position (the end as of the last fetch)");
  for (const auto& view : views) {
    for (const auto& [tp, lag] : view.lag)
      out.sample("streamrun_partition_lag_records", partition_labels(view, tp),
                 static_cast<double>(lag));
  }
  out.family("streamrun_partition_paused", "gauge",
             "1 while the partition is paused: its task's input is full, a record waits for a "
             "retry, or its calls for an open circuit breaker");
  for (const auto& view : views) {
    for (const auto& tp : view.partitions)
      out.sample("streamrun_partition_paused", partition_labels(view, tp), view.paused ? 1 : 0);
  }
  render_call_metrics(out);
  return out.text();
}

void Application::Impl::render_call_metrics(PrometheusText& out) const {
  const auto endpoints = call_endpoint_figures(application_id_);
  if (endpoints.empty())
    return;
  const auto labels = [](const CallEndpointFigures& e, Labels more = {}) {
    more.insert(more.begin(), {"endpoint", e.endpoint});
    return more;
  };
  out.family("streamrun_call_breaker_state", "gauge",
             "The endpoint's circuit breaker: 0 closed, 1 half-open (probing), 2 open");
  for (const auto& e : endpoints) {
    const double state = e.state == CircuitBreaker::State::closed      ? 0
                         : e.state == CircuitBreaker::State::half_open ? 1
                                                                       : 2;
    out.sample("streamrun_call_breaker_state", labels(e), state);
  }
  out.family("streamrun_call_breaker_transitions_total", "counter",
             "Breaker transitions: to=open (from closed), reopen (a probe failed), closed");
  for (const auto& e : endpoints) {
    out.sample("streamrun_call_breaker_transitions_total", labels(e, {{"to", "open"}}),
               static_cast<double>(e.opened));
    out.sample("streamrun_call_breaker_transitions_total", labels(e, {{"to", "reopen"}}),
               static_cast<double>(e.reopened));
    out.sample("streamrun_call_breaker_transitions_total", labels(e, {{"to", "closed"}}),
               static_cast<double>(e.closed));
  }
  out.family("streamrun_calls_total", "counter",
             "Call attempts by how they ended: ok, failed (timeouts included), rejected");
  for (const auto& e : endpoints) {
    out.sample("streamrun_calls_total", labels(e, {{"outcome", "ok"}}),
               static_cast<double>(e.succeeded));
    out.sample("streamrun_calls_total", labels(e, {{"outcome", "failed"}}),
               static_cast<double>(e.failed));
    out.sample("streamrun_calls_total", labels(e, {{"outcome", "rejected"}}),
               static_cast<double>(e.rejected));
  }
  const auto counter = [&](const char* name, const char* help, auto field) {
    out.family(name, "counter", help);
    for (const auto& e : endpoints)
      out.sample(name, labels(e), static_cast<double>(e.*field));
  };
  counter("streamrun_call_timeouts_total", "Call attempts that timed out",
          &CallEndpointFigures::timed_out);
  counter("streamrun_call_retries_total", "Call attempts after a failure",
          &CallEndpointFigures::retried);
  counter("streamrun_call_rate_limited_total", "Times a call waited for the rate limiter",
          &CallEndpointFigures::rate_limited);
  counter("streamrun_call_fallbacks_total",
          "Records handled by when_open (fail, skip, dead_letter, fallback) instead of a call",
          &CallEndpointFigures::fallbacks);
  out.family("streamrun_calls_in_flight", "gauge",
             "Calls held by tasks: in flight, waiting for a retry or to go on in order");
  for (const auto& e : endpoints)
    out.sample("streamrun_calls_in_flight", labels(e), static_cast<double>(e.in_flight));
}

ApplicationStats Application::Impl::stats() const {
  ApplicationStats stats;
  std::lock_guard lock(tasks_mutex_);
  stats.records_processed = processed_before_;
  stats.records_produced = produced_before_;
  stats.records_dropped = dropped_before_;
  stats.records_late = late_before_;
  stats.records_restored = restored_before_;
  stats.records_skipped = skipped_before_;
  stats.records_dead_lettered = dead_lettered_before_;
  stats.retries = retries_before_;
  stats.max_channel_depth = max_depth_;
  for (const auto& [key, slot] : tasks_) {
    stats.records_processed += slot.task->processed();
    stats.records_produced += slot.task->produced();
    stats.records_dropped += slot.task->dropped();
    stats.records_late += slot.task->late();
    stats.records_restored += slot.task->restored();
    stats.records_skipped += slot.task->skipped();
    stats.records_dead_lettered += slot.task->dead_lettered();
    stats.retries += slot.task->retries();
    stats.max_channel_depth = std::max<std::int64_t>(
        stats.max_channel_depth, static_cast<std::int64_t>(slot.task->max_depth()));
  }
  stats.lag_records = lag_records_;
  stats.offset_resets = offset_resets_;
  stats.state_bytes = state_bytes_;
  stats.commits = commits_;
  stats.commit_failures = commit_failures_;
  stats.last_commit_ok = last_commit_ok_;
  stats.partitions_paused = paused_;
  stats.max_backlog = max_backlog_;
  stats.channel_bound = static_cast<std::int64_t>(channel_bound_);
  stats.active_tasks = active_tasks_;
  stats.max_task_start_ms = max_task_start_ms_;
  return stats;
}

Application::Application(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Application::~Application() = default;

Result<std::unique_ptr<Application>> Application::create(const Topology& topology,
                                                         const config::Properties& properties) {
  return create(topology, properties, Options{});
}

Result<std::unique_ptr<Application>> Application::create(const Topology& topology,
                                                         const config::Properties& properties,
                                                         Options options) {
  auto config = load_config(properties);
  if (!config)
    return config.error();
  if (config->is_set(RuntimeProperties::log_level.key()))
    log::set_level(config->get(RuntimeProperties::log_level));
  if (options.handle_signals) {
    // Until run() nothing is in flight, so a signal during start-up (waiting for the cluster)
    // ends the process at once. run() installs the graceful handler.
    exit_on_stop_signals();
  }
  if (topology.source_topics().empty()) {
    return Error(errc::invalid_argument, "the topology reads no topic");
  }
  const auto resolved = topology.resolved(config->get(RuntimeProperties::application_id));
  auto impl = std::make_unique<Impl>(resolved, std::move(config).value(), options);
  if (auto valid = impl->validate(); !valid)
    return valid.error();
  if (auto connected = impl->connect(); !connected)
    return connected.error();
  return std::unique_ptr<Application>(new Application(std::move(impl)));
}

Result<std::vector<InternalTopic>> Application::internal_topics(
    const Topology& topology, const config::Properties& properties, int input_partitions) {
  auto config = load_config(properties);
  if (!config)
    return config.error();
  const auto application_id = config->get(RuntimeProperties::application_id);
  const auto resolved = topology.resolved(application_id);
  const auto sinks = resolved.sink_topics();
  std::map<std::string, int> source_partitions;
  for (const auto& topic : resolved.source_topics()) {
    if (std::find(sinks.begin(), sinks.end(), topic) == sinks.end())
      source_partitions[topic] = input_partitions;  // not a repartition topic: the cluster's
  }
  return plan_internal_topics(
      resolved, application_id,
      dead_letter_topics_of(resolved, RuntimeProperties::error_policy(*config), application_id),
      source_partitions);
}

Result<std::string> Application::topic_listing(const Topology& topology,
                                               const config::Properties& properties,
                                               int input_partitions) {
  auto internal = internal_topics(topology, properties, input_partitions);
  if (!internal)
    return internal.error();
  const auto resolved =
      topology.resolved(load_config(properties)->get(RuntimeProperties::application_id));
  std::set<std::string> internal_names;
  for (const auto& topic : *internal)
    internal_names.insert(topic.name);
  const auto sources = resolved.source_topics();
  std::string listing;
  for (const auto& topic : sources) {
    if (!internal_names.contains(topic))
      listing += fmt::format("{}:{}\tinput\n", topic, input_partitions);
  }
  for (const auto& topic : resolved.sink_topics()) {
    if (!internal_names.contains(topic) &&
        std::find(sources.begin(), sources.end(), topic) == sources.end())
      listing += fmt::format("{}:{}\toutput\n", topic, input_partitions);
  }
  for (const auto& topic : *internal)
    listing += fmt::format("{}:{}\t{}\n", topic.name, topic.partitions, topic.role);
  return listing;
}

Result<void> Application::run() {
  return impl_->run();
}
void Application::stop() noexcept {
  impl_->stop();
}
std::optional<std::string> Application::admin_address() const {
  return impl_->admin_address();
}

ApplicationStats Application::stats() const {
  return impl_->stats();
}

}  // namespace streamrun::runtime
