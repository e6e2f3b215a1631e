/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* roi-dump PIPELINE: runs a gst-launch description ending in an appsink named
 * "sink" and prints every GstVideoRegionOfInterestMeta of every buffer, one
 * line each: "frame TYPE X Y W H SCORE CLASS-ID" (score and class-id of a
 * visualsearch-detection param, -1 without one), then "frames N". An error
 * message of the pipeline goes to stderr as "error: TEXT | DEBUG", exit 1. */
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc != 2) {
    fprintf (stderr, "usage: roi-dump 'PIPELINE ! appsink name=sink'\n");
    return 2;
  }
  GError *err = NULL;
  GstElement *pipeline = gst_parse_launch (argv[1], &err);
  if (!pipeline) {
    fprintf (stderr, "error: %s\n", err->message);
    return 2;
  }
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstBus *bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  int frame = 0, rc = 0;
  for (;;) {
    GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (msg) {
      gchar *debug = NULL;
      gst_message_parse_error (msg, &err, &debug);
      fprintf (stderr, "error: %s | %s\n", err->message, debug ? debug : "");
      g_clear_error (&err);
      g_free (debug);
      gst_message_unref (msg);
      rc = 1;
      break;
    }
    GstSample *sample =
        gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 50 * GST_MSECOND);
    if (!sample) {
      if (gst_app_sink_is_eos (GST_APP_SINK (sink)))
        break;
      continue;
    }
    GstBuffer *buf = gst_sample_get_buffer (sample);
    gpointer state = NULL;
    GstMeta *meta;
    while ((meta = gst_buffer_iterate_meta_filtered (buf, &state,
                GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
      GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
      GstStructure *s = gst_video_region_of_interest_meta_get_param (roi,
          "visualsearch-detection");
      gdouble score = -1;
      gint class_id = -1;
      if (s) {
        gst_structure_get_double (s, "score", &score);
        gst_structure_get_int (s, "class-id", &class_id);
      }
      printf ("%d %s %u %u %u %u %.4f %d\n", frame,
          g_quark_to_string (roi->roi_type), roi->x, roi->y, roi->w, roi->h,
          score, class_id);
    }
    frame++;
    gst_sample_unref (sample);
  }
  printf ("frames %d\n", frame);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return rc;
}
