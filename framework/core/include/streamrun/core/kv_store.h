#pragma once

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace streamrun {

// A task's key-value store, over bytes (typed access comes through serdes). One instance per
// task and store, used from the task's fiber only. Writes are visible to reads at once; they
// become durable when the runtime commits the task (together with its input offsets).
class KeyValueStore {
 public:
  using Visitor = std::function<bool(std::string_view key, std::string_view value)>;

  virtual ~KeyValueStore() = default;
  [[nodiscard]] virtual const std::string& name() const = 0;
  [[nodiscard]] virtual std::optional<std::string> get(std::string_view key) const = 0;
  virtual void put(std::string_view key, std::string_view value) = 0;
  virtual void remove(std::string_view key) = 0;
  // Visits the entries with from <= key < to in byte order (an empty `to` means no upper bound)
  // until `visit` returns false.
  virtual void range(std::string_view from, std::string_view to, const Visitor& visit) const = 0;
  // Removes the entries with from <= key < to (`to` must not be empty) without a read or a write
  // per entry (RocksDB: one range deletion), for data its owner has expired as a whole (a window
  // store's old segments). The store's changelog does not record it: a restore may bring such
  // entries back, and their owner expires them again. Throws std::invalid_argument for an empty
  // `to` or `to` < `from`.
  virtual void remove_range(std::string_view from, std::string_view to) = 0;
};

namespace detail {
inline void check_range(std::string_view from, std::string_view to) {
  if (to.empty() || to < from)
    throw std::invalid_argument("remove_range needs from <= to and a non-empty to");
}
}  // namespace detail

// A store in memory, for the test driver and for stores that need no durability.
class InMemoryKeyValueStore final : public KeyValueStore {
 public:
  explicit InMemoryKeyValueStore(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  std::optional<std::string> get(std::string_view key) const override {
    auto it = entries_.find(key);
    if (it == entries_.end())
      return std::nullopt;
    return it->second;
  }
  void put(std::string_view key, std::string_view value) override {
    entries_.insert_or_assign(std::string(key), std::string(value));
  }
  void remove(std::string_view key) override {
    auto it = entries_.find(key);
    if (it != entries_.end())
      entries_.erase(it);
  }
  void range(std::string_view from, std::string_view to, const Visitor& visit) const override {
    for (auto it = entries_.lower_bound(from); it != entries_.end(); ++it) {
      if (!to.empty() && it->first >= to)
        break;
      if (!visit(it->first, it->second))
        break;
    }
  }
  void remove_range(std::string_view from, std::string_view to) override {
    detail::check_range(from, to);
    entries_.erase(entries_.lower_bound(from), entries_.lower_bound(to));
  }

 private:
  std::string name_;
  std::map<std::string, std::string, std::less<>> entries_;
};

}  // namespace streamrun
