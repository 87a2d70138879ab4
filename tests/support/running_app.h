#pragma once

// An Application running on its own thread for the length of a test.

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <streamrun/runtime/application.h>

namespace streamrun::testing {

// Runs an application on its own thread until stopped.
class RunningApp {
 public:
  RunningApp(const Topology& topology, const config::Properties& properties) {
    using runtime::Application;
    auto app = Application::create(topology, properties);
    EXPECT_TRUE(app.ok()) << app.error().message();
    app_ = std::move(app).value();
    thread_ = std::thread([this] { result_ = std::make_unique<Result<void>>(app_->run()); });
  }
  ~RunningApp() { static_cast<void>(stop()); }
  // Waits for run() to return by itself (e.g. after a task failed).
  Result<void> wait() {
    if (thread_.joinable())
      thread_.join();
    return result_ ? *result_ : Result<void>();
  }
  Result<void> stop() {
    if (thread_.joinable()) {
      app_->stop();
      thread_.join();
    }
    return result_ ? *result_ : Result<void>();
  }
  runtime::Application& app() { return *app_; }
  // The admin endpoint's address once run() serves it ("127.0.0.1:1", which refuses, when it
  // does not within 30 s).
  std::string admin_address() {
    using namespace std::chrono_literals;
    const auto started = std::chrono::steady_clock::now();
    while (!app_->admin_address() && std::chrono::steady_clock::now() - started < 30s)
      std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(app_->admin_address().has_value()) << "no admin endpoint";
    return app_->admin_address().value_or("127.0.0.1:1");
  }

 private:
  std::unique_ptr<runtime::Application> app_;
  std::unique_ptr<Result<void>> result_;
  std::thread thread_;
};

}  // namespace streamrun::testing
