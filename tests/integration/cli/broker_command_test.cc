// `streamrun broker` as a user runs it: in its own process, on the address it prints.

#include <arpa/inet.h>
#include <csignal>
#include <filesystem>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>
#include <streamrun/testing/broker_process.h>
#include <streamrun/testing/child_process.h>

#include "support/kafka_test_util.h"

namespace streamrun::testing {
namespace {

using namespace std::chrono_literals;

// A listening socket on a kernel-chosen loopback port; closing it frees the port.
class ListeningSocket {
 public:
  explicit ListeningSocket(int port = 0) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
          listen(fd_, 1) == 0;
    socklen_t length = sizeof address;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~ListeningSocket() { close(); }
  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }
  bool ok() const { return ok_; }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
  bool ok_ = false;
};

// Two consecutive free ports (for a two-broker cluster), found by holding both briefly.
int free_port_pair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    ListeningSocket first;
    ListeningSocket second(first.port() + 1);
    if (first.ok() && second.ok())
      return first.port();
  }
  return 0;
}

ChildProcess run_cli(const std::vector<std::string>& args) {
  auto process = ChildProcess::spawn(STREAMRUN_CLI_PATH, args, /*merge_stderr=*/true);
  EXPECT_TRUE(process.ok()) << process.error().message();
  return std::move(process).value();
}

TEST(BrokerCommandTest, ServesClientsOnTheAddressItPrints) {
  auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, {{"orders", 3}});
  ASSERT_TRUE(broker.ok()) << broker.error().message();
  const auto bootstrap = broker->bootstrap_servers();
  ASSERT_TRUE(bootstrap.starts_with("127.0.0.1:")) << bootstrap;

  auto producer = kafka::Producer::create({{"bootstrap.servers", bootstrap}});
  ASSERT_TRUE(producer.ok());
  auto partitions = (*producer)->partition_count("orders", 10s);
  ASSERT_TRUE(partitions.ok()) << partitions.error().message();
  EXPECT_EQ(*partitions, 3);
  for (int i = 0; i < 30; ++i) {
    const auto value = std::to_string(i);
    send_waiting(**producer, {"orders", std::nullopt, value, value, {}, std::nullopt});
  }
  ASSERT_TRUE((*producer)->flush(10s).ok());

  auto consumer = kafka::Consumer::create(
      {{"bootstrap.servers", bootstrap}, {"group.id", "cli"}, {"session.timeout.ms", "6000"}},
      nullptr);
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->subscribe({"orders"}).ok());
  int received = 0;
  EXPECT_TRUE(poll_until(
      **consumer, [&] { return received >= 30; }, [&](const kafka::Message&) { ++received; }));
  EXPECT_EQ(received, 30);
}

TEST(BrokerCommandTest, ListensOnTheFixedPortsItIsGiven) {
  const int port = free_port_pair();
  ASSERT_GT(port, 0);
  const auto listen = "127.0.0.1:" + std::to_string(port);
  auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, {{"orders", 2}}, 2, listen);
  ASSERT_TRUE(broker.ok()) << broker.error().message();
  EXPECT_EQ(broker->bootstrap_servers(), listen + ",127.0.0.1:" + std::to_string(port + 1));

  auto producer = kafka::Producer::create({{"bootstrap.servers", listen}});
  ASSERT_TRUE(producer.ok());
  EXPECT_TRUE((*producer)->check_connection(10s).ok());
}

TEST(BrokerCommandTest, PortInUseIsAClearErrorNotAHang) {
  ListeningSocket taken;
  ASSERT_TRUE(taken.ok());
  auto process = run_cli({"broker", "--listen", "127.0.0.1:" + std::to_string(taken.port())});
  const auto status = process.wait(10s);
  ASSERT_TRUE(status.has_value()) << "the broker must give up, not hang";
  EXPECT_EQ(*status, 1);
  auto line = process.wait_for_line("cannot listen", 5s);
  ASSERT_TRUE(line.has_value()) << process.output();
  EXPECT_NE(line->find("cannot listen on 127.0.0.1:" + std::to_string(taken.port()) +
                       ": Address already in use"),
            std::string::npos)
      << *line;
}

// The error line says "already in use", which contains "ready": a harness must not take it for
// the ready line and use "--listen)" as the bootstrap address.
TEST(BrokerCommandTest, HarnessReportsATakenPortInsteadOfReadingTheErrorAsReady) {
  ListeningSocket taken;
  ASSERT_TRUE(taken.ok());
  auto broker =
      BrokerProcess::start(STREAMRUN_CLI_PATH, {}, 1, "127.0.0.1:" + std::to_string(taken.port()));
  ASSERT_FALSE(broker.ok()) << "took " << broker->bootstrap_servers() << " for a ready broker";
  EXPECT_NE(broker.error().message().find("did not print a ready line"), std::string::npos)
      << broker.error().message();
}

// A harness killed before it can stop its broker (SIGKILL, a broken pipe) leaves none behind.
TEST(BrokerCommandTest, StopWithParentStopsWhenItsParentExits) {
  const auto log = std::filesystem::temp_directory_path() /
                   ("stop-with-parent-" + std::to_string(getpid()) + ".log");
  // The shell starts the broker, says its pid once it is ready and exits.
  auto shell = ChildProcess::spawn(
      "/bin/sh",
      {"-c",
       "\"$0\" broker --listen 127.0.0.1:0 --stop-with-parent > \"$1\" & pid=$!;"
       "while ! grep -q '; ready on ' \"$1\"; do kill -0 $pid || exit 1; sleep 0.05; done;"
       "echo \"broker $pid\"",
       STREAMRUN_CLI_PATH, log.string()});
  ASSERT_TRUE(shell.ok()) << shell.error().message();
  const auto line = shell->wait_for_line("broker ", 30s);
  ASSERT_TRUE(line.has_value()) << shell->output();
  const pid_t broker = std::stoi(line->substr(line->find(' ') + 1));
  ASSERT_EQ(shell->wait(10s), std::optional<int>(0));
  // Not our child: its exit can only be watched for.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (::kill(broker, 0) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  const bool gone = ::kill(broker, 0) != 0;
  if (!gone)
    ::kill(broker, SIGKILL);
  EXPECT_TRUE(gone) << "the broker outlived its parent by 10 s";
  std::filesystem::remove(log);
}

TEST(BrokerCommandTest, StopsCleanlyOnSigintAndSigterm) {
  for (int signo : {SIGINT, SIGTERM}) {
    auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, {});
    ASSERT_TRUE(broker.ok()) << broker.error().message();
    broker->process().signal(signo);
    EXPECT_EQ(broker->process().wait(10s), std::optional<int>(0)) << "signal " << signo;
  }
}

TEST(BrokerCommandTest, BadArgumentsAreOneLineErrorsNamingTheArgument) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"broker", "--listen", "10.1.2.3:9092"},
       "--listen '10.1.2.3:9092': the development broker serves loopback only"},
      {{"broker", "--listen", "127.0.0.1"}, "--listen '127.0.0.1': no port"},
      {{"broker", "--listen", "127.0.0.1:0", "--topic", "orders"},
       "topic 'orders': no partition count"},
      {{"broker", "--listen", "127.0.0.1:0", "--topic", "orders:zero"},
       "topic 'orders:zero': partition count must be"},
  };
  for (const auto& [args, expected] : cases) {
    auto process = run_cli(args);
    EXPECT_EQ(process.wait(10s), std::optional<int>(1));
    auto line = process.wait_for_line(expected, 5s);
    EXPECT_TRUE(line.has_value()) << "expected '" << expected << "' in: " << process.output();
  }
}

TEST(BrokerCommandTest, KcatListsTheTopicsOfARunningBroker) {
  const char* kcat = "/usr/bin/kcat";
  if (!std::filesystem::exists(kcat))
    GTEST_SKIP() << "kcat is not installed (apt-get install kcat)";
  auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, {{"orders", 3}, {"payments", 2}});
  ASSERT_TRUE(broker.ok()) << broker.error().message();
  auto process = ChildProcess::spawn(kcat, {"-b", broker->bootstrap_servers(), "-L"}, true);
  ASSERT_TRUE(process.ok());
  EXPECT_TRUE(process->wait_for_line("topic \"orders\" with 3 partitions", 20s).has_value())
      << process->output();
  EXPECT_TRUE(process->wait_for_line("topic \"payments\" with 2 partitions", 20s).has_value())
      << process->output();
  EXPECT_EQ(process->wait(20s), std::optional<int>(0));
}

TEST(QuickstartTest, ProducesAndConsumesThroughTheBrokerProcess) {
  auto broker = BrokerProcess::start(STREAMRUN_CLI_PATH, {{"quickstart", 4}});
  ASSERT_TRUE(broker.ok()) << broker.error().message();
  auto process =
      ChildProcess::spawn(STREAMRUN_QUICKSTART_PATH,
                          {"--bootstrap", broker->bootstrap_servers(), "--records", "3000"}, true);
  ASSERT_TRUE(process.ok());
  EXPECT_TRUE(process->wait_for_line("quickstart OK", 90s).has_value()) << process->output();
  EXPECT_EQ(process->wait(30s), std::optional<int>(0));
}

TEST(QuickstartTest, UnreachableBrokerIsOneLineNamingTheAddress) {
  ListeningSocket reserved;  // a port nothing answers Kafka on once closed
  const int port = reserved.port();
  reserved.close();
  auto process = ChildProcess::spawn(STREAMRUN_QUICKSTART_PATH,
                                     {"--bootstrap", "127.0.0.1:" + std::to_string(port)}, true);
  ASSERT_TRUE(process.ok());
  EXPECT_EQ(process->wait(30s), std::optional<int>(1));
  auto line = process->wait_for_line("cannot reach Kafka", 5s);
  ASSERT_TRUE(line.has_value()) << process->output();
  EXPECT_NE(line->find("bootstrap.servers=127.0.0.1:" + std::to_string(port)), std::string::npos);
}

}  // namespace
}  // namespace streamrun::testing
