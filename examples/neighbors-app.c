/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* neighbors-app: runs a search pipeline ending in an appsink named "sink" and
 * prints the GstVisualSearchNeighborsMeta of every frame, read through the
 * gstvisualsearch-1.0 metadata library:
 *
 *   cc neighbors-app.c example-pipeline.c $(pkg-config --cflags --libs gstvisualsearch-1.0 gstreamer-app-1.0)
 *   ./a.out 'cifarsrc location=cifar-10-batches-py split=test num-buffers=5
 *       ! embedder index=cifar.faiss ! faisssearch index=cifar.faiss
 *       ! appsink name=sink sync=false'
 *
 * Exits non-zero when the pipeline fails or no frame carried neighbours. */
#include <stdio.h>

#include <gst/gst.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include "example-pipeline.h"

static gboolean
print_neighbors (guint frame, GstBuffer *buf)
{
  const GstVisualSearchNeighborsMeta *meta =
      gst_buffer_get_visualsearch_neighbors_meta (buf);
  guint i;

  if (meta == NULL)
    return FALSE;
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
  return TRUE;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc != 2) {
    g_printerr ("usage: %s 'PIPELINE ending in appsink name=sink'\n", argv[0]);
    return 2;
  }
  return example_run_pipeline (argv[1], print_neighbors, "neighbours");
}
