/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cifarsrc on small CIFAR-10/100 datasets that tests/cifar_fixtures.py writes
 * into a temporary directory (both formats, python 2 and 3 pickles, broken
 * copies). Pixels and labels follow the formulas of cifar_fixtures.py. */
#include <gst/check/gstcheck.h>
#include <gst/base/gstbasesrc.h>
#include <gst/check/gstharness.h>
#include <string.h>

#include <gst/visualsearch/visualsearchmeta.h>

/* Mirrors TRAIN10, TEST10, TRAIN100, TEST100 in cifar_fixtures.py. */
#define TRAIN10 25
#define TEST10 9
#define TRAIN100 12
#define TEST100 6

static gchar *data_dir;

static const gchar *names10[] = {"airplane", "automobile", "bird", "cat",
    "deer", "dog", "frog", "horse", "ship", "truck"};

static gboolean
is_cifar100 (const gchar *dataset)
{
  return strcmp (dataset, "cifar100") == 0;
}

static guint8
expected_pixel (const gchar *dataset, const gchar *split, gint index, gint c,
    gint y, gint x)
{
  return (index * 37 + c * 101 + y * 7 + x * 3
             + (strcmp (split, "test") == 0 ? 53 : 0)
             + (is_cifar100 (dataset) ? 11 : 0))
      % 256;
}

static gint
expected_label (const gchar *dataset, const gchar *split, gint index,
    gboolean coarse)
{
  gint t = strcmp (split, "test") == 0 ? 1 : 0;
  if (!is_cifar100 (dataset))
    return (index * 3 + t) % 10;
  gint fine = (index * 7 + t * 3) % 100;
  return coarse ? fine / 5 : fine;
}

static gchar *
dataset_path (const gchar *name)
{
  return g_build_filename (data_dir, name, NULL);
}

/* Checks one frame: pixels (HWC RGB), PTS, and its GstVisualSearchSampleMeta. */
static void
check_frame (GstBuffer *buf, const gchar *dataset, const gchar *split,
    gint index, gint64 id, gboolean coarse)
{
  GstMapInfo map;
  gchar *source;
  gint label = expected_label (dataset, split, index, coarse);
  GstVisualSearchSampleMeta *meta =
      gst_buffer_get_visualsearch_sample_meta (buf);

  fail_unless (meta != NULL);
  source = g_strdup_printf ("%s/%s/%d", dataset, split, index);
  fail_unless_equals_string (meta->source, source);
  fail_unless_equals_int64 (meta->id, id);
  fail_unless_equals_int (meta->label, label);
  if (is_cifar100 (dataset)) {
    gchar *name = g_strdup_printf (coarse ? "coarse%02d" : "fine%02d", label);
    fail_unless_equals_string (meta->label_name, name);
    g_free (name);
  } else {
    fail_unless_equals_string (meta->label_name, names10[label]);
  }
  g_free (source);

  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  fail_unless_equals_int (map.size, 32 * 32 * 3);
  for (gint y = 0; y < 32; y++)
    for (gint x = 0; x < 32; x++)
      for (gint c = 0; c < 3; c++)
        fail_unless_equals_int (map.data[(y * 32 + x) * 3 + c],
            expected_pixel (dataset, split, index, c, y, x));
  gst_buffer_unmap (buf, &map);
}

static GstHarness *
harness_for (const gchar *dir, const gchar *split)
{
  GstHarness *h = gst_harness_new ("cifarsrc");
  gchar *location = dataset_path (dir);

  gst_util_set_object_arg (G_OBJECT (h->element), "split", split);
  g_object_set (h->element, "location", location, NULL);
  g_free (location);
  return h;
}

static void
expect_eos (GstHarness *h)
{
  GstEvent *event;
  while ((event = gst_harness_pull_event (h)) != NULL) {
    GstEventType type = GST_EVENT_TYPE (event);
    gst_event_unref (event);
    if (type == GST_EVENT_EOS)
      return;
  }
  fail ("no EOS");
}

GST_START_TEST (test_caps_pixels_and_metas)
{
  GstHarness *h = harness_for ("cifar-10-batches-py", "test");
  GstCaps *caps;
  GstStructure *s;
  gint n, d;

  gst_harness_play (h);
  for (gint i = 0; i < TEST10; i++) {
    GstBuffer *buf = gst_harness_pull (h);
    fail_unless (buf != NULL);
    check_frame (buf, "cifar10", "test", i, i, FALSE);
    /* framerate 0/1: 1 ms per frame, from 0 */
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), i * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (buf), GST_MSECOND);
    gst_buffer_unref (buf);
  }
  expect_eos (h);

  caps = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (caps != NULL);
  s = gst_caps_get_structure (caps, 0);
  fail_unless (gst_structure_has_name (s, "video/x-raw"));
  fail_unless_equals_string (gst_structure_get_string (s, "format"), "RGB");
  fail_unless (gst_structure_get_int (s, "width", &n) && n == 32);
  fail_unless (gst_structure_get_int (s, "height", &n) && n == 32);
  fail_unless (gst_structure_get_fraction (s, "framerate", &n, &d));
  fail_unless (n == 0 && d == 1);
  gst_caps_unref (caps);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Every format: all records, train then test, byte for byte. */
GST_START_TEST (test_every_format)
{
  const struct
  {
    const gchar *dir;
    const gchar *dataset;
    gint train, test;
  } formats[] = {
      {"cifar-10-batches-py", "cifar10", TRAIN10, TEST10},
      {"cifar10-py3", "cifar10", TRAIN10, TEST10},
      {"cifar10-p5", "cifar10", TRAIN10, TEST10},
      {"cifar-10-batches-bin", "cifar10", TRAIN10, TEST10},
      {"cifar-100-python", "cifar100", TRAIN100, TEST100},
      {"cifar-100-binary", "cifar100", TRAIN100, TEST100},
  };

  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    GstHarness *h = harness_for (formats[f].dir, "all");
    GST_INFO ("format %s", formats[f].dir);
    gst_harness_play (h);
    for (gint i = 0; i < formats[f].train + formats[f].test; i++) {
      GstBuffer *buf = gst_harness_pull (h);
      gboolean test = i >= formats[f].train;
      check_frame (buf, formats[f].dataset, test ? "test" : "train",
          test ? i - formats[f].train : i, i, FALSE);
      gst_buffer_unref (buf);
    }
    expect_eos (h);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

GST_START_TEST (test_offset_num_buffers_split_all)
{
  GstHarness *h = harness_for ("cifar-10-batches-bin", "all");

  g_object_set (h->element, "offset", (guint64) (TRAIN10 - 2), "num-buffers", 4,
      NULL);
  gst_harness_play (h);
  for (gint k = 0; k < 4; k++) {
    GstBuffer *buf = gst_harness_pull (h);
    gint pos = TRAIN10 - 2 + k;
    gboolean test = pos >= TRAIN10;
    check_frame (buf, "cifar10", test ? "test" : "train",
        test ? pos - TRAIN10 : pos, pos, FALSE);
    /* timestamps count frames pushed, not records skipped */
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), k * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (buf), pos);
    gst_buffer_unref (buf);
  }
  expect_eos (h);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_coarse_labels)
{
  GstHarness *h = harness_for ("cifar-100-python", "test");

  gst_util_set_object_arg (G_OBJECT (h->element), "label-kind", "coarse");
  gst_harness_play (h);
  for (gint i = 0; i < TEST100; i++) {
    GstBuffer *buf = gst_harness_pull (h);
    check_frame (buf, "cifar100", "test", i, i, TRUE);
    gst_buffer_unref (buf);
  }
  expect_eos (h);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_single_batch_file)
{
  GstHarness *h = gst_harness_new ("cifarsrc");
  gchar *location =
      g_build_filename (data_dir, "cifar-10-batches-py", "data_batch_2", NULL);

  g_object_set (h->element, "location", location, NULL);
  gst_harness_play (h);
  /* data_batch_2 holds train records 7..11 (batch 1 has 7) */
  for (gint i = 0; i < 5; i++) {
    GstBuffer *buf = gst_harness_pull (h);
    check_frame (buf, "cifar10", "train", 7 + i, i, FALSE);
    gst_buffer_unref (buf);
  }
  expect_eos (h);
  gst_harness_teardown (h);
  g_free (location);
}

GST_END_TEST;

GST_START_TEST (test_live_framerate)
{
  GstHarness *h = harness_for ("cifar-10-batches-bin", "test");
  GstClockTime first_pts = GST_CLOCK_TIME_NONE;
  GstQuery *query;
  gboolean live;
  GstClockTime min_latency;
  gint64 started;

  g_object_set (h->element, "num-buffers", 5, NULL);
  gst_util_set_object_arg (G_OBJECT (h->element), "framerate", "50/1");
  gst_harness_use_systemclock (h);
  started = g_get_monotonic_time ();
  gst_harness_play (h);
  for (gint i = 0; i < 5; i++) {
    GstBuffer *buf = gst_harness_pull (h);
    if (i == 0)
      first_pts = GST_BUFFER_PTS (buf);
    /* GstBaseSrc shifts a live stream by the running time it started at. */
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf) - first_pts,
        i * 20 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (buf), 20 * GST_MSECOND);
    check_frame (buf, "cifar10", "test", i, i, FALSE);
    gst_buffer_unref (buf);
  }
  /* paced by the clock: 5 frames at 50 fps take at least 80 ms */
  fail_unless (g_get_monotonic_time () - started >= 80 * 1000);
  expect_eos (h);

  query = gst_query_new_latency ();
  fail_unless (gst_element_query (h->element, query));
  gst_query_parse_latency (query, &live, &min_latency, NULL);
  fail_unless (live);
  fail_unless_equals_uint64 (min_latency, 20 * GST_MSECOND);
  gst_query_unref (query);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Runs `cifarsrc PROPS ! fakesink` to the end. Returns the error posted, if
 * any; counts buffers and keeps the first warning's message. */
static GError *
run_pipeline (const gchar *props, guint *buffers, gchar **warning)
{
  gchar *desc = g_strdup_printf ("cifarsrc name=src %s ! fakesink name=sink "
                                 "signal-handoffs=true",
      props);
  GstElement *pipeline = gst_parse_launch (desc, NULL);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstBus *bus = gst_element_get_bus (pipeline);
  GError *error = NULL;

  fail_unless (pipeline != NULL);
  *buffers = 0;
  if (warning)
    *warning = NULL;
  g_signal_connect_swapped (sink, "handoff", G_CALLBACK (g_atomic_int_inc),
      buffers);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 20 * GST_SECOND,
        (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR
            | GST_MESSAGE_WARNING));
    fail_unless (msg != NULL, "the pipeline neither ended nor failed");
    GstMessageType type = GST_MESSAGE_TYPE (msg);
    if (type == GST_MESSAGE_WARNING && warning && *warning == NULL) {
      GError *w;
      gst_message_parse_warning (msg, &w, NULL);
      *warning = g_strdup (w->message);
      g_error_free (w);
    } else if (type == GST_MESSAGE_ERROR) {
      gst_message_parse_error (msg, &error, NULL);
    }
    gst_message_unref (msg);
    if (type != GST_MESSAGE_WARNING)
      break;
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  g_free (desc);
  return error;
}

GST_START_TEST (test_errors)
{
  /* props: %s is the fixture directory */
  const struct
  {
    const gchar *props;
    GQuark domain;
    gint code;
    const gchar *words[2];
  } cases[] = {
      {"", GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
          {"location", NULL}},
      {"location=%s/nope", GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
          {"nope", "does not exist"}},
      {"location=%s/broken/empty-dir", GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_NOT_FOUND, {"empty-dir", "no CIFAR dataset"}},
      {"location=%s/broken/missing-batch", GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_NOT_FOUND, {"data_batch_3", "missing"}},
      /* A damaged file is a stream that cannot be decoded, not a missing or
     * unreadable resource. */
      {"location=%s/broken/truncated-bin", GST_STREAM_ERROR,
          GST_STREAM_ERROR_DECODE,
          {"data_batch_2.bin",
              "the file is truncated: 3 of 4 records complete; re-download "
              "it"}},
      {"location=%s/broken/truncated-py", GST_STREAM_ERROR,
          GST_STREAM_ERROR_DECODE, {"data_batch_2", "truncated"}},
      {"location=%s/broken/bad-label-bin split=test", GST_STREAM_ERROR,
          GST_STREAM_ERROR_DECODE, {"test_batch.bin", "label 200"}},
      {"location=%s/cifar-10-batches-bin label-kind=coarse", GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_SETTINGS, {"coarse", NULL}},
      {"location=%s/cifar-10-batches-bin split=test offset=9",
          GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, {"offset 9", NULL}},
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    guint buffers;
    gchar *props = g_strdup_printf (cases[c].props, data_dir);
    GError *error = run_pipeline (props, &buffers, NULL);

    fail_unless (error != NULL, "no error for %s", props);
    fail_unless (g_error_matches (error, cases[c].domain, cases[c].code),
        "wrong error for %s: %s", props, error->message);
    for (guint w = 0; w < 2 && cases[c].words[w]; w++)
      fail_unless (strstr (error->message, cases[c].words[w]) != NULL,
          "'%s' not in '%s'", cases[c].words[w], error->message);
    fail_unless_equals_int (buffers, 0);
    g_error_free (error);
    g_free (props);
  }
}

GST_END_TEST;

GST_START_TEST (test_lenient_truncated)
{
  /* data_batch_2 keeps 3 of its 5 records in both formats */
  const struct
  {
    const gchar *dir, *file, *count;
  } cases[] = {
      {"truncated-bin", "data_batch_2.bin", "3 of 4 records complete"},
      {"truncated-py", "data_batch_2", "3 of 5 records complete"},
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    guint buffers;
    gchar *warning;
    gchar *props = g_strdup_printf ("location=%s/broken/%s strict=false",
        data_dir, cases[c].dir);
    GError *error = run_pipeline (props, &buffers, &warning);

    fail_unless (error == NULL, "%s", error ? error->message : "");
    fail_unless_equals_int (buffers, TRAIN10 - 2);
    fail_unless (warning != NULL);
    fail_unless (strstr (warning, cases[c].file) != NULL, "%s", warning);
    fail_unless (strstr (warning, cases[c].count) != NULL, "%s", warning);
    g_free (warning);
    g_free (props);
  }
}

GST_END_TEST;

GST_START_TEST (test_state_cycles)
{
  gchar *location = dataset_path ("cifar-100-binary");
  gchar *desc = g_strdup_printf ("cifarsrc location=%s split=test ! "
                                 "fakesink name=sink signal-handoffs=true",
      location);
  GstElement *pipeline = gst_parse_launch (desc, NULL);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstBus *bus = gst_element_get_bus (pipeline);
  guint buffers = 0;

  g_signal_connect_swapped (sink, "handoff", G_CALLBACK (g_atomic_int_inc),
      &buffers);
  for (gint round = 0; round < 5; round++) {
    GstMessage *msg;
    buffers = 0;
    fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING)
        != GST_STATE_CHANGE_FAILURE);
    msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND,
        (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
    gst_message_unref (msg);
    fail_unless_equals_int (buffers, TEST100);
    fail_unless (gst_element_set_state (pipeline, GST_STATE_NULL)
        == GST_STATE_CHANGE_SUCCESS);
  }
  /* and stopping half-way, while frames flow */
  for (gint round = 0; round < 3; round++) {
    fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING)
        != GST_STATE_CHANGE_FAILURE);
    fail_unless (gst_element_set_state (pipeline, GST_STATE_NULL)
        == GST_STATE_CHANGE_SUCCESS);
  }
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  g_free (desc);
  g_free (location);
}

GST_END_TEST;

GST_START_TEST (test_properties)
{
  GstElement *src = gst_element_factory_make ("cifarsrc", NULL);
  gchar *location;
  guint64 offset;
  gboolean strict;
  gint split, label_kind;
  GValue framerate = G_VALUE_INIT;

  fail_unless (src != NULL);
  g_object_get (src, "location", &location, "offset", &offset, "strict",
      &strict, "split", &split, "label-kind", &label_kind, NULL);
  fail_unless (location == NULL);
  fail_unless_equals_uint64 (offset, 0);
  fail_unless (strict);
  fail_unless_equals_int (split, 0); /* train */
  fail_unless_equals_int (label_kind, 0); /* fine */
  fail_unless (!gst_base_src_is_live (GST_BASE_SRC (src)));

  g_object_set (src, "location", "/x", "offset", (guint64) 3, "strict", FALSE,
      NULL);
  gst_util_set_object_arg (G_OBJECT (src), "split", "all");
  gst_util_set_object_arg (G_OBJECT (src), "framerate", "30/1");
  g_object_get (src, "location", &location, "offset", &offset, "strict",
      &strict, "split", &split, NULL);
  fail_unless_equals_string (location, "/x");
  fail_unless_equals_uint64 (offset, 3);
  fail_unless (!strict);
  fail_unless_equals_int (split, 2); /* all */
  g_value_init (&framerate, GST_TYPE_FRACTION);
  g_object_get_property (G_OBJECT (src), "framerate", &framerate);
  fail_unless_equals_int (gst_value_get_fraction_numerator (&framerate), 30);
  fail_unless_equals_int (gst_value_get_fraction_denominator (&framerate), 1);
  g_value_unset (&framerate);
  fail_unless (gst_base_src_is_live (GST_BASE_SRC (src)));

  g_free (location);
  gst_object_unref (src);
}

GST_END_TEST;

static void
write_fixtures (void)
{
  const gchar *source_dir = g_getenv ("VS_SOURCE_DIR");
  gchar *script, *err = NULL;
  gint status = 0;
  GError *error = NULL;

  fail_unless (source_dir != NULL, "VS_SOURCE_DIR is not set");
  data_dir = g_dir_make_tmp ("cifarsrc-XXXXXX", NULL);
  script = g_build_filename (source_dir, "tests", "cifar_fixtures.py", NULL);
  const gchar *argv[] = {"/usr/bin/python3", script, data_dir, NULL};
  fail_unless (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL,
                   NULL, NULL, &err, &status, &error),
      "%s", error ? error->message : "");
  fail_unless (g_spawn_check_wait_status (status, NULL),
      "cifar_fixtures.py failed: %s", err);
  g_free (err);
  g_free (script);
}

static void
remove_fixtures (void)
{
  const gchar *argv[] = {"rm", "-rf", data_dir, NULL};
  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
      NULL, NULL, NULL, NULL);
  g_free (data_dir);
}

static Suite *
cifarsrc_suite (void)
{
  Suite *s = suite_create ("cifarsrc");
  TCase *tc = tcase_create ("general");

  tcase_add_unchecked_fixture (tc, write_fixtures, remove_fixtures);
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps_pixels_and_metas);
  tcase_add_test (tc, test_every_format);
  tcase_add_test (tc, test_offset_num_buffers_split_all);
  tcase_add_test (tc, test_coarse_labels);
  tcase_add_test (tc, test_single_batch_file);
  tcase_add_test (tc, test_live_framerate);
  tcase_add_test (tc, test_errors);
  tcase_add_test (tc, test_lenient_truncated);
  tcase_add_test (tc, test_state_cycles);
  tcase_add_test (tc, test_properties);
  return s;
}

GST_CHECK_MAIN (cifarsrc);
