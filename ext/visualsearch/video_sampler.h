/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One frame every N seconds of a video file, decoded by whatever GStreamer's
 * decodebin plays (mp4, mkv, webm, avi, ...), for gallerysrc. */
#ifndef __VISUALSEARCH_VIDEO_SAMPLER_H__
#define __VISUALSEARCH_VIDEO_SAMPLER_H__

#include <gst/gst.h>

#include <atomic>
#include <string>

namespace vs {

class VideoSampler {
public:
  /* Starts decoding path in a pipeline of its own. */
  VideoSampler (const std::string &path, GstClockTime interval);
  ~VideoSampler ();
  VideoSampler (const VideoSampler &) = delete;
  VideoSampler &operator= (const VideoSampler &) = delete;

  enum class Result
  {
    Frame,
    End,
    Interrupted
  };

  /* The frame shown at the next sampling time (0, interval, 2 interval, ...),
   * a raw video sample in system memory, in *sample (the caller unrefs it)
   * with that time in *time. Interrupted when interrupt() was called. Throws
   * vs::Error when the file is no video GStreamer can decode, or its
   * decoding fails midway. */
  Result next (GstSample **sample, GstClockTime *time);

  /* Makes a next() that waits return Interrupted (any thread). */
  void interrupt ()
  {
    interrupted_ = true;
  }
  void resume ()
  {
    interrupted_ = false;
  }

  guint64 frames_sampled () const
  {
    return sampled_;
  }

private:
  void check_bus ();
  static void pad_added (GstElement *decodebin, GstPad *pad,
      VideoSampler *self);
  static void no_more_pads (GstElement *decodebin, VideoSampler *self);

  std::string path_;
  GstClockTime interval_;
  GstElement *pipeline_ = nullptr;
  GstElement *sink_ = nullptr;
  GstSample *current_ = nullptr;
  GstClockTime target_ = 0;
  guint64 sampled_ = 0;
  std::atomic<bool> interrupted_{false};
  /* Set from decodebin's streaming thread: a raw video stream was linked to
   * the sink; decodebin has exposed every stream it found. */
  std::atomic<bool> has_video_{false};
  std::atomic<bool> all_pads_{false};
};

}

#endif
