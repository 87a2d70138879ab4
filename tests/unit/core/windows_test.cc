// Windowed aggregates on the test driver: tumbling and hopping windows, grace and late records,
// expired segments leaving the store, and a failed record taking its stream time back.

#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <streamrun/core/stream_builder.h>
#include <streamrun/testing/topology_test_driver.h>

namespace streamrun {
namespace {

using namespace std::chrono_literals;
using testing::TopologyTestDriver;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};

// What a windowed count wrote: "key@start-end=count stamped end".
struct Update {
  std::string key;
  std::int64_t start = 0;
  std::int64_t end = 0;
  std::int64_t count = 0;
  std::int64_t timestamp = 0;
  bool operator==(const Update&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Update& u) {
  return out << u.key << "@[" << u.start << "," << u.end << ")=" << u.count << " ts "
             << u.timestamp;
}

using WindowedCounts = testing::TestOutputTopic<Windowed<std::string>, std::int64_t>;

// What a windowed count wrote since the last read.
std::vector<Update> updates_of(WindowedCounts& counts) {
  std::vector<Update> out;
  for (const auto& r : counts.read_records())
    out.push_back({r.key.key, r.key.window.start_ms, r.key.window.end_ms, r.value, r.timestamp_ms});
  return out;
}

// clicks -> count per user and window (`final_only`: once per window, when it closes) -> counts.
Topology windowed_count(TimeWindows windows, bool final_only = false) {
  StreamBuilder builder;
  auto windowed = builder.stream("clicks", kStrings).group_by_key(kStrings).windowed_by(windows);
  if (final_only)
    windowed = windowed.emit_on_window_close();
  windowed.count("clicks-per-window")
      .to_stream()
      .to("counts",
          {serdes::windowed(serdes::string(), std::chrono::milliseconds(windows.size_ms())),
           serdes::int64()});
  return builder.build();
}

struct Harness {
  explicit Harness(TimeWindows windows)
      : size(windows.size_ms()),
        driver(windowed_count(windows)),
        clicks(driver.input_topic("clicks", kStrings)),
        counts(driver.output_topic(
            "counts", Serdes<Windowed<std::string>, std::int64_t>{
                          serdes::windowed(serdes::string(), std::chrono::milliseconds(size)),
                          serdes::int64()})) {}

  void click(const std::string& user, std::int64_t at) { clicks.pipe(user, "click", at); }
  std::vector<Update> updates() { return updates_of(counts); }

  std::int64_t size;
  TopologyTestDriver driver;
  testing::TestInputTopic<std::string, std::string> clicks;
  testing::TestOutputTopic<Windowed<std::string>, std::int64_t> counts;
};

TEST(TimeWindowsTest, WindowsOfARecordAreAlignedToTheEpoch) {
  const auto tumbling = TimeWindows::of(1000ms);
  EXPECT_EQ(tumbling.windows_for(0), (std::vector<Window>{{0, 1000}}));
  EXPECT_EQ(tumbling.windows_for(1999), (std::vector<Window>{{1000, 2000}}));
  const auto hopping = TimeWindows::of(10'000ms).advance_by(5'000ms);
  EXPECT_EQ(hopping.windows_for(7'000), (std::vector<Window>{{0, 10'000}, {5'000, 15'000}}));
  EXPECT_EQ(hopping.windows_for(3'000), (std::vector<Window>{{0, 10'000}})) << "none before 0";
  EXPECT_EQ(hopping.windows_for(10'000), (std::vector<Window>{{5'000, 15'000}, {10'000, 20'000}}));
  const auto thirds = TimeWindows::of(3'000ms).advance_by(1'000ms);
  EXPECT_EQ(thirds.windows_for(5'500),
            (std::vector<Window>{{3'000, 6'000}, {4'000, 7'000}, {5'000, 8'000}}));

  EXPECT_THROW(static_cast<void>(TimeWindows::of(0ms)), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(TimeWindows::of(10ms).advance_by(11ms)), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(TimeWindows::of(10ms).advance_by(0ms)), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(TimeWindows::of(10ms).grace(-1ms)), std::invalid_argument);
  // Stream time plus size plus grace must not overflow: a grace of "for ever" is refused, not
  // turned into windows that are closed at once.
  EXPECT_THROW(static_cast<void>(TimeWindows::of(10ms).grace(
                   std::chrono::milliseconds(std::numeric_limits<std::int64_t>::max()))),
               std::invalid_argument);
  EXPECT_NO_THROW(static_cast<void>(
      TimeWindows::of(10ms).grace(std::chrono::milliseconds(TimeWindows::kMaxMs))));
}

TEST(TimeWindowsTest, WindowedKeysRoundTripAsKafkaStreamsWritesThem) {
  const auto serde = serdes::windowed(serdes::string(), 1000ms);
  const Windowed<std::string> key{"sku-1", {5000, 6000}};
  const auto bytes = serde.serialize(key);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, std::string("sku-1") + std::string("\0\0\0\0\0\0\x13\x88", 8));
  EXPECT_EQ(serde.deserialize(*bytes), key);
  EXPECT_THROW(static_cast<void>(serde.deserialize(std::string_view("abc"))), SerdeError);
}

TEST(WindowedAggregateTest, TumblingWindowsCountPerKeyAndStampTheWindowEnd) {
  Harness h(TimeWindows::of(1000ms));
  h.click("ann", 1000);
  h.click("bob", 1200);
  h.click("ann", 1500);
  h.click("ann", 2100);
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 1000, 2000, 1, 2000},
                                              {"bob", 1000, 2000, 1, 2000},
                                              {"ann", 1000, 2000, 2, 2000},
                                              {"ann", 2000, 3000, 1, 3000}}));
}

TEST(WindowedAggregateTest, ARecordLaterThanTheGracePeriodIsDroppedAndCounted) {
  {
    Harness h(TimeWindows::of(1000ms));  // no grace: a window closes at its end
    h.click("ann", 1500);
    h.click("ann", 2000);
    h.click("ann", 1999);  // stream time 2000: [1000, 2000) is closed
    EXPECT_EQ(h.updates(),
              (std::vector<Update>{{"ann", 1000, 2000, 1, 2000}, {"ann", 2000, 3000, 1, 3000}}));
    EXPECT_EQ(h.driver.dropped(), 1);
  }
  Harness h(TimeWindows::of(1000ms).grace(500ms));
  h.click("ann", 1500);
  h.click("ann", 2100);
  h.click("ann", 1999);  // stream time 2100 < 2000 + 500: still open
  h.click("bob", 2500);  // stream time 2500: [1000, 2000) closes
  h.click("ann", 1001);
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 1000, 2000, 1, 2000},
                                              {"ann", 2000, 3000, 1, 3000},
                                              {"ann", 1000, 2000, 2, 2000},
                                              {"bob", 2000, 3000, 1, 3000}}));
  EXPECT_EQ(h.driver.dropped(), 1);
}

TEST(WindowedAggregateTest, HoppingWindowsCountARecordInEachOfItsWindows) {
  Harness h(TimeWindows::of(10'000ms).advance_by(5'000ms));
  h.click("ann", 7'000);
  h.click("ann", 12'000);
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 0, 10'000, 1, 10'000},
                                              {"ann", 5'000, 15'000, 1, 15'000},
                                              {"ann", 5'000, 15'000, 2, 15'000},
                                              {"ann", 10'000, 20'000, 1, 20'000}}));
  // Stream time 12 000: [0, 10 000) is closed, [5 000, 15 000) is not: a record at 9 000 counts
  // only in the later of its windows, and is not late.
  h.click("ann", 9'000);
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 5'000, 15'000, 3, 15'000}}));
  EXPECT_EQ(h.driver.dropped(), 0);
}

TEST(WindowedAggregateTest, ReduceAndAggregateFoldEachWindowFromItsFirstRecord) {
  StreamBuilder builder;
  const Serdes<std::string, std::int64_t> amounts{serdes::string(), serdes::int64()};
  auto grouped = builder.stream("sales", amounts).group_by_key(amounts);
  const auto windows = TimeWindows::of(1000ms);
  const auto windowed_keys = serdes::windowed(serdes::string(), 1000ms);
  grouped.windowed_by(windows)
      .reduce([](std::int64_t a, std::int64_t b) { return std::max(a, b); }, "largest")
      .to_stream()
      .to("largest", {windowed_keys, serdes::int64()});
  grouped.windowed_by(windows)
      .aggregate([] { return std::string("|"); },
                 [](const std::string&, std::int64_t amount, std::string seen) {
                   return seen + std::to_string(amount) + "|";
                 },
                 "amounts", serdes::string())
      .to_stream()
      .to("amounts", {windowed_keys, serdes::string()});
  TopologyTestDriver driver(builder.build());
  auto sales = driver.input_topic("sales", amounts);
  sales.pipe("A", 5, 100);
  sales.pipe("A", 3, 200);
  sales.pipe("A", 7, 1100);
  auto largest = driver.output_topic(
      "largest", Serdes<Windowed<std::string>, std::int64_t>{windowed_keys, serdes::int64()});
  auto seen = driver.output_topic(
      "amounts", Serdes<Windowed<std::string>, std::string>{windowed_keys, serdes::string()});
  EXPECT_EQ(largest.read_values(), (std::vector<std::int64_t>{5, 5, 7}));
  EXPECT_EQ(seen.read_values(), (std::vector<std::string>{"|5|", "|5|3|", "|7|"}));
}

TEST(WindowedAggregateTest, EmitOnWindowCloseGivesOneFinalResultPerWindowOnceItsGraceIsOver) {
  const auto windows = TimeWindows::of(1000ms).grace(500ms);
  TopologyTestDriver driver(windowed_count(windows, /*final_only=*/true));
  auto clicks = driver.input_topic("clicks", kStrings);
  auto counts = driver.output_topic(
      "counts", Serdes<Windowed<std::string>, std::int64_t>{
                    serdes::windowed(serdes::string(), 1000ms), serdes::int64()});
  const auto updates = [&] { return updates_of(counts); };
  clicks.pipe("ann", "x", 1000);
  clicks.pipe("bob", "x", 1200);
  clicks.pipe("ann", "x", 1500);
  clicks.pipe("ann", "x", 2100);
  clicks.pipe("ann", "x", 1999);  // stream time 2 100: [1 000, 2 000) is open until 2 500
  EXPECT_TRUE(updates().empty()) << "nothing before a window closes";
  clicks.pipe("bob", "x", 2600);  // closes [1 000, 2 000)
  EXPECT_EQ(updates(),
            (std::vector<Update>{{"ann", 1000, 2000, 3, 2000}, {"bob", 1000, 2000, 1, 2000}}));
  clicks.pipe("ann", "x", 1001);  // late
  clicks.pipe("cid", "x", 9000);  // closes [2 000, 3 000) and what came between
  EXPECT_EQ(updates(),
            (std::vector<Update>{{"ann", 2000, 3000, 1, 3000}, {"bob", 2000, 3000, 1, 3000}}));
  EXPECT_EQ(driver.dropped(), 1);
  clicks.pipe("cid", "x", 9100);
  EXPECT_TRUE(updates().empty()) << "each window once";
}

TEST(WindowedAggregateTest, EmitEveryGivesEachUpdatedWindowOncePerIntervalWithItsLatestCount) {
  const auto windows = TimeWindows::of(1000ms);
  StreamBuilder builder;
  builder.stream("clicks", kStrings)
      .group_by_key(kStrings)
      .windowed_by(windows)
      .emit_every(500ms)
      .count("clicks-per-window")
      .to_stream()
      .to("counts", {serdes::windowed(serdes::string(), 1000ms), serdes::int64()});
  TopologyTestDriver driver(builder.build());
  auto clicks = driver.input_topic("clicks", kStrings);
  auto counts = driver.output_topic(
      "counts", Serdes<Windowed<std::string>, std::int64_t>{
                    serdes::windowed(serdes::string(), 1000ms), serdes::int64()});
  clicks.pipe("ann", "x", 1000);
  clicks.pipe("ann", "x", 1500);
  clicks.pipe("bob", "x", 1200);
  clicks.pipe("ann", "x", 2100);
  EXPECT_TRUE(updates_of(counts).empty()) << "nothing before the interval is over";
  driver.advance_time(500ms);
  // In order of window start, then key.
  EXPECT_EQ(updates_of(counts), (std::vector<Update>{{"ann", 1000, 2000, 2, 2000},
                                                     {"bob", 1000, 2000, 1, 2000},
                                                     {"ann", 2000, 3000, 1, 3000}}));
  clicks.pipe("ann", "x", 2200);
  driver.advance_time(499ms);
  EXPECT_TRUE(updates_of(counts).empty());
  driver.advance_time(1ms);
  EXPECT_EQ(updates_of(counts), (std::vector<Update>{{"ann", 2000, 3000, 2, 3000}}));
  driver.advance_time(500ms);
  EXPECT_TRUE(updates_of(counts).empty()) << "a window not updated again is not emitted again";

  // A window about to expire (stream time past its retention) before the next emission gives
  // its update then: none is lost when stream time leaps, as when a backlog is read.
  clicks.pipe("ann", "x", 2900);
  clicks.pipe("bob", "x", 9000);
  EXPECT_EQ(updates_of(counts), (std::vector<Update>{{"ann", 2000, 3000, 3, 3000}}));
  driver.advance_time(500ms);
  EXPECT_EQ(updates_of(counts), (std::vector<Update>{{"bob", 9000, 10000, 1, 10000}}));

  EXPECT_THROW(static_cast<void>(builder.stream("other", kStrings)
                                     .group_by_key(kStrings)
                                     .windowed_by(windows)
                                     .emit_on_window_close()
                                     .emit_every(500ms)),
               std::logic_error);
  EXPECT_THROW(static_cast<void>(builder.stream("more", kStrings)
                                     .group_by_key(kStrings)
                                     .windowed_by(windows)
                                     .emit_every(0ms)),
               std::invalid_argument);
}

TEST(WindowedAggregateTest, WithLateRecordsFailALateRecordGoesToTheErrorPolicy) {
  StreamBuilder builder;
  builder.stream("clicks", kStrings)
      .group_by_key(kStrings)
      .windowed_by(TimeWindows::of(1000ms))
      .late_records_fail()
      .count("clicks-per-window");
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::dead_letter("dead"));
  auto clicks = driver.input_topic("clicks", kStrings);
  clicks.pipe("ann", "x", 5000);
  clicks.pipe("ann", "late", 1000);
  const auto letters = driver.read_raw("dead");
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].value, "late");
  std::string message;
  for (const auto& header : letters[0].headers)
    if (header.key == "streamrun.error.message")
      message = header.value.value_or("");
  EXPECT_NE(message.find("record at 1000 ms is late: stream time is 5000 ms"), std::string::npos)
      << message;
  EXPECT_EQ(driver.dropped(), 0);
}

// Timestamps beyond what windows can take without overflowing (10^15 ms) fail their record,
// for time windows and sessions alike, instead of overflowing into a flood of windows.
TEST(WindowedAggregateTest, ATimestampBeyondTenToTheFifteenMsFailsItsRecord) {
  StreamBuilder builder;
  const auto grouped = builder.stream("clicks", kStrings).group_by_key(kStrings);
  static_cast<void>(grouped.windowed_by(TimeWindows::of(1000ms).advance_by(500ms)).count("hops"));
  static_cast<void>(
      grouped.windowed_by(SessionWindows::with_inactivity_gap(1000ms)).count("sessions"));
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::dead_letter("dead"));
  auto clicks = driver.input_topic("clicks", kStrings);
  clicks.pipe("ann", "far", std::numeric_limits<std::int64_t>::max());
  clicks.pipe("ann", "edge", TimeWindows::kMaxMs + 1);
  clicks.pipe("ann", "ok", TimeWindows::kMaxMs);
  const auto letters = driver.read_raw("dead");
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].value, "far");
  EXPECT_EQ(letters[1].value, "edge");
  std::string message;
  for (const auto& header : letters[0].headers)
    if (header.key == "streamrun.error.message")
      message = header.value.value_or("");
  EXPECT_NE(message.find("ms is beyond what windows take (at most 1000000000000000 ms)"),
            std::string::npos)
      << message;
  EXPECT_THROW(static_cast<void>(TimeWindows::of(10ms).windows_for(-1)), std::invalid_argument);
}

// Closed windows leave the store by whole segments once stream time has moved past their
// retention (size + grace), and a later record for them is late, not a fresh window.
TEST(WindowedAggregateTest, ClosedWindowsLeaveTheStoreBySegments) {
  Harness h(TimeWindows::of(2'000ms));  // retention 2 s, segments of 1 s
  for (std::int64_t at = 0; at < 10'000; at += 500)
    h.click("ann", at);
  std::vector<std::int64_t> starts;
  h.driver.store("clicks-per-window")
      .range("", std::string(1, '\xff'), [&](std::string_view key, std::string_view) {
        starts.push_back(detail::WindowStoreLayout::start_of(key));
        return true;
      });
  // Stream time 9 500: the windows starting before segment (9 500 - 2 000) / 1 000 = 7 are gone,
  // [6 000, 8 000) too: it closed at 8 000.
  EXPECT_EQ(starts, (std::vector<std::int64_t>{8'000}));
  h.click("ann", 2'000);
  EXPECT_EQ(h.driver.dropped(), 1);
  EXPECT_EQ(h.updates().size(), 20u) << "the late record updated nothing";
}

// A record that fails after it moved stream time far ahead takes that back with its other
// store writes: the windows it would have closed and expired stay open.
TEST(WindowedAggregateTest, AFailedRecordLeavesStreamTimeAndTheWindowsAsTheyWere) {
  constexpr std::int64_t kYear2100 = 4'102'444'800'000;
  StreamBuilder builder;
  const auto windowed_keys = serdes::windowed(serdes::string(), 1000ms);
  builder.stream("clicks", kStrings)
      .group_by_key(kStrings)
      .windowed_by(TimeWindows::of(1000ms))
      .count("clicks-per-window")
      .to_stream()
      .filter(
          [](const Windowed<std::string>& key, std::int64_t) {
            if (key.window.start_ms >= kYear2100)
              throw std::runtime_error("a click from the future");
            return true;
          },
          "check")
      .to("counts", {windowed_keys, serdes::int64()});
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::dead_letter("dead"));
  auto clicks = driver.input_topic("clicks", kStrings);
  auto counts = driver.output_topic(
      "counts", Serdes<Windowed<std::string>, std::int64_t>{windowed_keys, serdes::int64()});
  clicks.pipe("ann", "x", 1500);
  clicks.pipe("ann", "x", kYear2100);
  clicks.pipe("ann", "x", 1600);
  EXPECT_EQ(counts.read_values(), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(driver.read_raw("dead").size(), 1u);
  EXPECT_EQ(driver.dropped(), 0) << "the record at 1 600 was not late";
}

}  // namespace
}  // namespace streamrun
