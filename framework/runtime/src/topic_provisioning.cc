#include "topic_provisioning.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <streamrun/base/errc.h>

#include "changelog.h"

namespace streamrun::runtime {

std::vector<std::string> quoted(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& name : names)
    out.push_back("'" + name + "'");
  return out;
}

Result<void> check_co_partitioning(const Topology& topology,
                                   const std::map<std::string, int>& source_partitions) {
  for (int s = 0; s < topology.subtopology_count(); ++s) {
    std::vector<std::string> described;
    std::set<int> counts;
    for (const auto& topic : topology.source_topics(s)) {
      auto it = source_partitions.find(topic);
      if (it == source_partitions.end())
        continue;  // internal: created with the input's partition count
      counts.insert(it->second);
      described.push_back(fmt::format("'{}' ({} partitions)", topic, it->second));
    }
    if (counts.size() > 1) {
      return Error(errc::invalid_argument,
                   fmt::format("topics {} are read together by sub-topology {} (a join, or one "
                               "stream of several topics) but are not co-partitioned: each task "
                               "reads the same partition of every one of them, so they need the "
                               "same partition count (and the same key partitioner)",
                               fmt::join(described, " and "), s));
    }
  }
  return {};
}

std::vector<InternalTopic> plan_internal_topics(
    const Topology& topology, std::string_view application_id,
    const std::set<std::string>& dead_letter_topics,
    const std::map<std::string, int>& source_partitions) {
  // A repartition topic has as many partitions as the input it redistributes (DESIGN rule 2);
  // with several inputs, as many as the largest.
  int input_partitions = 1;
  for (const auto& [topic, count] : source_partitions)
    input_partitions = std::max(input_partitions, count);
  std::vector<InternalTopic> internals;
  const auto sinks = topology.sink_topics();
  for (const auto& topic : topology.source_topics()) {
    if (std::find(sinks.begin(), sinks.end(), topic) == sinks.end())
      continue;
    // Read together with a topic of the cluster (a join after a key change): as many
    // partitions as that topic, so that task p finds partition p of both.
    int partitions = input_partitions;
    for (const auto& other : topology.source_topics(topology.subtopology_of_topic(topic))) {
      if (auto it = source_partitions.find(other); it != source_partitions.end())
        partitions = it->second;
    }
    internals.push_back({topic, partitions, "repartition topic", {}});
  }
  for (int s = 0; s < topology.subtopology_count(); ++s) {
    int partitions = 0;
    for (const auto& topic : topology.source_topics(s)) {
      auto it = source_partitions.find(topic);
      partitions =
          std::max(partitions, it != source_partitions.end() ? it->second : input_partitions);
    }
    for (const auto& store : topology.stores(s)) {
      // Compacted, and not before a day: a restart within that time still finds the entries
      // its restore discards next to the ones it keeps (see changelog.h).
      std::map<std::string, std::string> configs{{"cleanup.policy", "compact"},
                                                 {"min.compaction.lag.ms", "86400000"}};
      const auto window_retention = topology.window_retention_ms(store);
      if (window_retention) {
        // Each window is a key of its own: compaction alone would keep every window for ever.
        // Expired windows may go a day after the store dropped them (as Kafka Streams'
        // windowstore.changelog.additional.retention.ms).
        configs["cleanup.policy"] = "compact,delete";
        configs["retention.ms"] = std::to_string(*window_retention + 86'400'000);
      }
      internals.push_back({changelog_topic(application_id, store), partitions,
                           fmt::format("changelog of store '{}'", store), std::move(configs),
                           /*changelog=*/true, window_retention});
    }
  }
  for (const auto& topic : dead_letter_topics)
    internals.push_back({topic, 1, "dead-letter topic", {}});
  return internals;
}

Result<void> ensure_internal_topics(const Topology& topology, const TopicProvisioning& options,
                                    const std::map<std::string, int>& source_partitions,
                                    const std::map<std::string, int>& existing,
                                    kafka::Producer& producer, spdlog::logger& logger) {
  const auto internals = plan_internal_topics(topology, options.application_id,
                                              options.dead_letter_topics, source_partitions);
  if (internals.empty())
    return {};
  const auto timeout = options.metadata_timeout;
  const auto admin_timeout = options.admin_timeout;

  // Missing ones are created in one Admin API request. A cluster without the Admin API (or
  // without the right to use it) may still create topics on first use; it is asked only once.
  bool admin_available = true;
  std::vector<kafka::NewTopic> to_create;
  for (const auto& topic : internals) {
    if (!existing.contains(topic.name))
      to_create.push_back({topic.name, topic.partitions, -1, topic.configs});
  }
  std::map<std::string, int> partitions_of(existing.begin(), existing.end());
  std::set<std::string> created;
  if (!to_create.empty()) {
    auto outcome = producer.create_topics(to_create, admin_timeout);
    std::vector<std::string> names;
    for (const auto& topic : to_create)
      names.push_back(topic.name);
    if (!outcome) {
      admin_available = false;
      logger.warn(
          "the cluster did not create topics through its Admin API ({}); relying on it to "
          "create {} on first use, with its default settings",
          outcome.error().message(), fmt::join(quoted(names), ", "));
    }
    for (const auto& topic : to_create) {
      if (outcome) {
        if (const auto& error = outcome->at(topic.name)) {
          return error->with_context(fmt::format(
              "cannot create internal topic '{}': create it yourself with {} partitions",
              topic.name, topic.partitions));
        }
        created.insert(topic.name);
        partitions_of[topic.name] = topic.partitions;
        logger.info("created internal topic '{}' with {} partitions", topic.name, topic.partitions);
        continue;
      }
      auto counted = producer.partition_count(topic.name, timeout);  // creates it on first use
      if (!counted)
        return counted.error().with_context("internal topic '" + topic.name + "'");
      partitions_of[topic.name] = *counted;
    }
  }
  for (const auto& topic : internals) {
    const int partitions = partitions_of.at(topic.name);
    if (partitions < topic.partitions) {
      return Error(
          errc::invalid_argument,
          fmt::format("{} '{}' has {} partitions but the application reads {} "
                      "partitions there; delete it and recreate it with {} partitions "
                      "(the application recreates it itself when it is missing)",
                      topic.role, topic.name, partitions, topic.partitions, topic.partitions));
    }
  }

  // Changelogs that existed before are checked: one that is not compacted loses state.
  std::vector<std::string> to_check;
  for (const auto& topic : internals) {
    if (topic.changelog && !created.contains(topic.name))
      to_check.push_back(topic.name);
  }
  if (to_check.empty())
    return {};
  if (!admin_available) {
    logger.warn(
        "cannot check that changelogs {} are compacted: the cluster has no Admin API; "
        "a changelog with cleanup.policy=delete loses state to retention",
        fmt::join(quoted(to_check), ", "));
    return {};
  }
  auto described = producer.describe_topic_configs(to_check, admin_timeout);
  if (!described) {
    logger.warn(
        "cannot check that changelogs {} are compacted ({}); a changelog with "
        "cleanup.policy=delete loses state to retention",
        fmt::join(quoted(to_check), ", "), described.error().message());
    return {};
  }
  for (const auto& [topic, configs] : *described) {
    std::optional<std::int64_t> window_retention;
    for (const auto& internal : internals) {
      if (internal.name == topic)
        window_retention = internal.window_retention_ms;
    }
    if (auto checked = check_changelog_config(topic, configs, window_retention); !checked)
      return checked.error();
  }
  return {};
}

}  // namespace streamrun::runtime
