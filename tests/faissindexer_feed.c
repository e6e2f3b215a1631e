/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Feeds embeddings to faissindexer through appsrc, for the Python tests.
 *
 *   faissindexer-feed VECTORS DIMS LOCATION [property=value ...]
 *
 * VECTORS is a file of float32 rows of DIMS values, or "random:N" for N
 * pseudo-random rows. Row i goes out with a GstVisualSearchEmbeddingMeta (model id from
 * $VS_FEED_MODEL, default "resnet18:feed"; preprocessing "feed") and a
 * GstVisualSearchSampleMeta (label i % 10, name "class<label>", source "feed/<i>").
 * Progress messages are printed as "progress: <text>" the moment they are
 * posted (a test can wait for "waiting for another writer"); an error goes to
 * stderr with exit status 1.
 *
 * With $VS_FEED_FRAME set to WIDTHxHEIGHT:FORMAT (RGB or BGRx), the buffers
 * are raw video frames of that size, row i filled with the colour
 * R = 37 * i % 256, G = 255 - R, B = 128. */
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/visualsearch/visualsearchmeta.h>

static GstBusSyncReply
print_progress (GstBus *bus, GstMessage *m, gpointer user_data)
{
  if (GST_MESSAGE_TYPE (m) != GST_MESSAGE_PROGRESS)
    return GST_BUS_PASS;
  gchar *text;
  gst_message_parse_progress (m, NULL, NULL, &text);
  printf ("progress: %s\n", text);
  fflush (stdout);
  g_free (text);
  return GST_BUS_DROP;
}

static gfloat *
load_vectors (const gchar *spec, guint dims, gsize *rows)
{
  if (g_str_has_prefix (spec, "random:")) {
    GRand *rand = g_rand_new_with_seed (7);
    *rows = g_ascii_strtoull (spec + 7, NULL, 10);
    gfloat *v = g_new (gfloat, *rows * dims);
    for (gsize i = 0; i < *rows * dims; i++)
      v[i] = (gfloat) g_rand_double_range (rand, -1.0, 1.0);
    g_rand_free (rand);
    return v;
  }
  gchar *contents;
  gsize length;
  GError *error = NULL;
  if (!g_file_get_contents (spec, &contents, &length, &error)) {
    fprintf (stderr, "%s\n", error->message);
    exit (2);
  }
  *rows = length / (dims * sizeof (gfloat));
  return (gfloat *) contents;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc < 4) {
    fprintf (stderr, "usage: %s VECTORS DIMS LOCATION [property=value ...]\n",
        argv[0]);
    return 2;
  }
  const guint dims = (guint) g_ascii_strtoull (argv[2], NULL, 10);
  const gchar *model = g_getenv ("VS_FEED_MODEL");
  const gchar *frame_spec = g_getenv ("VS_FEED_FRAME");
  gint width = 0, height = 0, fps = 0;
  gchar format[8] = "";
  if (frame_spec
      && sscanf (frame_spec, "%dx%d:%7[^@]@%d", &width, &height, format, &fps)
          < 3) {
    fprintf (stderr, "VS_FEED_FRAME: want WIDTHxHEIGHT:FORMAT[@FPS]\n");
    return 2;
  }
  const gboolean bgrx = g_str_equal (format, "BGRx");
  gsize rows;
  gfloat *vectors = load_vectors (argv[1], dims, &rows);

  GstElement *pipeline = gst_parse_launch ("appsrc name=src format=time "
                                           "block=true max-buffers=256 ! "
                                           "faissindexer name=indexer",
      NULL);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstElement *indexer = gst_bin_get_by_name (GST_BIN (pipeline), "indexer");
  g_object_set (indexer, "location", argv[3], NULL);
  if (frame_spec) {
    GstCaps *caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING,
        format, "width", G_TYPE_INT, width, "height", G_TYPE_INT, height,
        "framerate", GST_TYPE_FRACTION, fps, 1, NULL);
    g_object_set (src, "caps", caps, NULL);
    gst_caps_unref (caps);
  }
  for (int i = 4; i < argc; i++) {
    gchar **kv = g_strsplit (argv[i], "=", 2);
    gst_util_set_object_arg (G_OBJECT (indexer), kv[0], kv[1]);
    g_strfreev (kv);
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  gst_bus_set_sync_handler (bus, print_progress, NULL, NULL);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);

  for (gsize i = 0; i < rows; i++) {
    GstBuffer *buf = gst_buffer_new ();
    if (frame_spec) {
      const gsize bpp = bgrx ? 4 : 3, stride = GST_ROUND_UP_4 (width * bpp);
      guint8 *pixels = g_malloc0 (stride * height);
      const guint8 r = 37 * i % 256, g = 255 - r, b = 128;
      for (gint y = 0; y < height; y++)
        for (gint x = 0; x < width; x++) {
          guint8 *p = pixels + y * stride + x * bpp;
          p[0] = bgrx ? b : r;
          p[1] = g;
          p[2] = bgrx ? r : b;
        }
      gst_buffer_append_memory (buf,
          gst_memory_new_wrapped (0, pixels, stride * height, 0,
              stride * height, pixels, g_free));
    }
    gchar *name = g_strdup_printf ("class%d", (int) (i % 10));
    gchar *source = g_strdup_printf ("feed/%" G_GSIZE_FORMAT, i);
    gst_buffer_add_visualsearch_embedding_meta (buf, dims, vectors + i * dims,
        model ? model : "resnet18:feed", "feed", FALSE);
    gst_buffer_add_visualsearch_sample_meta (buf, i, i % 10, name, source);
    g_free (name);
    g_free (source);
    if (gst_app_src_push_buffer (GST_APP_SRC (src), buf) != GST_FLOW_OK)
      break;
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));

  int status = 0;
  for (gboolean done = FALSE; !done;) {
    GstMessage *m = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
        (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      GError *error;
      gst_message_parse_error (m, &error, NULL);
      fprintf (stderr, "%s\n", error->message);
      g_error_free (error);
      status = 1;
      done = TRUE;
    } else {
      done = TRUE;
    }
    gst_message_unref (m);
  }

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (src);
  gst_object_unref (indexer);
  gst_object_unref (pipeline);
  g_free (vectors);
  return status;
}
