// SPDX-License-Identifier: LGPL-2.1-or-later
// visualsearch-server: a web page and a JSON API in front of the plugin's
// elements. The model is loaded once; every query is embedded through a
// pipeline (server/search_service.h) and searched in the gallery served, which
// follows the index on disk when an indexer replaces it. docs/server.md
// documents the API.
#include <gst/gst.h>
#include <libsoup/soup.h>
#include <opencv2/core.hpp>

#include <sys/socket.h>
#include <sys/stat.h>

#include <glib-unix.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/atomic_file.h"
#include "engine/base/image_codec.h"
#include "engine/base/image_header.h"
#include "engine/dataset/cifar_dataset.h"
#include "engine/index/catalog.h"
#include "engine/index/gallery.h"
#include "engine/index/gallery_reload.h"
#include "engine/index/index_store.h"
#include "engine/model/embedding_engine.h"
#include "engine/render/thumbnail_cache.h"
#include "json/documents.h"
#include "server/early_answer.h"
#include "server/http_util.h"
#include "server/live_camera.h"
#include "server/memory_budget.h"
#include "server/search_service.h"
#include "server/source_feed.h"

namespace {

using namespace vs::server;
using Clock = std::chrono::steady_clock;

struct Settings {
  std::string index;
  int port = 8080;
  std::string bind = "127.0.0.1";
  std::string camera = "none";
  std::string detector;  // --detector: finds the regions of an index of regions
  std::string token;
  std::string web_root;
  std::string gallery;  // root of file sources, for items without a thumbnail
  std::string dataset;  // CIFAR folder, for items without a thumbnail
  int64_t max_upload = 20 << 20;
  uint64_t max_pixels = 50'000'000;
  unsigned k_default = 10;
  unsigned k_max = 100;
  unsigned batch_size = 16;
  unsigned idle_timeout = 60;       // seconds a connection may stay silent
  unsigned request_timeout = 120;   // seconds a request may take to arrive whole
  uint64_t queue_bytes = 48 << 20;  // uploads and decoded queries waiting, together
  int query_side = 512;             // queries are shrunk to this shorter side
  std::string roi_types;            // the index's: "" for an index of whole frames
  std::optional<SubscribeUrl> subscribe;
};

// The gallery served and what is derived from it, replaced whole when an
// indexer replaces the index on disk (follow_gallery); a request holds the one
// it started with until it is answered.
struct Served {
  std::shared_ptr<const vs::Gallery> gallery;
  std::string gallery_root;  // where originals are read: --gallery, or the catalog's folder
  std::string index_json;    // GET /api/index
  std::string ids_text;      // which ids there are, for a 404
  // GET /api/items: every item by label, then id; and each label's by id.
  std::vector<const vs::CatalogItem*> by_label;
  std::map<int, std::vector<const vs::CatalogItem*>> of_label;
};

struct App {
  Settings settings;
  std::shared_ptr<const Served> served;  // under served_mutex
  std::mutex served_mutex;
  std::unique_ptr<vs::GalleryReload> reload;  // main loop only
  std::unique_ptr<QueryPipeline> queries;
  std::unique_ptr<LiveCamera> live;
  std::unique_ptr<SourceFeed> feed;  // --subscribe
  std::mutex thumbnails_mutex;
  std::unique_ptr<vs::ThumbnailCache> thumbnail_cache;
  // Thumbnails made from originals, by item id, the oldest first out; touched
  // on the main loop only.
  std::map<int64_t, std::vector<uint8_t>> made_thumbnails;
  std::deque<int64_t> made_order;
  GThreadPool* workers = nullptr;
  std::unique_ptr<MemoryBudget> queue;        // see Settings::queue_bytes
  std::unique_ptr<MemoryBudget> decode_gate;  // full-size pictures being decoded
};

constexpr size_t kMadeThumbnails = 1024;              // about 5 KB each
constexpr int64_t kPageDefault = 60, kPageMax = 500;  // items per GET /api/items
constexpr int64_t kOriginalMax = int64_t(256) << 20;  // the largest original served
// How often the index file is looked at, and how long a replaced one must
// keep still before it is loaded (vs::GalleryReload).
constexpr guint kReloadPoll = 250;  // ms
constexpr std::chrono::milliseconds kReloadSettleTime(200);
constexpr const char* kUploadShare = "vs-upload-share";
constexpr const char* kDeadline = "vs-deadline";

App* app = nullptr;

// The gallery served now; any thread.
std::shared_ptr<const Served> served() {
  std::lock_guard<std::mutex> lock(app->served_mutex);
  return app->served;
}

void set_security_headers(SoupServerMessage* msg) {
  SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(headers, "Content-Security-Policy",
                               "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' blob: data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  soup_message_headers_replace(headers, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace(headers, "Referrer-Policy", "no-referrer");
  soup_message_headers_replace(headers, "Cache-Control", "no-store");
}

void respond(SoupServerMessage* msg, int status, const char* type, const std::string& body) {
  set_security_headers(msg);
  soup_server_message_set_status(msg, status, nullptr);
  soup_server_message_set_response(msg, type, SOUP_MEMORY_COPY, body.data(), body.size());
}

void respond_json(SoupServerMessage* msg, int status, const std::string& json) {
  respond(msg, status, "application/json", json);
}

void respond_error(SoupServerMessage* msg, int status, const std::string& message) {
  respond_json(msg, status, vs::json::error_body(status, message));
}

std::string query_value(GHashTable* query, const char* key) {
  if (!query) return "";
  const char* value = static_cast<const char*>(g_hash_table_lookup(query, key));
  return value ? value : "";
}

// With --token, every API and live request carries it: "Authorization:
// Bearer TOKEN", or ?token=TOKEN where a browser cannot set headers (an
// <img> of the live stream, EventSource).
bool authorized(SoupServerMessage* msg, GHashTable* query) {
  if (app->settings.token.empty()) return true;
  const char* header =
      soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
  if (header && g_str_has_prefix(header, "Bearer ") && same_secret(header + 7, app->settings.token))
    return true;
  const std::string given = query_value(query, "token");
  return !given.empty() && same_secret(given, app->settings.token);
}

// The neighbours to show: k at most, at most max_distance away (a distance,
// smaller is closer, for both metrics: vs::distance_of), without the item
// exclude.
std::vector<vs::json::Neighbor> shown_neighbors(const vs::Gallery& gallery,
                                                const std::vector<vs::Neighbor>& neighbors,
                                                unsigned k, std::optional<double> max_distance,
                                                int64_t exclude = -1) {
  std::vector<vs::json::Neighbor> shown;
  for (const vs::Neighbor& n : neighbors) {
    if (n.id == exclude) continue;
    if (max_distance && vs::distance_of(gallery.metric(), n.distance) > *max_distance) continue;
    if (shown.size() == k) break;
    const vs::json::Item described = n.item ? vs::json::item_of(*n.item) : vs::json::Item{n.id};
    shown.push_back(vs::json::scored(described, static_cast<unsigned>(shown.size() + 1),
                                     gallery.metric(), n.distance));
  }
  return shown;
}

struct SearchArgs {
  unsigned k;
  std::optional<double> max_distance;
};

// k and max-distance from the query string; false after answering 400.
bool parse_search_args(SoupServerMessage* msg, GHashTable* query, SearchArgs* args) {
  args->k = app->settings.k_default;
  const std::string k = query_value(query, "k");
  if (!k.empty()) {
    const auto v = parse_int(k, 1, app->settings.k_max);
    if (!v) {
      respond_error(msg, 400,
                    "k must be a whole number from 1 to " + std::to_string(app->settings.k_max) +
                        ", not '" + k + "'");
      return false;
    }
    args->k = static_cast<unsigned>(*v);
  }
  const std::string d = query_value(query, "max-distance");
  if (!d.empty()) {
    args->max_distance = parse_double(d);
    if (!args->max_distance) {
      respond_error(msg, 400, "max-distance must be a number, not '" + d + "'");
      return false;
    }
  }
  return true;
}

// The picture of a search request: the body itself, or the first file of a
// multipart/form-data body.
GBytes* upload_bytes(SoupServerMessage* msg, std::string* error) {
  SoupMessageBody* body = soup_server_message_get_request_body(msg);
  GBytes* bytes = soup_message_body_flatten(body);
  const char* type =
      soup_message_headers_get_content_type(soup_server_message_get_request_headers(msg), nullptr);
  if (type && g_ascii_strcasecmp(type, "multipart/form-data") == 0) {
    SoupMultipart* multipart =
        soup_multipart_new_from_message(soup_server_message_get_request_headers(msg), bytes);
    g_bytes_unref(bytes);
    if (!multipart || soup_multipart_get_length(multipart) < 1) {
      if (multipart) soup_multipart_free(multipart);
      *error = "the multipart body holds no part; send the picture as its 'image' field";
      return nullptr;
    }
    SoupMessageHeaders* part_headers;
    GBytes* part;
    soup_multipart_get_part(multipart, 0, &part_headers, &part);
    GBytes* copy = g_bytes_ref(part);
    soup_multipart_free(multipart);
    return copy;
  }
  return bytes;
}

struct SearchJob;
struct SimilarJob;
struct ThumbnailJob;
struct OriginalJob;
// What the worker threads run: a search's decoding, a "more like this", a
// thumbnail made from an original, or an original read.
struct WorkItem {
  SearchJob* search = nullptr;
  SimilarJob* similar = nullptr;
  ThumbnailJob* thumbnail = nullptr;
  OriginalJob* original = nullptr;
};

// A 503 of a full queue: the queue drains within about a second.
void ask_to_retry(SoupServerMessage* msg) {
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After", "1");
}

// Answers a paused message from a worker thread, on the main loop.
void answer_later(SoupServerMessage* msg, int status, const char* type, std::string body,
                  bool retry = false) {
  run_on_main([msg, status, type, body = std::move(body), retry] {
    if (retry) ask_to_retry(msg);
    respond(msg, status, type, body);
    soup_server_message_unpause(msg);
    g_object_unref(msg);
  });
}

void answer_json_later(SoupServerMessage* msg, int status, std::string json, bool retry = false) {
  answer_later(msg, status, "application/json", std::move(json), retry);
}

std::string busy_message() {
  return "the server is busy: " + std::to_string(app->queue->limit() >> 20) +
         " MB of pictures are waiting to be searched; try again in a second";
}

// The bytes a picture takes at full size, as its header declares them; 0 for
// a header decode_image() refuses before decoding anything.
uint64_t full_size_bytes(const uint8_t* data, size_t size) {
  const vs::ImageHeader header = vs::read_image_header(data, size);
  if (!header.has_size() || header.width > app->settings.max_pixels / header.height) return 0;
  return header.width * header.height * 3;
}

// decode_image() shrunk to shorter_side; the full-size pictures of all
// decodes at once fit the decode gate, which makes a large one wait.
vs::RgbImage decode_shrunk(const uint8_t* data, size_t size, const std::string& name,
                           int shorter_side) {
  const MemoryBudget::Share decoding = app->decode_gate->take(full_size_bytes(data, size));
  return vs::decode_image(data, size, name, app->settings.max_pixels, shorter_side);
}

struct SearchJob {
  SoupServerMessage* msg;
  GBytes* bytes;
  SearchArgs args;
  Clock::time_point received;
  MemoryBudget::Share upload;   // the body's share of the queue
  MemoryBudget::Share decoded;  // the shrunk picture's, until it was searched
};

void finish_search(SearchJob* job, int status, std::string json, bool retry = false) {
  answer_json_later(job->msg, status, std::move(json), retry);
  delete job;
}

// On a worker thread: decode, then hand the picture to the query pipeline.
void run_search(SearchJob* job) {
  const Clock::time_point start = Clock::now();
  vs::RgbImage image;
  try {
    gsize size;
    const auto* data = static_cast<const uint8_t*>(g_bytes_get_data(job->bytes, &size));
    image = decode_shrunk(data, size, "the uploaded picture", app->settings.query_side);
  } catch (const vs::ImageError& e) {
    g_bytes_unref(job->bytes);
    const int status = e.reason() == vs::ImageError::Reason::TooLarge ? 413 : 400;
    finish_search(job, status, vs::json::error_body(status, e.what()));
    return;
  } catch (const std::exception& e) {
    g_bytes_unref(job->bytes);
    finish_search(job, 500, vs::json::error_body(500, e.what()));
    return;
  }
  g_bytes_unref(job->bytes);
  job->upload.reset();
  job->decoded = app->queue->try_take(image.pixels.size());
  if (!job->decoded.held()) {
    finish_search(job, 503, vs::json::error_body(503, busy_message()), true);
    return;
  }
  const int w = image.width, h = image.height;
  if (std::max(w, h) > vs::kMaxResizeAspect * std::min(w, h)) {
    finish_search(
        job, 400,
        vs::json::error_body(400, "the picture is " + std::to_string(w) + "x" + std::to_string(h) +
                                      ", more elongated than " +
                                      std::to_string(vs::kMaxResizeAspect) + ":1; crop it first"));
    return;
  }
  const double decode_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  app->queries->submit(std::move(image), [job, decode_ms, w, h](QueryResult result) {
    if (!result.error.empty()) {
      finish_search(job, 500, vs::json::error_body(500, result.error));
      return;
    }
    // The gallery served when the embedding came out: one replaced since the
    // upload arrived is searched already.
    const std::shared_ptr<const Served> now = served();
    const Clock::time_point search_start = Clock::now();
    std::vector<vs::Neighbor> found;
    const bool by_region = !app->settings.roi_types.empty();
    std::vector<vs::json::Region> regions;
    try {
      if (!by_region) {
        now->gallery->check_query(result.model_id.c_str(), result.preprocessing_id.c_str(),
                                  static_cast<int>(result.embedding.size()));
        now->gallery->search(result.embedding.data(), static_cast<int>(job->args.k), {},
                             std::nullopt, &found);
      }
      for (const QueryRegion& r : result.regions) {
        now->gallery->check_query(result.model_id.c_str(), result.preprocessing_id.c_str(),
                                  static_cast<int>(r.embedding.size()));
        std::vector<vs::Neighbor> hits;
        now->gallery->search(r.embedding.data(), static_cast<int>(job->args.k), {}, std::nullopt,
                             &hits);
        vs::json::Region region;
        region.roi_id = r.roi_id;
        region.roi_type = r.roi_type;
        region.x = r.x;
        region.y = r.y;
        region.w = r.w;
        region.h = r.h;
        region.metric = now->gallery->facts().metric;
        region.neighbors =
            shown_neighbors(*now->gallery, hits, job->args.k, job->args.max_distance);
        regions.push_back(std::move(region));
      }
    } catch (const std::exception& e) {
      finish_search(job, 500, vs::json::error_body(500, e.what()));
      return;
    }
    const Clock::time_point end = Clock::now();
    const double search_ms =
        result.search_ms + std::chrono::duration<double, std::milli>(end - search_start).count();
    const double total_ms = std::chrono::duration<double, std::milli>(end - job->received).count();
    const vs::json::SearchTimings timings{decode_ms, result.queued_ms, search_ms, result.batch,
                                          total_ms};
    const std::string none =
        by_region && regions.empty()
            ? "no region of type " + app->settings.roi_types +
                  " was found in the picture: this index holds regions (roi-types=" +
                  app->settings.roi_types +
                  "), so a picture is searched region by region; try one where they show "
                  "larger or face the camera"
            : "";
    const std::string json = vs::json::search_answer(
        w, h, job->args.k, now->gallery->facts().metric,
        shown_neighbors(*now->gallery, found, job->args.k, job->args.max_distance), timings,
        by_region ? &regions : nullptr, none);
    finish_search(job, 200, json);
  });
}

// Method, token, size and room in the queue were checked from the headers
// (check_headers).
void handle_search(SoupServer*, SoupServerMessage* msg, const char*, GHashTable* query, gpointer) {
  SearchArgs args;
  if (!parse_search_args(msg, query, &args)) return;
  std::string error;
  GBytes* bytes = upload_bytes(msg, &error);
  // The message's own copy goes now; the job holds the bytes it searches.
  soup_message_body_truncate(soup_server_message_get_request_body(msg));
  if (!bytes) {
    respond_error(msg, 400, error);
    return;
  }
  if (g_bytes_get_size(bytes) == 0) {
    g_bytes_unref(bytes);
    respond_error(msg, 400,
                  "the request has no picture; send it as the body "
                  "(curl --data-binary @photo.jpg) or as a multipart file");
    return;
  }
  std::unique_ptr<MemoryBudget::Share> upload(
      static_cast<MemoryBudget::Share*>(g_object_steal_data(G_OBJECT(msg), kUploadShare)));
  auto* job = new SearchJob{SOUP_SERVER_MESSAGE(g_object_ref(msg)),
                            bytes,
                            args,
                            Clock::now(),
                            upload ? std::move(*upload) : MemoryBudget::Share(),
                            {}};
  soup_server_message_pause(msg);
  g_thread_pool_push(app->workers, new WorkItem{job, nullptr, nullptr}, nullptr);
}

// The file of a source inside the gallery root, links resolved; "" for one
// outside it, whatever the catalog says, or for a video frame ("#t=").
std::string file_in_gallery(const std::string& gallery_root, const std::string& source) {
  if (gallery_root.empty() || source.find("#t=") != std::string::npos) return "";
  char* root = realpath(gallery_root.c_str(), nullptr);
  char* path = realpath((gallery_root + "/" + source).c_str(), nullptr);
  const bool inside = root && path && g_str_has_prefix(path, root) && path[strlen(root)] == '/';
  const std::string resolved = inside ? path : "";
  free(root);
  free(path);
  return resolved;
}

// A thumbnail made from the original file, or an empty one.
std::vector<uint8_t> file_thumbnail(const std::string& gallery_root, const std::string& source) {
  const std::string resolved = file_in_gallery(gallery_root, source);
  if (resolved.empty()) return {};
  // Read whole, so that the decode gate knows the size before decoding; no
  // picture within the pixel limit takes more than 8 bytes a pixel.
  struct stat st;
  if (stat(resolved.c_str(), &st) != 0 ||
      static_cast<uint64_t>(st.st_size) > app->settings.max_pixels * 8 + (64 << 20))
    return {};
  try {
    const std::vector<uint8_t> bytes = vs::read_regular_file(resolved, "gallery picture");
    const vs::RgbImage image =
        decode_shrunk(bytes.data(), bytes.size(), resolved, vs::kDefaultThumbnailSize);
    cv::Mat rgb(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.pixels.data()));
    return vs::encode_thumbnail(rgb, vs::kDefaultThumbnailSize);
  } catch (const std::exception&) { return {}; }
}

// A thumbnail made from the item's original: its CIFAR record or its file.
std::vector<uint8_t> made_thumbnail(const Served& from, const vs::CatalogItem& item) {
  if (g_str_has_prefix(item.source.c_str(), "cifar")) {
    if (app->settings.dataset.empty()) return {};
    std::lock_guard<std::mutex> lock(app->thumbnails_mutex);
    const cv::Mat& rgb = app->thumbnail_cache->get(item.id, item.source, 64);
    return rgb.empty() ? std::vector<uint8_t>() : vs::encode_thumbnail(rgb, 64);
  }
  return file_thumbnail(from.gallery_root, item.source);
}

void respond_thumbnail(SoupServerMessage* msg, int64_t id, const std::vector<uint8_t>& jpeg) {
  if (jpeg.empty()) {
    respond_error(msg, 404,
                  "item " + std::to_string(id) +
                      " has no thumbnail in the catalog, and its "
                      "source cannot be read (start the server with --gallery or "
                      "--dataset to show originals)");
    return;
  }
  respond(msg, 200, "image/jpeg", std::string(jpeg.begin(), jpeg.end()));
}

struct ThumbnailJob {
  SoupServerMessage* msg;
  std::shared_ptr<const Served> from;
  vs::CatalogItem item;
};

// On a worker thread: a large original takes a good part of a second to
// decode, which the main loop must not wait for.
void run_thumbnail(ThumbnailJob* job) {
  std::vector<uint8_t> jpeg;
  std::string failure;
  try {
    jpeg = made_thumbnail(*job->from, job->item);
  } catch (const std::exception& e) { failure = e.what(); }
  run_on_main([job, jpeg = std::move(jpeg), failure] {
    if (!failure.empty()) {
      respond_error(job->msg, 500, failure);
    } else {
      // Ids name other items in a gallery replaced meanwhile.
      if (!jpeg.empty() && job->from == served() &&
          app->made_thumbnails.emplace(job->item.id, jpeg).second) {
        app->made_order.push_back(job->item.id);
        if (app->made_order.size() > kMadeThumbnails) {
          app->made_thumbnails.erase(app->made_order.front());
          app->made_order.pop_front();
        }
      }
      respond_thumbnail(job->msg, job->item.id, jpeg);
    }
    soup_server_message_unpause(job->msg);
    g_object_unref(job->msg);
    delete job;
  });
}

// The catalog's thumbnail or one made before, at once; else one is made on a
// worker thread.
void handle_thumbnail(SoupServerMessage* msg, const std::shared_ptr<const Served>& from,
                      const vs::CatalogItem& item) {
  std::vector<uint8_t> jpeg;
  try {
    const vs::Catalog& catalog = from->gallery->catalog();
    if (catalog.thumbnails()) jpeg = catalog.thumbnail(item.id);
  } catch (const std::exception& e) {
    respond_error(msg, 500, e.what());
    return;
  }
  if (jpeg.empty()) {
    const auto made = app->made_thumbnails.find(item.id);
    if (made == app->made_thumbnails.end()) {
      auto* job = new ThumbnailJob{SOUP_SERVER_MESSAGE(g_object_ref(msg)), from, item};
      soup_server_message_pause(msg);
      g_thread_pool_push(app->workers, new WorkItem{nullptr, nullptr, job}, nullptr);
      return;
    }
    jpeg = made->second;
  }
  respond_thumbnail(msg, item.id, jpeg);
}

struct OriginalJob {
  SoupServerMessage* msg;
  std::shared_ptr<const Served> from;
  vs::CatalogItem item;
};

// On a worker thread: the original file of a folder gallery's item, as it is
// on disk, if it lies inside the gallery root and a browser can show it.
void run_original(OriginalJob* job) {
  const std::string id = std::to_string(job->item.id);
  int status = 200;
  std::string body, type = "image/jpeg", error;
  const std::string path = file_in_gallery(job->from->gallery_root, job->item.source);
  struct stat st;
  if (path.empty()) {
    status = 404;
    error = "item " + id + " has no original in the gallery folder '" + job->from->gallery_root +
            "' (a CIFAR item, a video frame, a moved gallery: start the server with --gallery "
            "DIR)";
  } else if (stat(path.c_str(), &st) != 0 || st.st_size > kOriginalMax) {
    status = 404;
    error = "item " + id + "'s original cannot be read, or is larger than " +
            std::to_string(kOriginalMax >> 20) + " MB";
  } else {
    try {
      const std::vector<uint8_t> bytes = vs::read_regular_file(path, "gallery picture");
      const char* known = picture_type(bytes.data(), bytes.size());
      if (!known) {
        status = 415;
        error = "item " + id + "'s original is not a picture a browser shows (JPEG, PNG, GIF, " +
                "WebP, BMP); its thumbnail is at /api/items/" + id + "/thumbnail";
      } else {
        type = known;
        body.assign(bytes.begin(), bytes.end());
      }
    } catch (const std::exception& e) {
      status = 404;
      error = e.what();
    }
  }
  if (status != 200) {
    answer_json_later(job->msg, status, vs::json::error_body(status, error));
  } else {
    run_on_main([msg = job->msg, type, body = std::move(body)] {
      respond(msg, 200, type.c_str(), body);
      soup_server_message_unpause(msg);
      g_object_unref(msg);
    });
  }
  delete job;
}

// GET /api/items?label=&offset=&limit=: a page of the gallery, by label.
void handle_item_list(SoupServerMessage* msg, GHashTable* query) {
  const std::shared_ptr<const Served> now = served();
  std::optional<int> label;
  int64_t offset = 0, limit = kPageDefault;
  struct Param {
    const char* name;
    int64_t min, max;
    const char* what;
  };
  for (const Param& p : {Param{"label", -1, INT_MAX, "a label number"},
                         Param{"offset", 0, INT64_MAX, "a whole number from 0"},
                         Param{"limit", 1, kPageMax, "a whole number from 1 to 500"}}) {
    const std::string text = query_value(query, p.name);
    if (text.empty()) continue;
    const auto v = parse_int(text, p.min, p.max);
    if (!v) {
      respond_error(msg, 400, std::string(p.name) + " must be " + p.what + ", not '" + text + "'");
      return;
    }
    if (p.name == std::string("label")) label = static_cast<int>(*v);
    if (p.name == std::string("offset")) offset = *v;
    if (p.name == std::string("limit")) limit = *v;
  }
  static const std::vector<const vs::CatalogItem*> none;
  const std::vector<const vs::CatalogItem*>* items = &now->by_label;
  if (label) {
    const auto found = now->of_label.find(*label);
    items = found == now->of_label.end() ? &none : &found->second;
  }
  const auto total = static_cast<int64_t>(items->size());
  std::vector<vs::json::Item> page;
  for (int64_t i = offset; i < total && i < offset + limit; i++)
    page.push_back(vs::json::item_of(*(*items)[i]));
  respond_json(msg, 200, vs::json::items_page(label, total, offset, limit, page));
}

struct SimilarJob {
  SoupServerMessage* msg;
  std::shared_ptr<const Served> from;
  int64_t id;
  SearchArgs args;
};

void run_similar(SimilarJob* job) {
  std::string json;
  int status = 200;
  try {
    const vs::Gallery& gallery = *job->from->gallery;
    const std::vector<float> vector = gallery.index().reconstruct(job->id);
    std::vector<vs::Neighbor> neighbors;
    gallery.search(vector.data(), static_cast<int>(job->args.k) + 1, {}, std::nullopt, &neighbors);
    json = vs::json::similar_answer(
        vs::json::item_of(*gallery.catalog().item(job->id)), job->args.k, gallery.facts().metric,
        shown_neighbors(gallery, neighbors, job->args.k, job->args.max_distance, job->id));
  } catch (const std::exception& e) {
    status = 500;
    json = vs::json::error_body(500, e.what());
  }
  answer_json_later(job->msg, status, std::move(json));
  delete job;
}

void handle_items(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query,
                  gpointer) {
  // /api/items, /api/items/{id}[/thumbnail|/similar|/original]
  if (strlen(path) <= strlen("/api/items/")) {
    handle_item_list(msg, query);
    return;
  }
  const std::string rest = std::string(path).substr(strlen("/api/items/"));
  const size_t slash = rest.find('/');
  const std::string id_text = rest.substr(0, slash);
  const std::string what = slash == std::string::npos ? "" : rest.substr(slash + 1);
  const auto id = parse_int(id_text, 0, INT64_MAX);
  const std::shared_ptr<const Served> now = served();
  const vs::CatalogItem* item = id ? now->gallery->catalog().item(*id) : nullptr;
  if (!item) {
    respond_error(msg, 404, "no gallery item '" + id_text + "'; " + now->ids_text);
    return;
  }
  if (what.empty()) {
    respond_json(msg, 200, vs::json::item_answer(vs::json::item_of(*item)));
  } else if (what == "thumbnail") {
    handle_thumbnail(msg, now, *item);
  } else if (what == "similar") {
    SearchArgs args;
    if (!parse_search_args(msg, query, &args)) return;
    auto* job = new SimilarJob{SOUP_SERVER_MESSAGE(g_object_ref(msg)), now, *id, args};
    soup_server_message_pause(msg);
    g_thread_pool_push(app->workers, new WorkItem{nullptr, job, nullptr}, nullptr);
  } else if (what == "original") {
    auto* job = new OriginalJob{SOUP_SERVER_MESSAGE(g_object_ref(msg)), now, *item};
    soup_server_message_pause(msg);
    g_thread_pool_push(app->workers, new WorkItem{nullptr, nullptr, nullptr, job}, nullptr);
  } else {
    respond_error(msg, 404,
                  "no such item resource '" + what + "': use thumbnail, similar or original");
  }
}

void handle_index(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*, gpointer) {
  respond_json(msg, 200, served()->index_json);
}

// GET /api/sources: the latest result of each source --subscribe hears.
void handle_sources(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*, gpointer) {
  if (!app->feed) {
    respond_error(msg, 404,
                  "this server subscribes to no results; start it with --subscribe "
                  "mqtt://HOST:PORT/TOPIC");
    return;
  }
  respond_json(msg, 200, app->feed->answer());
}

void handle_api_other(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*,
                      gpointer) {
  respond_error(msg, 404,
                std::string("no API at ") + path +
                    "; see /api/index, /api/search, /api/items, /api/items/{id}, /api/sources");
}

void handle_static(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, gpointer) {
  const auto name = static_file_name(path);
  std::string bytes;
  if (name) {
    try {
      const std::vector<uint8_t> data =
          vs::read_regular_file(app->settings.web_root + "/" + *name, "web page file");
      bytes.assign(data.begin(), data.end());
    } catch (const std::exception&) { bytes.clear(); }
  }
  if (!name || bytes.empty()) {
    respond(msg, 404, "text/plain; charset=utf-8", "Not found\n");
    return;
  }
  respond(msg, 200, content_type_for(*name), bytes);
}

// /api/live/events (Server-Sent Events) and /live.mjpeg: mjpeg is the
// handler's user data.
void handle_live(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*, gpointer mjpeg) {
  if (!app->live) {
    respond_error(msg, 404, "this server has no camera; start it with --camera");
    return;
  }
  set_security_headers(msg);
  if (mjpeg)
    app->live->add_mjpeg_client(msg);
  else
    app->live->add_events_client(msg);
}

// What a path takes, known from the request line and headers alone: its
// methods (space-separated; nullptr: any), whether it wants the token and
// whether it takes a body. The handlers above rely on these checks, which
// on_got_headers() makes before libsoup reads any of the body.
struct Route {
  const char* prefix;
  const char* methods;
  bool token;
  bool body;
  const char* wrong_method;
};

const Route kRoutes[] = {
    {"/api/search", "POST", true, true, "POST a picture to /api/search"},
    {"/api/items/", "GET", true, false, "items are read with GET"},
    {"/api/items", "GET", true, false, "items are read with GET"},
    {"/api/index", "GET", true, false, "the index facts are read with GET"},
    {"/api/live/events", "GET", true, false, "the live events are read with GET"},
    {"/api/sources", "GET", true, false, "the sources are read with GET"},
    {"/api", nullptr, false, false, nullptr},
    {"/live.mjpeg", "GET", true, false, "the live stream is read with GET"},
    {"", "GET HEAD", false, false, "the page is read with GET"},
};

// The route of a path, matched as libsoup matches handlers: by whole segments.
const Route& route_of(const std::string& path) {
  for (const Route& route : kRoutes) {
    const size_t n = strlen(route.prefix);
    if (path.compare(0, n, route.prefix) == 0 &&
        (n == 0 || path.size() == n || route.prefix[n - 1] == '/' || path[n] == '/'))
      return route;
  }
  return kRoutes[G_N_ELEMENTS(kRoutes) - 1];
}

bool method_in(const char* method, const char* methods) {
  gchar** names = g_strsplit(methods, " ", -1);
  const bool found = method && g_strv_contains(names, method);
  g_strfreev(names);
  return found;
}

// The request's Content-Length: nullopt without one; -1 for one that is not
// a whole number of bytes, or for several that disagree (a request that
// means two lengths could be read two ways).
std::optional<int64_t> content_length(SoupMessageHeaders* headers) {
  const char* list = soup_message_headers_get_list(headers, "Content-Length");
  if (!list) return std::nullopt;
  std::optional<int64_t> length;
  gchar** values = g_strsplit(list, ",", -1);
  for (gchar** v = values; *v; v++) {
    const auto value = parse_int(g_strstrip(*v), 0, INT64_MAX);
    if (!value || (length && *length != *value)) {
      length = -1;
      break;
    }
    length = value;
  }
  g_strfreev(values);
  return length.value_or(-1);
}

struct Refusal {
  int status = 0;
  std::string message;
};

// Why a request is refused from its headers; status 0 when it may go on.
// Takes the upload's share of the queue for a search that may.
Refusal check_request(SoupServerMessage* msg) {
  SoupMessageHeaders* headers = soup_server_message_get_request_headers(msg);
  const std::optional<int64_t> length = content_length(headers);
  if (length && *length < 0)
    return {400, "the request's Content-Length is not one whole number of bytes"};
  if (length && soup_message_headers_get_one(headers, "Transfer-Encoding"))
    return {400, "the request has both a Content-Length and a Transfer-Encoding; send one"};

  GUri* uri = soup_server_message_get_uri(msg);
  const Route& route = route_of(g_uri_get_path(uri));
  if (route.token) {
    const char* query_text = g_uri_get_query(uri);
    GHashTable* query = query_text ? soup_form_decode(query_text) : nullptr;
    const bool ok = authorized(msg, query);
    if (query) g_hash_table_unref(query);
    if (!ok) return {401, "this server wants its token: Authorization: Bearer TOKEN"};
  }
  const char* method = soup_server_message_get_method(msg);
  if (route.methods && !method_in(method, route.methods)) return {405, route.wrong_method};

  const SoupEncoding encoding = soup_message_headers_get_encoding(headers);
  if (!route.body) {
    if (encoding == SOUP_ENCODING_NONE || (length && *length == 0)) return {};
    return {413, std::string(method) + " " + g_uri_get_path(uri) + " takes no request body"};
  }
  if (!length) return {411, "send the upload with a Content-Length"};
  if (*length > app->settings.max_upload)
    return {413, "the upload is larger than the limit of " +
                     std::to_string(app->settings.max_upload >> 20) + " MB"};
  MemoryBudget::Share share = app->queue->try_take(static_cast<uint64_t>(*length));
  if (!share.held()) return {503, busy_message()};
  g_object_set_data_full(G_OBJECT(msg), kUploadShare, new MemoryBudget::Share(std::move(share)),
                         [](gpointer p) { delete static_cast<MemoryBudget::Share*>(p); });
  return {};
}

// Answers and closes without reading the body (server/early_answer.h).
void refuse(SoupServerMessage* msg, const Refusal& refusal) {
  set_security_headers(msg);
  if (refusal.status == 503) ask_to_retry(msg);
  answer_before_body(msg, refusal.status, "application/json",
                     vs::json::error_body(refusal.status, refusal.message));
}

void on_got_headers(SoupServerMessage* msg, gpointer) {
  // libsoup has answered already (a path it refuses, say).
  if (soup_server_message_get_status(msg) != 0) return;
  const Refusal refusal = check_request(msg);
  if (refusal.status) refuse(msg, refusal);
}

// A request that has not arrived whole by --request-timeout, however steadily
// it trickles in, gets 408 and its connection closed.
gboolean on_deadline(gpointer msg) {
  refuse(static_cast<SoupServerMessage*>(msg),
         {408, "the request took longer than " + std::to_string(app->settings.request_timeout) +
                   " s to arrive (--request-timeout)"});
  return G_SOURCE_REMOVE;
}

void on_request_started(SoupServer*, SoupServerMessage* msg, gpointer) {
  // A client that opens a connection and then sends (or reads) nothing, such
  // as one that never ends its headers, is dropped after --idle-timeout
  // instead of holding the connection for good. The live streams write every
  // frame, so a camera that stalls that long drops them too.
  if (GSocket* socket = soup_server_message_get_socket(msg))
    g_socket_set_timeout(socket, app->settings.idle_timeout);
  // The deadline goes with the message: a message freed early takes it along.
  GSource* deadline = g_timeout_source_new_seconds(app->settings.request_timeout);
  g_source_set_callback(deadline, on_deadline, msg, nullptr);
  g_source_attach(deadline, nullptr);
  g_object_set_data_full(G_OBJECT(msg), kDeadline, deadline, [](gpointer source) {
    g_source_destroy(static_cast<GSource*>(source));
    g_source_unref(static_cast<GSource*>(source));
  });
  g_signal_connect(msg, "got-headers", G_CALLBACK(on_got_headers), nullptr);
  g_signal_connect(msg, "got-body", G_CALLBACK(+[](SoupServerMessage* m, gpointer) {
                     g_object_set_data(G_OBJECT(m), kDeadline, nullptr);
                   }),
                   nullptr);
}

// The shorter side queries are shrunk to right after decoding: twice the
// embedder's resize (or crop), which its own resize then halves, so a query
// of any size waits in the queue as a few hundred KB.
int query_side_for(const std::string& preprocessing_id) {
  int side = 0;
  for (const char* key : {"resize=", "crop="}) {
    const size_t at = preprocessing_id.find(key);
    if (at == std::string::npos) continue;
    side = std::max(side, atoi(preprocessing_id.c_str() + at + strlen(key)));
  }
  return side > 0 ? 2 * side : 512;
}

std::string build_index_json(const vs::Gallery& gallery) {
  const vs::Catalog& catalog = gallery.catalog();
  std::map<int, vs::json::LabelCount> labels;
  for (const vs::CatalogItem& item : catalog.items()) {
    vs::json::LabelCount& entry = labels[item.label];
    entry.label = item.label;
    entry.label_name = item.label_name;
    entry.count++;
  }
  std::vector<vs::json::LabelCount> label_list;
  for (const auto& [label, entry] : labels) label_list.push_back(entry);
  const vs::json::ServerFacts server{app->settings.index,
                                     catalog.thumbnails() != nullptr,
                                     app->live != nullptr,
                                     app->feed != nullptr,
                                     app->settings.k_default,
                                     app->settings.k_max,
                                     recorded_roi_types(catalog.facts().embedder_config)};
  return vs::json::index_answer(catalog.facts(), server, label_list);
}

// The ids a catalog holds, in a sentence: after an update they need not run
// from 0 to count - 1.
std::string ids_text(const vs::Catalog& catalog) {
  const std::vector<vs::CatalogItem>& items = catalog.items();
  if (items.empty()) return "the gallery is empty";
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (const vs::CatalogItem& item : items) {
    lo = std::min(lo, item.id);
    hi = std::max(hi, item.id);
  }
  const auto n = static_cast<int64_t>(items.size());
  std::string text = "the gallery holds " + std::to_string(n) + (n == 1 ? " item" : " items") +
                     ", ids " + std::to_string(lo) + " to " + std::to_string(hi);
  if (hi - lo + 1 != n) text += ", not every id in between";
  return text;
}

std::shared_ptr<const Served> serve(std::shared_ptr<const vs::Gallery> gallery) {
  auto next = std::make_shared<Served>();
  next->gallery = std::move(gallery);
  // A folder gallery's catalog records its folder: originals come from there
  // unless --gallery names another (the gallery was moved).
  next->gallery_root =
      app->settings.gallery.empty() ? next->gallery->facts().gallery_root : app->settings.gallery;
  next->index_json = build_index_json(*next->gallery);
  next->ids_text = ids_text(next->gallery->catalog());
  for (const vs::CatalogItem& item : next->gallery->catalog().items()) {
    next->by_label.push_back(&item);
    next->of_label[item.label].push_back(&item);
  }
  const auto by_id = [](const vs::CatalogItem* a, const vs::CatalogItem* b) {
    return a->id < b->id;
  };
  std::sort(next->by_label.begin(), next->by_label.end(),
            [](const vs::CatalogItem* a, const vs::CatalogItem* b) {
              return a->label != b->label ? a->label < b->label : a->id < b->id;
            });
  for (auto& [label, items] : next->of_label) std::sort(items.begin(), items.end(), by_id);
  return next;
}

// Takes over a gallery loaded in the background, unless it failed to load or
// was built by another model than the one the query pipeline runs.
void adopt_gallery(vs::GalleryReload::Loaded loaded) {
  const std::shared_ptr<const Served> was = served();
  std::string error = loaded.error;
  if (loaded.gallery) {
    try {
      const vs::IndexFacts& facts = was->gallery->facts();
      loaded.gallery->check_query(facts.model_id.c_str(), facts.preprocessing_id.c_str(),
                                  was->gallery->dims());
    } catch (const std::exception& e) { error = e.what(); }
  }
  if (!error.empty()) {
    g_printerr(
        "visualsearch-server: cannot switch to the replaced index %s; still serving the "
        "previous one (restart the server to serve another model's index): %s\n",
        app->settings.index.c_str(), error.c_str());
    return;
  }
  std::shared_ptr<const Served> next = serve(std::move(loaded.gallery));
  {
    std::lock_guard<std::mutex> lock(app->served_mutex);
    app->served = next;
  }
  // Ids may name other items now.
  app->made_thumbnails.clear();
  app->made_order.clear();
  g_print("visualsearch-server: reloaded %s: %" G_GINT64_FORMAT " items\n",
          app->settings.index.c_str(), next->gallery->size());
}

// A GLib timeout on the main loop: an indexer that renamed a new index (and
// catalog) over the served ones is followed once they settle, loaded in the
// background; requests in flight finish with the gallery they started with.
gboolean follow_gallery(gpointer) {
  if (app->reload->poll(Clock::now()) == vs::GalleryReload::Step::Finished)
    adopt_gallery(app->reload->take());
  return G_SOURCE_CONTINUE;
}

gboolean quit_loop(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop*>(loop));
  return G_SOURCE_REMOVE;
}

std::string default_web_root() {
  // Installed: <datadir>/visualsearch/web; in the build tree: the source's.
  for (const char* dir : {VS_SERVER_WEB_ROOT, VS_SERVER_SOURCE_WEB_ROOT}) {
    struct stat st;
    if (stat((std::string(dir) + "/index.html").c_str(), &st) == 0) return dir;
  }
  return VS_SERVER_WEB_ROOT;
}

// The command line as GOption fills it in, defaults from Settings.
struct Options {
  gchar *index = nullptr, *bind = nullptr, *camera = nullptr, *token = nullptr, *web_root = nullptr,
        *gallery = nullptr, *dataset = nullptr, *subscribe = nullptr, *detector = nullptr;
  gint port = Settings().port;
  gint max_upload_mb = 20;
  gint k_max = static_cast<gint>(Settings().k_max);
  gint idle_timeout = static_cast<gint>(Settings().idle_timeout);
  gint request_timeout = static_cast<gint>(Settings().request_timeout);
  gint queue_mb = static_cast<gint>(Settings().queue_bytes >> 20);
};

// Parses the command line, GStreamer's options included; false after
// printing why it cannot.
bool parse_options(int* argc, char*** argv, Options* o) {
  GOptionEntry entries[] = {
      {"index", 'i', 0, G_OPTION_ARG_FILENAME, &o->index,
       "FAISS index written by faissindexer (its catalog INDEX.db beside it)", "INDEX"},
      {"port", 'p', 0, G_OPTION_ARG_INT, &o->port, "TCP port (0: any free one; default 8080)",
       "PORT"},
      {"bind", 'b', 0, G_OPTION_ARG_STRING, &o->bind,
       "Address to listen on (default 127.0.0.1; others need --token)", "ADDRESS"},
      {"camera", 'c', 0, G_OPTION_ARG_STRING, &o->camera,
       "Live source for the live page, as gst-launch-1.0 syntax, e.g. \"v4l2src\" or "
       "\"videotestsrc is-live=true\" (default none)",
       "PIPELINE"},
      {"detector", 0, 0, G_OPTION_ARG_STRING, &o->detector,
       "For an index of regions: the elements that find them in uploads and camera frames, "
       "before the embedder, as gst-launch-1.0 syntax (default: facedetect for faces)",
       "PIPELINE"},
      {"subscribe", 0, 0, G_OPTION_ARG_STRING, &o->subscribe,
       "Show the results camera pipelines publish with metapublish method=mqtt: "
       "mqtt://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC, the topic may hold + and # (default none)",
       "URL"},
      {"token", 't', 0, G_OPTION_ARG_STRING, &o->token,
       "Secret every API request must carry (Authorization: Bearer TOKEN, or ?token=)", "SECRET"},
      {"web-root", 0, 0, G_OPTION_ARG_FILENAME, &o->web_root, "Folder of the web page", "DIR"},
      {"gallery", 'g', 0, G_OPTION_ARG_FILENAME, &o->gallery,
       "Gallery folder, to show originals of items without a catalog thumbnail (default: the "
       "folder a galleryindexer catalog records)",
       "DIR"},
      {"dataset", 'd', 0, G_OPTION_ARG_FILENAME, &o->dataset,
       "CIFAR folder, to show CIFAR items without a catalog thumbnail", "DIR"},
      {"max-upload", 0, 0, G_OPTION_ARG_INT, &o->max_upload_mb, "Largest upload in MB (default 20)",
       "MB"},
      {"k-max", 0, 0, G_OPTION_ARG_INT, &o->k_max, "Largest k a request may ask (default 100)",
       "K"},
      {"idle-timeout", 0, 0, G_OPTION_ARG_INT, &o->idle_timeout,
       "Close a connection that sends or takes nothing for this long (default 60 s)", "SECONDS"},
      {"request-timeout", 0, 0, G_OPTION_ARG_INT, &o->request_timeout,
       "Answer 408 and close when a request has not arrived whole (headers and body) after "
       "this long, however steadily it trickles in (default 120 s)",
       "SECONDS"},
      {"queue-mb", 0, 0, G_OPTION_ARG_INT, &o->queue_mb,
       "Memory for uploads and decoded pictures waiting to be searched; past it a search gets "
       "503 with Retry-After (default 48 MB)",
       "MB"},
      {nullptr}};
  GOptionContext* context = g_option_context_new("- visual search web page and JSON API");
  g_option_context_add_main_entries(context, entries, nullptr);
  g_option_context_add_group(context, gst_init_get_option_group());
  GError* error = nullptr;
  if (!g_option_context_parse(context, argc, argv, &error)) {
    g_printerr("visualsearch-server: %s\n", error->message);
    return false;
  }
  g_option_context_free(context);
  return true;
}

// The settings the options ask for; false after printing why they cannot be.
bool settings_from(const Options& o, Settings* s) {
  if (!o.index) {
    g_printerr(
        "visualsearch-server: --index INDEX is required (an index built by "
        "pipelines/index-cifar.sh, index-folder.sh or faissindexer)\n");
    return false;
  }
  if (o.port < 0 || o.port > 65535 || o.max_upload_mb < 1 || o.max_upload_mb > 1024 ||
      o.k_max < 1 || o.k_max > 1024 || o.idle_timeout < 1 || o.idle_timeout > 3600 ||
      o.request_timeout < 1 || o.request_timeout > 3600 || o.queue_mb < 1 || o.queue_mb > 65536) {
    g_printerr(
        "visualsearch-server: --port must be 0..65535, --max-upload 1..1024, "
        "--k-max 1..1024, --idle-timeout and --request-timeout 1..3600 and --queue-mb "
        "1..65536\n");
    return false;
  }
  s->index = o.index;
  s->port = o.port;
  if (o.bind) s->bind = o.bind;
  if (o.camera) s->camera = o.camera;
  if (o.detector) s->detector = o.detector;
  if (o.token) s->token = o.token;
  if (o.subscribe) {
    std::string why;
    const auto url = parse_subscribe_url(o.subscribe, &why);
    if (!url) {
      g_printerr("visualsearch-server: --subscribe: %s\n", why.c_str());
      return false;
    }
    s->subscribe = *url;
  }
  s->web_root = o.web_root ? o.web_root : default_web_root();
  if (o.gallery) s->gallery = o.gallery;
  if (o.dataset) s->dataset = o.dataset;
  s->max_upload = int64_t(o.max_upload_mb) << 20;
  s->k_max = static_cast<unsigned>(o.k_max);
  s->idle_timeout = static_cast<unsigned>(o.idle_timeout);
  s->request_timeout = static_cast<unsigned>(o.request_timeout);
  s->queue_bytes = uint64_t(o.queue_mb) << 20;
  s->k_default = std::min(s->k_default, s->k_max);
  if (!is_loopback(s->bind) && s->token.empty()) {
    g_printerr(
        "visualsearch-server: binding %s would let anyone on the network search "
        "and read the gallery; give --token SECRET too, or bind 127.0.0.1\n",
        s->bind.c_str());
    return false;
  }
  return true;
}

// Loads the catalog, the index and the pipelines, and starts the worker
// threads; false after printing why it cannot.
bool load_gallery_and_pipelines(const Settings& s) {
  try {
    app->reload =
        std::make_unique<vs::GalleryReload>(s.index, vs::IndexLoadMode::Copy, kReloadSettleTime);
    app->reload->mark_loaded();
    auto gallery = std::make_shared<const vs::Gallery>(vs::Gallery::load(s.index));
    app->thumbnail_cache = std::make_unique<vs::ThumbnailCache>(
        256, std::make_shared<vs::CifarSources>(s.dataset), nullptr);
    // An index of regions is searched region by region: a detector in front
    // of the embedder, which adopts the index's roi-types.
    app->settings.roi_types = recorded_roi_types(gallery->facts().embedder_config);
    const std::string detector = detector_for(app->settings.roi_types, s.detector);
    QueryOptions query_options;
    query_options.index = s.index;
    query_options.detector = detector;
    query_options.batch_size = s.batch_size;
    app->queries = std::make_unique<QueryPipeline>(query_options);
    if (s.camera != "none") app->live = std::make_unique<LiveCamera>(s.camera, s.index, detector);
    if (s.subscribe) {
      app->feed = std::make_unique<SourceFeed>(*s.subscribe, [](const vs::json::Item& item) {
        // The thumbnail is the gallery's own when the id names the same item.
        const vs::CatalogItem* mine = served()->gallery->catalog().item(item.id);
        return mine && mine->source == item.source && mine->label == item.label;
      });
    }
    app->served = serve(std::move(gallery));
  } catch (const std::exception& e) {
    g_printerr("visualsearch-server: %s\n", e.what());
    return false;
  }
  app->settings.query_side = query_side_for(served()->gallery->facts().preprocessing_id);
  // Regions are cropped out of the query: keep the faces in a group photo
  // large enough to be found and embedded.
  if (!app->settings.roi_types.empty())
    app->settings.query_side = std::max(app->settings.query_side, 1024);
  app->queue = std::make_unique<MemoryBudget>(s.queue_bytes);
  // Room for the largest picture the pixel limit lets through: two large
  // ones take turns instead of doubling the peak.
  app->decode_gate = std::make_unique<MemoryBudget>(s.max_pixels * 3);
  app->workers = g_thread_pool_new(
      [](gpointer data, gpointer) {
        auto* work = static_cast<WorkItem*>(data);
        if (work->search) run_search(work->search);
        if (work->similar) run_similar(work->similar);
        if (work->thumbnail) run_thumbnail(work->thumbnail);
        if (work->original) run_original(work->original);
        delete work;
      },
      nullptr, 2, FALSE, nullptr);
  return true;
}

// A server with every route, listening on --bind and --port; nullptr after
// printing why it cannot, *status then being the exit status.
SoupServer* start_server(const Settings& s, int* status) {
  SoupServer* server = soup_server_new("server-header", "visualsearch-server ", nullptr);
  g_signal_connect(server, "request-started", G_CALLBACK(on_request_started), nullptr);
  soup_server_add_handler(server, "/api/search", handle_search, nullptr, nullptr);
  soup_server_add_handler(server, "/api/items/", handle_items, nullptr, nullptr);
  soup_server_add_handler(server, "/api/items", handle_items, nullptr, nullptr);
  soup_server_add_handler(server, "/api/index", handle_index, nullptr, nullptr);
  soup_server_add_handler(server, "/api/live/events", handle_live, nullptr, nullptr);
  soup_server_add_handler(server, "/api/sources", handle_sources, nullptr, nullptr);
  soup_server_add_handler(server, "/api", handle_api_other, nullptr, nullptr);
  soup_server_add_handler(server, "/live.mjpeg", handle_live, GINT_TO_POINTER(1), nullptr);
  soup_server_add_handler(server, nullptr, handle_static, nullptr, nullptr);

  GSocketAddress* address = g_inet_socket_address_new_from_string(
      s.bind == "localhost" ? "127.0.0.1" : s.bind.c_str(), static_cast<guint>(s.port));
  if (!address) {
    g_printerr("visualsearch-server: --bind %s is not an IP address\n", s.bind.c_str());
    *status = 2;
    return nullptr;
  }
  // soup_server_listen() keeps GSocket's backlog of 10 connections waiting to
  // be accepted, which a burst of clients overflows while the main loop is busy.
  GError* error = nullptr;
  GSocket* socket = g_socket_new(g_socket_address_get_family(address), G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_DEFAULT, &error);
  if (socket) {
    g_socket_set_listen_backlog(socket, SOMAXCONN);
    if (!g_socket_bind(socket, address, TRUE, &error) || !g_socket_listen(socket, &error) ||
        !soup_server_listen_socket(server, socket, static_cast<SoupServerListenOptions>(0), &error))
      g_clear_object(&socket);
  }
  g_object_unref(address);
  if (!socket) {
    g_printerr("visualsearch-server: cannot listen on %s:%d: %s\n", s.bind.c_str(), s.port,
               error->message);
    *status = 1;
    return nullptr;
  }
  g_object_unref(socket);
  return server;
}

// Prints the addresses served.
void announce(SoupServer* server, const Settings& s) {
  GSList* uris = soup_server_get_uris(server);
  for (GSList* u = uris; u; u = u->next) {
    gchar* text = g_uri_to_string(static_cast<GUri*>(u->data));
    g_print("visualsearch-server: serving %s (%" G_GINT64_FORMAT " items, %s) at %s\n",
            s.index.c_str(), served()->gallery->size(), served()->gallery->facts().model_id.c_str(),
            text);
    g_free(text);
  }
  g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  if (s.subscribe)
    g_print("visualsearch-server: showing the results published on %s at %s:%d (/api/sources)\n",
            s.subscribe->topic.c_str(), s.subscribe->host.c_str(), s.subscribe->port);
  fflush(stdout);  // whoever started the server waits for the line
}

// Serves until SIGINT or SIGTERM, then stops the server, the workers and the
// pipelines.
void run(SoupServer* server) {
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGINT, quit_loop, loop);
  g_unix_signal_add(SIGTERM, quit_loop, loop);
  const guint follow = g_timeout_add(kReloadPoll, follow_gallery, nullptr);
  g_main_loop_run(loop);
  g_source_remove(follow);
  g_print("visualsearch-server: stopping\n");
  soup_server_disconnect(server);
  g_object_unref(server);
  g_thread_pool_free(app->workers, FALSE, TRUE);
  app->live.reset();
  app->feed.reset();
  app->queries.reset();
  g_main_loop_unref(loop);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_options(&argc, &argv, &options)) return 2;
  Settings s;
  if (!settings_from(options, &s)) return 2;

  App state;
  app = &state;
  app->settings = s;
  if (!load_gallery_and_pipelines(s)) return 1;
  int status = 0;
  SoupServer* server = start_server(s, &status);
  if (!server) return status;
  announce(server, s);
  run(server);
  return 0;
}
