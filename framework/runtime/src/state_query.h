#pragma once

// Interactive queries over HTTP (GET /state/...): what a request asks and how answers are
// written. Which task holds the data, and which instance, the application decides.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <streamrun/base/result.h>
#include <streamrun/core/topology.h>

#include "admin_server.h"

namespace streamrun::runtime {

struct StateQuery {
  std::string store;
  // GET /state/<store>/<key>: one key. Else a range: keys in [from, to) (to empty: no bound).
  std::optional<std::string> key;
  std::string from;
  std::string to;
  // ?partition=N: the input partition whose task holds the key(s), for stores not keyed by the
  // record key; else the key's partition by Kafka's murmur2 partitioner (range: every one).
  std::optional<std::int32_t> partition;
  std::size_t limit = 100;  // range: entries at most (?limit=, 1 to kMaxLimit)

  static constexpr std::size_t kDefaultLimit = 100;
  static constexpr std::size_t kMaxLimit = 10'000;
};

// Reads a query from its path and parameters (?prefix=, ?from=, ?to=, ?limit=, ?partition=);
// errc::invalid_argument naming the parameter when one is malformed or unknown.
[[nodiscard]] Result<StateQuery> parse_state_query(const std::string& store,
                                                   const std::optional<std::string>& key,
                                                   const AdminServer::Params& params);

// The smallest string greater than every string that starts with `prefix` (empty: none).
[[nodiscard]] std::string prefix_end(std::string_view prefix);

// One entry read from a task's state; of a window store, one window of a key.
struct StateEntry {
  std::string key;
  std::string value;
  std::int32_t partition = 0;
  std::optional<std::pair<std::int64_t, std::int64_t>> window;  // [start, end] ms
};

// The window a window store's entry holds, with its key; nullopt for the store's bookkeeping
// (stream time, marks).
[[nodiscard]] std::optional<StateEntry> window_entry(const WindowStoreSpec& spec,
                                                     std::string_view stored_key,
                                                     std::string_view value,
                                                     std::int32_t partition);
// Where the windows of a window store are: [from, to) of stored keys.
[[nodiscard]] std::pair<std::string, std::string> window_entries_range();
// Where its most recent windows are, given its stored stream time (`stream_time`: the value of
// its stream-time entry): [from, to) of stored keys holding the windows that start (sessions:
// end) at `since_ms` or later, two window sizes (gaps) before stream time: time windows from
// the first such one on, sessions from the start of its segment, earlier ones among them
// (recent() tells them apart). nullopt when `stream_time` is unreadable.
struct RecentWindows {
  std::string from;
  std::string to;
  std::int64_t since_ms = 0;
  bool session = false;
  [[nodiscard]] bool recent(const StateEntry& window) const {
    return (session ? window.window->second : window.window->first) >= since_ms;
  }
};
[[nodiscard]] std::optional<RecentWindows> recent_windows_range(const WindowStoreSpec& spec,
                                                                std::string_view stream_time);
// The stored key of a window store's stream time.
[[nodiscard]] const std::string& window_stream_time_key();
// {"key", "window_start", "window_end", "value"} of a window (value and key as in
// state_value_answer).
[[nodiscard]] nlohmann::json window_entry_json(const StateEntry& entry);

// 200: {"store", "key", "windows": [{"window_start", "window_end", "value"}], "partition",
// "task"}, oldest window first.
[[nodiscard]] HttpAnswer state_windows_answer(const StateQuery& query,
                                              const std::vector<StateEntry>& windows,
                                              std::int32_t partition, std::string_view task);

// 200: {"store", "key", "value", "partition", "task"}; a JSON value is embedded as JSON, other
// readable UTF-8 text as a string, anything else (e.g. an int64 count) as "value_hex" (keys
// likewise: "key_hex").
[[nodiscard]] HttpAnswer state_value_answer(const StateQuery& query, const StateEntry& entry,
                                            std::string_view task);
// 200: {"store", "entries": [{"key", "value", "partition"}], "more", "partitions": {"local",
// "restoring", "elsewhere": {"<partition>": "HOST:PORT" or null}}}.
struct RangeAnswer {
  std::vector<StateEntry> entries;
  bool more = false;
  std::vector<std::int32_t> local;
  std::vector<std::int32_t> restoring;
  std::map<std::int32_t, std::optional<std::string>> elsewhere;
};
[[nodiscard]] HttpAnswer state_range_answer(const StateQuery& query, const RangeAnswer& range);
// 307 to the same query on `owner` (HOST:PORT), with {"owner", "partition"} for clients that do
// not follow redirects.
[[nodiscard]] HttpAnswer state_redirect(const StateQuery& query, const std::string& owner,
                                        std::int32_t partition);
// {"error": message} with `status`; 503s carry Retry-After: 1.
[[nodiscard]] HttpAnswer json_error(int status, std::string_view message);

// Who holds a partition, as the metadata of its last offset commit says (see owner_metadata()).
struct PartitionOwner {
  enum class Kind {
    serving,      // an instance whose admin endpoint answers at `address`
    no_endpoint,  // an instance with admin.listen=0: it answers no state queries
    released,     // the last committer gave the partition up (revoked, stopped)
  };
  Kind kind = Kind::serving;
  std::string address;  // serving: HOST:PORT (application.server)
};
// What an instance stores with the offsets it commits so that others can name it: its
// application.server (empty: it serves no queries) ...
[[nodiscard]] std::string owner_metadata(std::string_view application_server);
// ... and with the last offsets of partitions it gives up.
[[nodiscard]] std::string released_metadata();
// nullopt for metadata another client wrote (or none).
[[nodiscard]] std::optional<PartitionOwner> owner_of_metadata(std::string_view metadata);

}  // namespace streamrun::runtime
