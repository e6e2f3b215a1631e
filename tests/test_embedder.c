/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* embedder element: caps, properties, interval, batching, QoS, state changes
 * and the errors that need no weights file (those are in
 * test_embedder_errors.py). Random weights at 32x32 keep it fast. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>

#define SMALL "weights=random input-size=32 resize=0 threads=1"

static GstElement *
make_embedder (const gchar *props)
{
  gchar *desc = g_strdup_printf ("embedder %s", props);
  GError *err = NULL;
  GstElement *e = gst_parse_launch (desc, &err);
  fail_unless (e != NULL, "cannot create %s: %s", desc,
      err ? err->message : "");
  g_free (desc);
  return e;
}

static GstHarness *
harness_new (const gchar *props, const gchar *caps)
{
  GstHarness *h =
      gst_harness_new_with_element (make_embedder (props), "sink", "src");
  gst_harness_set_src_caps_str (h, caps);
  return h;
}

static GstBuffer *
frame_new (GstHarness *h, guint index)
{
  GstCaps *caps = gst_pad_get_current_caps (h->srcpad);
  GstVideoInfo info;
  fail_unless (gst_video_info_from_caps (&info, caps));
  gst_caps_unref (caps);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = (guint8) (i * 7 + index * 13);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = index * GST_SECOND / 30;
  GST_BUFFER_DURATION (buf) = GST_SECOND / 30;
  return buf;
}

static guint64
get_u64 (GstHarness *h, const gchar *name)
{
  guint64 v;
  g_object_get (h->element, name, &v, NULL);
  return v;
}

GST_START_TEST (test_every_format_accepted_and_unchanged)
{
  const gchar *formats[] = {"RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR",
      "RGBA", "BGRA", "ARGB", "ABGR", "GRAY8", "I420", "NV12", "YUY2"};
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=38,height=26,"
                                   "framerate=30/1",
        formats[f]);
    GstHarness *h = harness_new (SMALL, caps);
    GstBuffer *in = frame_new (h, f);
    GstBuffer *copy = gst_buffer_copy_deep (in);
    GstBuffer *out = gst_harness_push_and_pull (h, in);
    fail_unless (out != NULL);
    GstVisualSearchEmbeddingMeta *meta =
        gst_buffer_get_visualsearch_embedding_meta (out);
    fail_unless (meta != NULL, "no embedding for %s", formats[f]);
    fail_unless_equals_int (meta->dims, 512);
    fail_unless_equals_string (meta->model_id, "resnet18:random-seed42");
    fail_unless_equals_string (meta->preprocessing_id,
        "rgb;resize=0;crop=32;mean=0.485,0.456,0.406;std=0.229,0.224,0.225");
    fail_unless (meta->normalized);
    gdouble norm = 0;
    for (guint i = 0; i < meta->dims; i++)
      norm += meta->values[i] * meta->values[i];
    fail_unless (fabs (norm - 1.0) < 1e-4);
    /* The pixels pass untouched. */
    GstMapInfo a, b;
    gst_buffer_map (out, &a, GST_MAP_READ);
    gst_buffer_map (copy, &b, GST_MAP_READ);
    fail_unless (a.size == b.size && memcmp (a.data, b.data, a.size) == 0);
    gst_buffer_unmap (out, &a);
    gst_buffer_unmap (copy, &b);
    gst_buffer_unref (out);
    gst_buffer_unref (copy);
    gst_harness_teardown (h);
    g_free (caps);
  }
}

GST_END_TEST;

GST_START_TEST (test_unsupported_caps_rejected)
{
  const gchar *caps[] = {
      "video/x-raw,format=NV21,width=32,height=32,framerate=30/1",
      "video/x-raw,format=RGB16,width=32,height=32,framerate=30/1",
      "audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved",
  };
  for (guint i = 0; i < G_N_ELEMENTS (caps); i++) {
    GstElement *e = make_embedder (SMALL);
    GstPad *sink = gst_element_get_static_pad (e, "sink");
    GstCaps *c = gst_caps_from_string (caps[i]);
    fail_if (gst_pad_query_accept_caps (sink, c), "%s accepted", caps[i]);
    gst_caps_unref (c);
    gst_object_unref (sink);
    gst_object_unref (e);
  }
}

GST_END_TEST;

GST_START_TEST (test_properties)
{
  GstElement *e = gst_element_factory_make ("embedder", NULL);
  gchar *model, *weights, *mean, *std, *device;
  guint input_size, resize, batch, interval, threads;
  gboolean normalize;
  gint precision;
  guint64 seed;
  gdouble ms;

  g_object_get (e, "model", &model, "weights", &weights, "mean", &mean, "std",
      &std, "device", &device, "input-size", &input_size, "resize", &resize,
      "batch-size", &batch, "inference-interval", &interval, "threads",
      &threads, "normalize", &normalize, "precision", &precision, "seed", &seed,
      "mean-inference-ms", &ms, NULL);
  fail_unless_equals_string (model, "resnet18");
  fail_unless (weights == NULL);
  fail_unless_equals_string (mean, "0.485,0.456,0.406");
  fail_unless_equals_string (std, "0.229,0.224,0.225");
  fail_unless_equals_string (device, "cpu");
  fail_unless_equals_int (input_size, 224);
  fail_unless_equals_int (resize, 256);
  fail_unless_equals_int (batch, 1);
  fail_unless_equals_int (interval, 1);
  fail_unless_equals_int (threads, 0);
  fail_unless (normalize);
  fail_unless_equals_int (precision, 2); /* auto */
  fail_unless_equals_uint64 (seed, 42);
  fail_unless (ms == 0.0);
  g_free (model);
  g_free (weights);
  g_free (mean);
  g_free (std);
  g_free (device);

  gst_util_set_object_arg (G_OBJECT (e), "precision", "bf16");
  g_object_get (e, "precision", &precision, NULL);
  fail_unless_equals_int (precision, 1);
  g_object_set (e, "model", "resnet50", "mean", "0.5,0.5,0.5", "seed",
      (guint64) 7, "batch-size", 8, NULL);
  g_object_get (e, "model", &model, "mean", &mean, "seed", &seed, "batch-size",
      &batch, NULL);
  fail_unless_equals_string (model, "resnet50");
  fail_unless_equals_string (mean, "0.5,0.5,0.5");
  fail_unless_equals_uint64 (seed, 7);
  fail_unless_equals_int (batch, 8);
  g_free (model);
  g_free (mean);

  GParamSpec *ro =
      g_object_class_find_property (G_OBJECT_GET_CLASS (e), "frames-embedded");
  fail_if (ro->flags & G_PARAM_WRITABLE);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_inference_interval)
{
  GstHarness *h = harness_new (SMALL " inference-interval=3",
      "video/x-raw,format=RGB,width=32,height=32,framerate=30/1");
  for (guint i = 0; i < 7; i++) {
    GstBuffer *out = gst_harness_push_and_pull (h, frame_new (h, i));
    fail_unless_equals_int (gst_buffer_get_visualsearch_embedding_meta (out)
            != NULL,
        i % 3 == 0);
    gst_buffer_unref (out);
  }
  fail_unless_equals_uint64 (get_u64 (h, "frames-embedded"), 3);
  fail_unless_equals_uint64 (get_u64 (h, "frames-skipped"), 4);
  gdouble ms;
  g_object_get (h->element, "mean-inference-ms", &ms, NULL);
  fail_unless (ms > 0.0);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_batch_order_and_eos_drain)
{
  GstHarness *h = harness_new (SMALL " batch-size=4 inference-interval=2",
      "video/x-raw,format=RGB,width=32,height=32,framerate=30/1");
  GstBuffer *single = NULL;

  /* Frames 0..7 hold 4 to embed (0, 2, 4, 6): nothing leaves before frame 6. */
  for (guint i = 0; i < 7; i++) {
    fail_unless_equals_int (gst_harness_push (h, frame_new (h, i)),
        GST_FLOW_OK);
    fail_unless_equals_int (gst_harness_buffers_in_queue (h), i < 6 ? 0 : 7);
  }
  /* Two more held, then EOS drains them ahead of itself. */
  fail_unless_equals_int (gst_harness_push (h, frame_new (h, 7)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, frame_new (h, 8)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 8);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 9);

  GstVisualSearchEmbeddingMeta *first = NULL;
  for (guint i = 0; i < 9; i++) {
    GstBuffer *out = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * GST_SECOND / 30);
    GstVisualSearchEmbeddingMeta *meta =
        gst_buffer_get_visualsearch_embedding_meta (out);
    fail_unless_equals_int (meta != NULL, i % 2 == 0);
    /* Batched frames get their own embedding, not a neighbour's. */
    if (meta && first)
      fail_if (memcmp (meta->values, first->values, 512 * sizeof (gfloat))
          == 0);
    if (i == 0) {
      single = out;
      first = meta;
    } else {
      gst_buffer_unref (out);
    }
  }
  GstEvent *ev;
  gboolean saw_eos = FALSE;
  while ((ev = gst_harness_try_pull_event (h))) {
    saw_eos |= GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  fail_unless (saw_eos);
  gst_harness_teardown (h);

  /* The same frame alone (batch of one) gives the same embedding. */
  h = harness_new (SMALL,
      "video/x-raw,format=RGB,width=32,height=32,"
      "framerate=30/1");
  GstBuffer *out = gst_harness_push_and_pull (h, frame_new (h, 0));
  GstVisualSearchEmbeddingMeta *alone =
      gst_buffer_get_visualsearch_embedding_meta (out);
  for (guint i = 0; i < 512; i++)
    fail_unless (fabs (alone->values[i] - first->values[i]) < 1e-5);
  gst_buffer_unref (out);
  gst_buffer_unref (single);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_flush_clears_batch)
{
  GstHarness *h = harness_new (SMALL " batch-size=4",
      "video/x-raw,format=RGB,width=32,height=32,framerate=30/1");
  gst_harness_push (h, frame_new (h, 0));
  gst_harness_push (h, frame_new (h, 1));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  for (guint i = 0; i < 4; i++)
    gst_harness_push (h, frame_new (h, 10 + i));
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 4);
  GstBuffer *out = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 10 * GST_SECOND / 30);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_qos_skips_late_frames)
{
  GstHarness *h = harness_new (SMALL,
      "video/x-raw,format=RGB,width=32,height=32,framerate=30/1");
  /* Downstream reports it is one second late at running time 0. */
  fail_unless (gst_harness_push_upstream_event (h,
      gst_event_new_qos (GST_QOS_TYPE_UNDERFLOW, 2.0, GST_SECOND, 0)));
  GstBuffer *late = gst_harness_push_and_pull (h, frame_new (h, 3));
  fail_unless (gst_buffer_get_visualsearch_embedding_meta (late) == NULL);
  GstBuffer *ok = gst_harness_push_and_pull (h, frame_new (h, 90));
  fail_unless (gst_buffer_get_visualsearch_embedding_meta (ok) != NULL);
  fail_unless_equals_uint64 (get_u64 (h, "frames-skipped"), 1);
  fail_unless_equals_uint64 (get_u64 (h, "frames-embedded"), 1);
  gst_buffer_unref (late);
  gst_buffer_unref (ok);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Changes inference-interval and batch-size from other threads while frames
 * flow, to values that differ from one write to the next. */
typedef struct
{
  GstElement *element;
  const gchar *property;
  const guint *values;
  guint n_values;
  gint stop;
  guint writes;
} Changer;

static gpointer
change_property (gpointer data)
{
  Changer *c = (Changer *) data;
  while (!g_atomic_int_get (&c->stop)) {
    g_object_set (c->element, c->property, c->values[c->writes % c->n_values],
        NULL);
    c->writes++;
    g_usleep (50);
  }
  return NULL;
}

GST_START_TEST (test_stress_live_properties)
{
  const guint n = 60;
  const gchar *caps = "video/x-raw,format=RGB,width=32,height=32,"
                      "framerate=30/1";
  /* Each frame's embedding when it is embedded alone. */
  GstHarness *ref = harness_new (SMALL, caps);
  gfloat (*alone)[512] = (gfloat (*)[512]) g_malloc (n * sizeof *alone);
  for (guint i = 0; i < n; i++) {
    GstBuffer *out = gst_harness_push_and_pull (ref, frame_new (ref, i));
    memcpy (alone[i], gst_buffer_get_visualsearch_embedding_meta (out)->values,
        sizeof alone[i]);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (ref);

  GstHarness *h = harness_new (SMALL " batch-size=3", caps);
  static const guint intervals[] = {1, 2, 3}, batches[] = {1, 2, 5, 3};
  Changer c1 = {h->element, "inference-interval", intervals, 3, 0, 0};
  Changer c2 = {h->element, "batch-size", batches, 4, 0, 0};
  GThread *t1 = g_thread_new ("interval", change_property, &c1);
  GThread *t2 = g_thread_new ("batch", change_property, &c2);
  for (guint i = 0; i < n; i++)
    fail_unless_equals_int (gst_harness_push (h, frame_new (h, i)),
        GST_FLOW_OK);
  g_atomic_int_set (&c1.stop, 1);
  g_atomic_int_set (&c2.stop, 1);
  g_thread_join (t1);
  g_thread_join (t2);
  fail_unless (c1.writes > 3 && c2.writes > 3);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));

  /* Every frame comes out once, in order, and a frame that was embedded,
   * in whatever batch, carries its own embedding. */
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), n);
  guint embedded = 0;
  for (guint i = 0; i < n; i++) {
    GstBuffer *out = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * GST_SECOND / 30);
    GstVisualSearchEmbeddingMeta *meta =
        gst_buffer_get_visualsearch_embedding_meta (out);
    if (meta) {
      embedded++;
      for (guint d = 0; d < 512; d++)
        fail_unless (fabs (meta->values[d] - alone[i][d]) < 1e-4,
            "frame %u, value %u: %f embedded alone, %f here", i, d, alone[i][d],
            meta->values[d]);
    }
    gst_buffer_unref (out);
  }
  fail_unless_equals_uint64 (get_u64 (h, "frames-embedded"), embedded);
  fail_unless_equals_uint64 (get_u64 (h, "frames-skipped"), n - embedded);
  fail_unless (embedded > 0 && embedded < n);
  g_free (alone);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_repeated_state_changes)
{
  GstElement *p = gst_parse_launch ("videotestsrc num-buffers=3 ! "
                                    "video/x-raw,width=40,height=30 ! embedder "
                                    "name=e " SMALL " batch-size=2 ! "
                                    "fakesink name=sink",
      NULL);
  GstElement *embedder = gst_bin_get_by_name (GST_BIN (p), "e");
  for (guint round = 0; round < 3; round++) {
    fail_unless (gst_element_set_state (p, GST_STATE_PLAYING)
        != GST_STATE_CHANGE_FAILURE);
    GstMessage *m = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (p),
        30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    fail_unless (m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS);
    gst_message_unref (m);
    guint64 embedded;
    g_object_get (embedder, "frames-embedded", &embedded, NULL);
    fail_unless_equals_uint64 (embedded, 3);
    fail_unless (gst_element_set_state (p, GST_STATE_NULL)
        == GST_STATE_CHANGE_SUCCESS);
  }
  /* And PAUSED -> NULL before any data flowed. */
  gst_element_set_state (p, GST_STATE_PAUSED);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (embedder);
  gst_object_unref (p);
}

GST_END_TEST;

/* Starts embedder with props; returns the error message it posts. */
static GError *
start_error (const gchar *props)
{
  gchar *desc = g_strdup_printf ("videotestsrc num-buffers=1 ! embedder %s ! "
                                 "fakesink",
      props);
  GstElement *p = gst_parse_launch (desc, NULL);
  g_free (desc);
  gst_element_set_state (p, GST_STATE_PLAYING);
  GstMessage *m = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (p),
      30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR,
      "embedder %s started", props);
  GError *err;
  gst_message_parse_error (m, &err, NULL);
  gst_message_unref (m);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  return err;
}

#define assert_error(props, domain, code, ...) \
  G_STMT_START \
  { \
    GError *err = start_error (props); \
    fail_unless (g_error_matches (err, domain, code), "%s: %s", props, \
        err->message); \
    const gchar *needles[] = {__VA_ARGS__}; \
    for (guint i = 0; i < G_N_ELEMENTS (needles); i++) \
      fail_unless (strstr (err->message, needles[i]) != NULL, \
          "'%s' not in '%s'", needles[i], err->message); \
    g_error_free (err); \
  } \
  G_STMT_END

GST_START_TEST (test_errors)
{
  /* The default location, in a cache that has no weights. */
  assert_error ("", GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
      "/nonexistent-torch-home/hub/checkpoints/resnet18-f37072fd.pth",
      "/nonexistent-cache/torch/hub/checkpoints/resnet18-f37072fd.pth",
      "models/fetch-weights.sh", "weights=random", "models/README.md");
  assert_error ("weights=/nonexistent/resnet50.pth model=resnet50",
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
      "/nonexistent/resnet50.pth", "models/README.md");
  assert_error ("model=/nonexistent/model.pt", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND, "/nonexistent/model.pt",
      "export-torchscript.py");
  assert_error ("model=resnet19 weights=random", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND, "resnet19");
  assert_error (SMALL " device=cuda", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "device=cuda", "device=cpu");
  assert_error (SMALL " device=tpu", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "tpu");
  assert_error (SMALL " mean=0.5,0.5", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "mean=0.5,0.5");
  assert_error (SMALL " std=1,0,1", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "std");
  /* Each of these would make every embedding NaN. */
  assert_error (SMALL " mean=nan,0.456,0.406", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "mean=nan,0.456,0.406", "finite");
  assert_error (SMALL " mean=0.485,inf,0.406", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "mean=0.485,inf,0.406", "finite");
  assert_error (SMALL " std=inf,0.224,0.225", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "std=inf,0.224,0.225", "finite positive");
  assert_error (SMALL " std=0.229,nan,0.225", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "std=0.229,nan,0.225", "finite positive");
  assert_error (SMALL " std=0.229,0.224,-0.225", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "std=0.229,0.224,-0.225", "finite positive");
}

GST_END_TEST;

/* With resize, a sliver of a frame would become a huge image (1x8192 ->
 * 256x2097152, 6.8 GB): the caps get one warning and the frames pass without
 * an embedding; new caps that fit are embedded again. */
GST_START_TEST (test_elongated_frames_not_embedded)
{
  GstElement *e = make_embedder ("weights=random input-size=8 resize=8 "
                                 "threads=1");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=GRAY8,width=1,height=8192,framerate=30/1");

  for (guint i = 0; i < 3; i++) {
    GstBuffer *out = gst_harness_push_and_pull (h, frame_new (h, i));
    fail_unless (out != NULL);
    fail_unless (gst_buffer_get_visualsearch_embedding_meta (out) == NULL);
    gst_buffer_unref (out);
  }
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  GError *err = NULL;
  while (m && !err) {
    gst_message_parse_warning (m, &err, NULL);
    gst_message_unref (m);
    if (!strstr (err->message, "1x8192")) {
      g_clear_error (&err);
      m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
    }
  }
  fail_unless (err != NULL, "no warning about the frame size");
  fail_unless (strstr (err->message, "8x65536") != NULL, "%s", err->message);
  fail_unless (strstr (err->message, "32:1") != NULL, "%s", err->message);
  fail_unless (strstr (err->message, "resize=0") != NULL, "%s", err->message);
  g_error_free (err);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL,
      "warned more than once");
  fail_unless_equals_uint64 (get_u64 (h, "frames-skipped"), 3);
  fail_unless_equals_uint64 (get_u64 (h, "frames-embedded"), 0);

  /* 32:1 is the most elongated frame still embedded. */
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=GRAY8,width=4,height=128,framerate=30/1");
  GstBuffer *out = gst_harness_push_and_pull (h, frame_new (h, 3));
  fail_unless (gst_buffer_get_visualsearch_embedding_meta (out) != NULL);
  gst_buffer_unref (out);
  fail_unless_equals_uint64 (get_u64 (h, "frames-embedded"), 1);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Plays the pipeline to EOS, failing on an error; returns the warnings'
 * messages (free with g_strfreev). */
static gchar **
play_to_eos (GstElement *p)
{
  GPtrArray *warnings = g_ptr_array_new ();
  fail_unless (gst_element_set_state (p, GST_STATE_PLAYING)
      != GST_STATE_CHANGE_FAILURE);
  for (;;) {
    GstMessage *m =
        gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (p), 30 * GST_SECOND,
            (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR
                | GST_MESSAGE_WARNING));
    fail_unless (m != NULL);
    fail_if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR);
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS) {
      gst_message_unref (m);
      break;
    }
    GError *err;
    gst_message_parse_warning (m, &err, NULL);
    g_ptr_array_add (warnings, g_strdup (err->message));
    g_error_free (err);
    gst_message_unref (m);
  }
  g_ptr_array_add (warnings, NULL);
  return (gchar **) g_ptr_array_free (warnings, FALSE);
}

/* precision=bf16 always runs: natively, or as fp32 with one warning that
 * says why; active-precision tells which. The variable hides native bf16 so
 * the fallback runs on every CPU. */
GST_START_TEST (test_bf16_fallback)
{
  g_setenv ("VISUALSEARCH_HIDE_NATIVE_BF16", "1", TRUE);
  GstElement *p =
      gst_parse_launch ("videotestsrc num-buffers=2 ! "
                        "video/x-raw,width=40,height=30 ! embedder "
                        "name=e " SMALL " precision=bf16 ! fakesink",
          NULL);
  GstElement *e = gst_bin_get_by_name (GST_BIN (p), "e");
  gint active;
  g_object_get (e, "active-precision", &active, NULL);
  fail_unless_equals_int (active, 0);
  GParamSpec *spec =
      g_object_class_find_property (G_OBJECT_GET_CLASS (e), "active-precision");
  fail_if (spec->flags & G_PARAM_WRITABLE);

  gchar **messages = play_to_eos (p);
  guint warnings = 0;
  for (gchar **w = messages; *w; w++)
    if (strstr (*w, "precision=bf16 runs as fp32")) {
      fail_unless (strstr (*w, "VISUALSEARCH_HIDE_NATIVE_BF16"));
      warnings++;
    }
  g_strfreev (messages);
  fail_unless_equals_int (warnings, 1);
  g_object_get (e, "active-precision", &active, NULL);
  fail_unless_equals_int (active, 0);
  guint64 embedded;
  g_object_get (e, "frames-embedded", &embedded, NULL);
  fail_unless_equals_uint64 (embedded, 2);
  gst_element_set_state (p, GST_STATE_NULL);
  g_unsetenv ("VISUALSEARCH_HIDE_NATIVE_BF16");
  gst_object_unref (e);
  gst_object_unref (p);
}

GST_END_TEST;

/* The default, precision=auto, resolves at start to a concrete arithmetic,
 * without a warning; with native bf16 hidden (as on this AVX2 CPU) it is
 * fp32, before start and after. */
GST_START_TEST (test_auto_precision)
{
  for (int hide = 1; hide >= 0; hide--) {
    if (hide)
      g_setenv ("VISUALSEARCH_HIDE_NATIVE_BF16", "1", TRUE);
    GstElement *p = gst_parse_launch ("videotestsrc num-buffers=2 ! "
                                      "video/x-raw,width=40,height=30 ! "
                                      "embedder name=e " SMALL " ! fakesink",
        NULL);
    GstElement *e = gst_bin_get_by_name (GST_BIN (p), "e");
    gint asked, active;
    g_object_get (e, "precision", &asked, "active-precision", &active, NULL);
    fail_unless_equals_int (asked, 2);
    if (hide)
      fail_unless_equals_int (active, 0);
    /* Only the one about random weights. */
    gchar **warnings = play_to_eos (p);
    for (gchar **w = warnings; *w; w++)
      fail_if (strstr (*w, "precision"), "%s", *w);
    g_strfreev (warnings);
    g_object_get (e, "active-precision", &active, NULL);
    fail_unless (active == 0 || active == 1, "active-precision %d", active);
    if (hide)
      fail_unless_equals_int (active, 0);
    gst_element_set_state (p, GST_STATE_NULL);
    g_unsetenv ("VISUALSEARCH_HIDE_NATIVE_BF16");
    gst_object_unref (e);
    gst_object_unref (p);
  }
}

GST_END_TEST;

static Suite *
embedder_suite (void)
{
  Suite *s = suite_create ("embedder");
  TCase *tc = tcase_create ("general");

  /* Before GLib caches them: the default weights lookup must find nothing. */
  g_setenv ("TORCH_HOME", "/nonexistent-torch-home", TRUE);
  g_setenv ("XDG_CACHE_HOME", "/nonexistent-cache", TRUE);

  suite_add_tcase (s, tc);
  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_every_format_accepted_and_unchanged);
  tcase_add_test (tc, test_unsupported_caps_rejected);
  tcase_add_test (tc, test_properties);
  tcase_add_test (tc, test_inference_interval);
  tcase_add_test (tc, test_batch_order_and_eos_drain);
  tcase_add_test (tc, test_flush_clears_batch);
  tcase_add_test (tc, test_qos_skips_late_frames);
  tcase_add_test (tc, test_stress_live_properties);
  tcase_add_test (tc, test_repeated_state_changes);
  tcase_add_test (tc, test_errors);
  tcase_add_test (tc, test_elongated_frames_not_embedded);
  tcase_add_test (tc, test_bf16_fallback);
  tcase_add_test (tc, test_auto_precision);
  return s;
}

GST_CHECK_MAIN (embedder);
