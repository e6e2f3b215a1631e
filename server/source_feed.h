/* SPDX-License-Identifier: LGPL-2.1-or-later */
// --subscribe: the results camera pipelines elsewhere publish with
// metapublish method=mqtt, read from an MQTT broker, the latest one of each
// source kept for GET /api/sources and the page's Cameras view.
// libmosquitto's own thread receives and parses each message; the main
// context only stores the parsed result, so a flood of messages never blocks
// the page.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "json/documents.h"
#include "mqtt/first_connection.h"

struct mosquitto;
struct mosquitto_message;

namespace vs::server {

// mqtt://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC-FILTER, as --subscribe takes it.
struct SubscribeUrl {
  std::string host;
  int port = 1883;
  std::string topic;  // may hold MQTT's + and # wildcards
  std::string username, password;
};

// The URL parsed; nullopt, *why saying what is wrong, for anything else.
std::optional<SubscribeUrl> parse_subscribe_url(const std::string& url, std::string* why);

class SourceFeed {
 public:
  // The largest message read, and the most sources kept: past them a message
  // is rejected (counted, the first of each kind logged).
  static constexpr size_t kMaxMessage = 1 << 20;
  static constexpr size_t kMaxSources = 1024;

  // in_gallery tells, on the main context, whether the served gallery holds
  // an item (for its thumbnail). Connects asynchronously and keeps
  // reconnecting; throws vs::Error when the client cannot be set up.
  SourceFeed(const SubscribeUrl& url, std::function<bool(const vs::json::Item&)> in_gallery);
  ~SourceFeed();
  SourceFeed(const SourceFeed&) = delete;
  SourceFeed& operator=(const SourceFeed&) = delete;

  // Main context only: GET /api/sources.
  std::string answer() const;

 private:
  struct Shared;  // what the callbacks reach, alive until both sides let go
  static void on_connect(mosquitto* mosq, void* self, int rc);
  static void on_disconnect(mosquitto* mosq, void* self, int rc);
  static void on_message(mosquitto* mosq, void* self, const mosquitto_message* message);

  SubscribeUrl url_;
  std::shared_ptr<Shared> shared_;
  mosquitto* mosq_ = nullptr;
  // libmosquitto's thread retries only a connection once made: until the
  // first one, starter_ tries again every 1-10 s, then starts that thread.
  vs::mqtt::FirstConnection starter_;
  bool loop_started_ = false;  // by the constructor; starter_ says its own
};

}  // namespace vs::server
