#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

#include <streamrun/base/log.h>

namespace streamrun::log {
namespace {

struct Registry {
  std::mutex mutex;
  spdlog::sink_ptr sink;
  spdlog::level::level_enum level = spdlog::level::info;
  std::string pattern;
};

Registry& registry() {
  static Registry r;
  return r;
}

// Logs go to stderr so that a program's stdout stays its own (the broker's "ready" line,
// a CLI's JSON output).
spdlog::sink_ptr make_sink_locked(Registry& r) {
  if (!r.sink)
    r.sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return r.sink;
}

}  // namespace

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  for (int i = 0; i < spdlog::level::n_levels; ++i) {
    auto level = static_cast<spdlog::level::level_enum>(i);
    if (spdlog::level::to_string_view(level) == name)
      return level;
  }
  // spdlog spells it "warning"; streamrun's options, properties and docs say "warn".
  if (name == "warning" || name == "warn")
    return spdlog::level::warn;
  return std::nullopt;
}

void configure(const LogOptions& options) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::string_view level_name = options.level;
  if (const char* env = std::getenv("STREAMRUN_LOG_LEVEL"); env && *env)
    level_name = env;
  r.level = parse_level(level_name).value_or(spdlog::level::info);
  r.pattern = options.pattern;
  auto sink = make_sink_locked(r);
  sink->set_pattern(r.pattern);
  spdlog::apply_all(
      [&](const std::shared_ptr<spdlog::logger>& logger) { logger->set_level(r.level); });
}

void set_level(std::string_view name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  if (const char* env = std::getenv("STREAMRUN_LOG_LEVEL"); env && *env)
    return;
  const auto level = parse_level(name);
  if (!level)
    return;
  r.level = *level;
  spdlog::apply_all(
      [&](const std::shared_ptr<spdlog::logger>& logger) { logger->set_level(*level); });
}

std::shared_ptr<spdlog::logger> get(std::string_view component) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::string name(component);
  if (auto existing = spdlog::get(name))
    return existing;
  if (r.pattern.empty()) {
    // Not configured yet: honour the environment so that tools and tests get sane output.
    r.pattern = LogOptions{}.pattern;
    if (const char* env = std::getenv("STREAMRUN_LOG_LEVEL"); env && *env) {
      r.level = parse_level(env).value_or(spdlog::level::info);
    }
    make_sink_locked(r)->set_pattern(r.pattern);
  }
  auto logger = std::make_shared<spdlog::logger>(name, make_sink_locked(r));
  logger->set_level(r.level);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace streamrun::log
