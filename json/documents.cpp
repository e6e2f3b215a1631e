// SPDX-License-Identifier: LGPL-2.1-or-later
#include "json/documents.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/base/utf8.h"
#include "engine/index/gallery.h"
#include "engine/model/model_id.h"

namespace vs::json {

namespace {

// A JsonBuilder for one document, freed with it.
class Document {
 public:
  Document() : builder_(json_builder_new()) {}
  ~Document() { g_object_unref(builder_); }
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  JsonBuilder* builder() const { return builder_; }

  std::string text(bool pretty = false) const {
    JsonNode* root = json_builder_get_root(builder_);
    JsonGenerator* generator = json_generator_new();
    json_generator_set_root(generator, root);
    json_generator_set_pretty(generator, pretty);
    json_generator_set_indent(generator, 2);
    gchar* data = json_generator_to_data(generator, nullptr);
    std::string out;
    // json-glib 1.6 escapes the control characters below U+001F but leaves
    // U+001F itself raw, which JSON forbids. Outside strings the generator
    // writes no such byte, and none is part of a multi-byte UTF-8 sequence.
    for (const char* c = data; *c; ++c) {
      if (*c == '\x1f')
        out += "\\u001f";
      else
        out += *c;
    }
    g_free(data);
    g_object_unref(generator);
    json_node_unref(root);
    return pretty ? out + "\n" : out;
  }

 private:
  JsonBuilder* builder_;
};

void key(JsonBuilder* b, const std::string& name) {
  json_builder_set_member_name(b, valid_utf8(name).c_str());
}

void add_string(JsonBuilder* b, const std::string& text) {
  json_builder_add_string_value(b, valid_utf8(text).c_str());
}

// json-glib writes a double as %.17g, which reads back as the same double,
// plus ".0" where that has no point. (So 1e+17.0, not JSON, for an integer
// of one significant digit from 1e17 up: no float, timing or fraction here.)
void add_number(JsonBuilder* b, double value) {
  if (std::isfinite(value))
    json_builder_add_double_value(b, value);
  else
    json_builder_add_null_value(b);
}

void add_int(JsonBuilder* b, int64_t value) { json_builder_add_int_value(b, value); }

// "name": value, as one member of the object being built.
void member_string(JsonBuilder* b, const std::string& name, const std::string& text) {
  key(b, name);
  add_string(b, text);
}

void member_number(JsonBuilder* b, const std::string& name, double value) {
  key(b, name);
  add_number(b, value);
}

void member_int(JsonBuilder* b, const std::string& name, int64_t value) {
  key(b, name);
  add_int(b, value);
}

void member_bool(JsonBuilder* b, const std::string& name, bool value) {
  key(b, name);
  json_builder_add_boolean_value(b, value);
}

void add_item_members(JsonBuilder* b, const Item& item, bool thumbnail_url) {
  member_int(b, "id", item.id);
  member_int(b, "label", item.label);
  member_string(b, "label_name", item.label_name);
  member_string(b, "source", item.source);
  if (thumbnail_url) {
    member_string(b, "thumbnail", "/api/items/" + std::to_string(item.id) + "/thumbnail");
  }
}

void add_item(JsonBuilder* b, const Item& item) {
  json_builder_begin_object(b);
  add_item_members(b, item, true);
  json_builder_end_object(b);
}

// {"<k>": value} for each k.
void add_per_k(JsonBuilder* b, const std::vector<int>& ks, const std::vector<double>& values) {
  json_builder_begin_object(b);
  for (size_t j = 0; j < ks.size(); ++j) member_number(b, std::to_string(ks[j]), values[j]);
  json_builder_end_object(b);
}

void add_figures_members(JsonBuilder* b, const std::vector<int>& ks, const RetrievalFigures& f) {
  member_int(b, "queries", f.queries);
  member_int(b, "queries_with_relevant", f.queries_with_relevant);
  key(b, "precision");
  add_per_k(b, ks, f.precision);
  key(b, "recall");
  add_per_k(b, ks, f.recall);
  key(b, "map");
  add_per_k(b, ks, f.map);
  key(b, "weighted_precision");
  add_per_k(b, ks, f.weighted_precision);
  member_number(b, "mrr", f.mrr);
  member_number(b, "accuracy", f.accuracy);
}

}  // namespace

Item item_of(const vs::CatalogItem& item) {
  return Item{item.id, item.label, item.label_name, item.source};
}

Neighbor scored(const Item& item, unsigned rank, vs::Metric metric, double score) {
  return Neighbor{item, rank, vs::distance_of(metric, score), vs::similarity_of(metric, score)};
}

std::vector<Neighbor> neighbors_of(const GstVisualSearchNeighborsMeta* meta) {
  const vs::Metric metric =
      meta->metric == GST_VISUALSEARCH_METRIC_L2 ? vs::Metric::L2 : vs::Metric::InnerProduct;
  std::vector<Neighbor> out;
  for (guint i = 0; i < meta->n_neighbors; i++) {
    const GstVisualSearchNeighbor& n = meta->neighbors[i];
    out.push_back(
        scored(Item{n.id, n.label, n.label_name ? n.label_name : "", n.source ? n.source : ""},
               i + 1, metric, n.distance));
  }
  return out;
}

std::vector<Region> regions_of(GstBuffer* buffer) {
  std::vector<Region> out;
  gpointer iter = nullptr;
  while (GstMeta* meta = gst_buffer_iterate_meta_filtered(
             buffer, &iter, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    GstVisualSearchMetric metric;
    guint n = 0;
    if (!gst_visualsearch_region_get_neighbors_info(roi, &metric, &n)) continue;
    Region region;
    region.roi_id = roi->id;
    region.roi_type = g_quark_to_string(roi->roi_type);
    region.x = roi->x;
    region.y = roi->y;
    region.w = roi->w;
    region.h = roi->h;
    region.metric = gst_visualsearch_metric_to_string(metric);
    const vs::Metric m =
        metric == GST_VISUALSEARCH_METRIC_L2 ? vs::Metric::L2 : vs::Metric::InnerProduct;
    for (guint i = 0; i < n; i++) {
      Item item;
      gfloat distance = 0;
      const gchar* label_name = nullptr;
      const gchar* source = nullptr;
      if (!gst_visualsearch_region_get_neighbor(roi, i, &item.id, &distance, &item.label,
                                                &label_name, &source))
        break;
      item.label_name = label_name ? label_name : "";
      item.source = source ? source : "";
      region.neighbors.push_back(scored(item, i + 1, m, distance));
    }
    out.push_back(std::move(region));
  }
  return out;
}

void add_neighbor_list(JsonBuilder* b, const std::vector<Neighbor>& neighbors,
                       bool thumbnail_urls) {
  json_builder_begin_array(b);
  for (const Neighbor& n : neighbors) {
    json_builder_begin_object(b);
    add_item_members(b, n.item, thumbnail_urls);
    member_int(b, "rank", n.rank);
    member_number(b, "distance", n.distance);
    member_number(b, "similarity", n.similarity);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
}

std::string error_body(int status, const std::string& message) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  member_string(b, "error", message);
  member_int(b, "status", status);
  json_builder_end_object(b);
  return d.text();
}

std::string item_answer(const Item& item) {
  Document d;
  add_item(d.builder(), item);
  return d.text();
}

std::string items_page(std::optional<int> label, int64_t total, int64_t offset, int64_t limit,
                       const std::vector<Item>& items) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  key(b, "label");
  if (label)
    add_int(b, *label);
  else
    json_builder_add_null_value(b);
  member_int(b, "total", total);
  member_int(b, "offset", offset);
  member_int(b, "limit", limit);
  key(b, "items");
  json_builder_begin_array(b);
  for (const Item& item : items) add_item(b, item);
  json_builder_end_array(b);
  json_builder_end_object(b);
  return d.text();
}

namespace {
void add_regions(JsonBuilder* b, const std::vector<Region>& regions, bool thumbnail_urls);
}  // namespace

std::string search_answer(int width, int height, unsigned k, const std::string& metric,
                          const std::vector<Neighbor>& neighbors, const SearchTimings& timings,
                          const std::vector<Region>* regions, const std::string& message) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  key(b, "query");
  json_builder_begin_object(b);
  member_int(b, "width", width);
  member_int(b, "height", height);
  json_builder_end_object(b);
  member_int(b, "k", k);
  member_string(b, "metric", metric);
  key(b, "neighbors");
  add_neighbor_list(b, neighbors, true);
  if (regions) {
    key(b, "regions");
    add_regions(b, *regions, true);
    if (!message.empty()) member_string(b, "message", message);
  }
  key(b, "timings");
  json_builder_begin_object(b);
  member_number(b, "decode_ms", timings.decode_ms);
  member_number(b, "queued_ms", timings.queued_ms);
  member_number(b, "embed_search_ms", timings.embed_search_ms);
  member_int(b, "batch", timings.batch);
  member_number(b, "total_ms", timings.total_ms);
  json_builder_end_object(b);
  json_builder_end_object(b);
  return d.text();
}

std::string similar_answer(const Item& item, unsigned k, const std::string& metric,
                           const std::vector<Neighbor>& neighbors) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  key(b, "item");
  add_item(b, item);
  member_int(b, "k", k);
  member_string(b, "metric", metric);
  key(b, "neighbors");
  add_neighbor_list(b, neighbors, true);
  json_builder_end_object(b);
  return d.text();
}

std::string index_answer(const vs::IndexFacts& facts, const ServerFacts& server,
                         const std::vector<LabelCount>& labels) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  member_string(b, "index", server.index);
  member_string(b, "model", facts.model_id);
  member_bool(b, "random_weights", vs::has_random_weights(facts.model_id));
  member_string(b, "preprocessing", facts.preprocessing_id);
  member_int(b, "dims", facts.dims);
  member_string(b, "metric", facts.metric);
  member_string(b, "index_type", facts.index_type);
  member_int(b, "count", facts.count);
  member_string(b, "created", facts.created);
  member_bool(b, "thumbnails", server.thumbnails);
  member_bool(b, "live", server.live);
  member_bool(b, "subscribe", server.subscribe);
  member_int(b, "k_default", server.k_default);
  member_int(b, "k_max", server.k_max);
  key(b, "roi_types");
  if (server.roi_types.empty())
    json_builder_add_null_value(b);
  else
    add_string(b, server.roi_types);
  key(b, "labels");
  json_builder_begin_array(b);
  for (const LabelCount& l : labels) {
    json_builder_begin_object(b);
    member_int(b, "label", l.label);
    member_string(b, "label_name", l.label_name);
    member_int(b, "count", l.count);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  return d.text();
}

std::string live_event(uint64_t frame, std::optional<uint64_t> pts_ms, const std::string& metric,
                       const std::vector<Neighbor>& neighbors, const std::vector<Region>* regions,
                       int width, int height) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  member_int(b, "frame", static_cast<int64_t>(frame));
  key(b, "pts_ms");
  if (pts_ms)
    add_int(b, static_cast<int64_t>(*pts_ms));
  else
    json_builder_add_null_value(b);
  member_string(b, "metric", metric);
  key(b, "neighbors");
  add_neighbor_list(b, neighbors, true);
  if (regions) {
    member_int(b, "width", width);
    member_int(b, "height", height);
    key(b, "regions");
    add_regions(b, *regions, true);
  }
  json_builder_end_object(b);
  return d.text();
}

namespace {

void add_embedding(JsonBuilder* b, const GstVisualSearchEmbeddingMeta* e,
                   EmbeddingEncoding encoding) {
  json_builder_begin_object(b);
  member_int(b, "dims", e->dims);
  member_string(b, "model", e->model_id ? e->model_id : "");
  member_string(b, "preprocessing", e->preprocessing_id ? e->preprocessing_id : "");
  member_bool(b, "normalized", e->normalized);
  if (encoding == EmbeddingEncoding::Base64) {
    std::vector<guint32> little(e->dims);
    for (guint i = 0; i < e->dims; i++) {
      guint32 bits;
      static_assert(sizeof bits == sizeof e->values[i]);
      memcpy(&bits, &e->values[i], sizeof bits);
      little[i] = GUINT32_TO_LE(bits);
    }
    gchar* text =
        g_base64_encode(reinterpret_cast<const guchar*>(little.data()), little.size() * 4);
    key(b, "base64");
    json_builder_add_string_value(b, text);
    g_free(text);
  } else {
    key(b, "values");
    json_builder_begin_array(b);
    for (guint i = 0; i < e->dims; i++) add_number(b, e->values[i]);
    json_builder_end_array(b);
  }
  json_builder_end_object(b);
}

void add_regions(JsonBuilder* b, const std::vector<Region>& regions, bool thumbnail_urls) {
  json_builder_begin_array(b);
  for (const Region& r : regions) {
    json_builder_begin_object(b);
    member_int(b, "roi_id", r.roi_id);
    member_string(b, "roi_type", r.roi_type);
    member_int(b, "x", r.x);
    member_int(b, "y", r.y);
    member_int(b, "w", r.w);
    member_int(b, "h", r.h);
    member_string(b, "metric", r.metric);
    key(b, "neighbors");
    add_neighbor_list(b, r.neighbors, thumbnail_urls);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
}

}  // namespace

std::string published_result(const PublishedResult& r) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  member_string(b, "schema", "visualsearch-result/1");
  member_string(b, "source", r.source);
  member_int(b, "frame", static_cast<int64_t>(r.frame));
  key(b, "pts");
  if (r.pts)
    add_int(b, static_cast<int64_t>(*r.pts));
  else
    json_builder_add_null_value(b);
  key(b, "wall_time");
  GDateTime* whole = g_date_time_new_from_unix_utc(r.wall_time_us / G_USEC_PER_SEC);
  GDateTime* t = whole ? g_date_time_add(whole, r.wall_time_us % G_USEC_PER_SEC) : nullptr;
  if (whole) g_date_time_unref(whole);
  gchar* iso = t ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%S.%fZ") : nullptr;
  if (iso)
    add_string(b, iso);
  else
    json_builder_add_null_value(b);
  g_free(iso);
  if (t) g_date_time_unref(t);
  member_int(b, "wall_time_us", r.wall_time_us);
  if (r.sample) {
    key(b, "sample");
    json_builder_begin_object(b);
    add_item_members(b, *r.sample, false);
    json_builder_end_object(b);
  }
  if (r.has_neighbors) {
    member_string(b, "metric", r.metric);
    key(b, "neighbors");
    add_neighbor_list(b, r.neighbors, false);
  }
  if (r.embedding && r.encoding != EmbeddingEncoding::None) {
    key(b, "embedding");
    add_embedding(b, r.embedding, r.encoding);
  }
  if (!r.regions.empty()) {
    key(b, "regions");
    add_regions(b, r.regions, false);
  }
  json_builder_end_object(b);
  return d.text();
}

namespace {

// Members of a document read back; each false (*why set) when the member is
// missing or of another type.
bool member_node(JsonObject* o, const char* name, JsonNodeType type, JsonNode** node,
                 std::string* why) {
  *node = json_object_has_member(o, name) ? json_object_get_member(o, name) : nullptr;
  if (!*node || JSON_NODE_TYPE(*node) != type) {
    *why = std::string("\"") + name + "\" is missing or not " +
           (type == JSON_NODE_OBJECT  ? "an object"
            : type == JSON_NODE_ARRAY ? "an array"
                                      : "a value");
    return false;
  }
  return true;
}

bool read_int(JsonObject* o, const char* name, int64_t* out, std::string* why) {
  JsonNode* n = nullptr;
  if (!member_node(o, name, JSON_NODE_VALUE, &n, why)) return false;
  if (json_node_get_value_type(n) != G_TYPE_INT64) {
    *why = std::string("\"") + name + "\" is not an integer";
    return false;
  }
  *out = json_node_get_int(n);
  return true;
}

bool read_string(JsonObject* o, const char* name, std::string* out, std::string* why) {
  JsonNode* n = nullptr;
  if (!member_node(o, name, JSON_NODE_VALUE, &n, why)) return false;
  if (json_node_get_value_type(n) != G_TYPE_STRING) {
    *why = std::string("\"") + name + "\" is not a string";
    return false;
  }
  *out = json_node_get_string(n);
  return true;
}

// A number, or null for one that is not finite (as add_number writes it).
bool read_number(JsonObject* o, const char* name, double* out, std::string* why) {
  JsonNode* n = json_object_has_member(o, name) ? json_object_get_member(o, name) : nullptr;
  if (n && JSON_NODE_HOLDS_NULL(n)) {
    *out = NAN;
    return true;
  }
  const GType t = n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_value_type(n) : G_TYPE_INVALID;
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE) {
    *why = std::string("\"") + name + "\" is missing or not a number";
    return false;
  }
  *out = json_node_get_double(n);
  return true;
}

bool read_item(JsonObject* o, Item* item, std::string* why) {
  int64_t label = 0;
  if (!read_int(o, "id", &item->id, why) || !read_int(o, "label", &label, why) ||
      !read_string(o, "label_name", &item->label_name, why) ||
      !read_string(o, "source", &item->source, why))
    return false;
  if (label < INT32_MIN || label > INT32_MAX) {
    *why = "\"label\" is out of range";
    return false;
  }
  item->label = static_cast<int>(label);
  return true;
}

// "neighbors": a neighbour list as add_neighbor_list writes it.
bool read_neighbors(JsonObject* o, std::vector<Neighbor>* out, std::string* why) {
  JsonNode* n = nullptr;
  if (!member_node(o, "neighbors", JSON_NODE_ARRAY, &n, why)) return false;
  JsonArray* list = json_node_get_array(n);
  for (guint i = 0; i < json_array_get_length(list); ++i) {
    JsonNode* e = json_array_get_element(list, i);
    Neighbor neighbor;
    int64_t rank = 0;
    if (!JSON_NODE_HOLDS_OBJECT(e)) {
      *why = "neighbour " + std::to_string(i) + " is not an object";
      return false;
    }
    JsonObject* eo = json_node_get_object(e);
    if (!read_item(eo, &neighbor.item, why) || !read_int(eo, "rank", &rank, why) ||
        !read_number(eo, "distance", &neighbor.distance, why) ||
        !read_number(eo, "similarity", &neighbor.similarity, why)) {
      *why = "neighbour " + std::to_string(i) + ": " + *why;
      return false;
    }
    neighbor.rank = static_cast<unsigned>(std::clamp<int64_t>(rank, 0, UINT32_MAX));
    out->push_back(std::move(neighbor));
  }
  return true;
}

// "regions": the boxes and neighbours of published_result's regions.
bool read_regions(JsonObject* o, std::vector<Region>* out, std::string* why) {
  JsonNode* n = nullptr;
  if (!member_node(o, "regions", JSON_NODE_ARRAY, &n, why)) return false;
  JsonArray* list = json_node_get_array(n);
  for (guint i = 0; i < json_array_get_length(list); ++i) {
    JsonNode* e = json_array_get_element(list, i);
    const std::string where = "region " + std::to_string(i);
    if (!JSON_NODE_HOLDS_OBJECT(e)) {
      *why = where + " is not an object";
      return false;
    }
    JsonObject* ro = json_node_get_object(e);
    Region region;
    int64_t id = 0;
    int64_t box[4] = {0, 0, 0, 0};
    const char* names[4] = {"x", "y", "w", "h"};
    bool ok =
        read_int(ro, "roi_id", &id, why) && read_string(ro, "roi_type", &region.roi_type, why);
    for (int k = 0; ok && k < 4; k++) {
      ok = read_int(ro, names[k], &box[k], why);
      if (ok && (box[k] < 0 || box[k] > UINT32_MAX)) {
        *why = std::string("\"") + names[k] + "\" is out of range";
        ok = false;
      }
    }
    ok = ok && read_string(ro, "metric", &region.metric, why) &&
         read_neighbors(ro, &region.neighbors, why);
    if (!ok || id < INT32_MIN || id > INT32_MAX) {
      *why = where + ": " + (ok ? "\"roi_id\" is out of range" : *why);
      return false;
    }
    region.roi_id = static_cast<int>(id);
    region.x = static_cast<unsigned>(box[0]);
    region.y = static_cast<unsigned>(box[1]);
    region.w = static_cast<unsigned>(box[2]);
    region.h = static_cast<unsigned>(box[3]);
    out->push_back(std::move(region));
  }
  return true;
}

bool read_result(JsonObject* o, PublishedResult* r, std::string* why) {
  std::string schema;
  if (!read_string(o, "schema", &schema, why)) return false;
  if (schema != "visualsearch-result/1") {
    *why = "schema \"" + schema + "\" is not visualsearch-result/1";
    return false;
  }
  int64_t frame = 0;
  if (!read_string(o, "source", &r->source, why) || !read_int(o, "frame", &frame, why) ||
      !read_int(o, "wall_time_us", &r->wall_time_us, why))
    return false;
  if (frame < 0) {
    *why = "\"frame\" is negative";
    return false;
  }
  r->frame = static_cast<uint64_t>(frame);
  JsonNode* pts = json_object_has_member(o, "pts") ? json_object_get_member(o, "pts") : nullptr;
  if (pts && !JSON_NODE_HOLDS_NULL(pts)) {
    int64_t value = 0;
    if (!read_int(o, "pts", &value, why)) return false;
    if (value >= 0) r->pts = static_cast<uint64_t>(value);
  }
  JsonNode* n = nullptr;
  if (json_object_has_member(o, "sample")) {
    if (!member_node(o, "sample", JSON_NODE_OBJECT, &n, why)) return false;
    Item sample;
    if (!read_item(json_node_get_object(n), &sample, why)) {
      *why = "sample: " + *why;
      return false;
    }
    r->sample = sample;
  }
  if (json_object_has_member(o, "regions") && !read_regions(o, &r->regions, why)) return false;
  if (!json_object_has_member(o, "neighbors")) return true;
  r->has_neighbors = true;
  return read_string(o, "metric", &r->metric, why) && read_neighbors(o, &r->neighbors, why);
}

}  // namespace

std::optional<PublishedResult> parse_published_result(const std::string& text, std::string* why) {
  JsonParser* parser = json_parser_new();
  GError* error = nullptr;
  std::optional<PublishedResult> out;
  if (!json_parser_load_from_data(parser, text.data(), static_cast<gssize>(text.size()), &error)) {
    *why = std::string("not JSON: ") + error->message;
    g_clear_error(&error);
  } else if (JsonNode* root = json_parser_get_root(parser);
             !root || !JSON_NODE_HOLDS_OBJECT(root)) {
    *why = "not a JSON object";
  } else {
    PublishedResult r;
    if (read_result(json_node_get_object(root), &r, why)) out = std::move(r);
  }
  g_object_unref(parser);
  return out;
}

std::string sources_answer(const FeedFacts& feed, const std::vector<SourceLatest>& sources) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  member_string(b, "schema", "visualsearch-sources/1");
  member_string(b, "broker", feed.broker);
  member_string(b, "topic", feed.topic);
  member_bool(b, "connected", feed.connected);
  member_int(b, "received", static_cast<int64_t>(feed.received));
  member_int(b, "rejected", static_cast<int64_t>(feed.rejected));
  key(b, "last_rejection");
  if (feed.last_rejection.empty())
    json_builder_add_null_value(b);
  else
    add_string(b, feed.last_rejection);
  key(b, "sources");
  json_builder_begin_array(b);
  for (const SourceLatest& s : sources) {
    const PublishedResult& r = s.result;
    json_builder_begin_object(b);
    member_string(b, "source", r.source);
    member_int(b, "messages", static_cast<int64_t>(s.messages));
    member_int(b, "received_us", s.received_us);
    member_int(b, "frame", static_cast<int64_t>(r.frame));
    key(b, "pts");
    if (r.pts)
      add_int(b, static_cast<int64_t>(*r.pts));
    else
      json_builder_add_null_value(b);
    member_int(b, "wall_time_us", r.wall_time_us);
    if (r.sample) {
      key(b, "sample");
      json_builder_begin_object(b);
      add_item_members(b, *r.sample, false);
      json_builder_end_object(b);
    }
    key(b, "metric");
    if (r.has_neighbors)
      add_string(b, r.metric);
    else
      json_builder_add_null_value(b);
    key(b, "neighbors");
    json_builder_begin_array(b);
    for (size_t i = 0; i < r.neighbors.size(); ++i) {
      const Neighbor& n = r.neighbors[i];
      json_builder_begin_object(b);
      add_item_members(b, n.item, i < s.in_gallery.size() && s.in_gallery[i]);
      member_int(b, "rank", n.rank);
      member_number(b, "distance", n.distance);
      member_number(b, "similarity", n.similarity);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    if (!r.regions.empty()) {
      key(b, "regions");
      add_regions(b, r.regions, false);
    }
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  return d.text();
}

std::string retrieval_metrics(const vs::RetrievalSummary& summary, uint64_t skipped,
                              const std::string& catalog, uint64_t gallery_items) {
  Document d;
  JsonBuilder* b = d.builder();
  json_builder_begin_object(b);
  member_string(b, "schema", "visualsearch-retrieval-metrics/1");
  member_int(b, "skipped", static_cast<int64_t>(skipped));
  member_string(b, "catalog", catalog);
  member_int(b, "gallery_items", static_cast<int64_t>(gallery_items));
  member_bool(b, "exclude_self", summary.exclude_self);
  key(b, "k");
  json_builder_begin_array(b);
  for (const int k : summary.ks) add_int(b, k);
  json_builder_end_array(b);
  add_figures_members(b, summary.ks, summary.overall);
  key(b, "per_class");
  json_builder_begin_object(b);
  for (const ClassFigures& cls : summary.per_class) {
    key(b, class_key(cls));
    json_builder_begin_object(b);
    member_int(b, "label", cls.label);
    add_figures_members(b, summary.ks, cls.figures);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  return d.text(true);
}

}  // namespace vs::json
