// SPDX-License-Identifier: LGPL-2.1-or-later
#include "video_sampler.h"

#include <gst/app/gstappsink.h>

#include "engine/base/error.h"

namespace vs {

/* How long next() waits on the decoder before it looks at the bus and at
 * interrupt() again. */
static const GstClockTime POLL_INTERVAL = 100 * GST_MSECOND;

VideoSampler::VideoSampler (const std::string &path, GstClockTime interval)
    : path_ (path), interval_ (interval)
{
  GError *error = NULL;
  /* System-memory raw video of any format: only the sampled frames are
   * converted to RGB, by the caller, not every decoded one. */
  pipeline_ = gst_parse_launch ("filesrc name=src ! decodebin name=decode "
                                "appsink name=sink caps=video/x-raw sync=false "
                                "max-buffers=4",
      &error);
  if (!pipeline_) {
    std::string message = error ? error->message : "unknown error";
    g_clear_error (&error);
    throw Error ("cannot build a pipeline to decode " + path + ": " + message
        + " (is gst-plugins-base installed?)");
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline_), "src");
  g_object_set (src, "location", path.c_str (), NULL);
  gst_object_unref (src);
  sink_ = gst_bin_get_by_name (GST_BIN (pipeline_), "sink");
  /* The video stream is linked here rather than by gst_parse_launch, so that
   * a file without one (a sound file, a video whose decoder is missing) is
   * known as such when decodebin has exposed its streams. Waiting for an
   * error instead can wait forever: decodebin 1.22 sometimes drops the
   * not-linked error of a demuxer whose only stream is audio. */
  GstElement *decode = gst_bin_get_by_name (GST_BIN (pipeline_), "decode");
  g_signal_connect (decode, "pad-added", G_CALLBACK (pad_added), this);
  g_signal_connect (decode, "no-more-pads", G_CALLBACK (no_more_pads), this);
  gst_object_unref (decode);
  if (gst_element_set_state (pipeline_, GST_STATE_PLAYING)
      == GST_STATE_CHANGE_FAILURE) {
    check_bus ();
    throw Error (ErrorKind::Read, path + " cannot be opened for decoding");
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
VideoSampler::pad_added (GstElement *decodebin, GstPad *pad, VideoSampler *self)
{
  GstCaps *caps = gst_pad_get_current_caps (pad);
  if (!caps)
    caps = gst_pad_query_caps (pad, NULL);
  const bool raw_video = !gst_caps_is_empty (caps)
      && gst_structure_has_name (gst_caps_get_structure (caps, 0),
          "video/x-raw");
  gst_caps_unref (caps);
  if (!raw_video || self->has_video_)
    return;
  GstPad *sinkpad = gst_element_get_static_pad (self->sink_, "sink");
  if (gst_pad_link (pad, sinkpad) == GST_PAD_LINK_OK)
    self->has_video_ = true;
  gst_object_unref (sinkpad);
}

void
VideoSampler::no_more_pads (GstElement *decodebin, VideoSampler *self)
{
  self->all_pads_ = true;
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
  /* The error can come before no-more-pads is seen: without a linked video
   * stream it says the same as next()'s check. */
  if (!has_video_)
    throw Error (ErrorKind::Format,
        path_
            + " is neither an image nor a video: it has no video "
              "stream GStreamer can decode ("
            + message + ")");
  if (sampled_ == 0)
    throw Error (ErrorKind::Format,
        path_
            + " is neither an image nor a video GStreamer can "
              "decode ("
            + message + ")");
  throw Error (ErrorKind::Corrupt,
      "decoding the video " + path_ + " failed after "
          + std::to_string (sampled_) + " frames (" + message + ")");
}

/* When the frame in sample stops being shown, in stream time. */
static GstClockTime
frame_end (GstSample *sample)
{
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  const GstSegment *segment = gst_sample_get_segment (sample);
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return GST_CLOCK_TIME_NONE;
  GstClockTime end = pts
      + (GST_BUFFER_DURATION_IS_VALID (buffer) ? GST_BUFFER_DURATION (buffer)
                                               : 1);
  return segment ? gst_segment_to_stream_time (segment, GST_FORMAT_TIME, end)
                 : end;
}

VideoSampler::Result
VideoSampler::next (GstSample **sample, GstClockTime *time)
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
      if (all_pads_ && !has_video_)
        throw Error (ErrorKind::Format,
            path_
                + " is neither an image nor a video: it has no "
                  "video stream GStreamer can decode");
      check_bus ();
      current_ =
          gst_app_sink_try_pull_sample (GST_APP_SINK (sink_), POLL_INTERVAL);
      if (!current_ && gst_app_sink_is_eos (GST_APP_SINK (sink_))) {
        if (sampled_ == 0)
          throw Error (ErrorKind::Format,
              path_
                  + " is neither an image nor a video: GStreamer "
                    "decoded no video frame from it");
        return Result::End;
      }
    }
  }
}

}
