// The admin endpoint's status page (/) in a real browser: headless Chromium (Debian's
// `chromium`) loads it from a running application while records flow; the test reads the
// page's DOM and compares the screenshot with what it must show — every operator drawn as a
// box, coloured as flowing (non-zero records/s), and the topics around them.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <png.h>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <streamrun/core/stream_builder.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>
#include <streamrun/testing/broker_fixture.h>

#include "support/running_app.h"

namespace streamrun::runtime {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const Serdes<std::string, std::string> kStrings{serdes::string(), serdes::string()};
const Serdes<std::string, std::int64_t> kCounts{serdes::string(), serdes::int64()};
constexpr int kPartitions = 2;
// Operators of the topology below, as the page names them.
const std::vector<std::string> kOperators = {"source-0", "filter-1", "count-2", "sink-3",
                                             "per-second"};

Topology topology() {
  StreamBuilder builder;
  const auto pages =
      builder.stream("clicks", kStrings)
          .filter([](const std::string&, const std::string& value) { return !value.empty(); })
          .group_by_key(kStrings);
  pages.count("clicks-per-page").to_stream().to("click-counts", kCounts);
  // A window store: the page lists its latest windows.
  static_cast<void>(
      pages.windowed_by(TimeWindows::of(1s)).count("clicks-per-second", "per-second"));
  return builder.build();
}

struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgba;
  // Pixels of exactly this colour.
  [[nodiscard]] long count(std::uint8_t r, std::uint8_t g, std::uint8_t b) const {
    long n = 0;
    for (std::size_t i = 0; i + 3 < rgba.size(); i += 4)
      n += rgba[i] == r && rgba[i + 1] == g && rgba[i + 2] == b;
    return n;
  }
};

std::optional<Image> read_png(const std::filesystem::path& file) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, file.c_str()))
    return std::nullopt;
  image.format = PNG_FORMAT_RGBA;
  Image out{static_cast<int>(image.width), static_cast<int>(image.height), {}};
  out.rgba.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgba.data(), 0, nullptr))
    return std::nullopt;
  return out;
}

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr)
    return out;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe))
    out.append(buffer, n);
  pclose(pipe);
  return out;
}

class StatusPageTest : public testing::BrokerFixture {
 protected:
  std::vector<kafka::TopicSpec> topics() const override {
    return {{"clicks", kPartitions},
            {"click-counts", kPartitions},
            {"status-page-clicks-per-page-changelog", kPartitions}};
  }
  static std::filesystem::path state_dir() {
    return std::filesystem::temp_directory_path() / fmt::format("status-page-test-{}", ::getpid());
  }
  void TearDown() override {
    std::filesystem::remove_all(state_dir());
    BrokerFixture::TearDown();
  }
};

TEST_F(StatusPageTest, ChromiumShowsTheTopologyWithLiveRates) {
  const char* chromium = "/usr/bin/chromium";
  ASSERT_TRUE(std::filesystem::exists(chromium))
      << "chromium is missing: install Debian's chromium package (scripts/setup.sh does)";
  testing::RunningApp running(topology(), {{"application.id", "status-page"},
                                           {"bootstrap.servers", bootstrap_servers()},
                                           {"consumer.session.timeout.ms", "6000"},
                                           {"admin.timeout.ms", "500"},
                                           {"admin.listen", "127.0.0.1:0"},
                                           {"state.dir", state_dir().string()}});
  const auto address = running.admin_address();

  // Records flow for as long as the browser looks.
  std::atomic<bool> stop{false};
  std::thread producer_thread([&] {
    auto producer = kafka::Producer::create(producer_properties()).value();
    for (int i = 0; !stop; ++i) {
      static_cast<void>(producer->send(
          {"clicks", std::nullopt, fmt::format("/page/{}", i % 7), "click", {}, std::nullopt}));
      static_cast<void>(producer->poll());
      if (i % 50 == 0)
        std::this_thread::sleep_for(5ms);
    }
    static_cast<void>(producer->flush(10s));
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Join() {
      stop = true;
      thread.join();
    }
  } join{stop, producer_thread};

  // Sync point: every operator has a rate in the figures the page reads.
  httplib::Client client("http://" + address);
  bool flowing = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!flowing && std::chrono::steady_clock::now() < deadline) {
    if (auto status = client.Get("/api/status"); status && status->status == 200) {
      const auto body = json::parse(status->body);
      flowing = true;
      for (const auto& name : kOperators) {
        flowing = flowing && body["node_counts"].contains(name) &&
                  body["node_counts"][name]["in_per_second"].get<double>() > 0;
      }
    }
    if (!flowing)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(flowing) << "the operators never showed a rate in /api/status";

  const auto screenshot = std::filesystem::current_path() / "status-page.png";
  std::filesystem::remove(screenshot);
  const auto browser = fmt::format(
      "{} --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run "
      "--window-size=1200,800 --virtual-time-budget=3000 --user-data-dir={} ",
      chromium, (state_dir() / "chromium").string());
  const auto dom = run(browser + "--dump-dom http://" + address + "/ 2>/dev/null");
  run(browser + "--screenshot=" + screenshot.string() + " http://" + address + "/ 2>/dev/null");

  // The DOM: a box per operator, each with a non-zero rate; the topics; the figures.
  for (const auto& name : kOperators) {
    const std::regex box("<g class=\"op flowing\" data-node=\"" + name +
                         "\"[^>]*>.*?class=\"rate\">([0-9,]+) rec/s</text>");
    std::smatch match;
    ASSERT_TRUE(std::regex_search(dom, match, box)) << name << " is not drawn as flowing:\n" << dom;
    EXPECT_NE(match[1].str(), "0") << name;
  }
  for (const auto* topic : {"clicks", "click-counts"}) {
    EXPECT_NE(dom.find(fmt::format("data-node=\"topic:{}\"", topic)), std::string::npos) << topic;
  }
  EXPECT_NE(dom.find("processed/s"), std::string::npos);
  EXPECT_NE(dom.find("clicks-per-page"), std::string::npos) << "the count's store is named";
  // The latest windows of the window store: a page's clicks in a second of today (UTC).
  EXPECT_NE(dom.find("store clicks-per-second (time windows)"), std::string::npos) << dom;
  const std::regex window(
      R"(<td>/page/[0-6]</td><td>\[\d\d:\d\d:\d\d\.000, \d\d:\d\d:\d\d\.000\)</td><td>[1-9][0-9]*</td>)");
  EXPECT_TRUE(std::regex_search(dom, window)) << dom;

  // The screenshot: operator boxes filled in the "flowing" green, none left in the idle blue,
  // topics in their yellow. A box is 150x54 px at most; drawn scaled down no further than
  // about two thirds here.
  const auto image = read_png(screenshot);
  ASSERT_TRUE(image) << "no screenshot at " << screenshot;
  EXPECT_EQ(image->width, 1200);
  EXPECT_EQ(image->height, 800);
  const long flowing_green = image->count(0xbb, 0xf7, 0xd0);
  const long idle_blue = image->count(0xdb, 0xea, 0xfe);
  const long topic_yellow = image->count(0xfe, 0xf3, 0xc7);
  const long box_area = 140 * 44;  // inside the border
  EXPECT_GE(flowing_green, static_cast<long>(kOperators.size()) * box_area * 2 / 3)
      << "operator boxes shown as flowing; screenshot: " << screenshot;
  EXPECT_LT(idle_blue, box_area / 4) << "an operator is shown idle; screenshot: " << screenshot;
  EXPECT_GE(topic_yellow, 2 * box_area * 2 / 3) << "topics drawn; screenshot: " << screenshot;
}

}  // namespace
}  // namespace streamrun::runtime
