// The Prometheus text the admin endpoint serves, and the histograms behind it.

#include "metrics.h"

#include <gtest/gtest.h>

namespace streamrun::runtime {
namespace {

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfAndSumAndCount) {
  LatencyHistogram histogram;
  histogram.observe(0.0004);  // first bucket
  histogram.observe(0.001);   // on a bound: that bucket (le is "less or equal")
  histogram.observe(3);       // 5 s bucket
  histogram.observe(60);      // beyond every bound: +Inf only
  PrometheusText out;
  out.family("x_seconds", "histogram", "help");
  out.histogram("x_seconds", {{"task", "0_1"}}, histogram.snapshot());
  const auto& text = out.text();
  EXPECT_NE(text.find("x_seconds_bucket{task=\"0_1\",le=\"0.0005\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("x_seconds_bucket{task=\"0_1\",le=\"0.001\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{task=\"0_1\",le=\"2.5\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{task=\"0_1\",le=\"5\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{task=\"0_1\",le=\"10\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{task=\"0_1\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_count{task=\"0_1\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_sum{task=\"0_1\"} 63.0014\n"), std::string::npos) << text;
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  PrometheusText out;
  out.sample("y_total", {{"topic", "a\"b\\c\nd"}}, 3);
  EXPECT_EQ(out.text(), "y_total{topic=\"a\\\"b\\\\c\\nd\"} 3\n");
}

TEST(MetricsTest, FamiliesDeclareHelpAndType) {
  PrometheusText out;
  out.family("z_records", "gauge", "Records waiting");
  out.sample("z_records", {}, 0.5);
  EXPECT_EQ(out.text(),
            "# HELP z_records Records waiting\n# TYPE z_records gauge\nz_records 0.5\n");
}

}  // namespace
}  // namespace streamrun::runtime
