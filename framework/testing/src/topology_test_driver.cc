#include <deque>
#include <map>
#include <stdexcept>

#include <streamrun/testing/topology_test_driver.h>

namespace streamrun::testing {

class TopologyTestDriver::Impl final : public RecordCollector {
 public:
  Impl(const Topology& topology, std::string application_id, std::int64_t start_time_ms)
      : topology_(topology.resolved(application_id)), now_ms_(start_time_ms) {
    for (int s = 0; s < topology_.subtopology_count(); ++s) {
      for (const auto& name : topology_.stores(s)) {
        stores_.emplace(name, std::make_unique<InMemoryKeyValueStore>(name));
      }
      tasks_.push_back(std::make_unique<TaskInstance>(
          topology_, TaskInfo{application_id, s, 0}, *this, [this] { return now_ms_; },
          [this](std::string_view name) -> KeyValueStore& { return store(name); }));
    }
  }

  KeyValueStore& store(std::string_view name) {
    auto it = stores_.find(name);
    if (it == stores_.end()) {
      throw std::invalid_argument("the topology has no state store '" + std::string(name) + "'");
    }
    return *it->second;
  }

  ~Impl() override {
    for (auto& task : tasks_)
      task->close();
  }

  void send(std::string_view topic, std::optional<std::string> key,
            std::optional<std::string> value, const RecordHeaders& headers,
            std::int64_t timestamp_ms, const RecordOrigin& /*origin*/) override {
    append(topic, {std::move(key), std::move(value), headers, timestamp_ms});
  }

  void pipe(std::string_view topic, TestRecord record) {
    if (topology_.subtopology_of_topic(topic) < 0) {
      throw std::invalid_argument("no operator of the topology reads topic '" + std::string(topic) +
                                  "'");
    }
    append(topic, std::move(record));
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
      auto [task, topic_name, offset] = pending_.front();
      pending_.pop_front();
      // A copy: processing may append to this very topic and move its records.
      const TestRecord stored = topics_[topic_name].records[static_cast<std::size_t>(offset)];
      RawRecord raw;
      if (stored.key)
        raw.key = *stored.key;
      if (stored.value)
        raw.value = *stored.value;
      raw.headers = stored.headers;
      raw.timestamp_ms = stored.timestamp_ms;
      raw.origin = {topic_name, 0, offset};
      tasks_[static_cast<std::size_t>(task)]->process(raw, handling_);
    }
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
    std::vector<TestRecord> unread(
        stored.records.begin() + static_cast<std::ptrdiff_t>(stored.read), stored.records.end());
    stored.read = stored.records.size();
    return unread;
  }

  const std::vector<TestRecord>& contents(std::string_view topic) {
    return topics_[std::string(topic)].records;
  }

  std::int64_t now_ms_;

 private:
  struct StoredTopic {
    std::vector<TestRecord> records;
    std::size_t read = 0;
  };
  struct Pending {
    int task;
    std::string topic;
    std::int64_t offset;
  };

  // Stores a record; a topic the topology reads (piped, or written by a sink and read again)
  // queues the record for its task.
  void append(std::string_view topic, TestRecord record) {
    auto& stored = topics_[std::string(topic)];
    stored.records.push_back(std::move(record));
    const int task = topology_.subtopology_of_topic(topic);
    if (task >= 0) {
      pending_.push_back(
          {task, std::string(topic), static_cast<std::int64_t>(stored.records.size() - 1)});
    }
  }

  Topology topology_;
  // Every topic has one partition, so every store has one instance. Declared before the tasks,
  // whose operators point at them.
  std::map<std::string, std::unique_ptr<InMemoryKeyValueStore>, std::less<>> stores_;
  std::vector<std::unique_ptr<TaskInstance>> tasks_;
  std::map<std::string, StoredTopic, std::less<>> topics_;
  std::deque<Pending> pending_;
  bool running_ = false;
  FailureHandling handling_;
};

TopologyTestDriver::TopologyTestDriver(const Topology& topology, std::string application_id,
                                       std::int64_t start_time_ms)
    : impl_(std::make_unique<Impl>(topology, std::move(application_id), start_time_ms)) {
  impl_->set_error_policy(ErrorPolicy::fail());
}

void TopologyTestDriver::set_error_policy(ErrorPolicy policy) {
  impl_->set_error_policy(std::move(policy));
}

std::int64_t TopologyTestDriver::skipped() const {
  return impl_->skipped_;
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
}

std::int64_t TopologyTestDriver::now_ms() const {
  return impl_->now_ms_;
}

KeyValueStore& TopologyTestDriver::store(std::string_view name) {
  return impl_->store(name);
}

}  // namespace streamrun::testing
