/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The live page's camera: CAMERA ! [DETECTOR !] embedder ! faisssearch !
// searchoverlay ! jpegenc, its frames streamed as multipart JPEG (/live.mjpeg)
// and its neighbours (or, for an index of regions, the boxes of its regions
// and their neighbours) as Server-Sent Events (/api/live/events), to any number of
// clients. A slow client misses frames instead of holding memory. The
// pipeline plays only while a client watches: it goes to NULL, releasing the
// camera and the CPU, when the last one leaves, and plays again when one comes.
#pragma once

#include <gst/gst.h>
#include <libsoup/soup.h>

#include <string>
#include <vector>

namespace vs::server {

class LiveCamera {
 public:
  // camera: a source in gst-launch-1.0 syntax; the embedder adopts the
  // settings index was built with. detector: for an index of regions, the
  // elements that find them (detector_for), else "". Throws vs::Error when the
  // pipeline cannot start (it is brought to PAUSED once, then stopped until a
  // client comes).
  LiveCamera(const std::string& camera, const std::string& index, const std::string& detector);
  ~LiveCamera();
  LiveCamera(const LiveCamera&) = delete;
  LiveCamera& operator=(const LiveCamera&) = delete;

  // Main context only: msg becomes a stream that lasts until the client goes.
  void add_events_client(SoupServerMessage* msg);
  void add_mjpeg_client(SoupServerMessage* msg);

 private:
  struct Client {
    SoupServerMessage* msg;
    bool mjpeg;
    int pending;  // chunks appended but not written yet
  };
  void add_client(SoupServerMessage* msg, bool mjpeg);
  void play(bool on);
  void broadcast(bool mjpeg, const std::string& chunk);
  static void on_finished(SoupServerMessage* msg, LiveCamera* self);
  static void on_wrote_chunk(SoupServerMessage* msg, LiveCamera* self);
  static GstPadProbeReturn on_neighbors(GstPad* pad, GstPadProbeInfo* info, LiveCamera* self);
  static GstFlowReturn on_jpeg(GstElement* sink, LiveCamera* self);
  static GstBusSyncReply on_bus(GstBus* bus, GstMessage* message, LiveCamera* self);

  GstElement* pipeline_ = nullptr;
  bool playing_ = false;         // main context only
  std::vector<Client> clients_;  // main context only
  guint64 frames_ = 0;           // streaming thread only
  bool regions_ = false;         // an index of regions: events list them
};

}  // namespace vs::server
