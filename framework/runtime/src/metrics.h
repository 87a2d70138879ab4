#pragma once

// What /metrics serves: latency histograms that a task updates without locks, and a writer of
// Prometheus' text exposition format (version 0.0.4).

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace streamrun::runtime {

// A latency histogram with fixed buckets (seconds, Prometheus' conventions). One thread or
// fiber observes (the task's), any thread reads: each field is written with a relaxed
// load-and-store, not a read-modify-write, so observing costs what plain counters cost; a
// reader may see a bucket a moment before the sum (scrapes are not atomic in Prometheus either).
class LatencyHistogram {
 public:
  // Upper bounds, seconds; +Inf is implicit.
  static constexpr std::array<double, 14> kBounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  // Single writer only.
  void observe(double seconds) noexcept;

  struct Snapshot {
    std::array<std::uint64_t, kBounds.size() + 1> counts{};  // per bucket, not cumulative
    double sum = 0;
    void add(const Snapshot& other) noexcept;
  };
  [[nodiscard]] Snapshot snapshot() const noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> counts_{};
  std::atomic<double> sum_{0};
};

using Labels = std::vector<std::pair<std::string, std::string>>;

// Prometheus text format: each family once (HELP, TYPE), then its samples. Label values are
// escaped; names are the caller's (constants in the runtime).
class PrometheusText {
 public:
  // type: "counter", "gauge" or "histogram". A family with no sample is still declared (a
  // scraper then knows the metric exists).
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  // name_bucket{le=...} (cumulative), name_sum, name_count.
  void histogram(std::string_view name, const Labels& labels,
                 const LatencyHistogram::Snapshot& snapshot);
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  void write_labels(const Labels& labels, std::string_view extra_name = {},
                    std::string_view extra_value = {});
  std::string text_;
};

}  // namespace streamrun::runtime
