/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a pipeline that ends in appsink and reports every frame and bus
 * message, for test_gallerysrc.py (PyGObject cannot read our metas):
 *
 *   gallery-run "PIPELINE" PIXELS EMBEDDINGS
 *
 * PIPELINE is everything before "! appsink", e.g. "gallerysrc location=g".
 * PIXELS gets each frame's RGB rows packed (no stride padding); EMBEDDINGS
 * the floats of each frame's GstVisualSearchEmbeddingMeta, if any. stdout gets one
 * tab-separated line per event:
 *   frame  id  label  label_name  source  width  height  pts  embedded
 *   progress  type  done  total
 *   warning  message  /  error  message
 * and exits 1 after an error.
 */
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>

#include <gst/visualsearch/visualsearchmeta.h>

static const char *
progress_type (GstProgressType type)
{
  switch (type) {
    case GST_PROGRESS_TYPE_START:
      return "start";
    case GST_PROGRESS_TYPE_CONTINUE:
      return "continue";
    case GST_PROGRESS_TYPE_COMPLETE:
      return "complete";
    default:
      return "other";
  }
}

/* Prints the messages waiting on the bus; returns FALSE after EOS or an error. */
static gboolean
drain_bus (GstBus *bus, int *rc)
{
  GstMessage *msg;
  gboolean more = TRUE;
  while ((msg = gst_bus_pop (bus))) {
    GError *e = NULL;
    gchar *dbg = NULL;
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_PROGRESS: {
        const GstStructure *s = gst_message_get_structure (msg);
        GstProgressType type;
        guint64 done = 0, total = 0;
        gst_message_parse_progress (msg, &type, NULL, NULL);
        gst_structure_get_uint64 (s, "files-done", &done);
        gst_structure_get_uint64 (s, "files-total", &total);
        printf ("progress\t%s\t%" G_GUINT64_FORMAT "\t%" G_GUINT64_FORMAT "\n",
            progress_type (type), done, total);
        break;
      }
      case GST_MESSAGE_WARNING:
        gst_message_parse_warning (msg, &e, &dbg);
        printf ("warning\t%s\n", e->message);
        break;
      case GST_MESSAGE_ERROR:
        gst_message_parse_error (msg, &e, &dbg);
        printf ("error\t%s\n", e->message);
        *rc = 1;
        more = FALSE;
        break;
      case GST_MESSAGE_EOS:
        more = FALSE;
        break;
      default:
        break;
    }
    g_clear_error (&e);
    g_free (dbg);
    gst_message_unref (msg);
  }
  return more;
}

static void
report (GstSample *sample, FILE *pixels, FILE *embeddings)
{
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstVideoInfo info;
  GstVideoFrame frame;
  gst_video_info_from_caps (&info, gst_sample_get_caps (sample));
  gst_video_frame_map (&frame, &info, buf, GST_MAP_READ);
  const gint width = GST_VIDEO_FRAME_WIDTH (&frame);
  const gint height = GST_VIDEO_FRAME_HEIGHT (&frame);
  for (gint y = 0; y < height; y++)
    fwrite ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 0)
            + y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0),
        1, GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, 0) * width, pixels);
  gst_video_frame_unmap (&frame);

  GstVisualSearchSampleMeta *meta =
      gst_buffer_get_visualsearch_sample_meta (buf);
  GstVisualSearchEmbeddingMeta *emb =
      gst_buffer_get_visualsearch_embedding_meta (buf);
  if (emb)
    fwrite (emb->values, sizeof (gfloat), emb->dims, embeddings);
  printf ("frame\t%" G_GINT64_FORMAT "\t%d\t%s\t%s\t%d\t%d\t%" G_GUINT64_FORMAT
          "\t%d\n",
      meta ? meta->id : -1, meta ? meta->label : -2,
      meta && meta->label_name ? meta->label_name : "(null)",
      meta ? meta->source : "(no meta)", width, height, GST_BUFFER_PTS (buf),
      emb != NULL);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc != 4) {
    fprintf (stderr, "usage: %s PIPELINE PIXELS EMBEDDINGS\n", argv[0]);
    return 2;
  }
  GError *err = NULL;
  gchar *desc = g_strdup_printf ("%s ! appsink name=sink sync=false", argv[1]);
  GstElement *pipeline = gst_parse_launch (desc, &err);
  g_free (desc);
  if (!pipeline) {
    printf ("error\t%s\n", err->message);
    return 1;
  }
  FILE *pixels = fopen (argv[2], "wb");
  FILE *embeddings = fopen (argv[3], "wb");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstBus *bus = gst_element_get_bus (pipeline);
  int rc = 0;

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  for (;;) {
    GstSample *sample =
        gst_app_sink_try_pull_sample (GST_APP_SINK (sink), GST_SECOND / 10);
    if (sample) {
      report (sample, pixels, embeddings);
      gst_sample_unref (sample);
    }
    if (!drain_bus (bus, &rc)
        || (!sample && gst_app_sink_is_eos (GST_APP_SINK (sink))))
      break;
  }
  /* Frames still queued after EOS. */
  GstSample *sample;
  while (rc == 0
      && (sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 0))) {
    report (sample, pixels, embeddings);
    gst_sample_unref (sample);
  }
  drain_bus (bus, &rc);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  fclose (pixels);
  fclose (embeddings);
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return rc;
}
