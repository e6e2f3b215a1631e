// SPDX-License-Identifier: LGPL-2.1-or-later
#include "server/search_service.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>
#include <gst/visualsearch/visualsearchregion.h>

#include <algorithm>
#include <chrono>

#include "engine/base/error.h"

namespace vs::server {

using Clock = std::chrono::steady_clock;

static double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

static QueryResult failure(const std::string& why) {
  QueryResult result;
  result.error = why;
  return result;
}

std::string recorded_roi_types(const std::string& embedder_config) {
  std::string types;
  if (GstStructure* s = gst_structure_from_string(embedder_config.c_str(), nullptr)) {
    if (const gchar* t = gst_structure_get_string(s, "roi-types")) types = t;
    gst_structure_free(s);
  }
  return types;
}

std::string detector_for(const std::string& roi_types, const std::string& chosen) {
  if (roi_types.empty()) return "";
  if (!chosen.empty()) return chosen;
  if (roi_types == "face") {
    GstElementFactory* facedetect = gst_element_factory_find("facedetect");
    if (facedetect) gst_object_unref(facedetect);
    if (!facedetect)
      throw Error(
          "the index holds faces (roi-types=face), which the server finds with facedetect: "
          "install gstreamer1.0-opencv and opencv-data (scripts/install-deps.sh), or give "
          "--detector");
    // updates=none: no bus message per frame.
    return "videoconvert ! facedetect display=false updates=none ! videoconvert";
  }
  throw Error("the index holds regions of types '" + roi_types +
              "' (roi-types), and the server finds faces only by itself: give the detector that "
              "found them, e.g. --detector \"objectdetect model=$HOME/.cache/visualsearch/"
              "models/nanodet.pt\"");
}

struct QueryPipeline::Job {
  RgbImage image;
  Done done;
  uint64_t sequence = 0;
  unsigned batch = 0;
  Clock::time_point submitted, pushed;
};

QueryPipeline::QueryPipeline(QueryOptions options) : options_(std::move(options)) {
  start_pipeline();
  batcher_ = std::thread([this] { batch_loop(); });
}

QueryPipeline::~QueryPipeline() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  batcher_.join();
  stop_pipeline();
  fail_in_flight("the server is shutting down");
  for (auto& job : waiting_) job->done(failure("the server is shutting down"));
}

void QueryPipeline::start_pipeline() {
  // Every query is drained out of the embedder by the event batch_loop()
  // sends after it, so batch-size only caps how many run together.
  const std::string description =
      "appsrc name=src format=time max-bytes=0 ! " +
      (options_.detector.empty() ? std::string() : options_.detector + " ! ") +
      "embedder name=embed batch-size=" + std::to_string(options_.batch_size) +
      " ! appsink name=sink sync=false max-buffers=0";
  GError* error = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
  // An element that is missing (the plugin not on GST_PLUGIN_PATH) comes
  // back as an error beside a partial pipeline.
  if (!pipeline || error) {
    const std::string message = error ? error->message : "unknown error";
    g_clear_error(&error);
    if (pipeline) gst_object_unref(pipeline);
    throw Error("cannot build the query pipeline '" + description + "': " + message +
                " (is the visualsearch plugin installed, or on GST_PLUGIN_PATH?)");
  }
  // The embedder adopts the settings the index was built with.
  GstElement* embed = gst_bin_get_by_name(GST_BIN(pipeline), "embed");
  g_object_set(embed, "index", options_.index.c_str(), NULL);
  gst_object_unref(embed);

  GstBus* bus = gst_element_get_bus(pipeline);
  gst_bus_set_sync_handler(bus, (GstBusSyncHandler)on_bus, this, nullptr);
  gst_object_unref(bus);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = [](GstAppSink* s, gpointer self) {
    return on_sample(GST_ELEMENT(s), static_cast<QueryPipeline*>(self));
  };
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, this, nullptr);
  gst_object_unref(sink);

  {
    std::lock_guard<std::mutex> lock(mutex_);
    pipeline_ = pipeline;
    appsrc_ = gst_bin_get_by_name(GST_BIN(pipeline), "src");
    broken_ = false;
    broken_reason_.clear();
  }
  // The embedder loads its model on the way to PAUSED, synchronously; the sink prerolls on the
  // first query.
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::string reason;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      reason = broken_reason_;
    }
    stop_pipeline();
    throw Error("the query pipeline cannot start: " +
                (reason.empty() ? std::string("no element said why") : reason));
  }
}

void QueryPipeline::stop_pipeline() {
  GstElement *pipeline, *appsrc;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pipeline = pipeline_;
    appsrc = appsrc_;
    pipeline_ = appsrc_ = nullptr;
  }
  if (!pipeline) return;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(appsrc);
  gst_object_unref(pipeline);
}

void QueryPipeline::submit(RgbImage image, Done done) {
  auto job = std::make_unique<Job>();
  job->image = std::move(image);
  job->done = std::move(done);
  job->submitted = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    waiting_.push_back(std::move(job));
  }
  wake_.notify_all();
}

void QueryPipeline::push(Job& job, uint64_t sequence) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGB, job.image.width, job.image.height);
  GstBuffer* buffer = gst_buffer_new_allocate(nullptr, info.size, nullptr);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_WRITE);
  const size_t row = static_cast<size_t>(job.image.width) * 3;
  for (int y = 0; y < job.image.height; y++)
    std::copy_n(job.image.pixels.data() + y * row, row,
                map.data + static_cast<size_t>(y) * GST_VIDEO_INFO_PLANE_STRIDE(&info, 0));
  gst_buffer_unmap(buffer, &map);
  job.image = RgbImage();
  GST_BUFFER_PTS(buffer) = sequence * GST_MSECOND;
  GST_BUFFER_OFFSET(buffer) = sequence;
  GstCaps* caps = gst_video_info_to_caps(&info);
  GstSample* sample = gst_sample_new(buffer, caps, nullptr, nullptr);
  gst_caps_unref(caps);
  gst_buffer_unref(buffer);
  gst_app_src_push_sample(GST_APP_SRC(appsrc_), sample);
  gst_sample_unref(sample);
}

void QueryPipeline::batch_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return quit_ || !waiting_.empty(); });
    if (quit_) return;
    // Queries that arrive within the window share one embedder batch.
    wake_.wait_for(lock, std::chrono::milliseconds(options_.batch_window_ms),
                   [this] { return quit_ || waiting_.size() >= options_.batch_size; });
    if (quit_) return;
    if (broken_ || !pipeline_) {
      lock.unlock();
      stop_pipeline();
      std::string reason;
      try {
        start_pipeline();
      } catch (const std::exception& e) { reason = e.what(); }
      lock.lock();
      if (!reason.empty()) {
        for (auto& job : waiting_) {
          Done done = std::move(job->done);
          lock.unlock();
          done(failure(reason));
          lock.lock();
        }
        waiting_.clear();
        continue;
      }
    }
    const size_t n = std::min<size_t>(waiting_.size(), options_.batch_size);
    std::vector<Job*> batch;
    const Clock::time_point now = Clock::now();
    for (size_t i = 0; i < n; i++) {
      std::unique_ptr<Job> job = std::move(waiting_.front());
      waiting_.pop_front();
      job->sequence = next_sequence_++;
      job->batch = static_cast<unsigned>(n);
      job->pushed = now;
      batch.push_back(job.get());
      in_flight_.push_back(std::move(job));
    }
    GstElement* appsrc = GST_ELEMENT(gst_object_ref(appsrc_));
    // A job leaves in_flight_ only once its buffer has come out, which is
    // after push() is done with it.
    std::vector<std::pair<Job*, uint64_t>> to_push;
    for (Job* job : batch) to_push.emplace_back(job, job->sequence);
    lock.unlock();
    for (auto& [job, sequence] : to_push) push(*job, sequence);
    // Serialized: it reaches the embedder after the batch and makes it run
    // what it holds now instead of waiting for batch-size frames.
    gst_element_send_event(appsrc,
                           gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                                                gst_structure_new_empty("visualsearch-drain")));
    gst_object_unref(appsrc);
    lock.lock();
  }
}

GstFlowReturn QueryPipeline::on_sample(GstElement* sink, QueryPipeline* self) {
  GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(sink));
  if (!sample) return GST_FLOW_EOS;
  GstBuffer* buffer = gst_sample_get_buffer(sample);
  const uint64_t sequence = GST_BUFFER_OFFSET(buffer);
  QueryResult result;
  if (GstVisualSearchEmbeddingMeta* meta = gst_buffer_get_visualsearch_embedding_meta(buffer)) {
    result.embedding.assign(meta->values, meta->values + meta->dims);
    result.model_id = meta->model_id ? meta->model_id : "";
    result.preprocessing_id = meta->preprocessing_id ? meta->preprocessing_id : "";
  } else if (!self->options_.detector.empty()) {
    gpointer iter = nullptr;
    while (GstMeta* m = gst_buffer_iterate_meta_filtered(
               buffer, &iter, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
      auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(m);
      guint dims = 0;
      const gfloat* values = gst_visualsearch_region_get_embedding(roi, &dims);
      if (!values) continue;  // a region of another type, or too small
      const gchar *model = nullptr, *preprocessing = nullptr;
      gst_visualsearch_region_get_embedding_info(roi, &model, &preprocessing, nullptr);
      QueryRegion region;
      region.roi_id = roi->id;
      region.roi_type = g_quark_to_string(roi->roi_type);
      region.x = roi->x;
      region.y = roi->y;
      region.w = roi->w;
      region.h = roi->h;
      region.embedding.assign(values, values + dims);
      result.model_id = model ? model : "";
      result.preprocessing_id = preprocessing ? preprocessing : "";
      result.regions.push_back(std::move(region));
    }
  } else {
    result.error = "the query frame came out of the embedder without an embedding";
  }
  gst_sample_unref(sample);

  std::unique_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    while (!self->in_flight_.empty() && self->in_flight_.front()->sequence < sequence)
      self->in_flight_.pop_front();  // cannot happen: frames keep their order
    if (self->in_flight_.empty() || self->in_flight_.front()->sequence != sequence)
      return GST_FLOW_OK;
    job = std::move(self->in_flight_.front());
    self->in_flight_.pop_front();
  }
  const Clock::time_point now = Clock::now();
  result.queued_ms = ms_between(job->submitted, job->pushed);
  result.search_ms = ms_between(job->pushed, now);
  result.batch = job->batch;
  job->done(std::move(result));
  return GST_FLOW_OK;
}

GstBusSyncReply QueryPipeline::on_bus(GstBus*, GstMessage* message, QueryPipeline* self) {
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    GError* error = nullptr;
    gst_message_parse_error(message, &error, nullptr);
    const std::string reason = error ? error->message : "unknown error";
    g_clear_error(&error);
    g_printerr("visualsearch-server: query pipeline: %s\n", reason.c_str());
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      if (!self->broken_) self->broken_reason_ = reason;
      self->broken_ = true;
    }
    self->fail_in_flight("the search pipeline failed (" + reason +
                         "); it restarts for the next query");
    self->wake_.notify_all();
  }
  return GST_BUS_DROP;
}

void QueryPipeline::fail_in_flight(const std::string& why) {
  std::deque<std::unique_ptr<Job>> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    failed.swap(in_flight_);
  }
  for (auto& job : failed) job->done(failure(why));
}

}  // namespace vs::server
