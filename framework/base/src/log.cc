#include <chrono>
#include <cstdlib>
#include <ctime>
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

// One JSON object per line: what log collectors parse without a grammar of their own.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
    const std::time_t time = seconds.count();
    std::tm utc{};
    gmtime_r(&time, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    fmt::format_to(std::back_inserter(dest), R"({{"ts":"{}.{:03}Z","level":")", stamp, millis);
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    dest.append(std::string_view(R"(","logger":")"));
    escape(msg.logger_name, dest);
    dest.append(std::string_view(R"(","msg":")"));
    escape(msg.payload, dest);
    dest.append(std::string_view("\"}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  static void escape(spdlog::string_view_t text, spdlog::memory_buf_t& dest) {
    for (const char c : std::string_view(text.data(), text.size())) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            fmt::format_to(std::back_inserter(dest), "\\u{:04x}", static_cast<int>(c));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
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
  if (options.format == "json") {
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    sink->set_pattern(r.pattern);
  }
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
