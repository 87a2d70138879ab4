#pragma once

// What the end-to-end benchmarks share: filling an input topic and timing an application until
// it has processed everything.

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include <streamrun/kafka/producer.h>
#include <streamrun/runtime/application.h>

namespace streamrun::bench {

using Clock = std::chrono::steady_clock;

// Produces `records` records to `topic`, keyed by key_of(i) with value value_of(i), and waits
// until the broker has acknowledged them all.
inline void produce(const std::string& bootstrap, const std::string& topic, int records,
                    const std::function<std::string(int)>& key_of,
                    const std::function<std::string(int)>& value_of) {
  using namespace std::chrono_literals;
  auto producer = kafka::Producer::create({{"bootstrap.servers", bootstrap}}).value();
  for (int i = 0; i < records; ++i) {
    const auto key = key_of(i);
    const auto value = value_of(i);
    while (!producer->send({topic, std::nullopt, key, value, {}, std::nullopt})) {
      producer->poll(1ms);
    }
    if (i % 1000 == 0)
      producer->poll();
  }
  producer->flush(60s).value();
}

// Runs `app` until it has processed `records` records, then stops it (the final flush and commit
// count as work). Returns the seconds from its first processed record to the end, so that the
// consumer group's join is left out.
inline double run_until_processed(runtime::Application& app, std::int64_t records) {
  std::thread runner([&] { app.run().value(); });
  Clock::time_point first;
  bool started = false;
  while (app.stats().records_processed < records) {
    if (!started && app.stats().records_processed > 0) {
      first = Clock::now();
      started = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // sampling another thread
  }
  app.stop();
  runner.join();
  return std::chrono::duration<double>(Clock::now() - first).count();
}

}  // namespace streamrun::bench
