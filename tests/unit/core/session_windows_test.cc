// Session windows on the test driver: sessions growing and merging (with tombstones for the
// sessions merged away), the gap and grace deciding what is late, emit-on-close, reduce and
// aggregate with their mergers, and closed sessions leaving the store.

#include <algorithm>
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

// What a session count wrote: "key@[start,end]=count stamped ts", count -1 for a tombstone.
struct Update {
  std::string key;
  std::int64_t start = 0;
  std::int64_t end = 0;
  std::int64_t count = 0;
  std::int64_t timestamp = 0;
  bool operator==(const Update&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Update& u) {
  return out << u.key << "@[" << u.start << "," << u.end << "]=" << u.count << " ts "
             << u.timestamp;
}

constexpr std::int64_t kTombstone = -1;

template <typename V>
using SessionSerdes = Serdes<Windowed<std::string>, std::optional<V>>;

template <typename V>
SessionSerdes<V> session_serdes(Serde<V> value) {
  return {serdes::session_windowed(serdes::string()), serdes::optional(std::move(value))};
}

// clicks -> count per user and session -> counts.
struct Harness {
  explicit Harness(SessionWindows windows, bool final_only = false)
      : driver(topology(windows, final_only)),
        clicks(driver.input_topic("clicks", kStrings)),
        counts(driver.output_topic("counts", session_serdes(serdes::int64()))) {}

  static Topology topology(SessionWindows windows, bool final_only) {
    StreamBuilder builder;
    auto sessions = builder.stream("clicks", kStrings).group_by_key(kStrings).windowed_by(windows);
    if (final_only)
      sessions = sessions.emit_on_window_close();
    sessions.count("sessions").to_stream().to("counts", session_serdes(serdes::int64()));
    return builder.build();
  }

  void click(const std::string& user, std::int64_t at) { clicks.pipe(user, "click", at); }
  std::vector<Update> updates() {
    std::vector<Update> out;
    for (const auto& r : counts.read_records())
      out.push_back({r.key.key, r.key.window.start_ms, r.key.window.end_ms,
                     r.value.value_or(kTombstone), r.timestamp_ms});
    return out;
  }

  TopologyTestDriver driver;
  testing::TestInputTopic<std::string, std::string> clicks;
  testing::TestOutputTopic<Windowed<std::string>, std::optional<std::int64_t>> counts;
};

TEST(SessionWindowsTest, GapAndGraceAreCheckedAndKeysRoundTripAsKafkaStreamsWritesThem) {
  EXPECT_THROW(static_cast<void>(SessionWindows::with_inactivity_gap(0ms)), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(SessionWindows::with_inactivity_gap(10ms).grace(-1ms)),
               std::invalid_argument);
  EXPECT_EQ(SessionWindows::with_inactivity_gap(10ms).grace(5ms).retention_ms(), 15);

  const auto serde = serdes::session_windowed(serdes::string());
  const Windowed<std::string> key{"sku-1", {5000, 6000}};
  const auto bytes = serde.serialize(key);
  ASSERT_TRUE(bytes);
  // Key, then end, then start (SessionKeySchema).
  EXPECT_EQ(*bytes, std::string("sku-1") + std::string("\0\0\0\0\0\0\x17\x70", 8) +
                        std::string("\0\0\0\0\0\0\x13\x88", 8));
  EXPECT_EQ(serde.deserialize(*bytes), key);
  EXPECT_THROW(static_cast<void>(serde.deserialize(std::string_view("0123456789abcde"))),
               SerdeError);
}

TEST(SessionAggregateTest, SessionsGrowWithinTheGapAndARecordThatBridgesTwoMergesThem) {
  // With a grace long enough that no session closes here.
  Harness h(SessionWindows::with_inactivity_gap(10ms).grace(100ms));
  h.click("ann", 0);
  h.click("ann", 5);   // within the gap: the session grows
  h.click("bob", 7);   // another key, another session
  h.click("ann", 30);  // 25 after the last: a new session
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 0, 0, 1, 0},
                                              {"ann", 0, 0, kTombstone, 0},
                                              {"ann", 0, 5, 2, 5},
                                              {"bob", 7, 7, 1, 7},
                                              {"ann", 30, 30, 1, 30}}));
  h.click("ann", 20);  // out of order, 10 before [30, 30]: joins it at its start
  EXPECT_EQ(h.updates(),
            (std::vector<Update>{{"ann", 30, 30, kTombstone, 30}, {"ann", 20, 30, 2, 30}}));
  h.click("ann", 12);  // within 10 of both [0, 5] and [20, 30]: merges them
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 0, 5, kTombstone, 5},
                                              {"ann", 20, 30, kTombstone, 30},
                                              {"ann", 0, 30, 5, 30}}));
  h.click("ann", 25);  // inside the session: it does not change its bounds, no tombstone
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 0, 30, 6, 30}}));
  EXPECT_EQ(h.driver.dropped(), 0);
}

TEST(SessionAggregateTest, ASessionClosesOnceStreamTimePassesItsEndPlusGapPlusGrace) {
  Harness h(SessionWindows::with_inactivity_gap(10ms).grace(5ms));
  h.click("ann", 0);
  h.click("bob", 100);  // stream time 100: sessions ending before 100 - 10 - 5 = 85 are closed
  h.click("ann", 8);    // would join [0, 0], which is closed: late
  h.click("ann", 84);   // a session [84, 84] would be closed at once: late
  h.click("ann", 85);   // open until stream time passes 100
  h.click("bob", 91);   // joins [100, 100]
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 0, 0, 1, 0},
                                              {"bob", 100, 100, 1, 100},
                                              {"ann", 85, 85, 1, 85},
                                              {"bob", 100, 100, kTombstone, 100},
                                              {"bob", 91, 100, 2, 100}}));
  EXPECT_EQ(h.driver.dropped(), 2);
  h.click("bob", 101);  // stream time 101: [85, 85] is closed, 80 would be late
  h.click("ann", 80);
  EXPECT_EQ(h.driver.dropped(), 3);
}

TEST(SessionAggregateTest, EmitOnWindowCloseGivesEachSessionOnceWithoutTombstones) {
  Harness h(SessionWindows::with_inactivity_gap(10ms), /*final_only=*/true);
  h.click("ann", 0);
  h.click("ann", 5);
  h.click("bob", 7);
  h.click("ann", 12);  // [0, 12]; stream time 12: sessions ending before 2 are closed: none
  EXPECT_TRUE(h.updates().empty());
  h.click("cid", 20);  // before 10: bob's [7, 7] closes
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"bob", 7, 7, 1, 7}}));
  h.click("cid", 22);  // before 12: ann's [0, 12] still takes a record at 22
  EXPECT_TRUE(h.updates().empty());
  h.click("cid", 40);  // before 30: ann's [0, 12] and cid's [20, 22], in order of their end
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 0, 12, 3, 12}, {"cid", 20, 22, 2, 22}}));
  h.click("cid", 50);  // joins [40, 40]
  EXPECT_TRUE(h.updates().empty());
  h.click("ann", 100);
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"cid", 40, 50, 2, 50}}));
  h.click("ann", 1000);
  EXPECT_EQ(h.updates(), (std::vector<Update>{{"ann", 100, 100, 1, 100}}));
  EXPECT_EQ(h.driver.dropped(), 0);
}

TEST(SessionAggregateTest, ReduceAndAggregateMergeTheAggregatesOfTheSessionsARecordBridges) {
  StreamBuilder builder;
  const Serdes<std::string, std::int64_t> amounts{serdes::string(), serdes::int64()};
  auto sessions = builder.stream("sales", amounts)
                      .group_by_key(amounts)
                      .windowed_by(SessionWindows::with_inactivity_gap(100ms).grace(1000ms));
  sessions.reduce([](std::int64_t a, std::int64_t b) { return a + b; }, "sum")
      .to_stream()
      .to("sum", session_serdes(serdes::int64()));
  sessions
      .aggregate([] { return std::string(); },
                 [](const std::string&, std::int64_t amount, std::string seen) {
                   return seen + "+" + std::to_string(amount);
                 },
                 [](const std::string&, std::string older, std::string newer) {
                   return "(" + older + ")(" + newer + ")";
                 },
                 "seen", serdes::string())
      .to_stream()
      .to("seen", session_serdes(serdes::string()));
  TopologyTestDriver driver(builder.build());
  auto sales = driver.input_topic("sales", amounts);
  sales.pipe("A", 5, 0);
  sales.pipe("A", 3, 200);
  sales.pipe("A", 7, 100);  // within 100 of [0, 0] and [200, 200]: bridges them
  auto sum = driver.output_topic("sum", session_serdes(serdes::int64()));
  auto seen = driver.output_topic("seen", session_serdes(serdes::string()));
  EXPECT_EQ(sum.read_values(),
            (std::vector<std::optional<std::int64_t>>{5, 3, std::nullopt, std::nullopt, 15}));
  EXPECT_EQ(seen.read_values(), (std::vector<std::optional<std::string>>{
                                    "+5", "+3", std::nullopt, std::nullopt, "(+5)(+3)+7"}));
}

TEST(SessionAggregateTest, WithLateRecordsFailALateRecordGoesToTheErrorPolicy) {
  StreamBuilder builder;
  builder.stream("clicks", kStrings)
      .group_by_key(kStrings)
      .windowed_by(SessionWindows::with_inactivity_gap(10ms))
      .late_records_fail()
      .count("sessions");
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::dead_letter("dead"));
  auto clicks = driver.input_topic("clicks", kStrings);
  clicks.pipe("ann", "x", 5000);
  clicks.pipe("ann", "late", 1000);
  const auto letters = driver.read_raw("dead");
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].value, "late");
  EXPECT_EQ(driver.dropped(), 0);
}

// Closed sessions leave the store by whole segments once stream time has moved past their
// retention (gap + grace); a key's open session stays, and a failed record takes its stream time
// back.
TEST(SessionAggregateTest, ClosedSessionsLeaveTheStoreBySegments) {
  Harness h(SessionWindows::with_inactivity_gap(1000ms));  // retention 1 s, segments of 1 s
  for (std::int64_t at = 0; at < 10'000; at += 1500)
    h.click("user-" + std::to_string(at), at);
  h.click("ann", 9'500);
  std::vector<std::pair<std::int64_t, std::int64_t>> sessions;
  h.driver.store("sessions")
      .range("", std::string(1, '\x80'), [&](std::string_view key, std::string_view) {
        const auto window = detail::SessionStoreLayout::session_of(key);
        sessions.emplace_back(window.start_ms, window.end_ms);
        return true;
      });
  // Stream time 9 500: sessions ending before segment (9 500 - 1 000) / 1 000 = 8 are gone.
  std::sort(sessions.begin(), sessions.end());
  EXPECT_EQ(sessions,
            (std::vector<std::pair<std::int64_t, std::int64_t>>{{9'000, 9'000}, {9'500, 9'500}}));
}

}  // namespace
}  // namespace streamrun
