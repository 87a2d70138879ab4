#include <streamrun/runtime/runtime_config.h>

namespace streamrun::runtime {

using config::Property;
using config::ValueType;

const Property<std::string> RuntimeProperties::application_id{
    {.key = "application.id",
     .type = ValueType::string,
     .default_value = std::nullopt,
     .doc = "Names the consumer group and prefixes internal topics; instances with the same id "
            "share the work"}};

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
     .doc = "Bound of each task's input channel; a full channel pauses its partition",
     .min = 1,
     .max = 1'000'000}};

const Property<std::int64_t> RuntimeProperties::poll_batch_records{
    {.key = "poll.batch.records",
     .type = ValueType::integer,
     .default_value = "500",
     .doc = "Most records taken from the consumer per poll",
     .min = 1,
     .max = 100'000}};

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
     .doc = "Memory for the block cache and write buffers of all tasks' state together",
     .min = 1 << 20,
     .max = std::int64_t{1} << 40}};

const config::ConfigDef& RuntimeProperties::definition() {
  static const config::ConfigDef def{
      &application_id.spec(),      &num_threads.spec(),
      &commit_interval_ms.spec(),  &buffered_records_per_partition.spec(),
      &poll_batch_records.spec(),  &startup_timeout_ms.spec(),
      &shutdown_timeout_ms.spec(), &log_level.spec(),
      &state_dir.spec(),           &state_memory_budget_bytes.spec()};
  return def;
}

}  // namespace streamrun::runtime
