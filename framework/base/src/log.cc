#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <unistd.h>

#include <spdlog/sinks/base_sink.h>

#include <streamrun/base/log.h>

namespace streamrun::log {
namespace {

// Every streamrun log line goes through this one sink to stderr, coloured by level on a
// terminal (as spdlog's colour sink does), and above the status line when one is set
// (set_status_line), which it redraws under each line. One sink from the start: swapping a
// logger's sinks while other threads log is a data race.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  StderrSink() {
    const char* term = std::getenv("TERM");
    colors_ = isatty(STDERR_FILENO) == 1 && term != nullptr && std::string_view(term) != "dumb";
  }

  void set_status(std::optional<std::string> text) {
    std::lock_guard lock(this->mutex_);
    if (!status_ && !text)
      return;
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
    if (status_)
      std::fputs("\r\033[K", stderr);
    if (colors_ && msg.color_range_end > msg.color_range_start) {
      std::fwrite(formatted.data(), 1, msg.color_range_start, stderr);
      std::fputs(color(msg.level), stderr);
      std::fwrite(formatted.data() + msg.color_range_start, 1,
                  msg.color_range_end - msg.color_range_start, stderr);
      std::fputs("\033[m", stderr);
      std::fwrite(formatted.data() + msg.color_range_end, 1, formatted.size() - msg.color_range_end,
                  stderr);
    } else {
      std::fwrite(formatted.data(), 1, formatted.size(), stderr);
    }
    if (status_)
      std::fputs(status_->c_str(), stderr);
    std::fflush(stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  static const char* color(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::trace:
        return "\033[37m";
      case spdlog::level::debug:
        return "\033[36m";
      case spdlog::level::info:
        return "\033[32m";
      case spdlog::level::warn:
        return "\033[33m\033[1m";
      case spdlog::level::err:
        return "\033[31m\033[1m";
      case spdlog::level::critical:
        return "\033[1m\033[41m";
      default:
        return "";
    }
  }
  bool colors_ = false;
  std::optional<std::string> status_;  // under mutex_
};

struct Registry {
  std::mutex mutex;
  std::shared_ptr<StderrSink> sink;
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
std::shared_ptr<StderrSink> make_sink_locked(Registry& r) {
  if (!r.sink)
    r.sink = std::make_shared<StderrSink>();
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

void set_status_line(std::optional<std::string> text) {
  auto& r = registry();
  std::shared_ptr<StderrSink> sink;
  {
    std::lock_guard lock(r.mutex);
    sink = make_sink_locked(r);
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
