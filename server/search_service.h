/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The searches visualsearch-server runs, all through the plugin's elements:
// an uploaded picture goes through appsrc ! embedder ! appsink, in batches of
// whatever arrived within a few milliseconds of each other, and its embedding
// is searched in the gallery the server holds (which follows the index on
// disk); a live camera goes through CAMERA ! embedder ! faisssearch reload=true
// ! searchoverlay ! jpegenc.
#pragma once

#include <gst/gst.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/image_codec.h"

namespace vs::server {

// A region the detector found in a query, with its embedding.
struct QueryRegion {
  int roi_id = 0;
  std::string roi_type;
  unsigned x = 0, y = 0, w = 0, h = 0;  // in the pixels of the picture searched
  std::vector<float> embedding;
};

// The embedding of one query; the server searches it in the gallery it
// serves at that moment (main.cpp), so that a gallery replaced on disk is
// taken over between two queries. With a detector (an index of regions), the
// embeddings of its regions instead, none when it found none.
struct QueryResult {
  std::vector<float> embedding;
  std::vector<QueryRegion> regions;
  std::string model_id;          // the embedder's, for Gallery::check_query
  std::string preprocessing_id;  // likewise
  double queued_ms = 0;          // waiting for the batch to start
  double search_ms = 0;          // the embedder, for the whole batch
  unsigned batch = 0;            // how many queries shared the embedder batch
  std::string error;             // non-empty: the pipeline failed on this query
};

struct QueryOptions {
  std::string index;     // the embedder adopts its settings from its catalog
  std::string detector;  // for an index of regions: elements before the embedder
  unsigned batch_size = 16;
  unsigned batch_window_ms = 4;  // how long a batch waits for company
};

// The roi-types an index of regions records in its embedder settings
// (catalog facts' embedder_config); "" for an index of whole frames.
std::string recorded_roi_types(const std::string& embedder_config);

// The elements that find the regions of roi_types in a frame, in
// gst-launch-1.0 syntax, for the live and query pipelines: chosen (--detector)
// when given, facedetect (gstreamer1.0-opencv) for faces; "" for whole frames.
// Throws vs::Error for other types without chosen.
std::string detector_for(const std::string& roi_types, const std::string& chosen);

// One long-running query pipeline. submit() may be called from any thread;
// done runs on a streaming thread.
class QueryPipeline {
 public:
  using Done = std::function<void(QueryResult)>;

  // Loads the model and the index (an embedder that cannot start is a
  // vs::Error with the element's message).
  explicit QueryPipeline(QueryOptions options);
  ~QueryPipeline();
  QueryPipeline(const QueryPipeline&) = delete;
  QueryPipeline& operator=(const QueryPipeline&) = delete;

  // Embeds image.
  void submit(RgbImage image, Done done);

  const QueryOptions& options() const { return options_; }

 private:
  struct Job;
  void start_pipeline();
  void stop_pipeline();
  void batch_loop();
  void push(Job& job, uint64_t sequence);
  static GstFlowReturn on_sample(GstElement* sink, QueryPipeline* self);
  static GstBusSyncReply on_bus(GstBus* bus, GstMessage* message, QueryPipeline* self);
  void fail_in_flight(const std::string& why);

  QueryOptions options_;
  GstElement* pipeline_ = nullptr;
  GstElement* appsrc_ = nullptr;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> waiting_;    // not pushed yet
  std::deque<std::unique_ptr<Job>> in_flight_;  // pushed, in push order
  uint64_t next_sequence_ = 0;
  bool broken_ = false;  // an error stopped the pipeline: restart it
  std::string broken_reason_;
  bool quit_ = false;
  std::thread batcher_;
};

}  // namespace vs::server
