#include "video_sampler.h"

#include <gst/app/gstappsink.h>

#include "core/error.h"

namespace vs {

/* How long next() waits on the decoder before it looks at the bus and at
 * interrupt() again. */
static const GstClockTime POLL_INTERVAL = 100 * GST_MSECOND;

VideoSampler::VideoSampler (const std::string & path, GstClockTime interval)
    : path_ (path), interval_ (interval)
{
  GError *error = NULL;
  /* System-memory raw video of any format: only the sampled frames are
   * converted to RGB, by the caller, not every decoded one. */
  pipeline_ = gst_parse_launch ("filesrc name=src ! decodebin ! "
      "appsink name=sink caps=video/x-raw sync=false max-buffers=4", &error);
  if (!pipeline_) {
    std::string message = error ? error->message : "unknown error";
    g_clear_error (&error);
    throw Error ("cannot build a pipeline to decode " + path + ": " + message +
        " (is gst-plugins-base installed?)");
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline_), "src");
  g_object_set (src, "location", path.c_str (), NULL);
  gst_object_unref (src);
  sink_ = gst_bin_get_by_name (GST_BIN (pipeline_), "sink");
  if (gst_element_set_state (pipeline_, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    check_bus ();
    throw Error (path + " cannot be opened for decoding");
  }
}

VideoSampler::~VideoSampler ()
{
  if (current_)
    gst_sample_unref (current_);
  gst_element_set_state (pipeline_, GST_STATE_NULL);
  gst_object_unref (sink_);
  gst_object_unref (pipeline_);
}

void
VideoSampler::check_bus ()
{
  GstBus *bus = gst_element_get_bus (pipeline_);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  gst_object_unref (bus);
  if (!msg)
    return;
  GError *error = NULL;
  gst_message_parse_error (msg, &error, NULL);
  std::string message = error->message;
  g_error_free (error);
  gst_message_unref (msg);
  if (sampled_ == 0)
    throw Error (path_ + " is neither an image nor a video GStreamer can "
        "decode (" + message + ")");
  throw Error ("decoding the video " + path_ + " failed after " +
      std::to_string (sampled_) + " frames (" + message + ")");
}

/* When the frame in sample stops being shown, in stream time. */
static GstClockTime
frame_end (GstSample * sample)
{
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  const GstSegment *segment = gst_sample_get_segment (sample);
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return GST_CLOCK_TIME_NONE;
  GstClockTime end = pts + (GST_BUFFER_DURATION_IS_VALID (buffer) ?
      GST_BUFFER_DURATION (buffer) : 1);
  return segment ? gst_segment_to_stream_time (segment, GST_FORMAT_TIME, end) :
      end;
}

VideoSampler::Result
VideoSampler::next (GstSample ** sample, GstClockTime * time)
{
  for (;;) {
    /* The frame on hand covers the next sampling time: that is the one. */
    if (current_) {
      const GstClockTime end = frame_end (current_);
      if (!GST_CLOCK_TIME_IS_VALID (end) || target_ < end) {
        *sample = gst_sample_ref (current_);
        *time = target_;
        target_ += interval_;
        sampled_++;
        return Result::Frame;
      }
      gst_sample_unref (current_);
      current_ = NULL;
    }
    while (!current_) {
      if (interrupted_)
        return Result::Interrupted;
      check_bus ();
      current_ = gst_app_sink_try_pull_sample (GST_APP_SINK (sink_),
          POLL_INTERVAL);
      if (!current_ && gst_app_sink_is_eos (GST_APP_SINK (sink_))) {
        if (sampled_ == 0)
          throw Error (path_ + " is neither an image nor a video: GStreamer "
              "decoded no video frame from it");
        return Result::End;
      }
    }
  }
}

}
