// SPDX-License-Identifier: LGPL-2.1-or-later
// json/documents.h: the exact compact text clients match on (the server load
// test looks for "source":"..."), members in their documented order, text
// that is not UTF-8 and numbers JSON lacks still making valid JSON, and
// every document read back with json-glib's parser to the values put in.
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "json/documents.h"

namespace {

JsonNode *
parse (const std::string &text)
{
  JsonParser *parser = json_parser_new ();
  GError *error = nullptr;
  if (!json_parser_load_from_data (parser, text.c_str (), -1, &error))
    g_error ("not JSON (%s): %s", error->message, text.c_str ());
  JsonNode *root = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);
  return root;
}

std::vector<std::string>
member_names (JsonObject *object)
{
  std::vector<std::string> names;
  GList *members = json_object_get_members (object);
  for (GList *m = members; m; m = m->next)
    names.push_back (static_cast<const char *> (m->data));
  g_list_free (members);
  return names;
}

void
test_error_body ()
{
  const std::string answer = vs::json::error_body (404, "no gallery item '7'");
  g_assert_cmpstr (answer.c_str (), ==,
      "{\"error\":\"no gallery item '7'\",\"status\":404}");
  const std::string message =
      "a \"quoted\" \\ name\nwith\x01\x1f bytes \xff here";
  JsonNode *root = parse (vs::json::error_body (400, message));
  JsonObject *o = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (o, "error"), ==,
      "a \"quoted\" \\ name\nwith\x01\x1f bytes \xef\xbf\xbd here");
  g_assert_cmpint (json_object_get_int_member (o, "status"), ==, 400);
  json_node_unref (root);
}

void
test_neighbor_list ()
{
  const std::vector<vs::json::Neighbor> neighbors = {
      {{3, 1, "cat", "cats/a.png"}, 1, 0.5, 0.5},
      {{9, -1, "", "caf\xe9.jpg"}, 2, std::numeric_limits<double>::quiet_NaN (),
          0.25},
  };
  const std::string text =
      vs::json::similar_answer ({7, 1, "cat", "cats/b.png"}, 2, "ip",
          neighbors);
  g_assert_nonnull (strstr (text.c_str (),
      "{\"id\":3,\"label\":1,\"label_name\":\"cat\","
      "\"source\":\"cats/a.png\","
      "\"thumbnail\":\"/api/items/3/thumbnail\",\"rank\":1,"
      "\"distance\":0.5,\"similarity\":0.5}"));
  JsonNode *root = parse (text);
  JsonObject *o = json_node_get_object (root);
  g_assert_true (member_names (o)
      == (std::vector<std::string>{"item", "k", "metric", "neighbors"}));
  JsonArray *list = json_object_get_array_member (o, "neighbors");
  g_assert_cmpuint (json_array_get_length (list), ==, 2);
  JsonObject *second = json_array_get_object_element (list, 1);
  g_assert_true (member_names (second)
      == (std::vector<std::string>{"id", "label", "label_name", "source",
          "thumbnail", "rank", "distance", "similarity"}));
  g_assert_true (json_object_get_null_member (second, "distance"));
  g_assert_cmpstr (json_object_get_string_member (second, "source"), ==,
      "caf\xef\xbf\xbd.jpg");
  json_node_unref (root);

  /* Without thumbnail URLs: the same members but the server's URL. */
  JsonBuilder *builder = json_builder_new ();
  vs::json::add_neighbor_list (builder, neighbors, false);
  JsonNode *bare = json_builder_get_root (builder);
  JsonObject *first =
      json_array_get_object_element (json_node_get_array (bare), 0);
  g_assert_true (member_names (first)
      == (std::vector<std::string>{"id", "label", "label_name", "source",
          "rank", "distance", "similarity"}));
  json_node_unref (bare);
  g_object_unref (builder);
}

void
test_live_event ()
{
  GstBuffer *buffer = gst_buffer_new ();
  const GstVisualSearchNeighbor found[] = {
      {12, 0.25f, 4, (gchar *) "deer", (gchar *) "cifar10/train/12"},
      {40, 1.5f, -1, nullptr, nullptr},
  };
  GstVisualSearchNeighborsMeta *meta =
      gst_buffer_add_visualsearch_neighbors_meta (buffer,
          GST_VISUALSEARCH_METRIC_L2, 2, found);
  const std::vector<vs::json::Neighbor> neighbors =
      vs::json::neighbors_of (meta);
  gst_buffer_unref (buffer);
  g_assert_cmpuint (neighbors.size (), ==, 2);
  g_assert_cmpfloat (neighbors[1].similarity, ==, 0.25);

  /* ip: the meta's score is the similarity, the distance 1 - it. */
  buffer = gst_buffer_new ();
  const GstVisualSearchNeighbor ip_found[] = {{7, 0.75f, 1, NULL, NULL}};
  const std::vector<vs::json::Neighbor> ip = vs::json::
      neighbors_of (gst_buffer_add_visualsearch_neighbors_meta (buffer,
          GST_VISUALSEARCH_METRIC_INNER_PRODUCT, 1, ip_found));
  gst_buffer_unref (buffer);
  g_assert_cmpfloat (ip.at (0).similarity, ==, 0.75);
  g_assert_cmpfloat (ip.at (0).distance, ==, 0.25);
  g_assert_cmpuint (neighbors[1].rank, ==, 2);
  g_assert_cmpstr (neighbors[1].item.label_name.c_str (), ==, "");

  JsonNode *root =
      parse (vs::json::live_event (5, std::nullopt, "l2", neighbors));
  JsonObject *o = json_node_get_object (root);
  g_assert_true (json_object_get_null_member (o, "pts_ms"));
  g_assert_cmpint (json_object_get_int_member (o, "frame"), ==, 5);
  JsonObject *first =
      json_array_get_object_element (json_object_get_array_member (o,
                                         "neighbors"),
          0);
  g_assert_cmpint (json_object_get_int_member (first, "id"), ==, 12);
  /* l2: the distance is the squared L2 distance, the similarity 1 - d2 / 2. */
  g_assert_cmpfloat (json_object_get_double_member (first, "distance"), ==,
      0.25);
  g_assert_cmpfloat (json_object_get_double_member (first, "similarity"), ==,
      0.875);
  json_node_unref (root);

  root = parse (vs::json::live_event (6, 1234, "l2", {}));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (root),
                       "pts_ms"),
      ==, 1234);
  g_assert_false (json_object_has_member (json_node_get_object (root),
      "regions"));
  json_node_unref (root);

  /* An index of regions: the frame's size and its regions, with the
   * thumbnail URLs of their neighbours; an upload's regions likewise, and
   * the message of a picture without one. */
  vs::json::Region region;
  region.roi_id = 3;
  region.roi_type = "face";
  region.x = 10;
  region.y = 20;
  region.w = 30;
  region.h = 40;
  region.metric = "l2";
  region.neighbors = neighbors;
  const std::vector<vs::json::Region> regions = {region};
  root = parse (vs::json::live_event (7, 1, "l2", {}, &regions, 640, 480));
  o = json_node_get_object (root);
  g_assert_cmpint (json_object_get_int_member (o, "width"), ==, 640);
  g_assert_cmpint (json_object_get_int_member (o, "height"), ==, 480);
  JsonObject *r =
      json_array_get_object_element (json_object_get_array_member (o,
                                         "regions"),
          0);
  g_assert_cmpint (json_object_get_int_member (r, "h"), ==, 40);
  g_assert_cmpstr (json_object_get_string_member (r, "roi_type"), ==, "face");
  first = json_array_get_object_element (json_object_get_array_member (r,
                                             "neighbors"),
      0);
  g_assert_cmpstr (json_object_get_string_member (first, "thumbnail"), ==,
      "/api/items/12/thumbnail");
  json_node_unref (root);

  const std::vector<vs::json::Region> none;
  root = parse (vs::json::search_answer (200, 150, 5, "ip", {}, {}, &none,
      "no region"));
  o = json_node_get_object (root);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o,
                        "regions")),
      ==, 0);
  g_assert_cmpstr (json_object_get_string_member (o, "message"), ==,
      "no region");
  json_node_unref (root);
  root = parse (vs::json::search_answer (200, 150, 5, "ip", {}, {}));
  o = json_node_get_object (root);
  g_assert_false (json_object_has_member (o, "regions"));
  g_assert_false (json_object_has_member (o, "message"));
  json_node_unref (root);
}

/* The index facts say whether the model id names random weights. */
void
test_index_answer ()
{
  vs::IndexFacts facts;
  facts.model_id = "resnet18:random-seed42";
  facts.metric = "ip";
  facts.count = 3;
  vs::json::ServerFacts server;
  server.index = "gallery.faiss";
  JsonNode *root = parse (vs::json::index_answer (facts, server, {}));
  JsonObject *o = json_node_get_object (root);
  g_assert_true (json_object_get_boolean_member (o, "random_weights"));
  g_assert_cmpstr (json_object_get_string_member (o, "model"), ==,
      "resnet18:random-seed42");
  g_assert_true (json_object_get_null_member (o, "roi_types"));
  json_node_unref (root);
  server.roi_types = "face";
  root = parse (vs::json::index_answer (facts, server, {}));
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (root),
                       "roi_types"),
      ==, "face");
  json_node_unref (root);

  for (const char *id : {"resnet18:f37072fd", "torchscript:1a2b3c4d"}) {
    facts.model_id = id;
    root = parse (vs::json::index_answer (facts, server, {}));
    g_assert_false (json_object_get_boolean_member (json_node_get_object (root),
        "random_weights"));
    json_node_unref (root);
  }
}

void
test_published_result ()
{
  GstBuffer *buffer = gst_buffer_new ();
  const gfloat values[] = {1.0f, -2.5f, 0.125f};
  const GstVisualSearchEmbeddingMeta *embedding =
      gst_buffer_add_visualsearch_embedding_meta (buffer, 3, values, "resnet18",
          "pre", TRUE);
  const GstVisualSearchNeighbor found[] = {
      {7, 0.5f, 2, (gchar *) "bird", (gchar *) "cifar10/train/7"},
  };
  GstVisualSearchNeighborsMeta *meta =
      gst_buffer_add_visualsearch_neighbors_meta (buffer,
          GST_VISUALSEARCH_METRIC_INNER_PRODUCT, 1, found);

  vs::json::PublishedResult r;
  r.source = "cam-1";
  r.frame = 3;
  r.pts = 40000000;
  r.wall_time_us = 1000002;
  r.sample = vs::json::Item{9, 1, "car", "cifar10/test/9"};
  r.has_neighbors = true;
  r.metric = "ip";
  r.neighbors = vs::json::neighbors_of (meta);
  r.embedding = embedding;
  r.encoding = vs::json::EmbeddingEncoding::Base64;
  const std::string text = vs::json::published_result (r);
  g_assert_null (strchr (text.c_str (), '\n'));
  JsonNode *root = parse (text);
  JsonObject *o = json_node_get_object (root);
  g_assert_true (member_names (o)
      == (std::vector<std::string>{"schema", "source", "frame", "pts",
          "wall_time", "wall_time_us", "sample", "metric", "neighbors",
          "embedding"}));
  g_assert_cmpstr (json_object_get_string_member (o, "schema"), ==,
      "visualsearch-result/1");
  g_assert_cmpstr (json_object_get_string_member (o, "wall_time"), ==,
      "1970-01-01T00:00:01.000002Z");
  g_assert_cmpint (json_object_get_int_member (o, "pts"), ==, 40000000);
  JsonObject *e = json_object_get_object_member (o, "embedding");
  g_assert_cmpint (json_object_get_int_member (e, "dims"), ==, 3);
  gsize size = 0;
  guchar *bytes =
      g_base64_decode (json_object_get_string_member (e, "base64"), &size);
  /* float32 little-endian: 1.0 is 00 00 80 3f */
  g_assert_cmpuint (size, ==, 12);
  const guchar one[] = {0x00, 0x00, 0x80, 0x3f};
  g_assert_cmpmem (bytes, 4, one, 4);
  g_free (bytes);
  json_node_unref (root);

  r.encoding = vs::json::EmbeddingEncoding::Array;
  r.pts.reset ();
  r.sample.reset ();
  root = parse (vs::json::published_result (r));
  o = json_node_get_object (root);
  g_assert_true (json_object_get_null_member (o, "pts"));
  g_assert_false (json_object_has_member (o, "sample"));
  JsonArray *a = json_object_get_array_member (json_object_get_object_member (o,
                                                   "embedding"),
      "values");
  g_assert_cmpuint (json_array_get_length (a), ==, 3);
  g_assert_cmpfloat (json_array_get_double_element (a, 1), ==, -2.5);
  json_node_unref (root);

  r.encoding = vs::json::EmbeddingEncoding::None;
  r.has_neighbors = false;
  root = parse (vs::json::published_result (r));
  o = json_node_get_object (root);
  g_assert_false (json_object_has_member (o, "embedding"));
  g_assert_false (json_object_has_member (o, "neighbors"));
  json_node_unref (root);
  gst_buffer_unref (buffer);
}

/* What metapublish writes reads back to the same result (the server's
 * --subscribe), and what is not such a document is refused with a reason. */
void
test_parse_published_result ()
{
  vs::json::PublishedResult r;
  r.source = "cam-1";
  r.frame = 3;
  r.pts = 40000000;
  r.wall_time_us = 1000002;
  r.sample = vs::json::Item{9, 1, "car", "cifar10/test/9"};
  r.has_neighbors = true;
  r.metric = "l2";
  r.neighbors = {vs::json::Neighbor{{7, 2, "bird", "b/7.png"}, 1, 0.25, 0.8},
      vs::json::Neighbor{{8, 3, "cat", "c/8.png"}, 2, 1.0,
          std::numeric_limits<double>::infinity ()}};
  std::string why;
  const auto back =
      vs::json::parse_published_result (vs::json::published_result (r), &why);
  g_assert_true (back.has_value ());
  g_assert_cmpstr (back->source.c_str (), ==, "cam-1");
  g_assert_cmpuint (back->frame, ==, 3);
  g_assert_cmpuint (*back->pts, ==, 40000000);
  g_assert_cmpint (back->wall_time_us, ==, 1000002);
  g_assert_cmpint (back->sample->id, ==, 9);
  g_assert_cmpstr (back->sample->label_name.c_str (), ==, "car");
  g_assert_true (back->has_neighbors);
  g_assert_cmpstr (back->metric.c_str (), ==, "l2");
  g_assert_cmpuint (back->neighbors.size (), ==, 2);
  g_assert_cmpint (back->neighbors[1].item.id, ==, 8);
  g_assert_cmpint (back->neighbors[1].item.label, ==, 3);
  g_assert_cmpstr (back->neighbors[1].item.source.c_str (), ==, "c/8.png");
  g_assert_cmpuint (back->neighbors[1].rank, ==, 2);
  g_assert_cmpfloat (back->neighbors[0].distance, ==, 0.25);
  g_assert_cmpfloat (back->neighbors[0].similarity, ==, 0.8);
  /* a number JSON lacks was written as null: it reads back as NaN */
  g_assert_true (std::isnan (back->neighbors[1].similarity));

  r.pts.reset ();
  r.sample.reset ();
  r.has_neighbors = false;
  const auto bare =
      vs::json::parse_published_result (vs::json::published_result (r), &why);
  g_assert_true (bare.has_value ());
  g_assert_false (bare->pts.has_value ());
  g_assert_false (bare->sample.has_value ());
  g_assert_false (bare->has_neighbors);

  const std::pair<const char *, const char *> bad[] = {
      {"not json {", "not JSON"},
      {"[1, 2]", "not a JSON object"},
      {"{\"schema\": \"other/1\"}", "is not visualsearch-result/1"},
      {"{\"schema\": \"visualsearch-result/1\", \"frame\": 1, "
       "\"wall_time_us\": 1}",
          "\"source\""},
      {"{\"schema\": \"visualsearch-result/1\", \"source\": \"a\", "
       "\"frame\": \"1\", \"wall_time_us\": 1}",
          "\"frame\" is not an integer"},
      {"{\"schema\": \"visualsearch-result/1\", \"source\": \"a\", "
       "\"frame\": 1, \"wall_time_us\": 1, \"metric\": \"ip\", "
       "\"neighbors\": [7]}",
          "neighbour 0 is not an object"},
      {"{\"schema\": \"visualsearch-result/1\", \"source\": \"a\", "
       "\"frame\": 1, \"wall_time_us\": 1, \"metric\": \"ip\", "
       "\"neighbors\": [{\"id\": 1, \"label\": 0, \"label_name\": \"\", "
       "\"source\": \"\", \"rank\": 1, \"distance\": \"near\", "
       "\"similarity\": 1}]}",
          "neighbour 0: \"distance\""},
  };
  for (const auto &[text, says] : bad) {
    why.clear ();
    g_assert_false (vs::json::parse_published_result (text, &why).has_value ());
    if (why.find (says) == std::string::npos)
      g_error ("%s: \"%s\" does not say %s", text, why.c_str (), says);
  }
}

/* Regions: read from the ROI metas faisssearch filled, written as the
 * optional "regions" member, read back by the server; a malformed region
 * rejects the document naming it. */
void
test_published_regions ()
{
  GstBuffer *buffer = gst_buffer_new ();
  const GstVisualSearchNeighbor found[] = {
      {12, 0.75f, 3, (gchar *) "eileen", (gchar *) "faces/e.jpg"},
      {4, 0.25f, -1, NULL, NULL},
  };
  GstVideoRegionOfInterestMeta *face =
      gst_buffer_add_video_region_of_interest_meta (buffer, "face", 175, 64, 97,
          96);
  face->id = 5;
  gst_visualsearch_region_set_neighbors (face,
      GST_VISUALSEARCH_METRIC_INNER_PRODUCT, 2, found);
  /* A region without neighbours is not published. */
  gst_buffer_add_video_region_of_interest_meta (buffer, "car", 1, 2, 3, 4);

  vs::json::PublishedResult r;
  r.source = "door";
  r.regions = vs::json::regions_of (buffer);
  g_assert_cmpuint (r.regions.size (), ==, 1);
  JsonNode *root = parse (vs::json::published_result (r));
  JsonObject *o = json_node_get_object (root);
  g_assert_false (json_object_has_member (o, "neighbors"));
  JsonArray *regions = json_object_get_array_member (o, "regions");
  g_assert_cmpuint (json_array_get_length (regions), ==, 1);
  JsonObject *region = json_array_get_object_element (regions, 0);
  g_assert_true (member_names (region)
      == (std::vector<std::string>{"roi_id", "roi_type", "x", "y", "w", "h",
          "metric", "neighbors"}));
  g_assert_cmpint (json_object_get_int_member (region, "roi_id"), ==, 5);
  g_assert_cmpstr (json_object_get_string_member (region, "roi_type"), ==,
      "face");
  g_assert_cmpint (json_object_get_int_member (region, "x"), ==, 175);
  g_assert_cmpint (json_object_get_int_member (region, "h"), ==, 96);
  JsonObject *best =
      json_array_get_object_element (json_object_get_array_member (region,
                                         "neighbors"),
          0);
  g_assert_cmpint (json_object_get_int_member (best, "id"), ==, 12);
  g_assert_cmpint (json_object_get_int_member (best, "rank"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (best, "source"), ==,
      "faces/e.jpg");
  json_node_unref (root);

  std::string why;
  const auto back =
      vs::json::parse_published_result (vs::json::published_result (r), &why);
  g_assert_true (back.has_value ());
  g_assert_cmpuint (back->regions.size (), ==, 1);
  g_assert_cmpint (back->regions[0].roi_id, ==, 5);
  g_assert_cmpstr (back->regions[0].roi_type.c_str (), ==, "face");
  g_assert_cmpuint (back->regions[0].w, ==, 97);
  g_assert_cmpuint (back->regions[0].neighbors.size (), ==, 2);
  g_assert_cmpint (back->regions[0].neighbors[1].item.id, ==, 4);
  g_assert_cmpstr (back->regions[0].metric.c_str (), ==, "ip");

  const std::pair<const char *, const char *> bad[] = {
      {"{\"schema\": \"visualsearch-result/1\", \"source\": \"a\", "
       "\"frame\": 1, \"wall_time_us\": 1, \"regions\": {}}",
          "\"regions\" is missing or not an array"},
      {"{\"schema\": \"visualsearch-result/1\", \"source\": \"a\", "
       "\"frame\": 1, \"wall_time_us\": 1, \"regions\": [{\"roi_id\": 0, "
       "\"roi_type\": \"face\", \"x\": -1, \"y\": 0, \"w\": 1, \"h\": 1, "
       "\"metric\": \"ip\", \"neighbors\": []}]}",
          "region 0: \"x\" is out of range"},
  };
  for (const auto &[text, says] : bad) {
    why.clear ();
    g_assert_false (vs::json::parse_published_result (text, &why).has_value ());
    if (why.find (says) == std::string::npos)
      g_error ("%s: \"%s\" does not say %s", text, why.c_str (), says);
  }
  gst_buffer_unref (buffer);
}

/* GET /api/sources: thumbnails only where the gallery holds the item. */
void
test_sources_answer ()
{
  vs::json::SourceLatest s;
  s.result.source = "door";
  s.result.frame = 5;
  s.result.has_neighbors = true;
  s.result.metric = "ip";
  s.result.neighbors = {vs::json::Neighbor{{7, 2, "bird", "b/7.png"}, 1, 0.2,
                            0.8},
      vs::json::Neighbor{{99, 2, "bird", "x.png"}, 2, 0.3, 0.7}};
  s.in_gallery = {true, false};
  s.messages = 6;
  vs::json::FeedFacts feed;
  feed.broker = "127.0.0.1:1883";
  feed.topic = "cams/+/results";
  feed.connected = true;
  JsonNode *root = parse (vs::json::sources_answer (feed, {s}));
  JsonObject *o = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (o, "schema"), ==,
      "visualsearch-sources/1");
  g_assert_true (json_object_get_null_member (o, "last_rejection"));
  JsonObject *door =
      json_array_get_object_element (json_object_get_array_member (o,
                                         "sources"),
          0);
  g_assert_cmpint (json_object_get_int_member (door, "messages"), ==, 6);
  JsonArray *n = json_object_get_array_member (door, "neighbors");
  g_assert_cmpstr (json_object_get_string_member (
                       json_array_get_object_element (n, 0), "thumbnail"),
      ==, "/api/items/7/thumbnail");
  g_assert_false (json_object_has_member (json_array_get_object_element (n, 1),
      "thumbnail"));
  json_node_unref (root);
}

void
test_retrieval_metrics ()
{
  vs::RetrievalSummary summary;
  summary.ks = {1, 3};
  summary.overall = {6, 5, {1.0, 2.0 / 3}, {0.2, 0.4}, {1.0, 0.1}, {0.5, 0.25},
      0.75, 0.5};
  summary.per_class = {{0, "", summary.overall}, {2, "sh\x1fip", {}}};
  summary.per_class[1].figures = {1, 0, {0.0, 0.0}, {0.0, 0.0}, {0.0, 0.0},
      {0.0, 0.0}, 0.0, 0.0};
  JsonNode *root =
      parse (vs::json::retrieval_metrics (summary, 3, "gallery.faiss.db", 30));
  JsonObject *o = json_node_get_object (root);
  g_assert_true (member_names (o)
      == (std::vector<std::string>{"schema", "skipped", "catalog",
          "gallery_items", "exclude_self", "k", "queries",
          "queries_with_relevant", "precision", "recall", "map",
          "weighted_precision", "mrr", "accuracy", "per_class"}));
  g_assert_cmpstr (json_object_get_string_member (o, "schema"), ==,
      "visualsearch-retrieval-metrics/1");
  JsonObject *precision = json_object_get_object_member (o, "precision");
  /* Read back to the very same doubles. */
  g_assert_true (json_object_get_double_member (precision, "3") == 2.0 / 3);
  g_assert_true (json_object_get_double_member (
                     json_object_get_object_member (o, "map"), "3")
      == 0.1);
  g_assert_true (json_object_get_double_member (
                     json_object_get_object_member (o, "weighted_precision"),
                     "3")
      == 0.25);
  JsonObject *classes = json_object_get_object_member (o, "per_class");
  g_assert_true (member_names (classes)
      == (std::vector<std::string>{"0", "sh\x1fip"}));
  g_assert_cmpint (json_object_get_int_member (
                       json_object_get_object_member (classes, "sh\x1fip"),
                       "label"),
      ==, 2);
  json_node_unref (root);
}

} // namespace

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, nullptr);
  g_test_add_func ("/json/error-body", test_error_body);
  g_test_add_func ("/json/neighbor-list", test_neighbor_list);
  g_test_add_func ("/json/live-event", test_live_event);
  g_test_add_func ("/json/published-result", test_published_result);
  g_test_add_func ("/json/parse-published-result", test_parse_published_result);
  g_test_add_func ("/json/published-regions", test_published_regions);
  g_test_add_func ("/json/sources-answer", test_sources_answer);
  g_test_add_func ("/json/retrieval-metrics", test_retrieval_metrics);
  g_test_add_func ("/json/index-answer", test_index_answer);
  return g_test_run ();
}
