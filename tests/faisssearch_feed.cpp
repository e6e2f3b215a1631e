// SPDX-License-Identifier: LGPL-2.1-or-later
// Drives faisssearch with fixed query vectors, for test_search_parity.py.
//
//   faisssearch-feed catalog INDEX MODEL
//       writes the catalog beside an index written by Python faiss
//       (label = id % 10, label name "class<label>", source "vec/<id>")
//   faisssearch-feed search INDEX QUERIES MODEL [PROPERTY=VALUE ...]
//       QUERIES is raw little-endian float32, the index's dims per query; each
//       becomes a buffer with a GstVisualSearchEmbeddingMeta pushed through
//       appsrc ! faisssearch ! appsink. Prints one line per query:
//       "<metric> <id>:<distance> <id>:<distance> ...", nearest first. The
//       queries' preprocessing id is "test", or $VS_FEED_PREPROCESSING (to
//       search an index an embedder built). On success, stderr gets the time
//       to start (load the index), the time from the first push to the last
//       result and the CPU time of every thread of the process in that span
//       (what the queries cost, whatever else the machine runs), for
//       tests/bench. With $VS_FEED_HOLD set, it then prints "held" to stderr
//       and keeps the pipeline (and its index) until stdin closes, so that a
//       benchmark can measure several at once. With
//       $VS_FEED_LABELS naming a file of int32 labels, one per query, each
//       buffer also carries a GstVisualSearchSampleMeta with its label and the results
//       go to retrievaleval as well (whose table goes to stdout too).
// Errors go to stderr and the exit status is 2.
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/index/catalog.h"
#include "engine/index/index_store.h"

namespace {

const char kPreprocessing[] = "test";

int
write_catalog (const std::string &index_path, const char *model)
{
  const vs::IndexStore index = vs::IndexStore::load (index_path);
  vs::IndexFacts facts;
  facts.model_id = model;
  facts.preprocessing_id = kPreprocessing;
  facts.dims = index.dims ();
  facts.metric = vs::metric_name (index.metric ());
  facts.index_type = "python";
  facts.count = index.size ();
  facts.created = vs::utc_timestamp_now ();
  facts.index_digest = index.file_digest (); // binds the catalog to this index
  std::vector<vs::CatalogItem> items (index.size ());
  for (int64_t i = 0; i < index.size (); i++) {
    items[i].id = i;
    items[i].label = static_cast<int> (i % 10);
    items[i].label_name = "class" + std::to_string (i % 10);
    items[i].source = "vec/" + std::to_string (i);
  }
  vs::Catalog::write_atomically (vs::catalog_path_for (index_path), facts,
      items);
  return 0;
}

int
search (int argc, char **argv)
{
  const char *preprocessing = g_getenv ("VS_FEED_PREPROCESSING")
      ? g_getenv ("VS_FEED_PREPROCESSING")
      : kPreprocessing;
  const std::string index_path = argv[2];
  std::ifstream in (argv[3], std::ios::binary);
  const std::vector<char> bytes ((std::istreambuf_iterator<char> (in)),
      std::istreambuf_iterator<char> ());
  // From the catalog, not the index, so that an index the element refuses
  // still gets queries pushed at it.
  const int dims =
      vs::Catalog::load (vs::catalog_path_for (index_path)).facts ().dims;
  const size_t n = bytes.size () / (sizeof (float) * dims);
  const float *queries = reinterpret_cast<const float *> (bytes.data ());

  std::vector<int32_t> labels;
  if (const char *labels_path = g_getenv ("VS_FEED_LABELS")) {
    std::ifstream labels_in (labels_path, std::ios::binary);
    labels.resize (n);
    labels_in.read (reinterpret_cast<char *> (labels.data ()),
        n * sizeof (int32_t));
  }
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch (labels.empty ()
          ? "appsrc name=src format=time caps=application/octet-stream ! "
            "faisssearch "
            "name=search post-messages=false ! appsink name=sink sync=false"
          : "appsrc name=src format=time caps=application/octet-stream ! "
            "faisssearch "
            "name=search post-messages=false ! tee name=t ! queue "
            "max-size-buffers=0 "
            "max-size-bytes=0 max-size-time=0 ! appsink name=sink sync=false "
            "t. ! "
            "queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! "
            "retrievaleval",
      &error);
  if (pipeline == nullptr) {
    std::fprintf (stderr, "%s\n", error->message);
    return 2;
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstElement *searcher = gst_bin_get_by_name (GST_BIN (pipeline), "search");
  g_object_set (searcher, "index", index_path.c_str (), nullptr);
  for (int i = 5; i < argc; i++) {
    const std::string assignment = argv[i];
    const size_t eq = assignment.find ('=');
    gst_util_set_object_arg (G_OBJECT (searcher),
        assignment.substr (0, eq).c_str (),
        assignment.substr (eq + 1).c_str ());
  }

  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [] (Clock::time_point t) {
    return std::chrono::duration<double> (Clock::now () - t).count ();
  };
  int status = 0;
  size_t printed = 0;
  double start_seconds = 0, search_seconds = 0, search_cpu_seconds = 0;
  const auto cpu_seconds = [] {
    timespec t;
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
  };
  const Clock::time_point started = Clock::now ();
  // faisssearch fails to start on an index it cannot load; the bus says why.
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING)
      != GST_STATE_CHANGE_FAILURE) {
    start_seconds = seconds_since (started);
    const Clock::time_point pushed = Clock::now ();
    const double pushed_cpu = cpu_seconds ();
    for (size_t q = 0; q < n; q++) {
      GstBuffer *buffer = gst_buffer_new_allocate (nullptr, 1, nullptr);
      GST_BUFFER_PTS (buffer) = q * GST_SECOND;
      gst_buffer_add_visualsearch_embedding_meta (buffer, dims,
          queries + q * dims, argv[4], preprocessing, TRUE);
      if (!labels.empty ())
        gst_buffer_add_visualsearch_sample_meta (buffer, q, labels[q], "", "");
      gst_app_src_push_buffer (GST_APP_SRC (src), buffer);
    }
    gst_app_src_end_of_stream (GST_APP_SRC (src));

    while (GstSample *sample = gst_app_sink_pull_sample (GST_APP_SINK (sink))) {
      const GstVisualSearchNeighborsMeta *meta =
          gst_buffer_get_visualsearch_neighbors_meta (
              gst_sample_get_buffer (sample));
      if (meta == nullptr) {
        std::fprintf (stderr, "a query came out without neighbours\n");
        status = 2;
      } else {
        std::printf ("%s", gst_visualsearch_metric_to_string (meta->metric));
        for (guint i = 0; i < meta->n_neighbors; i++)
          std::printf (" %" G_GINT64_FORMAT ":%.9g", meta->neighbors[i].id,
              meta->neighbors[i].distance);
        std::printf ("\n");
        printed++;
      }
      gst_sample_unref (sample);
    }
    search_seconds = seconds_since (pushed);
    search_cpu_seconds = cpu_seconds () - pushed_cpu;
  }

  GstBus *bus = gst_element_get_bus (pipeline);
  if (GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR)) {
    gst_message_parse_error (msg, &error, nullptr);
    std::fprintf (stderr, "%s\n", error->message);
    g_clear_error (&error);
    gst_message_unref (msg);
    status = 2;
  }
  if (printed != n)
    status = 2;
  if (status == 0)
    std::fprintf (stderr, "start %.6f s, %zu queries %.6f s, CPU %.6f s\n",
        start_seconds, n, search_seconds, search_cpu_seconds);
  if (g_getenv ("VS_FEED_HOLD")) {
    std::fprintf (stderr, "held\n");
    std::fflush (stderr);
    while (std::getchar () != EOF) {
    }
  }
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (searcher);
  gst_object_unref (sink);
  gst_object_unref (src);
  gst_object_unref (pipeline);
  return status;
}

} // namespace

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "catalog" && argc == 4)
      return write_catalog (argv[2], argv[3]);
    if (mode == "search" && argc >= 5)
      return search (argc, argv);
  } catch (const std::exception &e) {
    std::fprintf (stderr, "%s\n", e.what ());
    return 2;
  }
  std::fprintf (stderr,
      "usage: faisssearch-feed catalog INDEX MODEL\n"
      "       faisssearch-feed search INDEX QUERIES MODEL [PROPERTY=VALUE "
      "...]\n");
  return 2;
}
