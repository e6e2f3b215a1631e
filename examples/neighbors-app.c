/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* neighbors-app: runs a search pipeline ending in an appsink named "sink" and
 * prints the GstVisualSearchNeighborsMeta of every frame, read through the
 * gstvisualsearch-1.0 metadata library:
 *
 *   cc neighbors-app.c $(pkg-config --cflags --libs gstvisualsearch-1.0 gstreamer-app-1.0)
 *   ./a.out 'cifarsrc location=cifar-10-batches-py split=test num-buffers=5
 *       ! embedder index=cifar.faiss ! faisssearch index=cifar.faiss
 *       ! appsink name=sink sync=false'
 *
 * Exits non-zero when the pipeline fails or no frame carried neighbours. */
#include <stdio.h>

#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/visualsearch/visualsearchmeta.h>

static void
print_neighbors (guint frame, GstBuffer *buf,
    const GstVisualSearchNeighborsMeta *meta)
{
  guint i;

  g_print ("frame %u pts %" GST_TIME_FORMAT " metric %s neighbours %u\n", frame,
      GST_TIME_ARGS (GST_BUFFER_PTS (buf)),
      gst_visualsearch_metric_to_string (meta->metric), meta->n_neighbors);
  for (i = 0; i < meta->n_neighbors; i++) {
    const GstVisualSearchNeighbor *nb = &meta->neighbors[i];

    g_print ("  %u. id %" G_GINT64_FORMAT " label %d %s distance %.6f "
             "source %s\n",
        i + 1, nb->id, nb->label, nb->label_name ? nb->label_name : "?",
        nb->distance, nb->source ? nb->source : "-");
  }
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  GstElement *pipeline, *sink;
  GstSample *sample;
  GstBus *bus;
  GstMessage *msg;
  guint frames = 0, searched = 0;
  int ret = 0;

  gst_init (&argc, &argv);
  if (argc != 2) {
    g_printerr ("usage: %s 'PIPELINE ending in appsink name=sink'\n", argv[0]);
    return 2;
  }

  pipeline = gst_parse_launch (argv[1], &error);
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
    GstVisualSearchNeighborsMeta *meta =
        gst_buffer_get_visualsearch_neighbors_meta (buf);

    if (meta != NULL) {
      print_neighbors (frames, buf, meta);
      searched++;
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

  g_print ("%u frames, %u with neighbours\n", frames, searched);
  if (searched == 0)
    ret = 1;

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return ret;
}
