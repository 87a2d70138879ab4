#include <algorithm>

#include <streamrun/base/ids.h>
#include <streamrun/core/stream_builder.h>

namespace streamrun {

int StreamBuilder::add_node(
    std::string kind, std::string name, std::vector<int> parents, std::vector<std::string> topics,
    std::function<std::unique_ptr<detail::NodeInstance>(const std::string&)> make) {
  const int id = static_cast<int>(nodes_.size());
  if (name.empty())
    name = kind + "-" + std::to_string(id);
  if (names_.contains(name)) {
    throw std::invalid_argument("operator name '" + name + "' is used twice in the topology");
  }
  if ((kind == "source" || kind == "table") && topics.empty()) {
    throw std::invalid_argument("source '" + name + "' reads no topic");
  }
  for (std::size_t i = 0; i < topics.size(); ++i) {
    // An internal topic's application.id prefix is checked with the configuration.
    std::string concrete = topics[i];
    if (concrete.starts_with(detail::kApplicationIdPlaceholder))
      concrete = "app" + concrete.substr(detail::kApplicationIdPlaceholder.size());
    if (auto invalid = invalid_topic_name(concrete); !invalid.empty())
      throw std::invalid_argument("operator '" + name + "': topic '" + topics[i] + "' " + invalid);
    if (std::find(topics.begin(), topics.begin() + static_cast<std::ptrdiff_t>(i), topics[i]) !=
        topics.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw std::invalid_argument("source '" + name + "' names topic '" + topics[i] +
                                  "' twice; each record would be read twice");
    }
  }
  names_.insert(name);  // only once the operator is sure to be added
  NodeSpec spec;
  spec.id = id;
  spec.name = name;
  spec.kind = std::move(kind);
  spec.parents = std::move(parents);
  spec.topics = std::move(topics);
  spec.factory = [make = std::move(make), name] { return make(name); };
  nodes_.push_back(std::move(spec));
  return id;
}

void StreamBuilder::attach_store(int id, std::string store) {
  if (store.empty() || store == "default" || store.starts_with("__")) {
    throw std::invalid_argument("state store name '" + store +
                                "' is reserved or empty; pick another");
  }
  // The store's name becomes part of its changelog topic's name.
  if (auto invalid = invalid_topic_name(store); !invalid.empty())
    throw std::invalid_argument("state store name '" + store + "' " + invalid);
  for (const auto& node : nodes_) {
    if (std::find(node.stores.begin(), node.stores.end(), store) != node.stores.end()) {
      throw std::invalid_argument("state store '" + store + "' is used by operators '" + node.name +
                                  "' and '" + nodes_.at(id).name + "'; give each its own");
    }
  }
  nodes_.at(id).stores.push_back(std::move(store));
}

void StreamBuilder::set_error_policy(int id, ErrorPolicy policy) {
  nodes_.at(id).error_policy = std::move(policy);
}

void StreamBuilder::attach_window_store(int id, std::string store, WindowStoreSpec spec) {
  attach_store(id, store);
  nodes_.at(id).window_stores[store] = spec;
}

void StreamBuilder::use_store(int id, const std::string& store) {
  const bool exists = std::any_of(nodes_.begin(), nodes_.end(), [&](const NodeSpec& node) {
    return std::find(node.stores.begin(), node.stores.end(), store) != node.stores.end();
  });
  if (!exists)
    throw std::invalid_argument("operator '" + nodes_.at(id).name + "' reads unknown store '" +
                                store + "'");
  nodes_.at(id).stores.push_back(store);
}

}  // namespace streamrun
