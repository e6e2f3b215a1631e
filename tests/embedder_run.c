/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pushes raw video frames through a pipeline fragment and writes what comes
 * out: the embeddings (GstVisualSearchEmbeddingMeta) or the raw frames. The parity tests
 * and the benchmark drive embedder through it.
 *
 *   embedder-run CAPS FRAMES OUT MODE "FRAGMENT" [REPEAT]
 *
 * FRAMES holds whole frames of CAPS back to back. MODE is "meta" (OUT gets
 * dims floats per output buffer, zeros when a buffer has no meta) or "raw"
 * (OUT gets the output buffers' bytes). FRAGMENT goes between appsrc and
 * appsink, e.g. "embedder weights=random batch-size=4". REPEAT pushes the
 * frames that many times; after the first round the rate is timed.
 * stdout gets key=value lines: model_id, preprocessing_id, dims, buffers,
 * embedded, images_per_s, and active_precision when FRAGMENT has an embedder.
 */
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/visualsearch/visualsearchmeta.h>

typedef struct
{
  FILE *out;
  gboolean raw;
  guint buffers, embedded, dims;
  gchar *model_id, *preprocessing_id;
  guint64 *pts;
  guint n_pts;
  gboolean pts_ok;
} Output;

static void
collect (Output *o, GstSample *sample)
{
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstVisualSearchEmbeddingMeta *meta =
      gst_buffer_get_visualsearch_embedding_meta (buf);

  if (o->buffers < o->n_pts && GST_BUFFER_PTS (buf) != o->pts[o->buffers])
    o->pts_ok = FALSE;
  o->buffers++;
  if (o->raw) {
    GstMapInfo map;
    gst_buffer_map (buf, &map, GST_MAP_READ);
    fwrite (map.data, 1, map.size, o->out);
    gst_buffer_unmap (buf, &map);
    return;
  }
  if (meta) {
    o->embedded++;
    o->dims = meta->dims;
    if (!o->model_id) {
      o->model_id = g_strdup (meta->model_id);
      o->preprocessing_id = g_strdup (meta->preprocessing_id);
    }
    fwrite (meta->values, sizeof (gfloat), meta->dims, o->out);
  } else if (o->dims) {
    gfloat *zeros = g_new0 (gfloat, o->dims);
    fwrite (zeros, sizeof (gfloat), o->dims, o->out);
    g_free (zeros);
  }
}

static gint
not_embedder (const GValue *value, gconstpointer unused)
{
  GstElementFactory *f = gst_element_get_factory (g_value_get_object (value));
  return f && g_str_equal (GST_OBJECT_NAME (f), "embedder") ? 0 : 1;
}

/* The nick of the first embedder's active-precision, or NULL. */
static gchar *
active_precision (GstElement *pipeline)
{
  GstIterator *it = gst_bin_iterate_recurse (GST_BIN (pipeline));
  GValue found = G_VALUE_INIT;
  gchar *nick = NULL;
  if (gst_iterator_find_custom (it, not_embedder, &found, NULL)) {
    GObject *e = g_value_get_object (&found);
    GParamSpec *spec = g_object_class_find_property (G_OBJECT_GET_CLASS (e),
        "active-precision");
    GEnumClass *klass = g_type_class_ref (spec->value_type);
    GValue v = G_VALUE_INIT;
    g_value_init (&v, spec->value_type);
    g_object_get_property (e, "active-precision", &v);
    nick =
        g_strdup (g_enum_get_value (klass, g_value_get_enum (&v))->value_nick);
    g_value_unset (&v);
    g_type_class_unref (klass);
    g_value_unset (&found);
  }
  gst_iterator_free (it);
  return nick;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc < 6) {
    fprintf (stderr, "usage: %s CAPS FRAMES OUT meta|raw FRAGMENT [REPEAT]\n",
        argv[0]);
    return 2;
  }
  const guint repeat = argc > 6 ? (guint) atoi (argv[6]) : 1;

  GstCaps *caps = gst_caps_from_string (argv[1]);
  GstVideoInfo info;
  if (!caps || !gst_video_info_from_caps (&info, caps)) {
    fprintf (stderr, "bad caps %s\n", argv[1]);
    return 2;
  }
  gchar *frames;
  gsize size;
  GError *err = NULL;
  if (!g_file_get_contents (argv[2], &frames, &size, &err)) {
    fprintf (stderr, "%s\n", err->message);
    return 2;
  }
  const guint n_frames = size / info.size;

  gchar *desc = g_strdup_printf ("appsrc name=src format=time ! %s ! "
                                 "appsink name=sink sync=false",
      argv[5]);
  GstElement *pipeline = gst_parse_launch (desc, &err);
  g_free (desc);
  /* gst_parse_launch returns a pipeline along with an error when only part
   * of the description parsed (an unknown element, a property that does not
   * exist): such a pipeline never delivers a buffer, so refuse it. */
  if (!pipeline || err) {
    fprintf (stderr, "%s\n", err ? err->message : "cannot parse the pipeline");
    if (pipeline)
      gst_object_unref (pipeline);
    return 2;
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_object_set (src, "caps", caps, "max-buffers", (guint64) 64, "block", TRUE,
      NULL);
  g_object_set (sink, "max-buffers", 0, NULL);

  Output o = {0};
  o.out = fopen (argv[3], "wb");
  o.raw = strcmp (argv[4], "raw") == 0;
  o.n_pts = n_frames * repeat;
  o.pts = g_new (guint64, o.n_pts);
  o.pts_ok = TRUE;
  if (!o.out) {
    perror (argv[3]);
    return 2;
  }

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstClockTime timed_start = GST_CLOCK_TIME_NONE;
  guint pushed = 0;
  gboolean failed = FALSE;
  for (guint r = 0; r < repeat && !failed; r++) {
    for (guint i = 0; i < n_frames && !failed; i++) {
      GstBuffer *buf =
          gst_buffer_new_memdup (frames + (gsize) i * info.size, info.size);
      GST_BUFFER_PTS (buf) = pushed * GST_SECOND / 30;
      GST_BUFFER_DURATION (buf) = GST_SECOND / 30;
      o.pts[pushed++] = GST_BUFFER_PTS (buf);
      failed = gst_app_src_push_buffer (GST_APP_SRC (src), buf) != GST_FLOW_OK;
      /* Output is collected as we go so appsink never holds every frame. */
      GstSample *sample;
      while ((sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 0))) {
        collect (&o, sample);
        gst_sample_unref (sample);
      }
    }
    if (r == 0 && repeat > 1) {
      /* The first round loads the model and warms up the caches. */
      while (o.buffers < pushed && !failed) {
        /* Loading the model can take seconds; after that, a pause means the
         * rest sits in a batch that is not full yet. */
        GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink),
            o.buffers == 0 ? 60 * GST_SECOND : GST_SECOND / 2);
        if (!sample)
          break;
        collect (&o, sample);
        gst_sample_unref (sample);
      }
      timed_start = gst_util_get_timestamp ();
    }
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));

  GstSample *sample;
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    collect (&o, sample);
    gst_sample_unref (sample);
  }
  GstMessage *msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline),
      GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  int rc = 0;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *e;
    gchar *dbg;
    gst_message_parse_error (msg, &e, &dbg);
    fprintf (stderr, "ERROR: %s\n%s\n", e->message, dbg ? dbg : "");
    g_error_free (e);
    g_free (dbg);
    rc = 1;
  }
  gst_message_unref (msg);
  if (GST_CLOCK_TIME_IS_VALID (timed_start)) {
    const double secs = (gst_util_get_timestamp () - timed_start) / 1e9;
    printf ("images_per_s=%.2f\n", n_frames * (repeat - 1) / secs);
  }
  gchar *precision = active_precision (pipeline);
  if (precision)
    printf ("active_precision=%s\n", precision);
  g_free (precision);
  gst_element_set_state (pipeline, GST_STATE_NULL);

  printf ("model_id=%s\npreprocessing_id=%s\ndims=%u\nbuffers=%u\n"
          "embedded=%u\npts_in_order=%d\n",
      GST_STR_NULL (o.model_id), GST_STR_NULL (o.preprocessing_id), o.dims,
      o.buffers, o.embedded, o.pts_ok && o.buffers == pushed);
  fclose (o.out);
  g_free (o.pts);
  g_free (o.model_id);
  g_free (o.preprocessing_id);
  g_free (frames);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  gst_caps_unref (caps);
  return rc;
}
