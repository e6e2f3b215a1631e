// SPDX-License-Identifier: LGPL-2.1-or-later
#include "server/source_feed.h"

#include <glib.h>
#ifdef HAVE_MOSQUITTO
#include <mosquitto.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>

#include "engine/base/error.h"
#include "server/http_util.h"

namespace vs::server {

namespace {

// Messages parsed but not yet stored by the main context; past it the
// network thread drops messages instead of queueing them up.
const int kMaxWaiting = 256;

}  // namespace

std::optional<SubscribeUrl> parse_subscribe_url(const std::string& url, std::string* why) {
  const std::string scheme = "mqtt://";
  if (url.compare(0, scheme.size(), scheme) != 0) {
    *why = "'" + url + "' does not start with mqtt:// (mqtt://HOST:PORT/TOPIC)";
    return std::nullopt;
  }
  const std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 == rest.size()) {
    *why = "'" + url + "' names no topic: mqtt://HOST:PORT/TOPIC, e.g. mqtt://127.0.0.1:1883/" +
           "cameras/#";
    return std::nullopt;
  }
  SubscribeUrl out;
  out.topic = rest.substr(slash + 1);
  std::string authority = rest.substr(0, slash);
  const size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    const std::string user = authority.substr(0, at);
    const size_t colon = user.find(':');
    out.username = user.substr(0, colon);
    if (colon != std::string::npos) out.password = user.substr(colon + 1);
    authority = authority.substr(at + 1);
  }
  std::string port_text;
  if (!authority.empty() && authority[0] == '[') {  // [IPv6]:PORT
    const size_t close = authority.find(']');
    if (close == std::string::npos) {
      *why = "'" + url + "' has an unclosed [ in its host";
      return std::nullopt;
    }
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        *why = "'" + url + "' has text after its host's ]";
        return std::nullopt;
      }
      port_text = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) out.host = "127.0.0.1";
  if (!port_text.empty()) {
    const auto port = parse_int(port_text, 1, 65535);
    if (!port) {
      *why = "'" + url + "' has port '" + port_text + "': give 1..65535";
      return std::nullopt;
    }
    out.port = static_cast<int>(*port);
  }
  return out;
}

struct SourceFeed::Shared {
  std::string broker, topic;
  std::function<bool(const vs::json::Item&)> in_gallery;
  std::atomic<bool> connected{false};
  std::atomic<bool> lost{false};  // network thread: the connection went away
  std::atomic<int> waiting{0};
  std::atomic<uint64_t> dropped{0};  // network thread: the main context was behind
  // Main context only.
  std::map<std::string, vs::json::SourceLatest> latest;
  uint64_t received = 0, rejected = 0;
  std::string last_rejection;

  void reject(const std::string& why) {
    if (rejected++ == 0)
      g_printerr(
          "visualsearch-server: --subscribe: ignoring a message from %s: %s (further ones are "
          "only counted, see /api/sources)\n",
          broker.c_str(), why.c_str());
    last_rejection = why;
  }

  void store(vs::json::PublishedResult result) {
    auto it = latest.find(result.source);
    if (it == latest.end()) {
      if (latest.size() >= kMaxSources) {
        reject("source '" + result.source + "' is one more than the " +
               std::to_string(kMaxSources) + " kept");
        return;
      }
      it = latest.emplace(result.source, vs::json::SourceLatest{}).first;
    }
    received++;
    vs::json::SourceLatest& s = it->second;
    s.in_gallery.clear();
    for (const vs::json::Neighbor& n : result.neighbors) s.in_gallery.push_back(in_gallery(n.item));
    s.result = std::move(result);
    s.messages++;
    s.received_us = g_get_real_time();
  }
};

#ifndef HAVE_MOSQUITTO

SourceFeed::SourceFeed(const SubscribeUrl&, std::function<bool(const vs::json::Item&)>) {
  throw Error(
      "--subscribe: this server was built without libmosquitto (install libmosquitto-dev "
      "and rebuild)");
}
SourceFeed::~SourceFeed() = default;
std::string SourceFeed::answer() const { return {}; }

#else

SourceFeed::SourceFeed(const SubscribeUrl& url,
                       std::function<bool(const vs::json::Item&)> in_gallery)
    : url_(url), shared_(std::make_shared<Shared>()) {
  shared_->broker = url.host + ":" + std::to_string(url.port);
  shared_->topic = url.topic;
  shared_->in_gallery = std::move(in_gallery);
  static gsize initialized = 0;
  if (g_once_init_enter(&initialized)) {
    mosquitto_lib_init();
    g_once_init_leave(&initialized, 1);
  }
  if (mosquitto_sub_topic_check(url.topic.c_str()) != MOSQ_ERR_SUCCESS)
    throw Error("--subscribe: '" + url.topic +
                "' is not an MQTT topic filter (+ stands for one whole level, # for the "
                "rest and only at the end)");
  mosq_ = mosquitto_new(nullptr, true, this);
  if (!mosq_)
    throw Error(std::string("--subscribe: cannot make an MQTT client: ") + g_strerror(errno));
  mosquitto_connect_callback_set(mosq_, on_connect);
  mosquitto_disconnect_callback_set(mosq_, on_disconnect);
  mosquitto_message_callback_set(mosq_, on_message);
  mosquitto_reconnect_delay_set(mosq_, 1, 10, true);
  if (!url.username.empty() &&
      mosquitto_username_pw_set(mosq_, url.username.c_str(),
                                url.password.empty() ? nullptr : url.password.c_str()) !=
          MOSQ_ERR_SUCCESS)
    throw Error("--subscribe: cannot use the user name and password given");
  const int rc = mosquitto_connect_async(mosq_, url.host.c_str(), url.port, 30);
  if (rc == MOSQ_ERR_EAI) {
    mosquitto_destroy(mosq_);
    throw Error("--subscribe: cannot resolve the broker's host '" + url.host + "'");
  }
  if (rc == MOSQ_ERR_ERRNO) {  // nobody listens yet
    shared_->lost = true;
    g_printerr("visualsearch-server: --subscribe: broker %s: %s; retrying\n",
               shared_->broker.c_str(), g_strerror(errno));
    starter_.start(
        mosq_, url.host, url.port, 30, 10, [](int) { return true; },
        [](int) {
          g_printerr("visualsearch-server: --subscribe: cannot start the MQTT client's thread\n");
        });
    return;
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_destroy(mosq_);
    throw Error("--subscribe: cannot connect to " + shared_->broker + ": " +
                mosquitto_strerror(rc));
  }
  if (mosquitto_loop_start(mosq_) != MOSQ_ERR_SUCCESS) {
    mosquitto_destroy(mosq_);
    throw Error("--subscribe: cannot start the MQTT client's thread");
  }
  loop_started_ = true;
}

SourceFeed::~SourceFeed() {
  if (!mosq_) return;
  starter_.stop();
  mosquitto_disconnect(mosq_);
  if (loop_started_ || starter_.loop_started()) mosquitto_loop_stop(mosq_, !shared_->connected);
  mosquitto_destroy(mosq_);
}

void SourceFeed::on_connect(mosquitto* mosq, void* data, int rc) {
  auto* self = static_cast<SourceFeed*>(data);
  if (rc != 0) {
    g_printerr("visualsearch-server: --subscribe: broker %s refused the connection: %s\n",
               self->shared_->broker.c_str(), mosquitto_connack_string(rc));
    return;
  }
  self->shared_->connected = true;
  if (self->shared_->lost.exchange(false))
    g_printerr("visualsearch-server: --subscribe: connected to %s\n",
               self->shared_->broker.c_str());
  // qos 0: the page shows the latest result, an old one lost on the way is
  // replaced by the next.
  mosquitto_subscribe(mosq, nullptr, self->url_.topic.c_str(), 0);
}

void SourceFeed::on_disconnect(mosquitto*, void* data, int rc) {
  Shared& shared = *static_cast<SourceFeed*>(data)->shared_;
  shared.connected = false;
  if (rc != 0 && !shared.lost.exchange(true))  // not our own disconnect at stop
    g_printerr("visualsearch-server: --subscribe: lost the broker %s; reconnecting\n",
               shared.broker.c_str());
}

void SourceFeed::on_message(mosquitto*, void* data, const mosquitto_message* message) {
  std::shared_ptr<Shared> shared = static_cast<SourceFeed*>(data)->shared_;
  if (shared->waiting.load() >= kMaxWaiting) {
    shared->dropped++;
    return;
  }
  std::string why;
  std::optional<vs::json::PublishedResult> result;
  if (message->payloadlen < 0 || static_cast<size_t>(message->payloadlen) > kMaxMessage) {
    why = "a message of " + std::to_string(message->payloadlen) + " bytes on '" + message->topic +
          "' is larger than " + std::to_string(kMaxMessage);
  } else {
    const std::string text(static_cast<const char*>(message->payload),
                           static_cast<size_t>(message->payloadlen));
    result = vs::json::parse_published_result(text, &why);
    if (!result) why = "'" + std::string(message->topic) + "' carries no result: " + why;
  }
  shared->waiting++;
  // std::function wants a copyable callable: the result travels in a shared_ptr.
  auto parsed = std::make_shared<std::optional<vs::json::PublishedResult> >(std::move(result));
  run_on_main([shared, parsed, why] {
    shared->waiting--;
    if (*parsed)
      shared->store(std::move(**parsed));
    else
      shared->reject(why);
  });
}

std::string SourceFeed::answer() const {
  vs::json::FeedFacts facts;
  facts.broker = shared_->broker;
  facts.topic = shared_->topic;
  facts.connected = shared_->connected;
  facts.received = shared_->received;
  facts.rejected = shared_->rejected + shared_->dropped;
  facts.last_rejection = shared_->last_rejection;
  std::vector<vs::json::SourceLatest> sources;
  for (const auto& [name, s] : shared_->latest) sources.push_back(s);
  return vs::json::sources_answer(facts, sources);
}

#endif  // HAVE_MOSQUITTO

}  // namespace vs::server
