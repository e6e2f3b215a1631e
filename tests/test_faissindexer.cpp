// SPDX-License-Identifier: LGPL-2.1-or-later
/* faissindexer through a GstHarness: buffers carrying GstVisualSearchEmbeddingMeta and
 * GstVisualSearchSampleMeta go in, the index and catalog that come out are read back with
 * vs::IndexStore and vs::Catalog. Python faiss / sqlite3 / numpy interplay is
 * in test_faissindexer.py. */
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include "engine/index/catalog.h"
#include "engine/base/error.h"
#include "engine/index/index_store.h"

static const guint kDims = 8;
static const char *kModel = "resnet18:test";
static const char *kPrep = "rgb;resize=0;crop=32";

static std::string tmp_dir;

static std::string
tmp_path (const char *name)
{
  return tmp_dir + "/" + name;
}

static std::vector<float>
random_vectors (int n, unsigned seed)
{
  std::mt19937 rng (seed);
  std::normal_distribution<float> normal;
  std::vector<float> v (n * kDims);
  for (float &x : v)
    x = normal (rng);
  return v;
}

/* An indexer on its own bus, in a harness that already sent stream-start,
 * caps and segment. */
struct Indexer
{
  GstHarness *h;
  GstBus *bus;

  explicit Indexer (const std::string &location, const char *extra_props = "")
  {
    GstElement *element = gst_element_factory_make ("faissindexer", NULL);
    fail_unless (element != NULL);
    g_object_set (element, "location", location.c_str (), NULL);
    gchar **props = g_strsplit (extra_props, " ", -1);
    for (gchar **p = props; *p; p++) {
      gchar **kv = g_strsplit (*p, "=", 2);
      if (kv[0] && kv[1])
        gst_util_set_object_arg (G_OBJECT (element), kv[0], kv[1]);
      g_strfreev (kv);
    }
    g_strfreev (props);
    bus = gst_bus_new ();
    gst_element_set_bus (element, bus);
    h = gst_harness_new_with_element (element, "sink", NULL);
    gst_object_unref (element);
    gst_harness_set_src_caps_str (h, "video/x-raw");
  }

  ~Indexer ()
  {
    gst_harness_teardown (h);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
  }

  GstFlowReturn push (const float *values, int i, const char *model = kModel,
      bool with_sample = true)
  {
    GstBuffer *buf = gst_buffer_new ();
    if (values)
      gst_buffer_add_visualsearch_embedding_meta (buf, kDims, values, model,
          kPrep, FALSE);
    if (with_sample) {
      std::string name = "class" + std::to_string (i % 10);
      std::string source = "test/train/" + std::to_string (i);
      gst_buffer_add_visualsearch_sample_meta (buf, i, i % 10, name.c_str (),
          source.c_str ());
    }
    return gst_harness_push (h, buf);
  }

  gboolean eos ()
  {
    return gst_harness_push_event (h, gst_event_new_eos ());
  }

  /* The text of the first message of this type, "" when none. */
  std::string first (GstMessageType type)
  {
    std::string text;
    while (GstMessage *m = gst_bus_pop (bus)) {
      if (GST_MESSAGE_TYPE (m) == type && text.empty ()) {
        GError *err = NULL;
        gchar *debug = NULL;
        if (type == GST_MESSAGE_ERROR)
          gst_message_parse_error (m, &err, &debug);
        else
          gst_message_parse_warning (m, &err, &debug);
        text = err->message;
        g_error_free (err);
        g_free (debug);
      }
      gst_message_unref (m);
    }
    return text;
  }
};

static void
assert_contains (const std::string &text, const std::string &part)
{
  fail_unless (text.find (part) != std::string::npos,
      "expected \"%s\" in \"%s\"", part.c_str (), text.c_str ());
}

/* Pushes n embeddings (ids first_id...) and EOS; returns the EOS result. */
static gboolean
index_vectors (const std::string &location, const std::vector<float> &v,
    const char *props = "", int first_id = 0)
{
  Indexer indexer (location, props);
  for (size_t i = 0; i < v.size () / kDims; i++)
    fail_unless_equals_int (indexer.push (&v[i * kDims], first_id + i),
        GST_FLOW_OK);
  return indexer.eos ();
}

GST_START_TEST (test_flat_with_identity_and_progress)
{
  const std::string location = tmp_path ("flat.faiss");
  auto v = random_vectors (30, 1);
  guint progress[GST_PROGRESS_TYPE_CANCELED + 1] = {0};
  guint64 last_indexed = 0;
  std::string warning;
  {
    Indexer indexer (location, "progress-interval=10 metric=l2");
    for (int i = 0; i < 30; i++) {
      fail_unless_equals_int (indexer.push (&v[i * kDims], i), GST_FLOW_OK);
      if (i % 10 == 0)
        fail_unless_equals_int (indexer.push (NULL, 1000 + i), GST_FLOW_OK);
    }
    fail_unless (indexer.eos ());
    while (GstMessage *m = gst_bus_pop (indexer.bus)) {
      if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_PROGRESS) {
        GstProgressType type;
        gst_message_parse_progress (m, &type, NULL, NULL);
        progress[type]++;
        fail_unless (gst_structure_get_uint64 (gst_message_get_structure (m),
            "indexed", &last_indexed));
      } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_WARNING) {
        GError *err;
        gst_message_parse_warning (m, &err, NULL);
        warning = err->message;
        g_error_free (err);
      }
      gst_message_unref (m);
    }
  }
  fail_unless_equals_int (progress[GST_PROGRESS_TYPE_START], 1);
  /* at 10, 20, 30, then the adding and writing phases */
  fail_unless (progress[GST_PROGRESS_TYPE_CONTINUE] >= 5);
  fail_unless_equals_int (progress[GST_PROGRESS_TYPE_COMPLETE], 1);
  fail_unless_equals_int (last_indexed, 30);
  assert_contains (warning, "3 buffers carried no embedding");

  auto index = vs::IndexStore::load (location);
  fail_unless_equals_int (index.size (), 30);
  fail_unless (index.metric () == vs::Metric::L2);
  for (int i = 0; i < 30; i += 7) {
    auto back = index.reconstruct (i);
    for (guint d = 0; d < kDims; d++)
      fail_unless_equals_float (back[d], v[i * kDims + d]);
  }
  auto catalog = vs::Catalog::load (vs::catalog_path_for (location));
  fail_unless_equals_string (catalog.facts ().model_id.c_str (), kModel);
  fail_unless_equals_string (catalog.facts ().preprocessing_id.c_str (), kPrep);
  fail_unless_equals_int (catalog.facts ().dims, kDims);
  fail_unless_equals_string (catalog.facts ().metric.c_str (), "l2");
  fail_unless_equals_string (catalog.facts ().index_type.c_str (), "Flat");
  fail_unless_equals_int (catalog.facts ().count, 30);
  fail_unless_equals_int (catalog.items ().size (), 30);
  fail_unless_equals_int (catalog.item (13)->label, 3);
  fail_unless_equals_string (catalog.item (13)->label_name.c_str (), "class3");
  fail_unless_equals_string (catalog.item (13)->source.c_str (),
      "test/train/13");
  fail_unless_equals_int (catalog.count_label (3), 3);
}

GST_END_TEST;

GST_START_TEST (test_embedding_without_sample_meta)
{
  const std::string location = tmp_path ("anonymous.faiss");
  auto v = random_vectors (2, 2);
  {
    Indexer indexer (location);
    fail_unless_equals_int (indexer.push (&v[0], 0, kModel, false),
        GST_FLOW_OK);
    fail_unless_equals_int (indexer.push (&v[kDims], 1, kModel, false),
        GST_FLOW_OK);
    fail_unless (indexer.eos ());
  }
  auto catalog = vs::Catalog::load (vs::catalog_path_for (location));
  fail_unless_equals_int (catalog.items ().size (), 2);
  fail_unless_equals_int (catalog.item (1)->label, -1);
  fail_unless (catalog.item (1)->source.empty ());
}

GST_END_TEST;

GST_START_TEST (test_mixed_models_is_an_error)
{
  auto v = random_vectors (2, 3);
  Indexer indexer (tmp_path ("mixed.faiss"));
  fail_unless_equals_int (indexer.push (&v[0], 0), GST_FLOW_OK);
  fail_unless_equals_int (indexer.push (&v[kDims], 1, "resnet50:other"),
      GST_FLOW_ERROR);
  std::string error = indexer.first (GST_MESSAGE_ERROR);
  assert_contains (error, "resnet50:other");
  assert_contains (error, kModel);
}

GST_END_TEST;

/* A NaN or an infinity would poison the index: refused, naming the frame,
 * and nothing is written. */
GST_START_TEST (test_non_finite_embedding_is_an_error)
{
  auto v = random_vectors (3, 9);
  v[kDims + 5] = NAN;
  v[2 * kDims] = -INFINITY;
  const std::string location = tmp_path ("nan.faiss");
  {
    Indexer indexer (location);
    fail_unless_equals_int (indexer.push (&v[0], 0), GST_FLOW_OK);
    fail_unless_equals_int (indexer.push (&v[kDims], 1), GST_FLOW_ERROR);
    std::string error = indexer.first (GST_MESSAGE_ERROR);
    assert_contains (error, "sample 1 (test/train/1)");
    assert_contains (error, "NaN or infinite");
    assert_contains (error, "value 5 of 8");
    assert_contains (error, location);
    assert_contains (error, kModel);

    /* Without a sample meta the frame is named by its time. */
    GstBuffer *buf = gst_buffer_new ();
    GST_BUFFER_PTS (buf) = 2 * GST_SECOND;
    gst_buffer_add_visualsearch_embedding_meta (buf, kDims, &v[2 * kDims],
        kModel, kPrep, FALSE);
    fail_unless_equals_int (gst_harness_push (indexer.h, buf), GST_FLOW_ERROR);
    error = indexer.first (GST_MESSAGE_ERROR);
    assert_contains (error, "the frame at 0:00:02.000000000");
    assert_contains (error, "value 0 of 8 is -inf");
  }
  fail_if (std::filesystem::exists (location));
}

GST_END_TEST;

GST_START_TEST (test_too_few_vectors_keeps_previous_index)
{
  const std::string location = tmp_path ("ivf.faiss");
  fail_unless (index_vectors (location, random_vectors (5, 4)));

  Indexer indexer (location, "index-type=IVF64,Flat");
  auto v = random_vectors (20, 5);
  for (int i = 0; i < 20; i++)
    fail_unless_equals_int (indexer.push (&v[i * kDims], i), GST_FLOW_OK);
  fail_if (indexer.eos ());
  std::string error = indexer.first (GST_MESSAGE_ERROR);
  assert_contains (error, "at least 64 training vectors");
  assert_contains (error, location);
  fail_unless_equals_int (vs::IndexStore::load (location).size (), 5);
  fail_unless_equals_int (vs::Catalog::load (vs::catalog_path_for (location))
                              .facts ()
                              .count,
      5);
}

GST_END_TEST;

GST_START_TEST (test_trainable_types)
{
  auto v = random_vectors (300, 6);
  struct
  {
    const char *props;
    const char *type;
  } cases[] = {
      {"index-type=IVF4,Flat", "IVF4,Flat"},
      {"index-type=IVF4,Flat train-size=100", "IVF4,Flat"},
      {"index-type=HNSW8", "HNSW8"},
      {"index-type=IVF2,PQ2x4", "IVF2,PQ2x4"},
  };
  for (auto &c : cases) {
    const std::string location = tmp_path ("trained.faiss");
    fail_unless (index_vectors (location, v, c.props), "%s", c.props);
    fail_unless_equals_int (vs::IndexStore::load (location).size (), 300);
    auto catalog = vs::Catalog::load (vs::catalog_path_for (location));
    fail_unless_equals_string (catalog.facts ().index_type.c_str (), c.type);
  }
}

GST_END_TEST;

GST_START_TEST (test_append)
{
  const std::string location = tmp_path ("append.faiss");
  auto earlier = random_vectors (20, 7);
  auto later = random_vectors (10, 8);
  fail_unless (index_vectors (location, earlier));
  fail_unless (index_vectors (location, later, "append=true", 20));

  auto index = vs::IndexStore::load (location);
  fail_unless_equals_int (index.size (), 30);
  fail_unless_equals_float (index.reconstruct (25)[0], later[5 * kDims]);
  fail_unless_equals_float (index.reconstruct (5)[0], earlier[5 * kDims]);
  auto catalog = vs::Catalog::load (vs::catalog_path_for (location));
  fail_unless_equals_int (catalog.facts ().count, 30);
  fail_unless_equals_string (catalog.item (25)->source.c_str (),
      "test/train/25");

  /* Another model's embeddings must not join the gallery. */
  {
    Indexer indexer (location, "append=true");
    fail_unless_equals_int (indexer.push (&later[0], 0, "resnet50:other"),
        GST_FLOW_ERROR);
    std::string error = indexer.first (GST_MESSAGE_ERROR);
    assert_contains (error, "resnet50:other");
    assert_contains (error, kModel);
    assert_contains (error, vs::catalog_path_for (location));
  }
  fail_unless_equals_int (vs::IndexStore::load (location).size (), 30);

  /* Without append the file is replaced. */
  fail_unless (index_vectors (location, later));
  fail_unless_equals_int (vs::IndexStore::load (location).size (), 10);
}

GST_END_TEST;

/* Errors at start: the state change fails with a message on the bus. */
static std::string
start_error (const char *props)
{
  GstElement *element =
      gst_parse_launch (("faissindexer " + std::string (props)).c_str (), NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (element, bus);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  gst_element_set_state (element, GST_STATE_NULL);
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  GError *err;
  gst_message_parse_error (m, &err, NULL);
  std::string text = err->message;
  g_error_free (err);
  gst_message_unref (m);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  gst_object_unref (element);
  return text;
}

GST_START_TEST (test_start_errors)
{
  const std::string location = tmp_path ("metric.faiss");
  fail_unless (index_vectors (location, random_vectors (4, 9)));

  assert_contains (start_error (""), "No index file");
  std::string error =
      start_error (("location=" + location + " append=true metric=l2")
                       .c_str ());
  assert_contains (error, "different metric");
  assert_contains (error, "metric ip");
  assert_contains (error, "metric l2");

  const std::string corrupt = tmp_path ("corrupt.faiss");
  g_file_set_contents (corrupt.c_str (), "garbage", -1, NULL);
  error = start_error (("location=" + corrupt + " append=true").c_str ());
  assert_contains (error, corrupt);
}

GST_END_TEST;

GST_START_TEST (test_no_embeddings_is_an_error)
{
  Indexer indexer (tmp_path ("empty.faiss"));
  fail_unless_equals_int (indexer.push (NULL, 0), GST_FLOW_OK);
  fail_if (indexer.eos ());
  assert_contains (indexer.first (GST_MESSAGE_ERROR),
      "No buffer carried an embedding");
  fail_if (g_file_test (tmp_path ("empty.faiss").c_str (), G_FILE_TEST_EXISTS));
}

GST_END_TEST;

static Suite *
faissindexer_suite (void)
{
  Suite *s = suite_create ("faissindexer");
  TCase *tc = tcase_create ("general");

  gchar *dir = g_dir_make_tmp ("vs-faissindexer-XXXXXX", NULL);
  tmp_dir = dir;
  g_free (dir);

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_flat_with_identity_and_progress);
  tcase_add_test (tc, test_embedding_without_sample_meta);
  tcase_add_test (tc, test_mixed_models_is_an_error);
  tcase_add_test (tc, test_non_finite_embedding_is_an_error);
  tcase_add_test (tc, test_too_few_vectors_keeps_previous_index);
  tcase_add_test (tc, test_trainable_types);
  tcase_add_test (tc, test_append);
  tcase_add_test (tc, test_start_errors);
  tcase_add_test (tc, test_no_embeddings_is_an_error);
  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  int failed =
      gst_check_run_suite (faissindexer_suite (), "faissindexer", __FILE__);
  std::filesystem::remove_all (tmp_dir);
  return failed;
}
