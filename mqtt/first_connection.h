/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The first connection to an MQTT broker that did not listen yet.
// libmosquitto's thread (mosquitto_loop_start) reconnects only a connection
// that once was made: until the first one is, FirstConnection tries again on
// a thread of its own, after 1 s, then twice as long each time up to a most,
// and once mosquitto_connect_async succeeds starts libmosquitto's thread.
// The server's --subscribe (server/source_feed) and metapublish's method=mqtt
// (ext/visualsearch/gstmetapublish) both wait for their broker so.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

struct mosquitto;

namespace vs::mqtt {

class FirstConnection {
 public:
  // Told the code of a failed mosquitto_connect_async: true tries again,
  // false ends the retries.
  using OnFailure = std::function<bool(int rc)>;
  // Told the code of mosquitto_loop_start when it failed, the connection made.
  using OnLoopFailure = std::function<void(int rc)>;

  FirstConnection() = default;
  ~FirstConnection() { stop(); }
  FirstConnection(const FirstConnection&) = delete;
  FirstConnection& operator=(const FirstConnection&) = delete;

  // Starts the retries of mosquitto_connect_async(mosq, host, port,
  // keep_alive), max_delay seconds apart at the most (at least 1). mosq must
  // outlive stop(); the callbacks run on the retries' thread.
  void start(mosquitto* mosq, std::string host, int port, int keep_alive, int max_delay,
             OnFailure on_failure, OnLoopFailure on_loop_failure);

  // Ends the retries (at once, even mid-wait) and joins their thread; nothing
  // when none were started. Inline, so that a build without libmosquitto
  // (and so without vsmqtt) links an owner whose FirstConnection never starts.
  void stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // After stop(): whether the retries started libmosquitto's thread.
  bool loop_started() const { return loop_started_; }

 private:
  void run();

  mosquitto* mosq_ = nullptr;
  std::string host_;
  int port_ = 0;
  int keep_alive_ = 0;
  int max_delay_ = 1;
  OnFailure on_failure_;
  OnLoopFailure on_loop_failure_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;      // under mutex_
  bool loop_started_ = false;  // set by thread_, read after it is joined
};

}  // namespace vs::mqtt
