#include <streamrun/base/ids.h>
#include <streamrun/runtime/runtime_config.h>

#include "admin_server.h"

namespace streamrun::runtime {

using config::Property;
using config::ValueType;

const Property<std::string> RuntimeProperties::application_id{
    {.key = "application.id",
     .type = ValueType::string,
     .default_value = std::nullopt,
     .doc = "Names the consumer group and prefixes internal topics; instances with the same id "
            "share the work. Letters, digits, '.', '_' and '-' (it becomes part of topic names "
            "and of the state directory's path)",
     .validate = [](std::string_view id) { return invalid_topic_name(id); }}};

const Property<std::int64_t> RuntimeProperties::num_threads{
    {.key = "num.threads",
     .type = ValueType::integer,
     .default_value = "0",
     .doc = "Worker threads that run the task fibers; 0 means one per core",
     .min = 0,
     .max = 256}};

const Property<std::int64_t> RuntimeProperties::commit_interval_ms{
    {.key = "commit.interval.ms",
     .type = ValueType::integer,
     .default_value = "100",
     .doc = "How often each task commits the offsets of records whose outputs are acknowledged",
     .min = 1,
     .max = 3'600'000}};

const Property<std::int64_t> RuntimeProperties::buffered_records_per_partition{
    {.key = "buffered.records.per.partition",
     .type = ValueType::integer,
     .default_value = "1000",
     .doc =
         "Bound of each task's input channel, records; a task whose channel is full gets no more "
         "until it has room (the rest wait in the bounded prefetch; see input.partition.queues)",
     .min = 1,
     .max = 1'000'000}};

const Property<std::int64_t> RuntimeProperties::poll_batch_records{
    {.key = "poll.batch.records",
     .type = ValueType::integer,
     .default_value = "500",
     .doc = "Most records taken from the consumer per poll",
     .min = 1,
     .max = 100'000}};

const Property<bool> RuntimeProperties::input_partition_queues{
    {.key = "input.partition.queues",
     .type = ValueType::boolean,
     .default_value = "true",
     .doc = "Take each partition's records from its own fetch queue when its task has room, so "
            "that librdkafka's prefetch (bounded by input.buffer.max.bytes) absorbs bursts; "
            "false: one shared queue, and a partition whose task is behind is paused (which "
            "drops its prefetched records and refetches them after the resume)"}};

const Property<std::int64_t> RuntimeProperties::input_buffer_max_bytes{
    {.key = "input.buffer.max.bytes",
     .type = ValueType::integer,
     .default_value = "268435456",
     .doc = "Memory for input records fetched ahead of their tasks, all partitions together "
            "(with input.partition.queues): each source partition of the topology gets an even "
            "share of librdkafka's prefetch (queued.max.messages.kbytes, queued.min.messages at "
            "256 bytes a record, max.partition.fetch.bytes); consumer.* settings of those keys "
            "win. Smaller: less memory, and below about 8 MiB a partition less throughput",
     .min = 1 << 20,
     .max = std::int64_t{1} << 40}};

const Property<std::int64_t> RuntimeProperties::startup_timeout_ms{
    {.key = "startup.timeout.ms",
     .type = ValueType::integer,
     .default_value = "30000",
     .doc = "How long start-up waits for the Kafka cluster to answer before giving up",
     .min = 100,
     .max = 3'600'000}};

const Property<std::int64_t> RuntimeProperties::shutdown_timeout_ms{
    {.key = "shutdown.timeout.ms",
     .type = ValueType::integer,
     .default_value = "30000",
     .doc = "How long a graceful stop waits for outputs to be acknowledged",
     .min = 100,
     .max = 3'600'000}};

const Property<std::int64_t> RuntimeProperties::admin_timeout_ms{
    {.key = "admin.timeout.ms",
     .type = ValueType::integer,
     .default_value = "5000",
     .doc = "How long start-up waits for the cluster's Admin API (creating internal topics, "
            "checking that changelogs are compacted); a cluster that does not answer is asked "
            "once, and start-up goes on without it",
     .min = 100,
     .max = 600'000}};

const Property<std::string> RuntimeProperties::log_level{
    {.key = "log.level",
     .type = ValueType::choice,
     .default_value = "info",
     .doc = "Log level of streamrun and its clients",
     .choices = {"trace", "debug", "info", "warn", "error", "critical", "off"}}};

const Property<std::string> RuntimeProperties::state_dir{
    {.key = "state.dir",
     .type = ValueType::string,
     .default_value = "/tmp/streamrun",
     .doc = "Where tasks keep their state: <state.dir>/<application.id>/<task>/ (RocksDB)"}};

const Property<std::int64_t> RuntimeProperties::state_memory_budget_bytes{
    {.key = "state.memory.budget.bytes",
     .type = ValueType::integer,
     .default_value = "268435456",
     .doc = "Memory for all tasks' state together: a quarter for the stores' record caches "
            "(recent values, and writes between commits), shared evenly by every store of every "
            "task the instance can run (64 KiB to 16 MiB each); the rest for RocksDB's block "
            "cache and write buffers",
     .min = 1 << 20,
     .max = std::int64_t{1} << 40}};

const Property<std::string> RuntimeProperties::errors_policy{
    {.key = "errors.policy",
     .type = ValueType::choice,
     .default_value = "fail",
     .doc = "What happens to a record that cannot be deserialized, makes an operator throw or "
            "cannot be serialized, once its retries are used up: fail (stop the task), skip "
            "(log and count) or dead_letter (write it to errors.dead.letter.topic)",
     .choices = {"fail", "skip", "dead_letter"}}};

const Property<std::int64_t> RuntimeProperties::errors_retries{
    {.key = "errors.retries",
     .type = ValueType::integer,
     .default_value = "0",
     .doc = "Attempts after the first for a failing record; its partition is paused meanwhile",
     .min = 0,
     .max = 1000}};

const Property<std::int64_t> RuntimeProperties::errors_retry_backoff_ms{
    {.key = "errors.retry.backoff.ms",
     .type = ValueType::integer,
     .default_value = "100",
     .doc = "Ceiling of the first retry's random delay; doubles with each retry (full jitter)",
     .min = 0,
     .max = 3'600'000}};

const Property<std::int64_t> RuntimeProperties::errors_retry_backoff_max_ms{
    {.key = "errors.retry.backoff.max.ms",
     .type = ValueType::integer,
     .default_value = "10000",
     .doc = "Largest ceiling of a retry's random delay",
     .min = 0,
     .max = 3'600'000}};

const Property<std::int64_t> RuntimeProperties::errors_retry_max_delay_ms{
    {.key = "errors.retry.max.delay.ms",
     .type = ValueType::integer,
     .default_value = "60000",
     .doc = "Most time all the retries of one record may wait together",
     .min = 0,
     .max = 86'400'000}};

const Property<std::string> RuntimeProperties::errors_dead_letter_topic{
    {.key = "errors.dead.letter.topic",
     .type = ValueType::string,
     .default_value = "${application.id}-dead-letter",
     .doc = "Where errors.policy=dead_letter writes failed records, with headers saying what "
            "failed, where and when",
     // A topic name once ${application.id} is in place (its length is checked at start).
     .validate = [](std::string_view topic) {
       // Built piece by piece: GCC 12 warns falsely (-Wrestrict) on string::replace here.
       const std::string_view placeholder = "${application.id}";
       std::string name;
       for (auto at = topic.find(placeholder); at != std::string_view::npos;
            at = topic.find(placeholder)) {
         name.append(topic.substr(0, at)).append("a");
         topic.remove_prefix(at + placeholder.size());
       }
       name.append(topic);
       return invalid_topic_name(name);
     }}};

const Property<std::string> RuntimeProperties::admin_listen{
    {.key = "admin.listen",
     .type = ValueType::string,
     .default_value = kDefaultAdminListen,
     .doc = "HOST:PORT of the application's HTTP endpoint: /metrics (Prometheus), /healthz, "
            "/readyz (docs/operations.md); 0: none. A taken default port is replaced by a free "
            "one (logged); a non-loopback HOST needs admin.allow.remote",
     .validate = [](std::string_view listen) { return invalid_admin_listen(listen); }}};

const Property<bool> RuntimeProperties::admin_allow_remote{
    {.key = "admin.allow.remote",
     .type = ValueType::boolean,
     .default_value = "false",
     .doc = "Allow admin.listen on an address other hosts can reach (the endpoint has no "
            "authentication)"}};

const Property<std::string> RuntimeProperties::application_server{
    {.key = "application.server",
     .type = ValueType::string,
     .default_value = "",
     .doc = "HOST:PORT other instances give to clients for the state this instance holds (GET "
            "/state/...), stored with its offset commits; empty: the admin endpoint's address "
            "(this host's name for a wildcard address)",
     .validate = [](std::string_view server) {
       if (server.empty() ||
           (server != "0" && !server.ends_with(":0") && invalid_admin_listen(server).empty()))
         return std::string();
       return std::string(
           "must be HOST:PORT (where others reach this instance's admin endpoint; "
           "port 1 to 65535) or empty");
     }}};

const Property<std::int64_t> RuntimeProperties::metrics_latency_sample_records{
    {.key = "metrics.latency.sample.records",
     .type = ValueType::integer,
     .default_value = "16",
     .doc = "Time one record in this many for the latency histograms of /metrics (processing "
            "and end-to-end); 0: none. Counters count every record",
     .min = 0,
     .max = 1'000'000}};

ErrorPolicy RuntimeProperties::error_policy(const config::Config& config) {
  ErrorPolicy policy;
  const auto action = config.get(errors_policy);
  policy.action = action == "skip"          ? ErrorPolicy::Action::skip
                  : action == "dead_letter" ? ErrorPolicy::Action::dead_letter
                                            : ErrorPolicy::Action::fail;
  policy.retries = static_cast<int>(config.get(errors_retries));
  policy.backoff = std::chrono::milliseconds(config.get(errors_retry_backoff_ms));
  policy.max_backoff = std::chrono::milliseconds(config.get(errors_retry_backoff_max_ms));
  policy.max_total_delay = std::chrono::milliseconds(config.get(errors_retry_max_delay_ms));
  policy.dead_letter_topic = config.get(errors_dead_letter_topic);
  return policy;
}

const config::ConfigDef& RuntimeProperties::definition() {
  static const config::ConfigDef def{&application_id.spec(),
                                     &num_threads.spec(),
                                     &commit_interval_ms.spec(),
                                     &buffered_records_per_partition.spec(),
                                     &poll_batch_records.spec(),
                                     &input_partition_queues.spec(),
                                     &input_buffer_max_bytes.spec(),
                                     &startup_timeout_ms.spec(),
                                     &shutdown_timeout_ms.spec(),
                                     &admin_timeout_ms.spec(),
                                     &log_level.spec(),
                                     &state_dir.spec(),
                                     &state_memory_budget_bytes.spec(),
                                     &errors_policy.spec(),
                                     &errors_retries.spec(),
                                     &errors_retry_backoff_ms.spec(),
                                     &errors_retry_backoff_max_ms.spec(),
                                     &errors_retry_max_delay_ms.spec(),
                                     &errors_dead_letter_topic.spec(),
                                     &admin_listen.spec(),
                                     &admin_allow_remote.spec(),
                                     &application_server.spec(),
                                     &metrics_latency_sample_records.spec()};
  return def;
}

}  // namespace streamrun::runtime
