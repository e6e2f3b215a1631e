/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "example-pipeline.h"

#include <gst/app/gstappsink.h>

int
example_run_pipeline (const gchar *description, ExampleFrameFunc func,
    const gchar *what)
{
  GError *error = NULL;
  GstElement *pipeline, *sink;
  GstSample *sample;
  GstBus *bus;
  GstMessage *msg;
  guint frames = 0, found = 0;
  int ret = 0;

  pipeline = gst_parse_launch (description, &error);
  if (pipeline == NULL) {
    g_printerr ("Cannot build the pipeline: %s\n", error->message);
    g_clear_error (&error);
    return 2;
  }
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  if (sink == NULL || !GST_IS_APP_SINK (sink)) {
    g_printerr ("The pipeline needs an appsink named \"sink\"\n");
    return 2;
  }

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink))) != NULL) {
    if (func (frames, gst_sample_get_buffer (sample)))
      found++;
    frames++;
    gst_sample_unref (sample);
  }

  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg != NULL) {
    gchar *dbg = NULL;

    gst_message_parse_error (msg, &error, &dbg);
    g_printerr ("Pipeline error: %s\n%s\n", error->message, dbg ? dbg : "");
    g_clear_error (&error);
    g_free (dbg);
    gst_message_unref (msg);
    ret = 1;
  }
  gst_object_unref (bus);

  g_print ("%u frames, %u with %s\n", frames, found, what);
  if (found == 0)
    ret = 1;

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return ret;
}
