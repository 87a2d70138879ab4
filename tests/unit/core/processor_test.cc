// The processor API on the test driver: typed stores, punctuators on stream time and on the
// (mock) wall clock, and timestamps taken from the records.

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
const Serdes<std::string, std::int64_t> kCounts{serdes::string(), serdes::int64()};

// Counts clicks per user in its store and, on each punctuation, forwards every count stamped
// with the punctuation's time and starts again.
class ClickReporter : public Processor<std::string, std::string, std::string, std::int64_t> {
 public:
  explicit ClickReporter(PunctuationType type) : type_(type) {}
  void init(Context& context) override {
    Processor::init(context);
    counts_.emplace(context.store("clicks", kCounts));
    context.schedule(1000ms, type_, [this](std::int64_t time) { report(time); });
  }
  void process(Record<std::string, std::string> record) override {
    if (record.value == "boom-later")
      boom_ = true;
    counts_->put(record.key, counts_->get(record.key).value_or(0) + 1);
  }

 private:
  void report(std::int64_t time) {
    std::vector<std::pair<std::string, std::int64_t>> all;
    counts_->for_each([&](const std::string& user, std::int64_t count) {
      all.emplace_back(user, count);
      return true;
    });
    for (const auto& [user, count] : all) {
      Record<std::string, std::int64_t> out;
      out.key = user;
      out.value = count;
      out.timestamp_ms = time;
      out.headers = {{"report", std::to_string(time)}};
      context().forward(std::move(out));
      counts_->remove(user);
    }
    if (boom_)
      throw std::runtime_error("the report cannot be sent");
  }
  PunctuationType type_;
  std::optional<TypedStore<std::string, std::int64_t>> counts_;
  bool boom_ = false;
};

Topology reporter(PunctuationType type, std::vector<std::string> stores = {"clicks"}) {
  StreamBuilder builder;
  builder.stream("clicks", kStrings)
      .process<std::string, std::int64_t>([type] { return std::make_unique<ClickReporter>(type); },
                                          "reporter", stores)
      .to("reports", kCounts);
  return builder.build();
}

struct Report {
  std::string user;
  std::int64_t count = 0;
  std::int64_t timestamp = 0;
  bool operator==(const Report&) const = default;
};
std::ostream& operator<<(std::ostream& out, const Report& r) {
  return out << r.user << "=" << r.count << "@" << r.timestamp;
}

std::vector<Report> reports(testing::TestOutputTopic<std::string, std::int64_t>& topic) {
  std::vector<Report> out;
  for (const auto& r : topic.read_records()) {
    out.push_back({r.key, r.value, r.timestamp_ms});
    EXPECT_EQ(r.header("report"), std::to_string(r.timestamp_ms)) << "headers set are forwarded";
  }
  return out;
}

TEST(ProcessorTest, StreamTimePunctuatorsFollowTheRecordsTimestampsOncePerJump) {
  TopologyTestDriver driver(reporter(PunctuationType::stream_time));
  auto clicks = driver.input_topic("clicks", kStrings);
  auto out = driver.output_topic("reports", kCounts);
  clicks.pipe("ann", "x", 100);  // stream time starts: first punctuation at 1 100
  clicks.pipe("bob", "x", 900);
  clicks.pipe("ann", "x", 1099);
  driver.advance_time(1h);  // the wall clock does not drive stream-time punctuators
  EXPECT_TRUE(reports(out).empty());
  clicks.pipe("ann", "x", 1100);
  EXPECT_EQ(reports(out), (std::vector<Report>{{"ann", 3, 1100}, {"bob", 1, 1100}}));
  clicks.pipe("bob", "x", 500);   // out of order: stream time stays 1 100
  clicks.pipe("bob", "x", 5000);  // over three intervals at once: one punctuation
  EXPECT_EQ(reports(out), (std::vector<Report>{{"bob", 2, 5000}}));
  clicks.pipe("cid", "x", 5099);
  EXPECT_TRUE(reports(out).empty()) << "the next is due at 5 100";
  clicks.pipe("cid", "x", 5100);
  EXPECT_EQ(reports(out), (std::vector<Report>{{"cid", 2, 5100}}));
}

TEST(ProcessorTest, WallClockPunctuatorsFollowTheDriversClockWithoutRecords) {
  TopologyTestDriver driver(reporter(PunctuationType::wall_clock), "app", 10'000);
  auto clicks = driver.input_topic("clicks", kStrings);
  auto out = driver.output_topic("reports", kCounts);
  clicks.pipe("ann", "x", 999'999);  // creates the task: first punctuation at 11 000
  driver.advance_time(999ms);
  EXPECT_TRUE(reports(out).empty());
  driver.advance_time(1ms);
  EXPECT_EQ(reports(out), (std::vector<Report>{{"ann", 1, 11'000}}));
  driver.advance_time(1ms);
  clicks.pipe("bob", "x", 0);
  driver.advance_time(5000ms);
  EXPECT_EQ(reports(out), (std::vector<Report>{{"bob", 1, 16'001}})) << "once per jump";
}

TEST(ProcessorTest, AFailingPunctuatorFailsTheTaskAndUndoesItsWrites) {
  TopologyTestDriver driver(reporter(PunctuationType::stream_time));
  driver.set_error_policy(ErrorPolicy::dead_letter("dead"));
  auto clicks = driver.input_topic("clicks", kStrings);
  auto out = driver.output_topic("reports", kCounts);
  clicks.pipe("ann", "boom-later", 0);
  try {
    clicks.pipe("ann", "x", 1000);
    ADD_FAILURE() << "a punctuator that throws must fail the task";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "operator 'reporter': punctuator failed: the report cannot be sent");
  }
  EXPECT_TRUE(reports(out).empty()) << "its outputs are not sent";
  EXPECT_EQ(serdes::int64().deserialize(driver.store("clicks").get("ann")), 2)
      << "its removals are undone";
  EXPECT_TRUE(driver.read_raw("dead").empty()) << "there is no record to dead-letter";
}

TEST(ProcessorTest, AStoreTheProcessorDidNotDeclareIsNamed) {
  try {
    TopologyTestDriver driver(reporter(PunctuationType::stream_time, {"other"}));
    driver.input_topic("clicks", kStrings).pipe("ann", "x", 0);
    ADD_FAILURE() << "an undeclared store must be refused";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("processor 'reporter' did not declare store 'clicks'"),
              std::string::npos)
        << e.what();
  }
}

// "user,ms" clicks, counted per 1 s window of the time they carry.
TEST(ProcessorTest, TimestampsTakenFromTheValueDriveWindowsAndOutputs) {
  StreamBuilder builder;
  const auto windowed_keys = serdes::windowed(serdes::string(), 1000ms);
  builder.stream("clicks", kStrings)
      .with_timestamp([](const std::string&, const std::string& value, std::int64_t) {
        return std::stoll(value.substr(value.find(',') + 1));
      })
      .group_by_key(kStrings)
      .windowed_by(TimeWindows::of(1000ms))
      .count("per-second")
      .to_stream()
      .to("counts", {windowed_keys, serdes::int64()});
  TopologyTestDriver driver(builder.build());
  driver.set_error_policy(ErrorPolicy::dead_letter("dead"));
  auto clicks = driver.input_topic("clicks", kStrings);
  auto counts = driver.output_topic(
      "counts", Serdes<Windowed<std::string>, std::int64_t>{windowed_keys, serdes::int64()});
  clicks.pipe("ann", "ann,1500", 99'000);  // Kafka's timestamp is not the one that counts
  clicks.pipe("ann", "ann,1700", 1);
  clicks.pipe("ann", "ann,-4", 1);
  const auto records = counts.read_records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].key.window, (Window{1000, 2000}));
  EXPECT_EQ(records[1].value, 2);
  EXPECT_EQ(records[1].timestamp_ms, 2000);
  ASSERT_EQ(driver.read_raw("dead").size(), 1u) << "a negative timestamp fails the record";
}

}  // namespace
}  // namespace streamrun
