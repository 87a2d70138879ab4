#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include <streamrun/base/result.h>
#include <streamrun/core/topology.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>

namespace streamrun::runtime {

// What the application asks of the cluster at start besides its inputs and outputs.
struct TopicProvisioning {
  std::string application_id;
  std::set<std::string> dead_letter_topics;
  std::chrono::milliseconds metadata_timeout;  // startup.timeout.ms
  std::chrono::milliseconds admin_timeout;     // admin.timeout.ms
};

// The topics one task reads together (a stream and the table it joins) must have as many
// partitions as each other: task p reads partition p of each. `source_partitions`: the
// partition count of every source topic that exists in the cluster (internal ones are absent).
[[nodiscard]] Result<void> check_co_partitioning(
    const Topology& topology, const std::map<std::string, int>& source_partitions);

// The repartition topics, changelogs and dead-letter topics of `topology`, with their partition
// counts (from `source_partitions`, the partition counts of its topics that exist in the
// cluster) and the configs to create them with.
[[nodiscard]] std::vector<InternalTopic> plan_internal_topics(
    const Topology& topology, std::string_view application_id,
    const std::set<std::string>& dead_letter_topics,
    const std::map<std::string, int>& source_partitions);

// Repartition topics, changelogs (compacted) and dead-letter topics: created in one Admin API
// request when missing, checked when present (partition counts; a changelog's cleanup policy).
// A cluster without the Admin API is asked once and trusted to create topics on first use.
// `existing`: every topic of the cluster with its partition count. Called once, at start.
[[nodiscard]] Result<void> ensure_internal_topics(
    const Topology& topology, const TopicProvisioning& options,
    const std::map<std::string, int>& source_partitions, const std::map<std::string, int>& existing,
    kafka::Producer& producer, spdlog::logger& logger);

// Each name in single quotes, for messages that list topics.
[[nodiscard]] std::vector<std::string> quoted(const std::vector<std::string>& names);

}  // namespace streamrun::runtime
