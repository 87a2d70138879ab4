#include "metrics.h"

#include <cmath>

#include <fmt/format.h>

namespace streamrun::runtime {

void LatencyHistogram::observe(double seconds) noexcept {
  std::size_t bucket = 0;
  while (bucket < kBounds.size() && seconds > kBounds[bucket])
    ++bucket;
  auto& count = counts_[bucket];
  count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum_.store(sum_.load(std::memory_order_relaxed) + seconds, std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const noexcept {
  Snapshot snapshot;
  for (std::size_t i = 0; i < counts_.size(); ++i)
    snapshot.counts[i] = counts_[i].load(std::memory_order_relaxed);
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

void LatencyHistogram::Snapshot::add(const Snapshot& other) noexcept {
  for (std::size_t i = 0; i < counts.size(); ++i)
    counts[i] += other.counts[i];
  sum += other.sum;
}

namespace {

// Prometheus renders numbers as Go's strconv does; integers exactly, others in full precision.
std::string number(double value) {
  if (std::isinf(value))
    return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value))
    return "NaN";
  if (value == std::floor(value) && std::fabs(value) < 1e15)
    return fmt::format("{:.0f}", value);
  return fmt::format("{}", value);
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void PrometheusText::write_labels(const Labels& labels, std::string_view extra_name,
                                  std::string_view extra_value) {
  if (labels.empty() && extra_name.empty())
    return;
  text_ += '{';
  bool first = true;
  const auto one = [&](std::string_view name, std::string_view value) {
    if (!first)
      text_ += ',';
    first = false;
    text_ += name;
    text_ += "=\"";
    for (const char c : value) {
      if (c == '\\' || c == '"') {
        text_ += '\\';
        text_ += c;
      } else if (c == '\n') {
        text_ += "\\n";
      } else {
        text_ += c;
      }
    }
    text_ += '"';
  };
  for (const auto& [name, value] : labels)
    one(name, value);
  if (!extra_name.empty())
    one(extra_name, extra_value);
  text_ += '}';
}

void PrometheusText::sample(std::string_view name, const Labels& labels, double value) {
  text_ += name;
  write_labels(labels);
  text_ += ' ';
  text_ += number(value);
  text_ += '\n';
}

void PrometheusText::histogram(std::string_view name, const Labels& labels,
                               const LatencyHistogram::Snapshot& snapshot) {
  std::uint64_t cumulative = 0;
  const std::string bucket = fmt::format("{}_bucket", name);
  for (std::size_t i = 0; i < snapshot.counts.size(); ++i) {
    cumulative += snapshot.counts[i];
    text_ += bucket;
    write_labels(
        labels, "le",
        i < LatencyHistogram::kBounds.size() ? number(LatencyHistogram::kBounds[i]) : "+Inf");
    fmt::format_to(std::back_inserter(text_), " {}\n", cumulative);
  }
  sample(fmt::format("{}_sum", name), labels, snapshot.sum);
  sample(fmt::format("{}_count", name), labels, static_cast<double>(cumulative));
}

}  // namespace streamrun::runtime
