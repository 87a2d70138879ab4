#pragma once

// The one place that decides how streamrun logs. Include from .cc files only: spdlog is not
// light, and public headers of other modules must not drag it in.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <streamrun/base/ids.h>

namespace streamrun::log {

struct LogOptions {
  // trace, debug, info, warn, error, critical, off. Overridden by STREAMRUN_LOG_LEVEL.
  std::string level = "info";
  std::string pattern = "%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v";
  // "text" (the pattern above) or "json": one object per line,
  // {"ts":"2026-11-30T23:10:26.717Z","level":"info","logger":"runtime","msg":"..."} (UTC), for
  // log collectors. Anything else is taken as "text".
  std::string format = "text";
};

// Installs the sinks and level for every streamrun logger. Safe to call again (tests do).
void configure(const LogOptions& options = {});

// Sets the level of every streamrun logger, present and future (STREAMRUN_LOG_LEVEL still
// wins). Unknown names are ignored: callers validate them (the log.level property does).
void set_level(std::string_view name);

// A live status line below the log, for a terminal: `text` replaces the line (log lines print
// above it, the line is drawn again under them); nullopt removes it. Callers decide whether
// stderr is a terminal (isatty); logs are never mixed into the line. Any thread.
void set_status_line(std::optional<std::string> text);

// The logger of one component ("kafka", "broker", "runtime"...). Created on first use with the
// configured sinks; cheap to call, but hot paths should keep the pointer.
std::shared_ptr<spdlog::logger> get(std::string_view component);

// Parses a level name; nullopt when it is not one of the names above.
std::optional<spdlog::level::level_enum> parse_level(std::string_view name);

}  // namespace streamrun::log

template <>
struct fmt::formatter<streamrun::TopicPartition> : fmt::formatter<std::string> {
  auto format(const streamrun::TopicPartition& tp, format_context& ctx) const {
    return fmt::formatter<std::string>::format(streamrun::to_string(tp), ctx);
  }
};

template <typename T, typename Tag>
struct fmt::formatter<streamrun::NamedType<T, Tag>> : fmt::formatter<T> {
  auto format(const streamrun::NamedType<T, Tag>& v, format_context& ctx) const {
    return fmt::formatter<T>::format(v.value(), ctx);
  }
};
