/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The metadata library: add/get helpers, deep copies, and survival through
 * the elements that commonly sit between embedder and its consumers. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include <gst/visualsearch/visualsearchmeta.h>

static const gfloat values[4] = {0.5f, -0.25f, 0.125f, 1.0f};

static GstBuffer *
make_frame_with_metas (void)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 32 * 24 * 3, NULL);
  GstVisualSearchNeighbor nb[2] = {
      {7, 0.25f, 3, (gchar *) "cat", (gchar *) "cifar10/train/7"},
      {9, 0.5f, 5, (gchar *) "dog", NULL},
  };

  gst_buffer_memset (buf, 0, 0x80, 32 * 24 * 3);
  gst_buffer_add_video_meta (buf, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_FORMAT_RGB, 32, 24);
  gst_buffer_add_visualsearch_embedding_meta (buf, 4, values, "resnet18:test",
      "rgb;resize=0;crop=32", TRUE);
  gst_buffer_add_visualsearch_neighbors_meta (buf, GST_VISUALSEARCH_METRIC_L2,
      2, nb);
  gst_buffer_add_visualsearch_sample_meta (buf, 42, 3, "cat",
      "cifar10/test/42");
  return buf;
}

static void
check_metas (GstBuffer *buf)
{
  GstVisualSearchEmbeddingMeta *emeta =
      gst_buffer_get_visualsearch_embedding_meta (buf);
  GstVisualSearchNeighborsMeta *nmeta =
      gst_buffer_get_visualsearch_neighbors_meta (buf);
  GstVisualSearchSampleMeta *smeta =
      gst_buffer_get_visualsearch_sample_meta (buf);
  guint i;

  fail_unless (emeta != NULL, "embedding meta lost");
  fail_unless_equals_int (emeta->dims, 4);
  for (i = 0; i < 4; i++)
    fail_unless_equals_float (emeta->values[i], values[i]);
  fail_unless_equals_string (emeta->model_id, "resnet18:test");
  fail_unless_equals_string (emeta->preprocessing_id, "rgb;resize=0;crop=32");
  fail_unless (emeta->normalized);

  fail_unless (nmeta != NULL, "neighbors meta lost");
  fail_unless_equals_int (nmeta->metric, GST_VISUALSEARCH_METRIC_L2);
  fail_unless_equals_int (nmeta->n_neighbors, 2);
  fail_unless_equals_int64 (nmeta->neighbors[0].id, 7);
  fail_unless_equals_float (nmeta->neighbors[0].distance, 0.25f);
  fail_unless_equals_int (nmeta->neighbors[0].label, 3);
  fail_unless_equals_string (nmeta->neighbors[0].label_name, "cat");
  fail_unless_equals_string (nmeta->neighbors[0].source, "cifar10/train/7");
  fail_unless_equals_int64 (nmeta->neighbors[1].id, 9);
  fail_unless (nmeta->neighbors[1].source == NULL);

  fail_unless (smeta != NULL, "sample meta lost");
  fail_unless_equals_int64 (smeta->id, 42);
  fail_unless_equals_int (smeta->label, 3);
  fail_unless_equals_string (smeta->label_name, "cat");
  fail_unless_equals_string (smeta->source, "cifar10/test/42");
}

GST_START_TEST (test_metric_strings)
{
  GstVisualSearchMetric m;

  fail_unless_equals_string (
      gst_visualsearch_metric_to_string (GST_VISUALSEARCH_METRIC_INNER_PRODUCT),
      "ip");
  fail_unless_equals_string (
      gst_visualsearch_metric_to_string (GST_VISUALSEARCH_METRIC_L2), "l2");
  fail_unless (gst_visualsearch_metric_from_string ("L2", &m));
  fail_unless_equals_int (m, GST_VISUALSEARCH_METRIC_L2);
  fail_unless (gst_visualsearch_metric_from_string ("ip", &m));
  fail_unless_equals_int (m, GST_VISUALSEARCH_METRIC_INNER_PRODUCT);
  fail_if (gst_visualsearch_metric_from_string ("cosine", &m));
  fail_if (gst_visualsearch_metric_from_string (NULL, &m));
  fail_unless_equals_string (
      gst_visualsearch_metric_to_string ((GstVisualSearchMetric) 7), "unknown");
}

GST_END_TEST;

/* The metric is a registered GEnum (glib-mkenums), the type of the elements'
 * "metric" properties: its nicks are what gst-launch takes. */
GST_START_TEST (test_metric_gtype)
{
  GEnumClass *klass;
  GEnumValue *ip, *l2;

  fail_unless (G_TYPE_IS_ENUM (GST_TYPE_VISUALSEARCH_METRIC));
  fail_unless_equals_string (g_type_name (GST_TYPE_VISUALSEARCH_METRIC),
      "GstVisualSearchMetric");
  klass = G_ENUM_CLASS (g_type_class_ref (GST_TYPE_VISUALSEARCH_METRIC));
  fail_unless_equals_int (klass->n_values, 2);
  ip = g_enum_get_value_by_nick (klass, "ip");
  l2 = g_enum_get_value_by_nick (klass, "l2");
  fail_unless (ip != NULL && l2 != NULL);
  fail_unless_equals_int (ip->value, GST_VISUALSEARCH_METRIC_INNER_PRODUCT);
  fail_unless_equals_int (l2->value, GST_VISUALSEARCH_METRIC_L2);
  g_type_class_unref (klass);
}

GST_END_TEST;

GST_START_TEST (test_add_get_and_copy_is_deep)
{
  GstBuffer *buf = make_frame_with_metas ();
  GstBuffer *copy;
  GstVisualSearchEmbeddingMeta *orig, *copied;

  check_metas (buf);
  copy = gst_buffer_copy (buf);
  check_metas (copy);

  orig = gst_buffer_get_visualsearch_embedding_meta (buf);
  copied = gst_buffer_get_visualsearch_embedding_meta (copy);
  fail_unless (orig->values != copied->values, "copy shares the values array");
  fail_unless (gst_buffer_get_visualsearch_neighbors_meta (buf)->neighbors
      != gst_buffer_get_visualsearch_neighbors_meta (copy)->neighbors);

  /* The copy outlives the original. */
  gst_buffer_unref (buf);
  check_metas (copy);
  gst_buffer_unref (copy);
}

GST_END_TEST;

GST_START_TEST (test_add_without_optional_strings)
{
  GstBuffer *buf = gst_buffer_new ();
  GstVisualSearchSampleMeta *s =
      gst_buffer_add_visualsearch_sample_meta (buf, 1, -1, NULL, NULL);
  GstVisualSearchEmbeddingMeta *e =
      gst_buffer_add_visualsearch_embedding_meta (buf, 0, NULL, NULL, NULL,
          FALSE);
  GstVisualSearchNeighborsMeta *n =
      gst_buffer_add_visualsearch_neighbors_meta (buf,
          GST_VISUALSEARCH_METRIC_INNER_PRODUCT, 0, NULL);

  fail_unless (s && e && n);
  fail_unless (s->label_name == NULL && s->source == NULL);
  fail_unless_equals_int (e->dims, 0);
  fail_unless_equals_int (n->n_neighbors, 0);
  gst_buffer_unref (buf);
}

GST_END_TEST;

/* Runs one RGB 32x24 frame through a real pipeline that converts the format,
 * scales, and fans out through tee and queue, then checks the metas. */
static void
run_through (const gchar *launch, const gchar *out_caps)
{
  GstHarness *h = gst_harness_new_parse (launch);
  GstBuffer *out;

  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGB,width=32,height=24,framerate=30/1");
  gst_harness_set_sink_caps_str (h, out_caps);
  out = gst_harness_push_and_pull (h, make_frame_with_metas ());
  fail_unless (out != NULL);
  check_metas (out);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_START_TEST (test_survives_videoconvert)
{
  run_through ("videoconvert", "video/x-raw,format=I420,width=32,height=24");
}

GST_END_TEST;

/* An embedding describes the whole picture: a copy of part of the buffer
 * loses it and its neighbours, but still comes from the same sample. */
GST_START_TEST (test_partial_copy_keeps_only_the_sample)
{
  GstBuffer *buf = make_frame_with_metas ();
  GstBuffer *part =
      gst_buffer_copy_region (buf, GST_BUFFER_COPY_ALL, 0, 32 * 3 * 12);
  GstVisualSearchSampleMeta *smeta =
      gst_buffer_get_visualsearch_sample_meta (part);

  fail_unless (gst_buffer_get_visualsearch_embedding_meta (part) == NULL,
      "a part of the frame kept the embedding of the whole");
  fail_unless (gst_buffer_get_visualsearch_neighbors_meta (part) == NULL,
      "a part of the frame kept the neighbours of the whole");
  fail_unless (smeta != NULL, "sample meta lost");
  fail_unless_equals_int64 (smeta->id, 42);
  fail_unless_equals_string (smeta->source, "cifar10/test/42");
  gst_buffer_unref (part);
  gst_buffer_unref (buf);
}

GST_END_TEST;

/* Applies each meta's transform function of src to a new buffer. */
static GstBuffer *
transform_metas (GstBuffer *src, GQuark type, gpointer data)
{
  GstBuffer *dest = gst_buffer_new_allocate (NULL, 64 * 48 * 3, NULL);
  gpointer state = NULL;
  GstMeta *meta;

  while ((meta = gst_buffer_iterate_meta (src, &state)))
    if (meta->info->api != GST_VIDEO_META_API_TYPE)
      fail_unless (meta->info->transform_func (dest, meta, src, type, data));
  return dest;
}

GST_START_TEST (test_scale_keeps_everything)
{
  GstBuffer *buf = make_frame_with_metas ();
  GstVideoInfo in, out;
  GstVideoMetaTransform scale = {&in, &out};
  GstBuffer *scaled;

  gst_video_info_set_format (&in, GST_VIDEO_FORMAT_RGB, 32, 24);
  gst_video_info_set_format (&out, GST_VIDEO_FORMAT_RGB, 64, 48);
  scaled = transform_metas (buf, gst_video_meta_transform_scale_get_quark (),
      &scale);
  check_metas (scaled);
  gst_buffer_unref (scaled);
  gst_buffer_unref (buf);
}

GST_END_TEST;

/* A transform the library does not know (a crop's, in later GStreamer) may
 * cut the picture. */
GST_START_TEST (test_unknown_transform_keeps_only_the_sample)
{
  GstBuffer *buf = make_frame_with_metas ();
  GstBuffer *other = transform_metas (buf,
      g_quark_from_static_string ("gst-video-matrix"), NULL);

  fail_unless (gst_buffer_get_visualsearch_embedding_meta (other) == NULL);
  fail_unless (gst_buffer_get_visualsearch_neighbors_meta (other) == NULL);
  fail_unless (gst_buffer_get_visualsearch_sample_meta (other) != NULL,
      "sample meta lost");
  gst_buffer_unref (other);
  gst_buffer_unref (buf);
}

GST_END_TEST;

GST_START_TEST (test_survives_videoscale)
{
  run_through ("videoscale", "video/x-raw,format=RGB,width=64,height=48");
}

GST_END_TEST;

GST_START_TEST (test_survives_tee_queue_chain)
{
  run_through ("videoconvert ! videoscale ! tee ! queue",
      "video/x-raw,format=BGRx,width=16,height=12");
}

GST_END_TEST;

/* A region's results: parameters of its ROI meta, written and read through
 * the library, replaced rather than doubled, and carried by the ROI meta's
 * own copy and scale. */
GST_START_TEST (test_region_params)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 32 * 24 * 3, NULL);
  GstVideoRegionOfInterestMeta *roi =
      gst_buffer_add_video_region_of_interest_meta (buf, "face", 4, 6, 10, 8);
  const gfloat values[3] = {0.5f, -1.0f, 2.0f};
  const gfloat again[2] = {3.0f, 4.0f};
  GstVisualSearchNeighbor nbs[2] = {{7, 0.9f, 3, (gchar *) "cat",
                                        (gchar *) "a.png"},
      {9, 0.5f, -1, NULL, NULL}};
  const gchar *model_id = NULL, *name = NULL, *source = NULL;
  GstVisualSearchMetric metric;
  gboolean normalized = TRUE;
  gint64 id;
  gfloat distance;
  gint label;
  guint dims, n;
  const gfloat *got;
  GstBuffer *copy;

  fail_if (gst_visualsearch_region_get_embedding (roi, &dims) != NULL);
  fail_unless_equals_int (dims, 0);
  fail_if (gst_visualsearch_region_get_neighbors_info (roi, NULL, &n));

  gst_visualsearch_region_set_embedding (roi, 3, values, "m1", "p1", FALSE);
  gst_visualsearch_region_set_embedding (roi, 2, again, "m2", "p2", FALSE);
  fail_unless_equals_int (g_list_length (roi->params), 1);
  got = gst_visualsearch_region_get_embedding (roi, &dims);
  fail_unless (got != NULL);
  fail_unless_equals_int (dims, 2);
  fail_unless (got[0] == 3.0f && got[1] == 4.0f);
  fail_unless (gst_visualsearch_region_get_embedding_info (roi, &model_id, NULL,
      &normalized));
  fail_unless_equals_string (model_id, "m2");
  fail_if (normalized);

  gst_visualsearch_region_set_neighbors (roi,
      GST_VISUALSEARCH_METRIC_INNER_PRODUCT, 2, nbs);
  fail_unless (gst_visualsearch_region_get_neighbors_info (roi, &metric, &n));
  fail_unless_equals_int (metric, GST_VISUALSEARCH_METRIC_INNER_PRODUCT);
  fail_unless_equals_int (n, 2);
  fail_unless (gst_visualsearch_region_get_neighbor (roi, 0, &id, &distance,
      &label, &name, &source));
  fail_unless_equals_int64 (id, 7);
  fail_unless (distance == 0.9f);
  fail_unless_equals_int (label, 3);
  fail_unless_equals_string (name, "cat");
  fail_unless_equals_string (source, "a.png");
  fail_unless (gst_visualsearch_region_get_neighbor (roi, 1, &id, NULL, &label,
      &name, NULL));
  fail_unless_equals_int64 (id, 9);
  fail_unless (name == NULL);
  fail_if (gst_visualsearch_region_get_neighbor (roi, 2, &id, NULL, NULL, NULL,
      NULL));

  copy = gst_buffer_copy (buf);
  roi = gst_buffer_get_video_region_of_interest_meta (copy);
  fail_unless (roi != NULL);
  got = gst_visualsearch_region_get_embedding (roi, &dims);
  fail_unless (got != NULL && dims == 2 && got[1] == 4.0f,
      "a copied region lost its embedding");
  fail_unless (gst_visualsearch_region_get_neighbor (roi, 0, &id, NULL, NULL,
      NULL, &source));
  fail_unless_equals_int64 (id, 7);
  fail_unless_equals_string (source, "a.png");
  gst_buffer_unref (copy);
  gst_buffer_unref (buf);
}

GST_END_TEST;

/* A malformed parameter of the right name reads as none, never as garbage. */
GST_START_TEST (test_region_malformed_params)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 16, NULL);
  GstVideoRegionOfInterestMeta *roi =
      gst_buffer_add_video_region_of_interest_meta (buf, "face", 0, 0, 2, 2);
  GBytes *short_bytes = g_bytes_new ("abc", 3);
  guint dims, n;

  gst_video_region_of_interest_meta_add_param (roi,
      gst_structure_new (GST_VISUALSEARCH_REGION_EMBEDDING_PARAM, "dims",
          G_TYPE_UINT, 4, "values", G_TYPE_BYTES, short_bytes, NULL));
  gst_video_region_of_interest_meta_add_param (roi,
      gst_structure_new (GST_VISUALSEARCH_REGION_NEIGHBORS_PARAM, "metric",
          G_TYPE_STRING, "ip", NULL));
  fail_unless (gst_visualsearch_region_get_embedding (roi, &dims) == NULL);
  fail_unless_equals_int (dims, 0);
  fail_if (gst_visualsearch_region_get_neighbors_info (roi, NULL, &n));
  fail_if (gst_visualsearch_region_get_neighbor (roi, 0, NULL, NULL, NULL, NULL,
      NULL));
  g_bytes_unref (short_bytes);
  gst_buffer_unref (buf);
}

GST_END_TEST;

static Suite *
meta_suite (void)
{
  Suite *s = suite_create ("visualsearchmeta");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metric_strings);
  tcase_add_test (tc, test_metric_gtype);
  tcase_add_test (tc, test_add_get_and_copy_is_deep);
  tcase_add_test (tc, test_add_without_optional_strings);
  tcase_add_test (tc, test_survives_videoconvert);
  tcase_add_test (tc, test_partial_copy_keeps_only_the_sample);
  tcase_add_test (tc, test_scale_keeps_everything);
  tcase_add_test (tc, test_unknown_transform_keeps_only_the_sample);
  tcase_add_test (tc, test_survives_videoscale);
  tcase_add_test (tc, test_survives_tee_queue_chain);
  tcase_add_test (tc, test_region_params);
  tcase_add_test (tc, test_region_malformed_params);
  return s;
}

GST_CHECK_MAIN (meta);
