#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include <streamrun/core/detail/async_node.h>
#include <streamrun/core/topology.h>

namespace streamrun {

Topology::Topology(std::vector<NodeSpec> nodes) : nodes_(std::move(nodes)) {
  // Connected components over parent links, with union-find. Sources reading the same topic
  // also belong together: one input partition feeds them all in one task.
  std::vector<int> root(nodes_.size());
  std::iota(root.begin(), root.end(), 0);
  std::function<int(int)> find = [&](int x) { return root[x] == x ? x : root[x] = find(root[x]); };
  auto unite = [&](int a, int b) { root[find(a)] = find(b); };
  std::map<std::string, int> reader_of_topic;
  std::map<std::string, int> user_of_store;
  for (const auto& node : nodes_) {
    for (int parent : node.parents)
      unite(node.id, parent);
    // Operators sharing a store (a table and the join reading it) run in the same task.
    for (const auto& store : node.stores) {
      auto [it, fresh] = user_of_store.emplace(store, node.id);
      if (!fresh)
        unite(node.id, it->second);
    }
    if (node.is_source()) {
      for (const auto& topic : node.topics) {
        auto [it, fresh] = reader_of_topic.emplace(topic, node.id);
        if (!fresh)
          unite(node.id, it->second);
      }
    }
  }
  std::map<int, int> index_of_root;
  for (const auto& node : nodes_) {
    auto [it, fresh] =
        index_of_root.emplace(find(node.id), static_cast<int>(subtopologies_.size()));
    if (fresh)
      subtopologies_.emplace_back();
    subtopologies_[it->second].push_back(node.id);
  }
}

std::vector<std::string> Topology::source_topics(int subtopology) const {
  std::vector<std::string> topics;
  for (int id : subtopologies_.at(subtopology)) {
    if (nodes_[id].is_source()) {
      topics.insert(topics.end(), nodes_[id].topics.begin(), nodes_[id].topics.end());
    }
  }
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  return topics;
}

std::vector<std::string> Topology::source_topics() const {
  std::set<std::string> topics;
  for (int i = 0; i < subtopology_count(); ++i) {
    for (auto& topic : source_topics(i))
      topics.insert(std::move(topic));
  }
  return {topics.begin(), topics.end()};
}

std::vector<std::string> Topology::stores(int subtopology) const {
  std::vector<std::string> names;
  for (int id : subtopologies_.at(subtopology)) {
    for (const auto& store : nodes_[id].stores) {
      if (std::find(names.begin(), names.end(), store) == names.end())
        names.push_back(store);
    }
  }
  return names;
}

bool Topology::stateful() const {
  return std::any_of(nodes_.begin(), nodes_.end(),
                     [](const NodeSpec& n) { return !n.stores.empty(); });
}

Topology Topology::resolved(std::string_view application_id) const {
  auto nodes = nodes_;
  for (auto& node : nodes) {
    for (auto& topic : node.topics)
      topic = detail::resolve_topic(topic, application_id);
  }
  return Topology(std::move(nodes));
}

std::vector<std::string> Topology::sink_topics() const {
  std::set<std::string> topics;
  for (const auto& node : nodes_) {
    if (node.kind == "sink")
      topics.insert(node.topics.begin(), node.topics.end());
  }
  return {topics.begin(), topics.end()};
}

int Topology::subtopology_of_topic(std::string_view topic) const {
  for (int i = 0; i < subtopology_count(); ++i) {
    for (const auto& t : source_topics(i)) {
      if (t == topic)
        return i;
    }
  }
  return -1;
}

namespace {

std::vector<int> children_of(const std::vector<NodeSpec>& nodes, int id) {
  std::vector<int> children;
  for (const auto& node : nodes) {
    if (std::find(node.parents.begin(), node.parents.end(), id) != node.parents.end()) {
      children.push_back(node.id);
    }
  }
  return children;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items)
    out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

std::string Topology::describe() const {
  std::ostringstream out;
  for (int s = 0; s < subtopology_count(); ++s) {
    out << "Sub-topology " << s << " (reads " << joined(source_topics(s)) << ")\n";
    for (int id : subtopologies_[s]) {
      const auto& node = nodes_[id];
      out << "  " << node.name << " [" << node.kind;
      if (!node.topics.empty())
        out << ": " << joined(node.topics);
      out << "]";
      std::vector<std::string> next;
      for (int child : children_of(nodes_, id))
        next.push_back(nodes_[child].name);
      if (!next.empty())
        out << " --> " << joined(next);
      out << "\n";
    }
  }
  return out.str();
}

std::string Topology::describe_mermaid() const {
  std::ostringstream out;
  out << "flowchart LR\n";
  auto topic_id = [](const std::string& topic) {
    std::string id = "topic_";
    for (char c : topic)
      id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return id;
  };
  std::set<std::string> topics;
  for (int s = 0; s < subtopology_count(); ++s) {
    out << "  subgraph sub" << s << "[\"sub-topology " << s << "\"]\n";
    for (int id : subtopologies_[s]) {
      out << "    n" << id << "[\"" << nodes_[id].name << "<br/>" << nodes_[id].kind << "\"]\n";
    }
    out << "  end\n";
  }
  for (const auto& node : nodes_) {
    for (int parent : node.parents)
      out << "  n" << parent << " --> n" << node.id << "\n";
    for (const auto& topic : node.topics) {
      topics.insert(topic);
      if (node.is_source()) {
        out << "  " << topic_id(topic) << " --> n" << node.id << "\n";
      } else {
        out << "  n" << node.id << " --> " << topic_id(topic) << "\n";
      }
    }
  }
  for (const auto& topic : topics)
    out << "  " << topic_id(topic) << "[(\"" << topic << "\")]\n";
  return out.str();
}

std::optional<WindowStoreSpec> Topology::window_store(std::string_view store) const {
  for (const auto& node : nodes_) {
    if (auto it = node.window_stores.find(std::string(store)); it != node.window_stores.end())
      return it->second;
  }
  return std::nullopt;
}

std::optional<std::int64_t> Topology::window_retention_ms(std::string_view store) const {
  if (auto spec = window_store(store))
    return spec->retention_ms;
  return std::nullopt;
}

class TaskInstance::Environment final : public detail::TaskEnvironment {
 public:
  Environment(TaskInfo info, RecordCollector& collector, std::function<std::int64_t()> clock,
              StoreProvider stores)
      : info_(std::move(info)),
        outputs_(collector),
        clock_(std::move(clock)),
        stores_(std::move(stores)) {}
  const TaskInfo& task() const override { return info_; }
  std::int64_t now_ms() const override { return clock_(); }
  std::int64_t stream_time_ms() const override { return stream_time_; }
  void use_extracted_timestamps() override { extracted_timestamps_ = true; }
  void observe_timestamp(std::int64_t timestamp_ms) override {
    stream_time_ = std::max(stream_time_, timestamp_ms);
  }
  void schedule(std::string_view node, std::chrono::milliseconds interval, PunctuationType type,
                std::function<void(std::int64_t)> punctuator) override {
    if (interval.count() <= 0) {
      throw std::invalid_argument("operator '" + std::string(node) +
                                  "': a punctuator's interval must be positive (got " +
                                  std::to_string(interval.count()) + " ms)");
    }
    punctuators_.push_back(
        {std::string(node), interval.count(), type, std::move(punctuator),
         type == PunctuationType::wall_clock ? clock_() + interval.count() : -1});
  }
  std::function<std::int64_t()> clock() const override { return clock_; }
  std::shared_ptr<const RawRecord> current_record() override {
    if (!current_copy_ && current_record_ != nullptr) {
      // RawRecord views the input's bytes, which go when the record is processed: own them.
      struct Owned {
        std::optional<std::string> key;
        std::optional<std::string> value;
        RawRecord record;
      };
      auto owned = std::make_shared<Owned>();
      owned->key = current_record_->key;
      owned->value = current_record_->value;
      owned->record = *current_record_;
      owned->record.key = owned->key;
      owned->record.value = owned->value;
      current_copy_ = std::shared_ptr<const RawRecord>(owned, &owned->record);
    }
    return current_copy_;
  }
  std::shared_ptr<detail::CallWaker> call_waker() override { return waker_; }
  RecordCollector& collector() override { return outputs_; }
  KeyValueStore& store(std::string_view name) override {
    if (!stores_) {
      throw std::logic_error("task " + info_.id() +
                             " was given no state stores, but an operator "
                             "asked for '" +
                             std::string(name) + "'");
    }
    for (auto& store : journaled_) {
      if (store->name() == name)
        return *store;
    }
    journaled_.push_back(std::make_unique<JournalingStore>(stores_(name)));
    return *journaled_.back();
  }
  void record_dropped(std::string_view node, std::string_view reason) override {
    ++dropped_;
    if (drop_listener_)
      drop_listener_(node, reason, current_origin_ ? *current_origin_ : RecordOrigin{});
  }

  // A record starts (`record`: the input record, read again by a finished async call, copied
  // only when an async call keeps it): forget what the previous one changed.
  void begin_record(const RawRecord& record, std::shared_ptr<const RawRecord> copy = nullptr) {
    if (!extracted_timestamps_)
      stream_time_ = std::max(stream_time_, record.timestamp_ms);
    current_origin_ = &record.origin;
    current_record_ = &record;
    current_copy_ = std::move(copy);
    forget_previous();
  }
  // The record failed: put back what it changed, and forget what it would have sent.
  void roll_back_record() {
    for (auto& store : journaled_)
      store->roll_back();
    outputs_.discard();
  }
  // The record went through every operator: send what it produced. Throws what the collector
  // throws; a refusal names the sink that produced the output.
  void send_outputs(const std::map<std::string, std::string, std::less<>>& sink_of_topic) {
    outputs_.send_all(sink_of_topic);
  }

  // A punctuator runs: like a record without an input record.
  void begin_punctuation() {
    current_origin_ = nullptr;
    current_record_ = nullptr;
    current_copy_.reset();
    forget_previous();
  }
  // What the previous record or punctuator changed and held back is its own.
  void forget_previous() {
    for (auto& store : journaled_)
      store->clear_journal();
    outputs_.discard();
  }

  struct Punctuator {
    std::string node;
    std::int64_t interval_ms = 0;
    PunctuationType type = PunctuationType::stream_time;
    std::function<void(std::int64_t)> call;
    std::int64_t next_due = -1;  // stream time: set by the first record
  };
  std::vector<Punctuator> punctuators_;
  std::int64_t stream_time_ = -1;
  bool extracted_timestamps_ = false;

  std::int64_t dropped() const noexcept { return dropped_; }
  DropListener drop_listener_;
  std::shared_ptr<detail::CallWaker> waker_ = std::make_shared<detail::CallWaker>();

 private:
  // Holds a record's outputs back until the record has gone through every operator.
  class HeldOutputs final : public RecordCollector {
   public:
    explicit HeldOutputs(RecordCollector& inner) : inner_(inner) {}
    void send(std::string_view topic, std::optional<std::string> key,
              std::optional<std::string> value, const RecordHeaders& headers,
              std::int64_t timestamp_ms, const RecordOrigin& origin) override {
      inner_.check(topic, key, value, headers);
      held_.push_back(
          {std::string(topic), std::move(key), std::move(value), headers, timestamp_ms, origin});
    }
    void discard() { held_.clear(); }
    void send_all(const std::map<std::string, std::string, std::less<>>& sink_of_topic) {
      std::size_t i = 0;
      try {
        for (; i < held_.size(); ++i) {
          auto& out = held_[i];
          inner_.send(out.topic, std::move(out.key), std::move(out.value), out.headers,
                      out.timestamp_ms, out.origin);
        }
      } catch (const InfrastructureError&) {
        held_.clear();
        throw;
      } catch (...) {
        // Refused although check() passed: the outputs before it are sent already.
        auto it = sink_of_topic.find(held_[i].topic);
        const std::string sink =
            it != sink_of_topic.end() ? it->second : "sink to " + held_[i].topic;
        held_.clear();
        throw OperatorFailure::from_current(sink);
      }
      held_.clear();
    }

   private:
    struct Held {
      std::string topic;
      std::optional<std::string> key;
      std::optional<std::string> value;
      RecordHeaders headers;
      std::int64_t timestamp_ms = 0;
      RecordOrigin origin;
    };
    RecordCollector& inner_;
    std::vector<Held> held_;
  };

  // Remembers the value each key had before the current record first changed it.
  class JournalingStore final : public KeyValueStore {
   public:
    explicit JournalingStore(KeyValueStore& inner) : inner_(inner) {}
    const std::string& name() const override { return inner_.name(); }
    std::optional<std::string> get(std::string_view key) const override { return inner_.get(key); }
    void put(std::string_view key, std::string_view value) override {
      remember(key);
      inner_.put(key, value);
    }
    void remove(std::string_view key) override {
      remember(key);
      inner_.remove(key);
    }
    void range(std::string_view from, std::string_view to, const Visitor& visit) const override {
      inner_.range(from, to, visit);
    }
    // The removed entries are read once, to be put back should the record fail (a record with
    // a timestamp far ahead expires every window; dead-lettered, it must take nothing along).
    void remove_range(std::string_view from, std::string_view to) override {
      inner_.range(from, to, [&](std::string_view key, std::string_view value) {
        if (previous_.find(key) == previous_.end())
          previous_.emplace(std::string(key), std::string(value));
        return true;
      });
      inner_.remove_range(from, to);
    }
    void clear_journal() { previous_.clear(); }
    void roll_back() {
      // Through the inner store, so that a changelog sees the values put back too.
      for (const auto& [key, value] : previous_) {
        if (value) {
          inner_.put(key, *value);
        } else {
          inner_.remove(key);
        }
      }
      previous_.clear();
    }

   private:
    void remember(std::string_view key) {
      if (previous_.find(key) == previous_.end())
        previous_.emplace(std::string(key), inner_.get(key));
    }
    KeyValueStore& inner_;
    std::map<std::string, std::optional<std::string>, std::less<>> previous_;
  };

  std::vector<std::unique_ptr<JournalingStore>> journaled_;
  TaskInfo info_;
  HeldOutputs outputs_;
  std::function<std::int64_t()> clock_;
  StoreProvider stores_;
  std::int64_t dropped_ = 0;
  const RecordOrigin* current_origin_ = nullptr;
  const RawRecord* current_record_ = nullptr;
  std::shared_ptr<const RawRecord> current_copy_;
};

TaskInstance::TaskInstance(const Topology& topology, TaskInfo info, RecordCollector& collector,
                           std::function<std::int64_t()> clock, StoreProvider stores)
    : environment_(std::make_unique<Environment>(std::move(info), collector, std::move(clock),
                                                 std::move(stores))) {
  const auto& ids = topology.subtopology(environment_->task().subtopology);
  std::map<int, detail::NodeInstance*> by_id;
  for (int id : ids) {
    const auto& spec = topology.nodes()[id];
    nodes_.push_back(spec.factory());
    by_id[id] = nodes_.back().get();
    if (spec.is_source()) {
      auto* source = dynamic_cast<detail::SourceInstance*>(nodes_.back().get());
      for (const auto& topic : spec.topics)
        sources_.emplace_back(topic, source);
    }
    if (spec.kind == "sink") {
      for (const auto& topic : spec.topics)
        sink_of_topic_.emplace(topic, spec.name);
    }
    if (auto* calls = dynamic_cast<detail::AsyncCallBase*>(nodes_.back().get()))
      calls_.push_back(calls);
  }
  std::map<int, std::size_t> index_of;
  for (std::size_t i = 0; i < ids.size(); ++i)
    index_of[ids[i]] = i;
  parents_.resize(ids.size());
  for (int id : ids) {
    for (int parent : topology.nodes()[id].parents) {
      by_id.at(parent)->connect(*by_id.at(id));
      parents_[index_of.at(id)].push_back(index_of.at(parent));
    }
  }
  for (int id : ids) {
    const auto& spec = topology.nodes()[id];
    if (spec.error_policy)
      policies_.emplace(spec.name, *spec.error_policy);
  }
  for (auto& node : nodes_)
    node->init(*environment_);
}

TaskInstance::~TaskInstance() {
  environment_->waker_->set(nullptr);
  close();
}

const TaskInfo& TaskInstance::info() const noexcept {
  return environment_->task();
}

void TaskInstance::process(const RawRecord& record) {
  environment_->begin_record(record);
  bool read = false;
  try {
    // Every source of the topic sees the record (a topic read as a stream twice, or as a
    // stream and a table), in the order the topology declared them.
    for (auto& [topic, source] : sources_) {
      if (topic == record.origin.topic) {
        read = true;
        source->receive_raw(record);
      }
    }
    if (read)
      end_record();
  } catch (...) {
    roll_back_record();
    throw;
  }
  if (!read) {
    throw std::logic_error("task " + info().id() + " does not read topic '" + record.origin.topic +
                           "'");
  }
}

std::vector<TaskInstance::NodeCount> TaskInstance::node_counts() const {
  std::vector<NodeCount> counts;
  counts.reserve(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    NodeCount count{nodes_[i]->name(), 0, nodes_[i]->records_out()};
    if (parents_[i].empty()) {
      count.in = count.out;  // a source passes on every record it reads
    } else {
      for (const auto parent : parents_[i])
        count.in += nodes_[parent]->records_out();
    }
    counts.push_back(std::move(count));
  }
  return counts;
}

std::int64_t TaskInstance::dropped() const noexcept {
  return environment_->dropped();
}

void TaskInstance::set_drop_listener(DropListener listener) {
  environment_->drop_listener_ = std::move(listener);
}

RecordOutcome TaskInstance::process(const RawRecord& record, const FailureHandling& handling) {
  const auto outcome = under_policy(record, handling, [&] { process(record); });
  punctuate(PunctuationType::stream_time);
  return outcome;
}

void TaskInstance::punctuate(PunctuationType type) {
  auto& environment = *environment_;
  const auto now =
      type == PunctuationType::wall_clock ? environment.now_ms() : environment.stream_time_ms();
  if (now < 0)
    return;
  for (auto& punctuator : environment.punctuators_) {
    if (punctuator.type != type)
      continue;
    if (punctuator.next_due < 0) {
      punctuator.next_due = now + punctuator.interval_ms;  // from the first record on
      continue;
    }
    if (now < punctuator.next_due)
      continue;
    // Once, however many intervals passed.
    punctuator.next_due +=
        ((now - punctuator.next_due) / punctuator.interval_ms + 1) * punctuator.interval_ms;
    environment.begin_punctuation();
    try {
      punctuator.call(now);
      end_record();
    } catch (const std::exception& e) {
      roll_back_record();
      throw std::runtime_error("operator '" + punctuator.node +
                               "': punctuator failed: " + e.what());
    }
  }
}

bool TaskInstance::has_punctuators(PunctuationType type) const {
  const auto& punctuators = environment_->punctuators_;
  return std::any_of(punctuators.begin(), punctuators.end(),
                     [type](const auto& punctuator) { return punctuator.type == type; });
}

std::chrono::milliseconds TaskInstance::punctuation_due_in() const {
  auto due = std::chrono::milliseconds::max();
  const auto now = environment_->now_ms();
  for (const auto& punctuator : environment_->punctuators_) {
    if (punctuator.type == PunctuationType::wall_clock)
      due = std::min(
          due, std::chrono::milliseconds(std::max<std::int64_t>(0, punctuator.next_due - now)));
  }
  return due;
}

void TaskInstance::end_record() {
  environment_->send_outputs(sink_of_topic_);
  for (auto* calls : calls_)
    calls->commit_staged();
}

void TaskInstance::roll_back_record() {
  environment_->roll_back_record();
  for (auto* calls : calls_)
    calls->discard_staged();
}

const ErrorPolicy& TaskInstance::policy_of(const std::string& node,
                                           const FailureHandling& handling) const {
  auto own = policies_.find(node);
  return own != policies_.end() ? own->second : handling.default_policy;
}

RecordOutcome TaskInstance::give_up(const RawRecord& record, const OperatorFailure& failure,
                                    int attempts, const ErrorPolicy& policy,
                                    const FailureHandling& handling) {
  switch (policy.action) {
    case ErrorPolicy::Action::fail:
      throw failure;
    case ErrorPolicy::Action::skip:
      handling.skipped(record, failure);
      return RecordOutcome::skipped;
    case ErrorPolicy::Action::dead_letter:
      handling.dead_letter(make_dead_letter(record, failure, attempts, info().application_id,
                                            environment_->now_ms()),
                           detail::resolve_topic(policy.dead_letter_topic, info().application_id));
      return RecordOutcome::dead_lettered;
  }
  throw failure;
}

RecordOutcome TaskInstance::under_policy(const RawRecord& record, const FailureHandling& handling,
                                         const std::function<void()>& attempt_once) {
  std::chrono::milliseconds waited{0};
  for (int attempt = 1;; ++attempt) {
    try {
      attempt_once();
      return RecordOutcome::processed;
    } catch (const OperatorFailure& failure) {
      const ErrorPolicy& policy = policy_of(failure.operator_name(), handling);
      if (policy.may_retry(attempt - 1, waited)) {
        const auto delay = policy.retry_delay(attempt, waited, handling.unit_random());
        waited += delay;
        handling.wait(delay);
        continue;
      }
      return give_up(record, failure, attempt, policy, handling);
    }
  }
}

bool TaskInstance::calls_full() const noexcept {
  return std::any_of(calls_.begin(), calls_.end(), [](const auto* calls) { return calls->full(); });
}

bool TaskInstance::calls_blocked() const noexcept {
  return std::any_of(calls_.begin(), calls_.end(),
                     [](const auto* calls) { return calls->blocked(); });
}

std::size_t TaskInstance::calls_held() const noexcept {
  std::size_t held = 0;
  for (const auto* calls : calls_)
    held += calls->held();
  return held;
}

std::chrono::milliseconds TaskInstance::calls_due_in() const {
  auto next = std::chrono::steady_clock::time_point::max();
  for (const auto* calls : calls_)
    next = std::min(next, calls->next_deadline());
  if (next == std::chrono::steady_clock::time_point::max())
    return std::chrono::milliseconds::max();
  // The nodes keep time by the task's clock (now_ms()), not by steady_clock::now().
  const auto now =
      std::chrono::steady_clock::time_point(std::chrono::milliseconds(environment_->now_ms()));
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::ceil<std::chrono::milliseconds>(next - now));
}

void TaskInstance::set_call_listener(std::function<void()> listener) {
  environment_->waker_->set(std::move(listener));
}

std::vector<RecordOrigin> TaskInstance::oldest_call_offsets() const {
  std::vector<RecordOrigin> oldest;
  for (const auto* calls : calls_)
    calls->oldest_offsets(oldest);
  return oldest;
}

TaskInstance::CallOutcomes TaskInstance::run_calls(const FailureHandling& handling) {
  CallOutcomes outcomes;
  bool progress = true;
  while (progress) {
    progress = false;
    for (auto* calls : calls_) {
      calls->poll(handling.unit_random);
      while (const auto* finished = calls->next_finished()) {
        progress = true;
        // The input record again: its phase after the call is a record of its own for held
        // outputs, store undo and the error policy.
        const auto record = finished->record;
        RecordOutcome outcome = RecordOutcome::processed;
        using Kind = detail::AsyncCallBase::Finished::Kind;
        switch (finished->kind) {
          case Kind::result:
          case Kind::fallback:
            outcome = under_policy(*record, handling, [&] {
              environment_->begin_record(*record, record);
              try {
                calls->finish_next();
                end_record();
              } catch (...) {
                roll_back_record();
                throw;
              }
            });
            break;
          case Kind::failure:
          case Kind::fail:
          case Kind::skip:
          case Kind::dead_letter: {
            // Retried already (or never worth it): the policy's last word, or what when_open
            // says.
            const OperatorFailure failure(calls->name(), finished->error_class, finished->message,
                                          nullptr);
            ErrorPolicy policy = policy_of(calls->name(), handling);
            if (finished->kind == Kind::fail)
              policy.action = ErrorPolicy::Action::fail;
            else if (finished->kind == Kind::skip)
              policy.action = ErrorPolicy::Action::skip;
            else if (finished->kind == Kind::dead_letter)
              policy.action = ErrorPolicy::Action::dead_letter;
            outcome = give_up(*record, failure, finished->attempts, policy, handling);
            break;
          }
        }
        calls->drop_next();
        ++(outcome == RecordOutcome::processed ? outcomes.processed
           : outcome == RecordOutcome::skipped ? outcomes.skipped
                                               : outcomes.dead_lettered);
      }
    }
  }
  return outcomes;
}

void TaskInstance::close() {
  if (closed_)
    return;
  closed_ = true;
  for (auto& node : nodes_)
    node->close();
}

}  // namespace streamrun
