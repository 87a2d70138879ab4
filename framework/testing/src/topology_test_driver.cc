#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <stdexcept>

#include <streamrun/core/partitioner.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun::testing {

class TopologyTestDriver::Impl final : public RecordCollector {
 public:
  Impl(const Topology& topology, Options options)
      : now_ms_(options.start_time_ms),
        topology_(topology.resolved(options.application_id)),
        options_(std::move(options)) {
    // Topics the topology writes and reads again are internal (repartition topics): as many
    // partitions as the largest input, as the runtime creates them.
    const auto sinks = topology_.sink_topics();
    std::int32_t largest_input = 1;
    for (const auto& topic : topology_.source_topics()) {
      if (std::find(sinks.begin(), sinks.end(), topic) == sinks.end())
        largest_input = std::max(largest_input, configured_partitions(topic));
    }
    for (const auto& topic : topology_.source_topics()) {
      if (std::find(sinks.begin(), sinks.end(), topic) == sinks.end())
        continue;
      // Read together with an input topic (a join after a key change): as many partitions as
      // that topic, as the runtime creates it.
      std::int32_t partitions = largest_input;
      for (const auto& other : topology_.source_topics(topology_.subtopology_of_topic(topic))) {
        if (std::find(sinks.begin(), sinks.end(), other) == sinks.end())
          partitions = configured_partitions(other);
      }
      internal_partitions_[topic] = partitions;
    }
    for (int s = 0; s < topology_.subtopology_count(); ++s) {
      const std::int32_t partitions = co_partitioned_count(s);
      for (std::int32_t p = 0; p < partitions; ++p) {
        auto& stores = stores_[{s, p}];
        for (const auto& name : topology_.stores(s))
          stores.emplace(name, std::make_unique<InMemoryKeyValueStore>(name));
        tasks_.emplace(std::pair{s, p}, std::make_unique<TaskInstance>(
                                            topology_, TaskInfo{options_.application_id, s, p},
                                            *this, [this] { return now_ms_; },
                                            [&stores](std::string_view name) -> KeyValueStore& {
                                              return *stores.find(name)->second;
                                            }));
      }
    }
  }

  ~Impl() override {
    for (auto& [key, task] : tasks_)
      task->close();
  }

  std::int32_t partitions_of(std::string_view topic) const {
    if (auto it = internal_partitions_.find(topic); it != internal_partitions_.end())
      return it->second;
    return configured_partitions(topic);
  }

  KeyValueStore& store(std::string_view name, std::optional<std::int32_t> partition) {
    std::vector<KeyValueStore*> found;
    std::vector<std::int32_t> partitions;
    for (auto& [key, stores] : stores_) {
      auto it = stores.find(name);
      if (it == stores.end())
        continue;
      if (partition && key.second == *partition)
        return *it->second;
      found.push_back(it->second.get());
      partitions.push_back(key.second);
    }
    if (found.empty() || partition) {
      throw std::invalid_argument("the topology has no state store '" + std::string(name) + "'" +
                                  (partition ? " in partition " + std::to_string(*partition) : ""));
    }
    if (found.size() > 1) {
      throw std::invalid_argument("state store '" + std::string(name) + "' has an instance per " +
                                  "partition (" + std::to_string(found.size()) +
                                  "); name the partition");
    }
    return *found.front();
  }

  std::int64_t dropped() const {
    std::int64_t total = 0;
    for (const auto& [key, task] : tasks_)
      total += task->dropped();
    return total;
  }

  void send(std::string_view topic, std::optional<std::string> key,
            std::optional<std::string> value, const RecordHeaders& headers,
            std::int64_t timestamp_ms, const RecordOrigin& /*origin*/) override {
    append(topic, {std::move(key), std::move(value), headers, timestamp_ms, -1});
  }

  void pipe(std::string_view topic, TestRecord record) {
    if (topology_.subtopology_of_topic(topic) < 0) {
      throw std::invalid_argument("no operator of the topology reads topic '" + std::string(topic) +
                                  "'");
    }
    if (record.partition >= partitions_of(topic)) {
      throw std::invalid_argument("topic '" + std::string(topic) + "' has " +
                                  std::to_string(partitions_of(topic)) + " partition(s); " +
                                  std::to_string(record.partition) + " does not exist");
    }
    append(topic, std::move(record));
    drain();
  }

  // Processes what is queued, and what finished async calls pass on, until neither is left.
  void drain() {
    if (running_)
      return;  // the outer pipe() drains the queue
    running_ = true;
    struct Reset {
      Impl& impl;
      ~Reset() {
        impl.running_ = false;
        impl.pending_.clear();
      }
    } reset{*this};
    while (!pending_.empty()) {
      auto [subtopology, topic_name, index] = pending_.front();
      {
        // A task whose async calls are at capacity takes no record (the runtime's backpressure):
        // it waits, in order, until run_calls() made room.
        const auto& stored = topics_[topic_name];
        const std::pair<int, std::int32_t> id{subtopology, stored.records[index].partition};
        if (tasks_.at(id)->calls_full() ||
            std::any_of(waiting_.begin(), waiting_.end(),
                        [&](const auto& w) { return w.first == id; })) {
          waiting_.emplace_back(id, pending_.front());
          pending_.pop_front();
          continue;
        }
      }
      pending_.pop_front();
      // A copy: processing may append to this very topic and move its records.
      const auto& stored_topic = topics_[topic_name];
      const TestRecord stored = stored_topic.records[index];
      RawRecord raw;
      if (stored.key)
        raw.key = *stored.key;
      if (stored.value)
        raw.value = *stored.value;
      raw.headers = stored.headers;
      raw.timestamp_ms = stored.timestamp_ms;
      raw.origin = {topic_name, stored.partition, stored_topic.offsets[index]};
      tasks_.at({subtopology, stored.partition})->process(raw, handling_);
      if (pending_.empty()) {
        for (auto& [id, task] : tasks_) {
          if (task->has_calls())
            task->run_calls(handling_);  // may queue what finished calls passed on
        }
      }
    }
  }

  // Wall-clock punctuators that are due, and what their outputs cause.
  void punctuate() {
    for (auto& [id, task] : tasks_)
      task->punctuate(PunctuationType::wall_clock);
    drain();
  }

  void run_calls() {
    if (running_)
      return;  // inside pipe(): it runs them
    for (auto& [id, task] : tasks_) {
      if (task->has_calls())
        task->run_calls(handling_);
    }
    std::set<std::pair<int, std::int32_t>> still_full;
    std::deque<std::pair<std::pair<int, std::int32_t>, Pending>> waiting;
    for (auto& [id, entry] : waiting_) {
      if (still_full.contains(id) || tasks_.at(id)->calls_full()) {
        still_full.insert(id);
        waiting.emplace_back(id, std::move(entry));
      } else {
        pending_.push_back(std::move(entry));
      }
    }
    waiting_ = std::move(waiting);
    drain();
  }

  [[nodiscard]] std::size_t calls_held() const {
    std::size_t held = 0;
    for (const auto& [id, task] : tasks_)
      held += task->calls_held();
    return held;
  }

  void set_error_policy(ErrorPolicy policy) {
    handling_.default_policy = std::move(policy);
    // Retries wait on the driver's clock; jitter is fixed at half the range, so tests can
    // predict the waits.
    handling_.wait = [this](std::chrono::milliseconds delay) { now_ms_ += delay.count(); };
    handling_.unit_random = [] { return 0.5; };
    handling_.dead_letter = [this](const RawRecord& letter, const std::string& topic) {
      TestRecord record;
      if (letter.key)
        record.key = std::string(*letter.key);
      if (letter.value)
        record.value = std::string(*letter.value);
      record.headers = letter.headers;
      record.timestamp_ms = letter.timestamp_ms;
      append(topic, std::move(record));
    };
    handling_.skipped = [this](const RawRecord&, const OperatorFailure&) { ++skipped_; };
  }

  std::int64_t skipped_ = 0;

  std::vector<TestRecord> read(std::string_view topic) {
    auto& stored = topics_[std::string(topic)];
    std::vector<TestRecord> unread;
    for (auto i = stored.read; i < stored.records.size(); ++i)
      unread.push_back(stored.records[i]);
    stored.read = stored.records.size();
    return unread;
  }

  const std::vector<TestRecord>& contents(std::string_view topic) {
    return topics_[std::string(topic)].records;
  }

  std::int64_t now_ms_ = 0;

 private:
  struct StoredTopic {
    std::vector<TestRecord> records;    // in the order written, over all partitions
    std::vector<std::int64_t> offsets;  // of each record in its partition
    std::map<std::int32_t, std::int64_t> next_offset;
    std::int64_t next_null_key_partition = 0;
    std::size_t read = 0;
  };
  struct Pending {
    int subtopology;
    std::string topic;
    std::size_t index;
  };

  std::int32_t configured_partitions(std::string_view topic) const {
    if (auto it = options_.partitions.find(topic); it != options_.partitions.end())
      return it->second;
    return options_.default_partitions;
  }

  // Task p of a sub-topology reads partition p of each of its topics: they must agree.
  std::int32_t co_partitioned_count(int subtopology) const {
    std::set<std::int32_t> counts;
    std::string described;
    for (const auto& topic : topology_.source_topics(subtopology)) {
      counts.insert(partitions_of(topic));
      described += (described.empty() ? "'" : " and '") + topic + "' (" +
                   std::to_string(partitions_of(topic)) + " partitions)";
    }
    if (counts.size() > 1) {
      throw std::invalid_argument("topics " + described + " are read together by sub-topology " +
                                  std::to_string(subtopology) +
                                  " (a join, or one stream of several topics) but are not "
                                  "co-partitioned: they need the same partition count");
    }
    return counts.empty() ? 1 : *counts.begin();
  }

  // Stores a record in the partition its key maps to (or the one it names); a topic the
  // topology reads queues the record for the task of that partition.
  void append(std::string_view topic, TestRecord record) {
    auto& stored = topics_[std::string(topic)];
    const std::int32_t partitions = partitions_of(topic);
    if (record.partition < 0) {
      record.partition =
          record.key ? partition_for_key(*record.key, partitions)
                     : static_cast<std::int32_t>(stored.next_null_key_partition++ % partitions);
    }
    const std::int64_t offset = stored.next_offset[record.partition]++;
    stored.records.push_back(std::move(record));
    stored.offsets.push_back(offset);
    const int subtopology = topology_.subtopology_of_topic(topic);
    if (subtopology >= 0)
      pending_.push_back({subtopology, std::string(topic), stored.records.size() - 1});
  }

  Topology topology_;
  Options options_;
  std::map<std::string, std::int32_t, std::less<>> internal_partitions_;
  // One set of stores per task; declared before the tasks, whose operators point at them.
  std::map<std::pair<int, std::int32_t>,
           std::map<std::string, std::unique_ptr<InMemoryKeyValueStore>, std::less<>>>
      stores_;
  std::map<std::pair<int, std::int32_t>, std::unique_ptr<TaskInstance>> tasks_;
  std::map<std::string, StoredTopic, std::less<>> topics_;
  std::deque<Pending> pending_;
  // Records for tasks whose async calls are at capacity, in arrival order.
  std::deque<std::pair<std::pair<int, std::int32_t>, Pending>> waiting_;
  bool running_ = false;
  FailureHandling handling_;
};

TopologyTestDriver::TopologyTestDriver(const Topology& topology, Options options)
    : impl_(std::make_unique<Impl>(topology, std::move(options))) {
  impl_->set_error_policy(ErrorPolicy::fail());
}

TopologyTestDriver::TopologyTestDriver(const Topology& topology, std::string application_id,
                                       std::int64_t start_time_ms)
    : TopologyTestDriver(topology, Options{.application_id = std::move(application_id),
                                           .start_time_ms = start_time_ms}) {}

void TopologyTestDriver::set_error_policy(ErrorPolicy policy) {
  impl_->set_error_policy(std::move(policy));
}

std::int64_t TopologyTestDriver::skipped() const {
  return impl_->skipped_;
}

std::int64_t TopologyTestDriver::dropped() const {
  return impl_->dropped();
}

TopologyTestDriver::~TopologyTestDriver() = default;

void TopologyTestDriver::pipe_raw(std::string_view topic, TestRecord record) {
  impl_->pipe(topic, std::move(record));
}

std::vector<TestRecord> TopologyTestDriver::read_raw(std::string_view topic) {
  return impl_->read(topic);
}

const std::vector<TestRecord>& TopologyTestDriver::topic_contents(std::string_view topic) const {
  return impl_->contents(topic);
}

void TopologyTestDriver::advance_time(std::chrono::milliseconds by) {
  impl_->now_ms_ += by.count();
  impl_->punctuate();
  run_calls();
}

void TopologyTestDriver::run_calls() {
  impl_->run_calls();
}

std::size_t TopologyTestDriver::calls_held() const {
  return impl_->calls_held();
}

std::int64_t TopologyTestDriver::now_ms() const {
  return impl_->now_ms_;
}

KeyValueStore& TopologyTestDriver::store(std::string_view name,
                                         std::optional<std::int32_t> partition) {
  return impl_->store(name, partition);
}

}  // namespace streamrun::testing
