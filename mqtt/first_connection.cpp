// SPDX-License-Identifier: LGPL-2.1-or-later
#include "mqtt/first_connection.h"

#include <mosquitto.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace vs::mqtt {

void FirstConnection::start(mosquitto* mosq, std::string host, int port, int keep_alive,
                            int max_delay, OnFailure on_failure, OnLoopFailure on_loop_failure) {
  stop();
  mosq_ = mosq;
  host_ = std::move(host);
  port_ = port;
  keep_alive_ = keep_alive;
  max_delay_ = std::max(1, max_delay);
  on_failure_ = std::move(on_failure);
  on_loop_failure_ = std::move(on_loop_failure);
  stopping_ = false;
  loop_started_ = false;
  thread_ = std::thread([this] { run(); });
}

void FirstConnection::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (int delay = 1;; delay = std::min(2 * delay, max_delay_)) {
    if (cv_.wait_for(lock, std::chrono::seconds(delay), [this] { return stopping_; })) return;
    // Non-blocking (the socket connects in the background), but for a host
    // name's lookup.
    const int rc = mosquitto_connect_async(mosq_, host_.c_str(), port_, keep_alive_);
    if (rc != MOSQ_ERR_SUCCESS) {
      if (on_failure_(rc)) continue;
      return;
    }
    const int loop_rc = mosquitto_loop_start(mosq_);
    if (loop_rc == MOSQ_ERR_SUCCESS)
      loop_started_ = true;
    else
      on_loop_failure_(loop_rc);
    return;
  }
}

}  // namespace vs::mqtt
