#include "state_query.h"

#include <charconv>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/base/errc.h>
#include <streamrun/core/detail/window_nodes.h>

namespace streamrun::runtime {

namespace {

using nlohmann::json;

constexpr std::string_view kOwnerPrefix = "streamrun application.server=";
constexpr std::string_view kReleased = "streamrun released";

// Text a person can read: valid UTF-8 without control characters (but tabs and line breaks).
bool readable_text(std::string_view text) {
  for (const unsigned char c : text) {
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
      return false;
  }
  try {
    static_cast<void>(json(std::string(text)).dump());
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

std::string hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char c : bytes)
    fmt::format_to(std::back_inserter(out), "{:02x}", c);
  return out;
}

// Puts `bytes` into `object` under `name` (JSON as JSON, readable text as a string) or, for
// anything else (binary numbers, keys joined with NUL bytes), as hex under `name`_hex.
void put_bytes(json& object, const std::string& name, std::string_view bytes, bool parse_json) {
  if (parse_json && json::accept(bytes)) {
    object[name] = json::parse(bytes);
  } else if (readable_text(bytes)) {
    object[name] = std::string(bytes);
  } else {
    object[name + "_hex"] = hex(bytes);
  }
}

HttpAnswer json_answer(int status, const json& body) {
  return {
      status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

// Percent-encodes a path segment (RFC 3986: unreserved characters stay).
std::string encode_segment(std::string_view segment) {
  std::string out;
  for (const unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      fmt::format_to(std::back_inserter(out), "%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

Result<StateQuery> parse_state_query(const std::string& store,
                                     const std::optional<std::string>& key,
                                     const AdminServer::Params& params) {
  StateQuery query;
  query.store = store;
  query.key = key;
  query.limit = StateQuery::kDefaultLimit;
  const auto number = [](std::string_view name, const std::string& text, std::int64_t min,
                         std::int64_t max) -> Result<std::int64_t> {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
      return Error(errc::invalid_argument,
                   fmt::format("parameter '{}' = '{}': must be an integer from {} to {}", name,
                               text, min, max));
    }
    return value;
  };
  bool prefix = false;
  for (const auto& [name, value] : params) {
    if (name == "partition") {
      auto partition = number(name, value, 0, std::numeric_limits<std::int32_t>::max());
      if (!partition)
        return partition.error();
      query.partition = static_cast<std::int32_t>(*partition);
      continue;
    }
    if (key) {
      return Error(errc::invalid_argument,
                   fmt::format("unknown parameter '{}' for a key lookup (only 'partition'; ranges "
                               "are GET /state/<store>?prefix=|from=&to=&limit=)",
                               name));
    }
    if (name == "limit") {
      auto limit = number(name, value, 1, StateQuery::kMaxLimit);
      if (!limit)
        return limit.error();
      query.limit = static_cast<std::size_t>(*limit);
    } else if (name == "prefix") {
      prefix = true;
      query.from = value;
      query.to = prefix_end(value);
    } else if (name == "from") {
      query.from = value;
    } else if (name == "to") {
      query.to = value;
    } else {
      return Error(
          errc::invalid_argument,
          fmt::format("unknown parameter '{}' (known: prefix, from, to, limit, partition)", name));
    }
  }
  if (prefix && (params.contains("from") || params.contains("to"))) {
    return Error(errc::invalid_argument,
                 "parameter 'prefix' cannot be combined with 'from' or 'to'");
  }
  if (!query.to.empty() && query.to < query.from) {
    return Error(errc::invalid_argument,
                 fmt::format("reversed range: 'to' ('{}') comes before 'from' ('{}')", query.to,
                             query.from));
  }
  return query;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) != 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();  // "ab\xff" is followed by "ac"
  }
  return end;
}

HttpAnswer state_value_answer(const StateQuery& query, const StateEntry& entry,
                              std::string_view task) {
  json body = {{"store", query.store}, {"partition", entry.partition}, {"task", task}};
  put_bytes(body, "key", entry.key, /*parse_json=*/false);
  put_bytes(body, "value", entry.value, /*parse_json=*/true);
  return json_answer(200, body);
}

std::optional<StateEntry> window_entry(const WindowStoreSpec& spec, std::string_view stored_key,
                                       std::string_view value, std::int32_t partition) {
  if (spec.kind == WindowStoreSpec::Kind::session) {
    if (!detail::SessionStoreLayout::is_session(stored_key))
      return std::nullopt;
    const auto session = detail::SessionStoreLayout::session_of(stored_key);
    return StateEntry{std::string(detail::SessionStoreLayout::raw_key_of(stored_key)),
                      std::string(value), partition, std::pair{session.start_ms, session.end_ms}};
  }
  if (stored_key.size() < 16 || stored_key[0] == '\xff' || stored_key[0] == '\xfe')
    return std::nullopt;
  const auto start = detail::WindowStoreLayout::start_of(stored_key);
  return StateEntry{std::string(detail::WindowStoreLayout::raw_key_of(stored_key)),
                    std::string(value), partition, std::pair{start, start + spec.size_ms}};
}

std::pair<std::string, std::string> window_entries_range() {
  // Windows are under segment numbers (below 2^63); bookkeeping under 0xfe... and 0xff...
  return {std::string(), std::string(1, '\x80')};
}

namespace {
json window_json(const StateEntry& entry) {
  json item = {{"window_start", entry.window->first}, {"window_end", entry.window->second}};
  put_bytes(item, "value", entry.value, /*parse_json=*/true);
  return item;
}
}  // namespace

json window_entry_json(const StateEntry& entry) {
  auto item = window_json(entry);
  put_bytes(item, "key", entry.key, /*parse_json=*/false);
  return item;
}

const std::string& window_stream_time_key() {
  return detail::SegmentedLayout::kStreamTimeKey;
}

std::optional<RecentWindows> recent_windows_range(const WindowStoreSpec& spec,
                                                  std::string_view stream_time) {
  if (stream_time.size() != 8)
    return std::nullopt;
  const auto now = static_cast<std::int64_t>(detail::read_be64(stream_time));
  const auto since = std::max<std::int64_t>(0, now - 2 * spec.size_ms);
  // Time windows are ordered by start: from the first at `since`. Sessions are ordered by key
  // within the segment of their end: from the segment `since` is in.
  std::string from;
  if (spec.kind == WindowStoreSpec::Kind::time) {
    from = detail::WindowStoreLayout(spec.retention_ms).prefix(since);
  } else {
    detail::append_be64(from, static_cast<std::uint64_t>(
                                  detail::SegmentedLayout(spec.retention_ms).segment_of(since)));
  }
  return RecentWindows{std::move(from), window_entries_range().second, since,
                       spec.kind == WindowStoreSpec::Kind::session};
}

HttpAnswer state_windows_answer(const StateQuery& query, const std::vector<StateEntry>& windows,
                                std::int32_t partition, std::string_view task) {
  json list = json::array();
  for (const auto& window : windows)
    list.push_back(window_json(window));
  json body = {{"store", query.store},
               {"windows", std::move(list)},
               {"partition", partition},
               {"task", task}};
  put_bytes(body, "key", *query.key, /*parse_json=*/false);
  return json_answer(200, body);
}

HttpAnswer state_range_answer(const StateQuery& query, const RangeAnswer& range) {
  json entries = json::array();
  for (const auto& entry : range.entries) {
    json item = entry.window ? window_json(entry) : json::object();
    item["partition"] = entry.partition;
    put_bytes(item, "key", entry.key, /*parse_json=*/false);
    if (!entry.window)
      put_bytes(item, "value", entry.value, /*parse_json=*/true);
    entries.push_back(std::move(item));
  }
  json elsewhere = json::object();
  for (const auto& [partition, owner] : range.elsewhere)
    elsewhere[std::to_string(partition)] = owner ? json(*owner) : json(nullptr);
  return json_answer(200, {{"store", query.store},
                           {"entries", std::move(entries)},
                           {"more", range.more},
                           {"partitions",
                            {{"local", range.local},
                             {"restoring", range.restoring},
                             {"elsewhere", std::move(elsewhere)}}}});
}

HttpAnswer state_redirect(const StateQuery& query, const std::string& owner,
                          std::int32_t partition) {
  std::string path = "/state/" + encode_segment(query.store);
  httplib::Params params;
  if (query.key) {
    path += "/" + encode_segment(*query.key);
  } else {
    params.emplace("from", query.from);
    if (!query.to.empty())
      params.emplace("to", query.to);
    params.emplace("limit", std::to_string(query.limit));
  }
  if (query.partition)
    params.emplace("partition", std::to_string(*query.partition));
  const auto location =
      "http://" + owner + (params.empty() ? path : httplib::append_query_params(path, params));
  auto answer =
      json_answer(307, {{"owner", owner}, {"partition", partition}, {"location", location}});
  answer.headers.emplace_back("Location", location);
  return answer;
}

HttpAnswer json_error(int status, std::string_view message) {
  auto answer = json_answer(status, {{"error", message}});
  if (status == 503)
    answer.headers.emplace_back("Retry-After", "1");
  return answer;
}

std::string owner_metadata(std::string_view application_server) {
  return fmt::format("{}{}", kOwnerPrefix, application_server);
}

std::string released_metadata() {
  return std::string(kReleased);
}

std::optional<PartitionOwner> owner_of_metadata(std::string_view metadata) {
  if (metadata == kReleased)
    return PartitionOwner{PartitionOwner::Kind::released, {}};
  if (!metadata.starts_with(kOwnerPrefix))
    return std::nullopt;
  if (metadata.size() == kOwnerPrefix.size())
    return PartitionOwner{PartitionOwner::Kind::no_endpoint, {}};
  return PartitionOwner{PartitionOwner::Kind::serving,
                        std::string(metadata.substr(kOwnerPrefix.size()))};
}

}  // namespace streamrun::runtime
