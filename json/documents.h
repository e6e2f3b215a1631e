/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The JSON documents the project writes, one function per document kind, so
// that each schema is written once. Built with json-glib: strings are escaped
// by the library and made valid UTF-8 first (vs::valid_utf8); numbers that
// are not finite, which JSON lacks, are written as null.
//
// Every document that lists neighbours shares one shape (add_neighbor_list):
// the server's search and "more like this" answers, its live events, and
// whatever publishes a frame's neighbours.
#pragma once

#include <gst/visualsearch/visualsearchmeta.h>
#include <json-glib/json-glib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/eval/retrieval_metrics.h"
#include "engine/index/catalog.h"
#include "engine/index/index_store.h"

namespace vs::json {

// One gallery item: {"id", "label", "label_name", "source", "thumbnail"}, the
// thumbnail being the server's URL of it (left out without thumbnail_urls).
struct Item {
  int64_t id = -1;
  int label = -1;
  std::string label_name;
  std::string source;
};

// An item found for a query: the item's members, then "rank" (1 for the
// nearest), "distance" (smaller is closer) and "similarity" (larger is
// closer), as vs::distance_of and vs::similarity_of make them of the score.
struct Neighbor {
  Item item;
  unsigned rank = 0;
  double distance = 0;
  double similarity = 0;
};

// A neighbour of the FAISS score score in an index of metric.
Neighbor scored(const Item& item, unsigned rank, vs::Metric metric, double score);

Item item_of(const vs::CatalogItem& item);

// The neighbours a GstVisualSearchNeighborsMeta carries, ranked from 1, their
// scores made distances and similarities.
std::vector<Neighbor> neighbors_of(const GstVisualSearchNeighborsMeta* meta);

// Adds the neighbour list, a JSON array of neighbours, as the value the
// builder expects next.
void add_neighbor_list(JsonBuilder* builder, const std::vector<Neighbor>& neighbors,
                       bool thumbnail_urls);

// --- visualsearch-server ----------------------------------------------------

// An error answer: {"error": message, "status": status}.
std::string error_body(int status, const std::string& message);

// GET /api/items/{id}: the item with its thumbnail URL.
std::string item_answer(const Item& item);

// GET /api/items: one page of the gallery, {"label" (null for every label),
// "total" (items of that label), "offset", "limit", "items": [item, ...]}.
std::string items_page(std::optional<int> label, int64_t total, int64_t offset, int64_t limit,
                       const std::vector<Item>& items);

struct SearchTimings {
  double decode_ms = 0;
  double queued_ms = 0;
  double embed_search_ms = 0;
  unsigned batch = 0;
  double total_ms = 0;
};

struct Region;

// POST /api/search: {"query": {"width", "height"}, "k", "metric", "neighbors",
// ["regions": [{"roi_id", "roi_type", "x", "y", "w", "h", "metric",
// "neighbors"}], "message"], "timings": {"decode_ms", "queued_ms",
// "embed_search_ms", "batch", "total_ms"}}. With regions (an index of
// regions: the picture searched region by region, boxes in the pixels of the
// searched picture, "query"), "neighbors" is empty and "message", when not
// empty, says why there is no region.
std::string search_answer(int width, int height, unsigned k, const std::string& metric,
                          const std::vector<Neighbor>& neighbors, const SearchTimings& timings,
                          const std::vector<Region>* regions = nullptr,
                          const std::string& message = "");

// GET /api/items/{id}/similar: {"item", "k", "metric", "neighbors"}.
std::string similar_answer(const Item& item, unsigned k, const std::string& metric,
                           const std::vector<Neighbor>& neighbors);

struct LabelCount {
  int label = -1;
  std::string label_name;
  int64_t count = 0;
};

struct ServerFacts {
  std::string index;  // the index file served
  bool thumbnails = false;
  bool live = false;
  bool subscribe = false;  // --subscribe: GET /api/sources answers
  unsigned k_default = 0;
  unsigned k_max = 0;
  std::string roi_types;  // an index of regions: the embedder's roi-types
};

// GET /api/index: {"index", "model", "random_weights" (the model id names
// random weights: scores mean nothing), "preprocessing", "dims", "metric",
// "index_type", "count", "created", "thumbnails", "live", "subscribe", "k_default",
// "k_max", "roi_types" (null for an index of whole frames), "labels": [{"label",
// "label_name", "count"}]}.
std::string index_answer(const vs::IndexFacts& facts, const ServerFacts& server,
                         const std::vector<LabelCount>& labels);

// The data of a live "neighbors" event: {"frame", "pts_ms" (null without a
// timestamp), "metric", "neighbors", ["width", "height", "regions"]}; with
// regions (an index of regions), the frame's size and its regions as
// search_answer lists them, boxes in frame pixels, "neighbors" empty.
std::string live_event(uint64_t frame, std::optional<uint64_t> pts_ms, const std::string& metric,
                       const std::vector<Neighbor>& neighbors,
                       const std::vector<Region>* regions = nullptr, int width = 0, int height = 0);

// --- metapublish ------------------------------------------------------------

// A detected region of a frame with the neighbours faisssearch found for it
// (its GstVideoRegionOfInterestMeta's visualsearch-neighbors parameter).
struct Region {
  int roi_id = 0;
  std::string roi_type;
  unsigned x = 0, y = 0, w = 0, h = 0;  // the detector's box, in frame pixels
  std::string metric;                   // "ip" or "l2"
  std::vector<Neighbor> neighbors;
};

// The regions of buffer that carry neighbours, in meta order.
std::vector<Region> regions_of(GstBuffer* buffer);

// How metapublish writes a frame's embedding.
enum class EmbeddingEncoding { None, Base64, Array };

// One frame's results as metapublish publishes them.
struct PublishedResult {
  std::string source;           // the stream's name (metapublish's source-name)
  uint64_t frame = 0;           // frames published before this one, in this run
  std::optional<uint64_t> pts;  // nanoseconds; unset without a timestamp
  int64_t wall_time_us = 0;     // microseconds since the Unix epoch, UTC
  std::optional<Item> sample;   // the frame's own item (GstVisualSearchSampleMeta)
  bool has_neighbors = false;   // a GstVisualSearchNeighborsMeta was there
  std::string metric;           // its metric ("ip" or "l2")
  std::vector<Neighbor> neighbors;
  const GstVisualSearchEmbeddingMeta* embedding = nullptr;  // written when set
  EmbeddingEncoding encoding = EmbeddingEncoding::None;
  std::vector<Region> regions;  // written when not empty
};

// metapublish's document, one line, schema "visualsearch-result/1":
// {"schema", "source", "frame", "pts" (ns, null without a timestamp),
//  "wall_time" (ISO 8601 UTC, microseconds), "wall_time_us",
//  ["sample": {"id", "label", "label_name", "source"}],
//  ["metric", "neighbors"], ["embedding": {"dims", "model", "preprocessing",
//  "normalized", "base64" (float32 little-endian bytes) | "values"}],
//  ["regions": [{"roi_id", "roi_type", "x", "y", "w", "h", "metric",
//  "neighbors"}]]}. "regions" is optional (added within schema 1: readers
//  that do not know it read the rest as before).
std::string published_result(const PublishedResult& result);

// --- visualsearch-server --subscribe ----------------------------------------

// A "visualsearch-result/1" document read back, as published_result writes
// it; nullopt, *why saying what is wrong, for any other text. The embedding
// is not read (result.embedding stays null); regions are, when present.
std::optional<PublishedResult> parse_published_result(const std::string& text, std::string* why);

// The latest result of one source a server subscribes to.
struct SourceLatest {
  PublishedResult result;
  std::vector<bool> in_gallery;  // per neighbour: the served gallery holds that item
  uint64_t messages = 0;         // results received from the source
  int64_t received_us = 0;       // when the latest arrived, microseconds since the epoch
};

struct FeedFacts {
  std::string broker;  // host:port
  std::string topic;   // the topic filter
  bool connected = false;
  uint64_t received = 0;  // messages accepted
  uint64_t rejected = 0;  // messages that are no visualsearch-result/1 document
  std::string last_rejection;
};

// GET /api/sources, schema "visualsearch-sources/1": {"schema", "broker",
// "topic", "connected", "received", "rejected", "last_rejection" (null for
// none), "sources": [{"source", "messages", "received_us", "frame", "pts",
// "wall_time_us", ["sample"], "metric", "neighbors", ["regions"]}]}, sources by name; a
// neighbour the served gallery holds has its "thumbnail" URL.
std::string sources_answer(const FeedFacts& feed, const std::vector<SourceLatest>& sources);

// --- retrievaleval ----------------------------------------------------------

// retrievaleval's output, indented, schema "visualsearch-retrieval-metrics/1":
// {"schema", "skipped", "catalog", "gallery_items", "exclude_self", "k": [..],
//  "queries", "queries_with_relevant", "precision": {"<k>": x}, "recall",
//  "map", "weighted_precision", "mrr", "accuracy", "per_class": {"<label name
//  or number>": {"label", "queries", "queries_with_relevant", "precision",
//  "recall", "map", "weighted_precision", "mrr", "accuracy"}}}.
std::string retrieval_metrics(const vs::RetrievalSummary& summary, uint64_t skipped,
                              const std::string& catalog, uint64_t gallery_items);

}  // namespace vs::json
