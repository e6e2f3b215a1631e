/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* embeddings-app: runs a pipeline ending in an appsink named "sink" and
 * prints the GstVisualSearchEmbeddingMeta of every frame, read through the installed
 * gstvisualsearch-1.0 library:
 *
 *   cc embeddings-app.c $(pkg-config --cflags --libs gstvisualsearch-1.0 gstreamer-app-1.0)
 *   ./a.out ['videotestsrc num-buffers=5 ! embedder weights=random ! appsink name=sink']
 *
 * Exits non-zero when the pipeline fails or no frame carried an embedding. */
#include <math.h>
#include <stdio.h>

#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/visualsearch/visualsearchmeta.h>

#define DEFAULT_PIPELINE \
  "videotestsrc num-buffers=5 ! video/x-raw,width=320,height=240 " \
  "! embedder weights=random ! appsink name=sink sync=false"

static void
print_embedding (guint frame, GstBuffer *buf,
    const GstVisualSearchEmbeddingMeta *meta)
{
  gdouble norm = 0.0;
  guint i;

  for (i = 0; i < meta->dims; i++)
    norm += (gdouble) meta->values[i] * meta->values[i];

  g_print ("frame %u pts %" GST_TIME_FORMAT " dims %u norm %.4f model %s "
           "preprocessing %s first [",
      frame, GST_TIME_ARGS (GST_BUFFER_PTS (buf)), meta->dims, sqrt (norm),
      meta->model_id, meta->preprocessing_id);
  for (i = 0; i < MIN (meta->dims, 4); i++)
    g_print ("%s%.5f", i ? ", " : "", meta->values[i]);
  g_print ("]\n");
}

int
main (int argc, char **argv)
{
  const gchar *description = argc > 1 ? argv[1] : DEFAULT_PIPELINE;
  GError *error = NULL;
  GstElement *pipeline, *sink;
  GstSample *sample;
  GstBus *bus;
  GstMessage *msg;
  guint frames = 0, embedded = 0;
  int ret = 0;

  gst_init (&argc, &argv);

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
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstVisualSearchEmbeddingMeta *meta =
        gst_buffer_get_visualsearch_embedding_meta (buf);

    if (meta != NULL) {
      print_embedding (frames, buf, meta);
      embedded++;
    }
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

  g_print ("%u frames, %u with an embedding\n", frames, embedded);
  if (embedded == 0)
    ret = 1;

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return ret;
}
