#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <streamrun/base/log.h>

namespace streamrun::log {
namespace {

// Writes log lines to stderr above a status line (set_status_line), which it redraws under
// each. Only installed once a status line is set: plain stderr otherwise.
class StatusLineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_status(std::optional<std::string> text) {
    std::lock_guard lock(this->mutex_);
    status_ = std::move(text);
    std::fputs("\r\033[K", stderr);
    if (status_)
      std::fputs(status_->c_str(), stderr);
    std::fflush(stderr);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    this->formatter_->format(msg, formatted);
    std::fputs("\r\033[K", stderr);
    std::fwrite(formatted.data(), 1, formatted.size(), stderr);
    if (status_)
      std::fputs(status_->c_str(), stderr);
    std::fflush(stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  std::optional<std::string> status_;
};

struct Registry {
  std::mutex mutex;
  spdlog::sink_ptr sink;
  std::shared_ptr<StatusLineSink> status_sink;  // replaces `sink` once a status line is set
  bool json = false;
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
  r.json = options.format == "json";
  if (r.json) {
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

void set_status_line(std::optional<std::string> text) {
  auto& r = registry();
  std::shared_ptr<StatusLineSink> sink;
  {
    std::lock_guard lock(r.mutex);
    if (!r.status_sink) {
      if (!text)
        return;
      // From now on every logger writes through the status-aware sink, formatted as before.
      r.status_sink = std::make_shared<StatusLineSink>();
      r.status_sink->set_formatter(
          r.json ? std::unique_ptr<spdlog::formatter>(std::make_unique<JsonFormatter>())
                 : std::make_unique<spdlog::pattern_formatter>(
                       r.pattern.empty() ? LogOptions{}.pattern : r.pattern,
                       spdlog::pattern_time_type::local, ""));
      r.sink = r.status_sink;
      spdlog::apply_all(
          [&](const std::shared_ptr<spdlog::logger>& logger) { logger->sinks() = {r.sink}; });
    }
    sink = r.status_sink;
  }
  sink->set_status(std::move(text));
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
