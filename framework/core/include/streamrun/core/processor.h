#pragma once

#include <cstdint>
#include <string>

#include <streamrun/core/record.h>

namespace streamrun {

// Which task an operator instance belongs to: one input partition of one sub-topology.
struct TaskInfo {
  std::string application_id;
  int subtopology = 0;
  std::int32_t partition = 0;

  // "0_3": sub-topology 0, partition 3 (the form logs, metrics and state directories use).
  [[nodiscard]] std::string id() const {
    return std::to_string(subtopology) + "_" + std::to_string(partition);
  }
};

// What an operator may do besides computing: pass records on, and ask which task it is in and
// what time it is (the test driver's clock in tests). Commits, retries, metrics and error
// handling are the runtime's and are not reachable from here.
template <typename K, typename V>
class ProcessorContext {
 public:
  virtual ~ProcessorContext() = default;
  virtual void forward(Record<K, V> record) = 0;
  [[nodiscard]] virtual const TaskInfo& task() const = 0;
  [[nodiscard]] virtual std::int64_t now_ms() const = 0;
};

// A custom operator. One instance per task, used from one fiber at a time: no locks needed.
// Throwing from process() is a record-level failure that the runtime's error policy handles.
template <typename KIn, typename VIn, typename KOut = KIn, typename VOut = VIn>
class Processor {
 public:
  using Context = ProcessorContext<KOut, VOut>;
  virtual ~Processor() = default;
  virtual void init(Context& context) { context_ = &context; }
  virtual void process(Record<KIn, VIn> record) = 0;
  virtual void close() {}

 protected:
  [[nodiscard]] Context& context() const { return *context_; }

 private:
  Context* context_ = nullptr;
};

}  // namespace streamrun
