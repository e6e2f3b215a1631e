/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* embeddings-app: runs a pipeline ending in an appsink named "sink" and
 * prints the GstVisualSearchEmbeddingMeta of every frame, read through the installed
 * gstvisualsearch-1.0 library:
 *
 *   cc embeddings-app.c example-pipeline.c $(pkg-config --cflags --libs gstvisualsearch-1.0 gstreamer-app-1.0)
 *   ./a.out ['videotestsrc num-buffers=5 ! embedder weights=random ! appsink name=sink']
 *
 * Exits non-zero when the pipeline fails or no frame carried an embedding. */
#include <math.h>
#include <stdio.h>

#include <gst/gst.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include "example-pipeline.h"

#define DEFAULT_PIPELINE \
  "videotestsrc num-buffers=5 ! video/x-raw,width=320,height=240 " \
  "! embedder weights=random ! appsink name=sink sync=false"

static gboolean
print_embedding (guint frame, GstBuffer *buf)
{
  const GstVisualSearchEmbeddingMeta *meta =
      gst_buffer_get_visualsearch_embedding_meta (buf);
  gdouble norm = 0.0;
  guint i;

  if (meta == NULL)
    return FALSE;
  for (i = 0; i < meta->dims; i++)
    norm += (gdouble) meta->values[i] * meta->values[i];

  g_print ("frame %u pts %" GST_TIME_FORMAT " dims %u norm %.4f model %s "
           "preprocessing %s first [",
      frame, GST_TIME_ARGS (GST_BUFFER_PTS (buf)), meta->dims, sqrt (norm),
      meta->model_id, meta->preprocessing_id);
  for (i = 0; i < MIN (meta->dims, 4); i++)
    g_print ("%s%.5f", i ? ", " : "", meta->values[i]);
  g_print ("]\n");
  return TRUE;
}

int
main (int argc, char **argv)
{
  const gchar *description = argc > 1 ? argv[1] : DEFAULT_PIPELINE;

  gst_init (&argc, &argv);
  return example_run_pipeline (description, print_embedding, "an embedding");
}
