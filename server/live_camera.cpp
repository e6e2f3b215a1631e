// SPDX-License-Identifier: LGPL-2.1-or-later
#include "server/live_camera.h"

#include <gst/app/gstappsink.h>
#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>

#include "engine/base/error.h"
#include "json/documents.h"
#include "server/http_util.h"

namespace vs::server {

namespace {

const char kBoundary[] = "vsframe";
// Chunks a client may have waiting; past that it skips frames.
const int kMaxPending = 3;

}  // namespace

LiveCamera::LiveCamera(const std::string& camera, const std::string& index,
                       const std::string& detector)
    : regions_(!detector.empty()) {
  // A leaky queue before the embedder: a camera faster than the model drops
  // frames instead of queueing them up.
  const std::string description =
      camera +
      " ! videoconvert ! videoscale ! video/x-raw,width=640,height=480 ! "
      "queue leaky=downstream max-size-buffers=2 ! " +
      (detector.empty() ? std::string() : detector + " ! ") +
      "embedder name=embed"
      " ! faisssearch name=search k=5 post-messages=false reload=true ! "
      "searchoverlay name=overlay ! "
      "videoconvert ! jpegenc quality=75 ! appsink name=sink sync=false max-buffers=2 drop=true";
  GError* error = nullptr;
  pipeline_ = gst_parse_launch(description.c_str(), &error);
  if (!pipeline_ || error) {
    const std::string message = error ? error->message : "unknown error";
    g_clear_error(&error);
    if (pipeline_) gst_object_unref(pipeline_);
    throw Error("cannot build the live pipeline for --camera '" + camera + "': " + message);
  }
  for (const char* name : {"embed", "search", "overlay"}) {
    GstElement* element = gst_bin_get_by_name(GST_BIN(pipeline_), name);
    g_object_set(element, "index", index.c_str(), NULL);
    gst_object_unref(element);
  }
  GstElement* search = gst_bin_get_by_name(GST_BIN(pipeline_), "search");
  GstPad* pad = gst_element_get_static_pad(search, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, (GstPadProbeCallback)on_neighbors, this,
                    nullptr);
  gst_object_unref(pad);
  gst_object_unref(search);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline_), "sink");
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = [](GstAppSink* s, gpointer self) {
    return on_jpeg(GST_ELEMENT(s), static_cast<LiveCamera*>(self));
  };
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, this, nullptr);
  gst_object_unref(sink);
  GstBus* bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(bus, (GstBusSyncHandler)on_bus, this, nullptr);
  gst_object_unref(bus);
  // PAUSED opens the camera, loads the model and the index: what can fail
  // fails now, at start. Then it waits in NULL for a client.
  const GstStateChangeReturn paused = gst_element_set_state(pipeline_, GST_STATE_PAUSED);
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  if (paused == GST_STATE_CHANGE_FAILURE) {
    gst_object_unref(pipeline_);
    throw Error("the live pipeline for --camera '" + camera +
                "' cannot start (see the message above)");
  }
}

void LiveCamera::play(bool on) {
  if (on == playing_) return;
  playing_ = on;
  if (gst_element_set_state(pipeline_, on ? GST_STATE_PLAYING : GST_STATE_NULL) ==
      GST_STATE_CHANGE_FAILURE)
    g_printerr("visualsearch-server: live camera: cannot %s the pipeline\n", on ? "start" : "stop");
  g_print("visualsearch-server: live camera %s\n",
          on ? "on: a client watches" : "off: no client watches");
  fflush(stdout);
}

LiveCamera::~LiveCamera() {
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_object_unref(pipeline_);
  for (Client& c : clients_) {
    g_signal_handlers_disconnect_by_data(c.msg, this);
    g_object_unref(c.msg);
  }
}

void LiveCamera::add_client(SoupServerMessage* msg, bool mjpeg) {
  SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
  soup_message_headers_set_encoding(headers, SOUP_ENCODING_CHUNKED);
  if (mjpeg) {
    soup_message_headers_set_content_type(
        headers, (std::string("multipart/x-mixed-replace; boundary=") + kBoundary).c_str(),
        nullptr);
  } else {
    soup_message_headers_set_content_type(headers, "text/event-stream", nullptr);
  }
  soup_server_message_set_status(msg, 200, nullptr);
  SoupMessageBody* body = soup_server_message_get_response_body(msg);
  soup_message_body_set_accumulate(body, FALSE);
  if (!mjpeg) {
    static const char hello[] = ": visualsearch live events\n\n";
    soup_message_body_append(body, SOUP_MEMORY_STATIC, hello, sizeof hello - 1);
  }
  g_signal_connect(msg, "finished", G_CALLBACK(on_finished), this);
  g_signal_connect(msg, "wrote-chunk", G_CALLBACK(on_wrote_chunk), this);
  clients_.push_back(Client{SOUP_SERVER_MESSAGE(g_object_ref(msg)), mjpeg, mjpeg ? 0 : 1});
  play(true);
}

void LiveCamera::add_events_client(SoupServerMessage* msg) { add_client(msg, false); }
void LiveCamera::add_mjpeg_client(SoupServerMessage* msg) { add_client(msg, true); }

void LiveCamera::broadcast(bool mjpeg, const std::string& chunk) {
  for (Client& c : clients_) {
    if (c.mjpeg != mjpeg || c.pending >= kMaxPending) continue;
    SoupMessageBody* body = soup_server_message_get_response_body(c.msg);
    soup_message_body_append(body, SOUP_MEMORY_COPY, chunk.data(), chunk.size());
    c.pending++;
    soup_server_message_unpause(c.msg);
  }
}

void LiveCamera::on_finished(SoupServerMessage* msg, LiveCamera* self) {
  auto it = std::find_if(self->clients_.begin(), self->clients_.end(),
                         [msg](const Client& c) { return c.msg == msg; });
  if (it == self->clients_.end()) return;
  g_signal_handlers_disconnect_by_data(msg, self);
  g_object_unref(msg);
  self->clients_.erase(it);
  if (self->clients_.empty()) self->play(false);
}

void LiveCamera::on_wrote_chunk(SoupServerMessage* msg, LiveCamera* self) {
  for (Client& c : self->clients_)
    if (c.msg == msg && c.pending > 0) c.pending--;
}

GstPadProbeReturn LiveCamera::on_neighbors(GstPad* pad, GstPadProbeInfo* info, LiveCamera* self) {
  GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  const std::optional<uint64_t> pts_ms =
      GST_BUFFER_PTS_IS_VALID(buffer)
          ? std::optional<uint64_t>(GST_BUFFER_PTS(buffer) / GST_MSECOND)
          : std::nullopt;
  std::string json;
  if (self->regions_) {
    // Every frame, with or without regions, so that the page's boxes follow.
    GstVideoInfo video;
    GstCaps* caps = gst_pad_get_current_caps(pad);
    const bool sized = caps && gst_video_info_from_caps(&video, caps);
    if (caps) gst_caps_unref(caps);
    const std::vector<vs::json::Region> regions = vs::json::regions_of(buffer);
    json = vs::json::live_event(
        self->frames_++, pts_ms, regions.empty() ? "" : regions.front().metric, {}, &regions,
        sized ? GST_VIDEO_INFO_WIDTH(&video) : 0, sized ? GST_VIDEO_INFO_HEIGHT(&video) : 0);
  } else {
    GstVisualSearchNeighborsMeta* meta = gst_buffer_get_visualsearch_neighbors_meta(buffer);
    if (!meta) return GST_PAD_PROBE_OK;
    json = vs::json::live_event(self->frames_++, pts_ms,
                                gst_visualsearch_metric_to_string(meta->metric),
                                vs::json::neighbors_of(meta));
  }
  std::string event = "event: neighbors\ndata: " + json + "\n\n";
  run_on_main([self, event] { self->broadcast(false, event); });
  return GST_PAD_PROBE_OK;
}

GstFlowReturn LiveCamera::on_jpeg(GstElement* sink, LiveCamera* self) {
  GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(sink));
  if (!sample) return GST_FLOW_EOS;
  GstBuffer* buffer = gst_sample_get_buffer(sample);
  GstMapInfo map;
  std::string chunk;
  if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    chunk = std::string("--") + kBoundary +
            "\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(map.size) +
            "\r\n\r\n";
    chunk.append(reinterpret_cast<const char*>(map.data), map.size);
    chunk += "\r\n";
    gst_buffer_unmap(buffer, &map);
  }
  gst_sample_unref(sample);
  if (!chunk.empty()) run_on_main([self, chunk] { self->broadcast(true, chunk); });
  return GST_FLOW_OK;
}

GstBusSyncReply LiveCamera::on_bus(GstBus*, GstMessage* message, LiveCamera*) {
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    GError* error = nullptr;
    gst_message_parse_error(message, &error, nullptr);
    g_printerr("visualsearch-server: live camera: %s\n", error ? error->message : "error");
    g_clear_error(&error);
  }
  return GST_BUS_DROP;
}

}  // namespace vs::server
