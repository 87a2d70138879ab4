#pragma once

// An Application running on its own thread for the length of a test.

#include <memory>
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

 private:
  std::unique_ptr<runtime::Application> app_;
  std::unique_ptr<Result<void>> result_;
  std::thread thread_;
};

}  // namespace streamrun::testing
