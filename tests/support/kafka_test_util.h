#pragma once

// Helpers shared by the Kafka integration tests: producing a known data set and draining a
// consumer until a condition holds (the sync point; never a sleep).

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <streamrun/kafka/consumer.h>
#include <streamrun/kafka/producer.h>

namespace streamrun::testing {

// Sends `record`, serving delivery reports while the local queue is full.
inline void send_waiting(kafka::Producer& producer, const kafka::ProducerRecord& record,
                         kafka::DeliveryCallback on_delivery = {}) {
  while (true) {
    auto sent = producer.send(record, on_delivery);
    if (sent)
      return;
    ASSERT_EQ(sent.error().code(), kafka::errc::queue_full) << sent.error().message();
    producer.poll(std::chrono::milliseconds(5));
  }
}

// Polls until `done()` is true or `timeout` passes; every record goes to `on_record`.
// Returns whether `done()` became true.
inline bool poll_until(kafka::Consumer& consumer, const std::function<bool()>& done,
                       const std::function<void(const kafka::Message&)>& on_record,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<kafka::Message> batch;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    batch.clear();
    auto polled = consumer.poll(batch, 500, std::chrono::milliseconds(50));
    EXPECT_TRUE(polled.ok()) << polled.error().message();
    if (!polled)
      return false;
    for (const auto& message : batch)
      on_record(message);
  }
  return true;
}

}  // namespace streamrun::testing
