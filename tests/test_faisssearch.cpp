// SPDX-License-Identifier: LGPL-2.1-or-later
/* faisssearch on its own: galleries written here with vs::IndexStore and
 * vs::Catalog (what faissindexer writes), queries pushed as GstVisualSearchEmbeddingMeta
 * through a GstHarness. */
/* FAISS pulls in <iostream>, whose fail() gstcheck's macro would rename. */
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/index_io.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include <glib/gstdio.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <mutex>
#include <string>
#include <vector>

#include "engine/base/atomic_file.h"
#include "engine/index/catalog.h"
#include "engine/index/gallery.h"
#include "engine/index/index_store.h"

static const int kDims = 16;
static const char *kModel = "resnet18:test";
static const char *kPrep = "rgb;resize=0;crop=32";

struct TestGallery
{
  std::string path;
  std::vector<float> vectors; /* n * kDims */
  int64_t size () const
  {
    return vectors.size () / kDims;
  }
  const float *vector (int64_t i) const
  {
    return &vectors[i * kDims];
  }
};

static gchar *tmp_dir;

/* n random unit vectors, indexed with the given metric; label i % 10, named
 * "class<label>", source "cifar10/train/<i>". */
static TestGallery
write_gallery (const char *name, int n, vs::Metric metric, unsigned seed,
    const char *model_id = kModel, const std::string &index_type = "Flat")
{
  TestGallery g;
  g.path = std::string (tmp_dir) + "/" + name;
  std::mt19937 rng (seed);
  std::normal_distribution<float> normal;
  g.vectors.resize (n * kDims);
  for (int i = 0; i < n; i++) {
    float norm = 0;
    for (int d = 0; d < kDims; d++) {
      g.vectors[i * kDims + d] = normal (rng);
      norm += g.vectors[i * kDims + d] * g.vectors[i * kDims + d];
    }
    for (int d = 0; d < kDims; d++)
      g.vectors[i * kDims + d] /= std::sqrt (norm);
  }

  vs::IndexStore index = vs::IndexStore::create (index_type, kDims, metric);
  if (index.needs_training ())
    index.train (g.vectors.data (), n);
  index.add (g.vectors.data (), n);

  vs::IndexFacts facts;
  facts.model_id = model_id;
  facts.preprocessing_id = kPrep;
  facts.dims = kDims;
  facts.metric = vs::metric_name (metric);
  facts.index_type = index_type;
  facts.count = n;
  facts.created = vs::utc_timestamp_now ();
  std::vector<vs::CatalogItem> items (n);
  for (int i = 0; i < n; i++) {
    items[i].id = i;
    items[i].label = i % 10;
    items[i].label_name = "class" + std::to_string (i % 10);
    items[i].source = "cifar10/train/" + std::to_string (i);
  }
  vs::write_index_with_catalog (g.path, index, facts, items);
  return g;
}

static GstBuffer *
query_buffer (const float *values, const char *model_id = kModel,
    guint dims = kDims)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 16, NULL);
  GST_BUFFER_PTS (buf) = 40 * GST_MSECOND;
  GST_BUFFER_DURATION (buf) = 40 * GST_MSECOND;
  gst_buffer_add_visualsearch_embedding_meta (buf, dims, values, model_id,
      kPrep, TRUE);
  return buf;
}

static GstHarness *
search_harness (const std::string &index, const char *extra = "")
{
  gchar *desc =
      g_strdup_printf ("faisssearch index=%s %s", index.c_str (), extra);
  GstHarness *h = gst_harness_new_parse (desc);
  g_free (desc);
  gst_harness_set_src_caps_str (h, "application/octet-stream");
  return h;
}

/* The harness wraps a parsed description in a bin. */
static GstElement *
search_of (GstHarness *h)
{
  GstElement *search = gst_harness_find_element (h, "faisssearch");
  gst_object_unref (search); /* the harness keeps it alive */
  return search;
}

static GstMessage *
pop_element_message (GstBus *bus)
{
  return gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT);
}

static void
setup (void)
{
  tmp_dir = g_dir_make_tmp ("faisssearch-XXXXXX", NULL);
}

static void
teardown (void)
{
  gchar *cmd = g_strdup_printf ("rm -rf '%s'", tmp_dir);
  fail_unless (system (cmd) == 0);
  g_free (cmd);
  g_free (tmp_dir);
}

GST_START_TEST (test_finds_itself_first)
{
  TestGallery g = write_gallery ("flat.faiss", 50, vs::Metric::L2, 1);
  GstHarness *h = search_harness (g.path, "k=3");

  for (int i = 0; i < g.size (); i += 7) {
    GstBuffer *out = gst_harness_push_and_pull (h, query_buffer (g.vector (i)));
    GstVisualSearchNeighborsMeta *nmeta =
        gst_buffer_get_visualsearch_neighbors_meta (out);
    fail_unless (nmeta != NULL);
    fail_unless_equals_int (nmeta->metric, GST_VISUALSEARCH_METRIC_L2);
    fail_unless_equals_int (nmeta->n_neighbors, 3);
    fail_unless_equals_int64 (nmeta->neighbors[0].id, i);
    fail_unless (std::fabs (nmeta->neighbors[0].distance) < 1e-5);
    fail_unless (nmeta->neighbors[1].distance >= nmeta->neighbors[0].distance);
    fail_unless_equals_int (nmeta->neighbors[0].label, i % 10);
    gchar *name = g_strdup_printf ("class%d", i % 10);
    gchar *source = g_strdup_printf ("cifar10/train/%d", i);
    fail_unless_equals_string (nmeta->neighbors[0].label_name, name);
    fail_unless_equals_string (nmeta->neighbors[0].source, source);
    g_free (name);
    g_free (source);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_bus_message)
{
  TestGallery g = write_gallery ("flat.faiss", 20, vs::Metric::InnerProduct, 2);
  GstHarness *h = search_harness (g.path, "k=4");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);

  gst_buffer_unref (gst_harness_push_and_pull (h, query_buffer (g.vector (5))));
  GstMessage *msg = pop_element_message (bus);
  fail_unless (msg != NULL);
  const GstStructure *s = gst_message_get_structure (msg);
  fail_unless (gst_structure_has_name (s, "visualsearch"));
  guint64 ts, running_time, stream_time, duration;
  fail_unless (gst_structure_get_uint64 (s, "timestamp", &ts));
  fail_unless (gst_structure_get_uint64 (s, "running-time", &running_time));
  fail_unless (gst_structure_get_uint64 (s, "stream-time", &stream_time));
  fail_unless (gst_structure_get_uint64 (s, "duration", &duration));
  fail_unless_equals_uint64 (ts, 40 * GST_MSECOND);
  fail_unless_equals_uint64 (running_time, 40 * GST_MSECOND);
  fail_unless_equals_uint64 (duration, 40 * GST_MSECOND);
  fail_unless_equals_string (gst_structure_get_string (s, "metric"), "ip");

  const GValue *ids = gst_structure_get_value (s, "ids");
  const GValue *distances = gst_structure_get_value (s, "distances");
  const GValue *labels = gst_structure_get_value (s, "labels");
  const GValue *names = gst_structure_get_value (s, "label-names");
  const GValue *sources = gst_structure_get_value (s, "sources");
  fail_unless (ids && distances && labels && names && sources);
  fail_unless_equals_int (gst_value_array_get_size (ids), 4);
  fail_unless_equals_int (gst_value_array_get_size (sources), 4);
  fail_unless_equals_int64 (g_value_get_int64 (gst_value_array_get_value (ids,
                                0)),
      5);
  fail_unless (
      std::fabs (g_value_get_float (gst_value_array_get_value (distances, 0))
          - 1.0f)
      < 1e-5);
  fail_unless_equals_int (g_value_get_int (gst_value_array_get_value (labels,
                              0)),
      5);
  fail_unless_equals_string (
      g_value_get_string (gst_value_array_get_value (names, 0)), "class5");
  fail_unless_equals_string (
      g_value_get_string (gst_value_array_get_value (sources, 0)),
      "cifar10/train/5");
  gst_message_unref (msg);

  /* No embedding: no search, no message, no neighbours. */
  GstBuffer *plain = gst_buffer_new_allocate (NULL, 16, NULL);
  GstBuffer *out = gst_harness_push_and_pull (h, plain);
  fail_unless (gst_buffer_get_visualsearch_neighbors_meta (out) == NULL);
  fail_unless (pop_element_message (bus) == NULL);
  gst_buffer_unref (out);

  g_object_set (search_of (h), "post-messages", FALSE, NULL);
  gst_buffer_unref (gst_harness_push_and_pull (h, query_buffer (g.vector (1))));
  fail_unless (pop_element_message (bus) == NULL);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_k_larger_than_index)
{
  TestGallery g = write_gallery ("small.faiss", 6, vs::Metric::L2, 3);
  GstHarness *h = search_harness (g.path, "k=1024");
  GstBuffer *out = gst_harness_push_and_pull (h, query_buffer (g.vector (0)));
  GstVisualSearchNeighborsMeta *nmeta =
      gst_buffer_get_visualsearch_neighbors_meta (out);
  fail_unless_equals_int (nmeta->n_neighbors, 6);
  for (guint i = 0; i < nmeta->n_neighbors; i++)
    fail_unless (nmeta->neighbors[i].id >= 0 && nmeta->neighbors[i].id < 6);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

static guint
count_neighbors (GstHarness *h, const float *query)
{
  GstBuffer *out = gst_harness_push_and_pull (h, query_buffer (query));
  guint n = gst_buffer_get_visualsearch_neighbors_meta (out)->n_neighbors;
  gst_buffer_unref (out);
  return n;
}

GST_START_TEST (test_max_distance)
{
  /* Unit vectors: l2 distances lie in [0, 4], inner products in [-1, 1]. */
  TestGallery l2 = write_gallery ("l2.faiss", 40, vs::Metric::L2, 4);
  GstHarness *h = search_harness (l2.path, "k=40");
  fail_unless_equals_int (count_neighbors (h, l2.vector (0)), 40);
  g_object_set (search_of (h), "max-distance", 1e-4, NULL);
  fail_unless_equals_int (count_neighbors (h, l2.vector (0)), 1);
  g_object_set (search_of (h), "max-distance", 2.0, NULL);
  guint some = count_neighbors (h, l2.vector (0));
  fail_unless (some > 1 && some < 40, "%u", some);
  gst_harness_teardown (h);

  /* ip: a distance too, 1 - the inner product, in [0, 2]. */
  TestGallery ip = write_gallery ("ip.faiss", 40, vs::Metric::InnerProduct, 4);
  h = search_harness (ip.path, "k=40");
  g_object_set (search_of (h), "max-distance", 1e-4, NULL);
  fail_unless_equals_int (count_neighbors (h, ip.vector (0)), 1);
  g_object_set (search_of (h), "max-distance", 1.0, NULL);
  some = count_neighbors (h, ip.vector (0));
  fail_unless (some > 1 && some < 40, "%u", some);
  g_object_set (search_of (h), "max-distance", 2.5, NULL);
  fail_unless_equals_int (count_neighbors (h, ip.vector (0)), 40);
  g_object_set (search_of (h), "max-distance", -0.5, NULL);
  fail_unless_equals_int (count_neighbors (h, ip.vector (0)), 0);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The read-only metric property is the searched index's, as a
 * GstVisualSearchMetric: the type faissindexer's metric property takes. */
GST_START_TEST (test_metric_property)
{
  GstElement *search = gst_element_factory_make ("faisssearch", NULL);
  GParamSpec *spec =
      g_object_class_find_property (G_OBJECT_GET_CLASS (search), "metric");
  fail_unless (spec != NULL);
  fail_unless (spec->value_type == GST_TYPE_VISUALSEARCH_METRIC);
  fail_unless ((spec->flags & G_PARAM_READABLE) != 0);
  fail_if ((spec->flags & G_PARAM_WRITABLE) != 0);
  gst_object_unref (search);

  const struct
  {
    const char *file;
    vs::Metric metric;
    GstVisualSearchMetric want;
  } cases[] = {
      {"l2.faiss", vs::Metric::L2, GST_VISUALSEARCH_METRIC_L2},
      {"ip.faiss", vs::Metric::InnerProduct,
          GST_VISUALSEARCH_METRIC_INNER_PRODUCT},
  };
  for (const auto &c : cases) {
    TestGallery g = write_gallery (c.file, 10, c.metric, 12);
    GstHarness *h = search_harness (g.path);
    GstVisualSearchMetric metric;
    g_object_get (search_of (h), "metric", &metric, NULL);
    fail_unless_equals_int (metric, c.want);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

GST_START_TEST (test_model_mismatch_is_an_error)
{
  TestGallery g = write_gallery ("flat.faiss", 10, vs::Metric::L2, 5);
  GstHarness *h = search_harness (g.path);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);

  fail_unless_equals_int (gst_harness_push (h,
                              query_buffer (g.vector (0), "resnet50:other")),
      GST_FLOW_ERROR);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  GError *err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (strstr (err->message, "resnet18:test") != NULL, "%s",
      err->message);
  fail_unless (strstr (err->message, "resnet50:other") != NULL, "%s",
      err->message);
  g_error_free (err);
  gst_message_unref (msg);

  std::vector<float> wider (kDims * 2, 0.1f);
  fail_unless_equals_int (gst_harness_push (h,
                              query_buffer (wider.data (), kModel, kDims * 2)),
      GST_FLOW_ERROR);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A NaN query finds nothing in FAISS: the frame passes without neighbours,
 * and the user is told once. */
GST_START_TEST (test_non_finite_query_warns_once)
{
  TestGallery g = write_gallery ("flat.faiss", 10, vs::Metric::InnerProduct, 6);
  GstHarness *h = search_harness (g.path);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);

  std::vector<float> nan_query (g.vector (3), g.vector (3) + kDims);
  nan_query[7] = NAN;
  std::vector<float> inf_query (g.vector (4), g.vector (4) + kDims);
  inf_query[0] = INFINITY;
  for (const std::vector<float> *q : {&nan_query, &inf_query, &nan_query}) {
    GstBuffer *out = gst_harness_push_and_pull (h, query_buffer (q->data ()));
    fail_unless (out != NULL);
    fail_unless (gst_buffer_get_visualsearch_neighbors_meta (out) == NULL);
    gst_buffer_unref (out);
  }
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL);
  GError *err = NULL;
  gst_message_parse_warning (msg, &err, NULL);
  fail_unless (strstr (err->message, "NaN or infinite") != NULL, "%s",
      err->message);
  fail_unless (strstr (err->message, "0:00:00.040000000") != NULL, "%s",
      err->message);
  fail_unless (strstr (err->message, kModel) != NULL, "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);
  fail_unless (gst_bus_pop_filtered (bus,
                   (GstMessageType) (GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT))
      == NULL);

  /* A finite query still finds its neighbours. */
  GstBuffer *out = gst_harness_push_and_pull (h, query_buffer (g.vector (5)));
  GstVisualSearchNeighborsMeta *nmeta =
      gst_buffer_get_visualsearch_neighbors_meta (out);
  fail_unless (nmeta != NULL && nmeta->n_neighbors > 0);
  fail_unless_equals_int64 (nmeta->neighbors[0].id, 5);
  gst_buffer_unref (out);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

static void
expect_start_error (const std::string &index, const char *needle)
{
  GstElement *search = gst_element_factory_make ("faisssearch", NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (search, bus);
  g_object_set (search, "index", index.c_str (), NULL);
  fail_unless_equals_int (gst_element_set_state (search, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  GError *err = NULL;
  gchar *debug = NULL;
  gst_message_parse_error (msg, &err, &debug);
  fail_unless (strstr (err->message, needle) != NULL, "%s", err->message);
  fail_unless (strstr (debug, "index-cifar.sh") != NULL, "%s", debug);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
  gst_element_set_state (search, GST_STATE_NULL);
  gst_element_set_bus (search, NULL);
  gst_object_unref (bus);
  gst_object_unref (search);
}

GST_START_TEST (test_missing_or_corrupt_index)
{
  std::string missing = std::string (tmp_dir) + "/missing.faiss";
  expect_start_error (missing, missing.c_str ());

  std::string corrupt = std::string (tmp_dir) + "/corrupt.faiss";
  fail_unless (g_file_set_contents (corrupt.c_str (), "not an index", -1,
      NULL));
  expect_start_error (corrupt, corrupt.c_str ());

  /* An index without its catalog cannot name its neighbours. */
  TestGallery g = write_gallery ("orphan.faiss", 5, vs::Metric::L2, 6);
  g_unlink (vs::catalog_path_for (g.path).c_str ());
  expect_start_error (g.path, ".db");
}

GST_END_TEST;

GST_START_TEST (test_reload_mid_stream)
{
  TestGallery a = write_gallery ("live.faiss", 30, vs::Metric::L2, 7);
  GstHarness *h = search_harness (a.path, "k=1 reload=true");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);

  GstBuffer *out = gst_harness_push_and_pull (h, query_buffer (a.vector (3)));
  fail_unless (std::fabs (gst_buffer_get_visualsearch_neighbors_meta (out)
                              ->neighbors[0]
                              .distance)
      < 1e-5);
  gst_buffer_unref (out);

  /* A different gallery renamed over the first; the stream goes on and
   * switches to it within a few frames. */
  std::vector<float> old_query (a.vector (3), a.vector (3) + kDims);
  TestGallery b = write_gallery ("live.faiss", 12, vs::Metric::L2, 8);
  gboolean switched = FALSE;
  for (int frame = 0; frame < 200 && !switched; frame++) {
    out = gst_harness_push_and_pull (h, query_buffer (b.vector (11)));
    GstVisualSearchNeighborsMeta *nmeta =
        gst_buffer_get_visualsearch_neighbors_meta (out);
    fail_unless (nmeta != NULL && nmeta->n_neighbors == 1);
    switched = nmeta->neighbors[0].id == 11
        && std::fabs (nmeta->neighbors[0].distance) < 1e-5;
    gst_buffer_unref (out);
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  }
  fail_unless (switched, "the replaced index was never picked up");

  /* A broken replacement is a warning, and the current index stays. */
  fail_unless (g_file_set_contents (b.path.c_str (), "garbage", -1, NULL));
  GstMessage *warning = NULL;
  for (int frame = 0; frame < 200 && warning == NULL; frame++) {
    out = gst_harness_push_and_pull (h, query_buffer (b.vector (4)));
    GstVisualSearchNeighborsMeta *nmeta =
        gst_buffer_get_visualsearch_neighbors_meta (out);
    fail_unless_equals_int64 (nmeta->neighbors[0].id, 4);
    gst_buffer_unref (out);
    warning = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  }
  fail_unless (warning != NULL, "no warning for a corrupt replacement");
  gst_message_unref (warning);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_ivf_nprobe)
{
  TestGallery g =
      write_gallery ("ivf.faiss", 400, vs::Metric::L2, 9, kModel, "IVF8,Flat");
  GstHarness *h = search_harness (g.path, "k=5 nprobe=8");
  for (int i = 0; i < 400; i += 37) {
    GstBuffer *out = gst_harness_push_and_pull (h, query_buffer (g.vector (i)));
    fail_unless_equals_int64 (gst_buffer_get_visualsearch_neighbors_meta (out)
                                  ->neighbors[0]
                                  .id,
        i);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

static gpointer
search_many (gpointer data)
{
  const TestGallery *g = static_cast<const TestGallery *> (data);
  GstHarness *h = search_harness (g->path, "k=2");
  for (int i = 0; i < g->size (); i++) {
    GstBuffer *out =
        gst_harness_push_and_pull (h, query_buffer (g->vector (i)));
    if (gst_buffer_get_visualsearch_neighbors_meta (out)->neighbors[0].id != i)
      return GINT_TO_POINTER (FALSE);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
  return GINT_TO_POINTER (TRUE);
}

GST_START_TEST (test_instances_in_parallel)
{
  TestGallery a = write_gallery ("a.faiss", 200, vs::Metric::L2, 10);
  TestGallery b = write_gallery ("b.faiss", 150, vs::Metric::InnerProduct, 11);
  GThread *ta = g_thread_new ("search-a", search_many, &a);
  GThread *tb = g_thread_new ("search-b", search_many, &b);
  fail_unless (GPOINTER_TO_INT (g_thread_join (ta)));
  fail_unless (GPOINTER_TO_INT (g_thread_join (tb)));
}

GST_END_TEST;

/* The index of one gallery beside the catalog of another of the same size
 * (a writer killed between its two renames) is refused, rather than searched
 * with hits named after the wrong images. */
GST_START_TEST (test_index_of_another_catalog_is_refused)
{
  TestGallery a = write_gallery ("pair-a.faiss", 30, vs::Metric::L2, 20);
  TestGallery b = write_gallery ("pair-b.faiss", 30, vs::Metric::L2, 21);
  fail_unless (rename (vs::catalog_path_for (b.path).c_str (),
                   vs::catalog_path_for (a.path).c_str ())
      == 0);
  expect_start_error (a.path, "not the one its catalog");
}

GST_END_TEST;

/* index= pointing at a FIFO is an error, not a state change blocked for
 * good. */
GST_START_TEST (test_fifo_index_is_an_error)
{
  std::string fifo = std::string (tmp_dir) + "/fifo.faiss";
  fail_unless (mkfifo (fifo.c_str (), 0600) == 0);
  expect_start_error (fifo, "FIFO");
}

GST_END_TEST;

static std::string faisssearch_log;

static void
collect_faisssearch_log (GstDebugCategory *category, GstDebugLevel level,
    const gchar *file, const gchar *function, gint line, GObject *object,
    GstDebugMessage *message, gpointer user_data)
{
  if (g_str_equal (gst_debug_category_get_name (category), "faisssearch"))
    faisssearch_log += std::string (gst_debug_message_get (message)) + "\n";
}

/* A reload that never finishes (here SQLite waits on a FIFO where it looks
 * for the catalog's journal, as a read from a hung mount would wait) does not
 * keep the element from shutting down. */
GST_START_TEST (test_shutdown_during_endless_reload)
{
  TestGallery a = write_gallery ("stuck.faiss", 10, vs::Metric::L2, 22);
  GstHarness *h = search_harness (a.path, "k=1 reload=true");
  gst_buffer_unref (gst_harness_push_and_pull (h, query_buffer (a.vector (0))));

  faisssearch_log.clear ();
  gst_debug_set_threshold_for_name ("faisssearch", GST_LEVEL_INFO);
  gst_debug_add_log_function (collect_faisssearch_log, NULL, NULL);
  TestGallery b = write_gallery ("stuck.faiss", 12, vs::Metric::L2, 23);
  const std::string journal = vs::catalog_path_for (b.path) + "-journal";
  fail_unless (mkfifo (journal.c_str (), 0600) == 0);
  for (int frame = 0;
       frame < 500 && faisssearch_log.find ("reloading") == std::string::npos;
       frame++) {
    gst_buffer_unref (gst_harness_push_and_pull (h,
        query_buffer (a.vector (0))));
    g_usleep (10 * G_TIME_SPAN_MILLISECOND);
  }
  gst_debug_remove_log_function (collect_faisssearch_log);
  gst_debug_set_threshold_for_name ("faisssearch", GST_LEVEL_NONE);
  fail_unless (faisssearch_log.find ("reloading") != std::string::npos,
      "the reload never started");

  gst_harness_teardown (h);

  /* Let the abandoned load end: a writer that opens and closes the FIFO. */
  int fd = open (journal.c_str (), O_WRONLY);
  fail_unless (fd >= 0);
  close (fd);
}

GST_END_TEST;

/* The catalog of ids 0 to n - 1 beside an L2 index FAISS wrote at path. */
static void
write_l2_catalog_for (const std::string &path, int n)
{
  vs::IndexFacts facts;
  facts.model_id = kModel;
  facts.preprocessing_id = kPrep;
  facts.dims = kDims;
  facts.metric = "l2";
  facts.count = n;
  facts.index_digest = vs::IndexStore::load (path).file_digest ();
  std::vector<vs::CatalogItem> items (n);
  for (int i = 0; i < n; i++)
    items[i] = vs::CatalogItem{i, i, "class", "src"};
  vs::Catalog::write_atomically (vs::catalog_path_for (path), facts, items);
}

/* How many warnings bus holds, each checked to name first and second. */
static int
pop_warnings_naming (GstBus *bus, const char *first, const char *second)
{
  int warnings = 0;
  while (GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING)) {
    GError *err = NULL;
    gst_message_parse_warning (m, &err, NULL);
    fail_unless (strstr (err->message, first) != NULL, "%s", err->message);
    fail_unless (strstr (err->message, second) != NULL, "%s", err->message);
    g_error_free (err);
    gst_message_unref (m);
    warnings++;
  }
  return warnings;
}

/* An index with ids of its own (IndexIDMap) returns ids the catalog does not
 * list: their neighbours carry no name, and the user hears of it once. */
GST_START_TEST (test_ids_outside_the_catalog_warn_once)
{
  const int n = 5;
  const std::string path = std::string (tmp_dir) + "/idmap.faiss";
  std::vector<float> vectors (n * kDims, 0.0f);
  std::vector<faiss::Index::idx_t> ids = {0, 1, 2, 3, 1000};
  for (int i = 0; i < n; i++)
    vectors[i * kDims + i] = 1.0f;
  faiss::IndexFlatL2 flat (kDims);
  faiss::IndexIDMap idmap (&flat);
  idmap.add_with_ids (n, vectors.data (), ids.data ());
  faiss::write_index (&idmap, path.c_str ());
  write_l2_catalog_for (path, n);

  GstHarness *h = search_harness (path, "k=1");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  for (int round = 0; round < 3; round++) {
    GstBuffer *out =
        gst_harness_push_and_pull (h, query_buffer (&vectors[4 * kDims]));
    GstVisualSearchNeighborsMeta *nmeta =
        gst_buffer_get_visualsearch_neighbors_meta (out);
    fail_unless_equals_int64 (nmeta->neighbors[0].id, 1000);
    fail_unless_equals_int (nmeta->neighbors[0].label, -1);
    gst_buffer_unref (out);
  }
  fail_unless_equals_int (pop_warnings_naming (bus, "1000", ".db"), 1);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* An HNSW graph without links leads from its entry point nowhere: a search
 * that returns fewer than k neighbours (here one for k=5) warns, once. */
GST_START_TEST (test_fewer_than_k_warn_once)
{
  const TestGallery g =
      write_gallery ("unlinked.faiss", 20, vs::Metric::L2, 13, kModel, "HNSW4");
  std::unique_ptr<faiss::Index> index (faiss::read_index (g.path.c_str ()));
  faiss::IndexHNSW *hnsw = dynamic_cast<faiss::IndexHNSW *> (index.get ());
  fail_unless (hnsw != NULL);
  std::fill (hnsw->hnsw.neighbors.begin (), hnsw->hnsw.neighbors.end (), -1);
  faiss::write_index (hnsw, g.path.c_str ());
  write_l2_catalog_for (g.path, 20);

  GstHarness *h = search_harness (g.path, "k=5");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  for (int round = 0; round < 3; round++) {
    GstBuffer *out =
        gst_harness_push_and_pull (h, query_buffer (g.vector (round)));
    fail_unless (gst_buffer_get_visualsearch_neighbors_meta (out)->n_neighbors
        < 5);
    gst_buffer_unref (out);
  }
  fail_unless_equals_int (pop_warnings_naming (bus, g.path.c_str (),
                              "of the 5 neighbours"),
      1);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* What left faisssearch, in order: buffers with their neighbours, and
 * events. */
struct Record
{
  std::mutex lock;
  std::vector<std::string> items;
};

static GstPadProbeReturn
record_item (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  Record *record = static_cast<Record *> (data);
  std::string item;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
    item = "buffer " + std::to_string (GST_BUFFER_PTS (buf));
    if (GstVisualSearchNeighborsMeta *nmeta =
            gst_buffer_get_visualsearch_neighbors_meta (buf)) {
      for (guint i = 0; i < nmeta->n_neighbors; i++) {
        char hit[64];
        /* %a: every bit of the distance. */
        g_snprintf (hit, sizeof hit, " %" G_GINT64_FORMAT ":%a",
            nmeta->neighbors[i].id, nmeta->neighbors[i].distance);
        item += hit;
      }
    } else {
      item += " none";
    }
  } else {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
    item = GST_EVENT_TYPE_NAME (event);
    if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      item += std::string (" ")
          + gst_structure_get_name (gst_caps_get_structure (caps, 0));
    }
  }
  std::lock_guard<std::mutex> guard (record->lock);
  record->items.push_back (item);
  return GST_PAD_PROBE_OK;
}

/* Pushes queries of g (every 7th without an embedding, one with a NaN) from
 * a non-live appsrc through faisssearch, switching caps after the 10th, and
 * returns what came out. */
static std::vector<std::string>
search_stream (const TestGallery &g, const char *properties)
{
  gchar *desc = g_strdup_printf ("appsrc name=src format=time ! faisssearch "
                                 "name=search index=%s k=5 post-messages=false "
                                 "%s ! fakesink sync=false",
      g.path.c_str (), properties);
  GstElement *pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  fail_unless (pipeline != NULL);
  Record record;
  GstElement *search = gst_bin_get_by_name (GST_BIN (pipeline), "search");
  GstPad *src_pad = gst_element_get_static_pad (search, "src");
  gst_pad_add_probe (src_pad,
      (GstPadProbeType) (GST_PAD_PROBE_TYPE_BUFFER
          | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      record_item, &record, NULL);
  gst_object_unref (src_pad);
  gst_object_unref (search);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING)
      != GST_STATE_CHANGE_FAILURE);

  GstCaps *first = gst_caps_new_empty_simple ("application/x-first");
  GstCaps *second = gst_caps_new_empty_simple ("application/x-second");
  std::vector<float> nan_query (g.vector (0), g.vector (0) + kDims);
  nan_query[3] = NAN;
  for (int i = 0; i < 40; i++) {
    GstBuffer *buf;
    if (i % 7 == 3)
      buf = gst_buffer_new_allocate (NULL, 16, NULL);
    else
      buf = query_buffer (i == 12 ? nan_query.data ()
                                  : g.vector ((i * 13) % g.size ()));
    GST_BUFFER_PTS (buf) = i * GST_MSECOND;
    GstSample *sample =
        gst_sample_new (buf, i < 10 ? first : second, NULL, NULL);
    gst_buffer_unref (buf);
    fail_unless_equals_int (gst_app_src_push_sample (GST_APP_SRC (src), sample),
        GST_FLOW_OK);
    gst_sample_unref (sample);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_caps_unref (first);
  gst_caps_unref (second);
  gst_object_unref (src);
  gst_object_unref (pipeline);
  return record.items;
}

/* max-batch searches several frames in one go; each frame must get exactly
 * what it gets alone, and frames and events must leave in the order they
 * came. */
GST_START_TEST (test_batches_equal_single_frames)
{
  int n = 0;
  for (const char *type :
      {"Flat", "IVF8,Flat", "HNSW8", "IVF8,PQ4np", "PCA8,Flat", "PQ1np"}) {
    TestGallery g = write_gallery (("batch" + std::to_string (n++)).c_str (),
        400, vs::Metric::L2, 30, kModel, type);
    faisssearch_log.clear ();
    gst_debug_set_threshold_for_name ("faisssearch", GST_LEVEL_LOG);
    gst_debug_add_log_function (collect_faisssearch_log, NULL, NULL);
    const std::vector<std::string> batched =
        search_stream (g, "max-batch=8 nprobe=3");
    gst_debug_remove_log_function (collect_faisssearch_log);
    gst_debug_set_threshold_for_name ("faisssearch", GST_LEVEL_NONE);
    const std::vector<std::string> single = search_stream (g, "nprobe=3");
    fail_unless (faisssearch_log.find ("searched a batch of 7 frames")
            != std::string::npos,
        "%s: no batch was searched", type);
    /* A mapped Flat is searched from the file's pages, in batches too. */
    if (g_str_equal (type, "Flat"))
      fail_unless (search_stream (g, "max-batch=8 nprobe=3 mmap=true")
              == single,
          "mapped Flat: other hits in batches");
    fail_unless_equals_int (batched.size (), single.size ());
    for (size_t i = 0; i < batched.size (); i++)
      fail_unless (batched[i] == single[i],
          "%s, item %zu: %s, alone "
          "%s",
          type, i, batched[i].c_str (), single[i].c_str ());
    /* The caps switch comes out between the 10th and 11th buffer. */
    size_t caps = 0;
    while (caps < batched.size ()
        && batched[caps] != "caps application/x-second")
      caps++;
    fail_unless (caps < batched.size () && batched[caps - 1] == single[caps - 1]
            && batched[caps - 1].rfind ("buffer 9000000", 0) == 0,
        "%s: the caps moved", type);
    fail_unless (batched.back () == "eos", "%s", batched.back ().c_str ());
  }
}

GST_END_TEST;

/* A live source is never made to wait for a batch to fill. */
GST_START_TEST (test_live_frames_are_not_held)
{
  TestGallery g = write_gallery ("live-batch.faiss", 50, vs::Metric::L2, 31);
  gchar *desc =
      g_strdup_printf ("appsrc name=src is-live=true format=time "
                       "caps=application/octet-stream ! faisssearch index=%s "
                       "max-batch=16 "
                       "post-messages=false ! appsink name=sink sync=false",
          g.path.c_str ());
  GstElement *pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  for (int i = 0; i < 3; i++) {
    GstBuffer *buf = query_buffer (g.vector (i));
    GST_BUFFER_PTS (buf) = i * GST_MSECOND;
    fail_unless_equals_int (gst_app_src_push_buffer (GST_APP_SRC (src), buf),
        GST_FLOW_OK);
    /* Without a frame after it, and no EOS: a held frame never comes. */
    GstSample *sample =
        gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 30 * GST_SECOND);
    fail_unless (sample != NULL, "live frame %d was held", i);
    GstVisualSearchNeighborsMeta *nmeta =
        gst_buffer_get_visualsearch_neighbors_meta (
            gst_sample_get_buffer (sample));
    fail_unless (nmeta != NULL);
    fail_unless_equals_int64 (nmeta->neighbors[0].id, i);
    gst_sample_unref (sample);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_END_TEST;

static Suite *
faisssearch_suite (void)
{
  Suite *s = suite_create ("faisssearch");
  TCase *tc = tcase_create ("general");

  tcase_add_checked_fixture (tc, setup, teardown);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_finds_itself_first);
  tcase_add_test (tc, test_bus_message);
  tcase_add_test (tc, test_k_larger_than_index);
  tcase_add_test (tc, test_max_distance);
  tcase_add_test (tc, test_metric_property);
  tcase_add_test (tc, test_model_mismatch_is_an_error);
  tcase_add_test (tc, test_non_finite_query_warns_once);
  tcase_add_test (tc, test_missing_or_corrupt_index);
  tcase_add_test (tc, test_reload_mid_stream);
  tcase_add_test (tc, test_ivf_nprobe);
  tcase_add_test (tc, test_instances_in_parallel);
  tcase_add_test (tc, test_index_of_another_catalog_is_refused);
  tcase_add_test (tc, test_fifo_index_is_an_error);
  tcase_add_test (tc, test_shutdown_during_endless_reload);
  tcase_add_test (tc, test_ids_outside_the_catalog_warn_once);
  tcase_add_test (tc, test_fewer_than_k_warn_once);
  tcase_add_test (tc, test_batches_equal_single_frames);
  tcase_add_test (tc, test_live_frames_are_not_held);
  return s;
}

GST_CHECK_MAIN (faisssearch);
