// SPDX-License-Identifier: LGPL-2.1-or-later
// Drives retrievaleval with fixed ranked lists, for test_retrievaleval.py.
//
//   retrievaleval-feed SPEC CATALOG [PROPERTY=VALUE ...]
//
// SPEC is tab-separated text, one record per line:
//   gallery <label> <label name> <source>     (ids 0, 1, ... in order)
//   query <label> <label name> <source> <gallery id> <gallery id> ...
//   bare                                      (a buffer with no metadata)
// The gallery becomes the catalog at CATALOG; each query becomes a buffer
// with a GstVisualSearchSampleMeta and a GstVisualSearchNeighborsMeta listing those gallery items,
// pushed through appsrc into retrievaleval with the given properties.
// Prints the "retrieval-metrics" element message on stdout; an error message
// goes to stderr and the exit status is 2.
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/index/catalog.h"

namespace {

std::vector<std::string>
split_tabs (const std::string &line)
{
  std::vector<std::string> fields;
  std::stringstream stream (line);
  std::string field;
  while (std::getline (stream, field, '\t'))
    fields.push_back (field);
  return fields;
}

struct Query
{
  bool bare; // no metadata at all
  int label;
  std::string label_name, source;
  std::vector<int64_t> neighbours; // gallery ids, nearest first
};

GstBuffer *
make_buffer (const Query &q, const std::vector<vs::CatalogItem> &gallery)
{
  GstBuffer *buffer = gst_buffer_new_allocate (nullptr, 1, nullptr);
  if (q.bare)
    return buffer;
  gst_buffer_add_visualsearch_sample_meta (buffer, 0, q.label,
      q.label_name.c_str (), q.source.c_str ());
  std::vector<GstVisualSearchNeighbor> neighbours;
  for (const int64_t id : q.neighbours) {
    const vs::CatalogItem &item = gallery.at (id);
    neighbours.push_back ({id, static_cast<gfloat> (neighbours.size ()),
        item.label, const_cast<gchar *> (item.label_name.c_str ()),
        const_cast<gchar *> (item.source.c_str ())});
  }
  gst_buffer_add_visualsearch_neighbors_meta (buffer,
      GST_VISUALSEARCH_METRIC_L2, neighbours.size (), neighbours.data ());
  return buffer;
}

} // namespace

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc < 3) {
    std::fprintf (stderr, "usage: %s SPEC CATALOG [PROPERTY=VALUE ...]\n",
        argv[0]);
    return 1;
  }

  std::ifstream spec (argv[1]);
  std::vector<vs::CatalogItem> gallery;
  std::vector<Query> queries;
  for (std::string line; std::getline (spec, line);) {
    const auto f = split_tabs (line);
    if (f.empty ())
      continue;
    if (f[0] == "gallery" && f.size () == 4) {
      gallery.push_back ({static_cast<int64_t> (gallery.size ()),
          std::stoi (f[1]), f[2], f[3]});
    } else if (f[0] == "query" && f.size () >= 4) {
      Query q{false, std::stoi (f[1]), f[2], f[3], {}};
      for (size_t i = 4; i < f.size (); ++i)
        q.neighbours.push_back (std::stoll (f[i]));
      queries.push_back (q);
    } else if (f[0] == "bare") {
      queries.push_back ({true, -1, "", "", {}});
    } else {
      std::fprintf (stderr, "bad spec line: %s\n", line.c_str ());
      return 1;
    }
  }

  vs::IndexFacts facts;
  facts.model_id = "test";
  facts.preprocessing_id = "test";
  facts.dims = 4;
  facts.metric = "l2";
  facts.index_type = "Flat";
  facts.count = static_cast<int64_t> (gallery.size ());
  facts.created = vs::utc_timestamp_now ();
  vs::Catalog::write_atomically (argv[2], facts, gallery);

  GstElement *pipeline = gst_pipeline_new ("feed");
  GstElement *src = gst_element_factory_make ("appsrc", nullptr);
  GstElement *eval = gst_element_factory_make ("retrievaleval", nullptr);
  if (!eval) {
    std::fprintf (stderr, "retrievaleval is not available\n");
    return 1;
  }
  g_object_set (eval, "catalog", argv[2], nullptr);
  for (int i = 3; i < argc; ++i) {
    const std::string assignment = argv[i];
    const auto eq = assignment.find ('=');
    gst_util_set_object_arg (G_OBJECT (eval),
        assignment.substr (0, eq).c_str (),
        assignment.substr (eq + 1).c_str ());
  }
  g_object_set (src, "format", GST_FORMAT_TIME, "max-buffers",
      G_GUINT64_CONSTANT (0), nullptr);
  gst_bin_add_many (GST_BIN (pipeline), src, eval, nullptr);
  gst_element_link (src, eval);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);

  for (const auto &q : queries) {
    if (gst_app_src_push_buffer (GST_APP_SRC (src), make_buffer (q, gallery))
        != GST_FLOW_OK)
      break;
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));

  int status = 0;
  GstBus *bus = gst_element_get_bus (pipeline);
  for (bool done = false; !done;) {
    GstMessage *msg = gst_bus_timed_pop (bus, GST_CLOCK_TIME_NONE);
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_ELEMENT: {
        gchar *text = gst_structure_to_string (gst_message_get_structure (msg));
        std::printf ("MESSAGE %s\n", text);
        g_free (text);
        break;
      }
      case GST_MESSAGE_ERROR: {
        GError *error = nullptr;
        gchar *debug = nullptr;
        gst_message_parse_error (msg, &error, &debug);
        std::fprintf (stderr, "ERROR %s\nDEBUG %s\n", error->message,
            debug ? debug : "");
        g_clear_error (&error);
        g_free (debug);
        status = 2;
        done = true;
        break;
      }
      case GST_MESSAGE_WARNING: {
        GError *warning = nullptr;
        gst_message_parse_warning (msg, &warning, nullptr);
        std::fprintf (stderr, "WARNING %s\n", warning->message);
        g_clear_error (&warning);
        break;
      }
      case GST_MESSAGE_EOS:
        done = true;
        break;
      default:
        break;
    }
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  return status;
}
