// SPDX-License-Identifier: LGPL-2.1-or-later
// visualsearch-server: a web page and a JSON API in front of the plugin's
// elements. Model and index are loaded once; every query runs through a
// pipeline (server/search_service.h). README.md documents the API.
#include <gst/gst.h>
#include <libsoup/soup.h>
#include <opencv2/core.hpp>

#include <sys/stat.h>

#include <glib-unix.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/atomic_file.h"
#include "engine/base/utf8.h"
#include "engine/dataset/image_codec.h"
#include "engine/index/catalog.h"
#include "engine/index/index_store.h"
#include "engine/model/embedding_engine.h"
#include "engine/render/thumbnail_cache.h"
#include "server/http_util.h"
#include "server/live_camera.h"
#include "server/search_service.h"

namespace {

using namespace vs::server;
using Clock = std::chrono::steady_clock;

struct Settings {
  std::string index;
  int port = 8080;
  std::string bind = "127.0.0.1";
  std::string camera = "none";
  std::string token;
  std::string web_root;
  std::string gallery;  // root of file sources, for items without a thumbnail
  std::string dataset;  // CIFAR folder, for items without a thumbnail
  int64_t max_upload = 20 << 20;
  uint64_t max_pixels = 50'000'000;
  unsigned k_default = 10;
  unsigned k_max = 100;
  unsigned batch_size = 16;
  unsigned idle_timeout = 60;  // seconds a connection may stay silent
};

struct App {
  Settings settings;
  vs::Catalog catalog;
  std::unique_ptr<vs::IndexStore> store;  // for "more like this"
  std::mutex store_mutex;
  std::unique_ptr<QueryPipeline> queries;
  std::unique_ptr<LiveCamera> live;
  std::mutex thumbnails_mutex;
  std::unique_ptr<vs::ThumbnailCache> thumbnail_cache;
  GThreadPool* workers = nullptr;
  std::string index_json;
};

App* app = nullptr;

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
  respond_json(msg, status, json_error(status, message));
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

std::string item_json(const vs::CatalogItem& item, const char* extra = "") {
  return "{\"id\":" + std::to_string(item.id) + ",\"label\":" + std::to_string(item.label) +
         ",\"label_name\":" + vs::json_quote(item.label_name) +
         ",\"source\":" + vs::json_quote(item.source) + ",\"thumbnail\":\"/api/items/" +
         std::to_string(item.id) + "/thumbnail\"" + extra + "}";
}

std::string neighbors_json(const std::vector<Neighbor>& neighbors, unsigned k,
                           std::optional<double> max_distance, int64_t exclude = -1) {
  const bool l2 = app->catalog.facts().metric == "l2";
  std::string out = "[";
  unsigned rank = 0;
  for (const Neighbor& n : neighbors) {
    if (n.id == exclude) continue;
    if (max_distance && (l2 ? n.distance > *max_distance : n.distance < *max_distance)) continue;
    if (rank == k) break;
    const vs::CatalogItem* item = app->catalog.item(n.id);
    vs::CatalogItem shown =
        item ? *item : vs::CatalogItem{n.id, n.label, n.label_name, n.source, {}};
    if (rank) out += ",";
    out += item_json(
        shown, (",\"rank\":" + std::to_string(++rank) + ",\"distance\":" + json_number(n.distance))
                   .c_str());
  }
  return out + "]";
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
// What the worker threads run: a search's decoding, or a "more like this".
struct WorkItem {
  SearchJob* search = nullptr;
  SimilarJob* similar = nullptr;
};

struct SearchJob {
  SoupServerMessage* msg;
  GBytes* bytes;
  SearchArgs args;
  Clock::time_point received;
};

void finish_search(SearchJob* job, int status, const std::string& json) {
  run_on_main([job, status, json] {
    respond_json(job->msg, status, json);
    soup_server_message_unpause(job->msg);
    g_object_unref(job->msg);
    delete job;
  });
}

// On a worker thread: decode, then hand the picture to the query pipeline.
void run_search(SearchJob* job) {
  const Clock::time_point start = Clock::now();
  vs::RgbImage image;
  try {
    gsize size;
    const auto* data = static_cast<const uint8_t*>(g_bytes_get_data(job->bytes, &size));
    image = vs::decode_image(data, size, "the uploaded picture", app->settings.max_pixels);
  } catch (const vs::ImageError& e) {
    g_bytes_unref(job->bytes);
    const int status = e.reason() == vs::ImageError::Reason::TooLarge ? 413 : 400;
    finish_search(job, status, json_error(status, e.what()));
    return;
  } catch (const std::exception& e) {
    g_bytes_unref(job->bytes);
    finish_search(job, 500, json_error(500, e.what()));
    return;
  }
  g_bytes_unref(job->bytes);
  const int w = image.width, h = image.height;
  if (std::max(w, h) > vs::kMaxResizeAspect * std::min(w, h)) {
    finish_search(job, 400,
                  json_error(400, "the picture is " + std::to_string(w) + "x" + std::to_string(h) +
                                      ", more elongated than " +
                                      std::to_string(vs::kMaxResizeAspect) + ":1; crop it first"));
    return;
  }
  const double decode_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  app->queries->submit(std::move(image), [job, decode_ms, w, h](QueryResult result) {
    if (!result.error.empty()) {
      finish_search(job, 500, json_error(500, result.error));
      return;
    }
    const double total_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - job->received).count();
    const std::string json =
        "{\"query\":{\"width\":" + std::to_string(w) + ",\"height\":" + std::to_string(h) +
        "},\"k\":" + std::to_string(job->args.k) +
        ",\"metric\":" + vs::json_quote(app->catalog.facts().metric) +
        ",\"neighbors\":" + neighbors_json(result.neighbors, job->args.k, job->args.max_distance) +
        ",\"timings\":{\"decode_ms\":" + json_number(decode_ms) +
        ",\"queued_ms\":" + json_number(result.queued_ms) +
        ",\"embed_search_ms\":" + json_number(result.search_ms) +
        ",\"batch\":" + std::to_string(result.batch) + ",\"total_ms\":" + json_number(total_ms) +
        "}}";
    finish_search(job, 200, json);
  });
}

void handle_search(SoupServer*, SoupServerMessage* msg, const char*, GHashTable* query, gpointer) {
  if (!authorized(msg, query)) {
    respond_error(msg, 401, "this server wants its token: Authorization: Bearer TOKEN");
    return;
  }
  if (g_strcmp0(soup_server_message_get_method(msg), "POST") != 0) {
    respond_error(msg, 405, "POST a picture to /api/search");
    return;
  }
  SearchArgs args;
  if (!parse_search_args(msg, query, &args)) return;
  SoupMessageBody* body = soup_server_message_get_request_body(msg);
  if (body->length > app->settings.max_upload) {
    respond_error(msg, 413,
                  "the upload is larger than the limit of " +
                      std::to_string(app->settings.max_upload >> 20) + " MB");
    return;
  }
  std::string error;
  GBytes* bytes = upload_bytes(msg, &error);
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
  auto* job = new SearchJob{SOUP_SERVER_MESSAGE(g_object_ref(msg)), bytes, args, Clock::now()};
  soup_server_message_pause(msg);
  g_thread_pool_push(app->workers, new WorkItem{job, nullptr}, nullptr);
}

// Rejects a too large or unsized upload from its headers, before libsoup
// reads the body into memory.
void handle_search_early(SoupServer*, SoupServerMessage* msg, const char*, GHashTable*, gpointer) {
  SoupMessageHeaders* headers = soup_server_message_get_request_headers(msg);
  if (g_strcmp0(soup_server_message_get_method(msg), "POST") != 0) return;
  if (soup_message_headers_get_encoding(headers) != SOUP_ENCODING_CONTENT_LENGTH) {
    respond_error(msg, 411, "send the upload with a Content-Length");
    return;
  }
  if (soup_message_headers_get_content_length(headers) > app->settings.max_upload)
    respond_error(msg, 413,
                  "the upload is larger than the limit of " +
                      std::to_string(app->settings.max_upload >> 20) + " MB");
}

std::vector<uint8_t> file_thumbnail(const std::string& source) {
  if (app->settings.gallery.empty() || source.find("#t=") != std::string::npos) return {};
  // Only a file inside the gallery root, whatever the catalog says.
  char* root = realpath(app->settings.gallery.c_str(), nullptr);
  char* path = realpath((app->settings.gallery + "/" + source).c_str(), nullptr);
  const bool inside = root && path && g_str_has_prefix(path, root) && path[strlen(root)] == '/';
  const std::string resolved = path ? path : "";
  free(root);
  free(path);
  if (!inside) return {};
  try {
    const vs::RgbImage image = vs::read_image(resolved, app->settings.max_pixels);
    cv::Mat rgb(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.pixels.data()));
    return vs::encode_thumbnail(rgb, vs::kDefaultThumbnailSize);
  } catch (const std::exception&) { return {}; }
}

std::vector<uint8_t> thumbnail_jpeg(const vs::CatalogItem& item) {
  if (app->catalog.thumbnails()) {
    std::vector<uint8_t> jpeg = app->catalog.thumbnail(item.id);
    if (!jpeg.empty()) return jpeg;
  }
  if (g_str_has_prefix(item.source.c_str(), "cifar")) {
    if (app->settings.dataset.empty()) return {};
    std::lock_guard<std::mutex> lock(app->thumbnails_mutex);
    const cv::Mat& rgb = app->thumbnail_cache->get(item.id, item.source, 64);
    return rgb.empty() ? std::vector<uint8_t>() : vs::encode_thumbnail(rgb, 64);
  }
  return file_thumbnail(item.source);
}

struct SimilarJob {
  SoupServerMessage* msg;
  int64_t id;
  SearchArgs args;
};

void run_similar(SimilarJob* job) {
  std::string json;
  int status = 200;
  try {
    std::vector<std::vector<vs::Hit>> hits;
    {
      std::lock_guard<std::mutex> lock(app->store_mutex);
      const std::vector<float> vector = app->store->reconstruct(job->id);
      hits = app->store->search(vector.data(), 1, static_cast<int>(job->args.k) + 1, {});
    }
    std::vector<Neighbor> neighbors;
    for (const vs::Hit& hit : hits.at(0))
      neighbors.push_back(Neighbor{hit.id, hit.distance, -1, "", ""});
    json = "{\"item\":" + item_json(*app->catalog.item(job->id)) +
           ",\"k\":" + std::to_string(job->args.k) +
           ",\"metric\":" + vs::json_quote(app->catalog.facts().metric) + ",\"neighbors\":" +
           neighbors_json(neighbors, job->args.k, job->args.max_distance, job->id) + "}";
  } catch (const std::exception& e) {
    status = 500;
    json = json_error(500, e.what());
  }
  run_on_main([job, status, json] {
    respond_json(job->msg, status, json);
    soup_server_message_unpause(job->msg);
    g_object_unref(job->msg);
    delete job;
  });
}

void handle_items(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query,
                  gpointer) {
  if (!authorized(msg, query)) {
    respond_error(msg, 401, "this server wants its token: Authorization: Bearer TOKEN");
    return;
  }
  if (g_strcmp0(soup_server_message_get_method(msg), "GET") != 0) {
    respond_error(msg, 405, "items are read with GET");
    return;
  }
  // /api/items/{id}[/thumbnail|/similar]
  const std::string rest = std::string(path).substr(strlen("/api/items/"));
  const size_t slash = rest.find('/');
  const std::string id_text = rest.substr(0, slash);
  const std::string what = slash == std::string::npos ? "" : rest.substr(slash + 1);
  const auto id = parse_int(id_text, 0, INT64_MAX);
  const vs::CatalogItem* item = id ? app->catalog.item(*id) : nullptr;
  if (!item) {
    respond_error(msg, 404,
                  "no gallery item '" + id_text + "'; ids run from 0 to " +
                      std::to_string(app->catalog.facts().count - 1));
    return;
  }
  if (what.empty()) {
    respond_json(msg, 200, item_json(*item));
  } else if (what == "thumbnail") {
    std::vector<uint8_t> jpeg;
    try {
      jpeg = thumbnail_jpeg(*item);
    } catch (const std::exception& e) {
      respond_error(msg, 500, e.what());
      return;
    }
    if (jpeg.empty()) {
      respond_error(msg, 404,
                    "item " + id_text +
                        " has no thumbnail in the catalog, and its "
                        "source cannot be read (start the server with --gallery or "
                        "--dataset to show originals)");
      return;
    }
    set_security_headers(msg);
    soup_server_message_set_status(msg, 200, nullptr);
    soup_server_message_set_response(msg, "image/jpeg", SOUP_MEMORY_COPY,
                                     reinterpret_cast<const char*>(jpeg.data()), jpeg.size());
  } else if (what == "similar") {
    SearchArgs args;
    if (!parse_search_args(msg, query, &args)) return;
    auto* job = new SimilarJob{SOUP_SERVER_MESSAGE(g_object_ref(msg)), *id, args};
    soup_server_message_pause(msg);
    g_thread_pool_push(app->workers, new WorkItem{nullptr, job}, nullptr);
  } else {
    respond_error(msg, 404, "no such item resource '" + what + "': use thumbnail or similar");
  }
}

void handle_index(SoupServer*, SoupServerMessage* msg, const char*, GHashTable* query, gpointer) {
  if (!authorized(msg, query)) {
    respond_error(msg, 401, "this server wants its token: Authorization: Bearer TOKEN");
    return;
  }
  respond_json(msg, 200, app->index_json);
}

void handle_api_other(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*,
                      gpointer) {
  respond_error(
      msg, 404,
      std::string("no API at ") + path + "; see /api/index, /api/search, /api/items/{id}");
}

void handle_static(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, gpointer) {
  const char* method = soup_server_message_get_method(msg);
  if (g_strcmp0(method, "GET") != 0 && g_strcmp0(method, "HEAD") != 0) {
    respond_error(msg, 405, "the page is read with GET");
    return;
  }
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
void handle_live(SoupServer*, SoupServerMessage* msg, const char*, GHashTable* query,
                 gpointer mjpeg) {
  if (!authorized(msg, query)) {
    respond_error(msg, 401, "this server wants its token: Authorization: Bearer TOKEN");
    return;
  }
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

std::string build_index_json() {
  const vs::IndexFacts& f = app->catalog.facts();
  std::map<int, std::pair<std::string, int64_t>> labels;
  for (const vs::CatalogItem& item : app->catalog.items()) {
    auto& entry = labels[item.label];
    entry.first = item.label_name;
    entry.second++;
  }
  std::string label_json = "[";
  for (const auto& [label, entry] : labels) {
    if (label_json.size() > 1) label_json += ",";
    label_json += "{\"label\":" + std::to_string(label) +
                  ",\"label_name\":" + vs::json_quote(entry.first) +
                  ",\"count\":" + std::to_string(entry.second) + "}";
  }
  label_json += "]";
  return "{\"index\":" + vs::json_quote(app->settings.index) +
         ",\"model\":" + vs::json_quote(f.model_id) +
         ",\"preprocessing\":" + vs::json_quote(f.preprocessing_id) +
         ",\"dims\":" + std::to_string(f.dims) + ",\"metric\":" + vs::json_quote(f.metric) +
         ",\"index_type\":" + vs::json_quote(f.index_type) +
         ",\"count\":" + std::to_string(f.count) + ",\"created\":" + vs::json_quote(f.created) +
         ",\"thumbnails\":" + (app->catalog.thumbnails() ? "true" : "false") +
         ",\"live\":" + (app->live ? "true" : "false") +
         ",\"k_default\":" + std::to_string(app->settings.k_default) +
         ",\"k_max\":" + std::to_string(app->settings.k_max) + ",\"labels\":" + label_json + "}";
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

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  gchar *index = nullptr, *bind = nullptr, *camera = nullptr, *token = nullptr, *web_root = nullptr,
        *gallery = nullptr, *dataset = nullptr;
  gint port = s.port, max_upload_mb = 20, k_max = s.k_max,
       idle_timeout = static_cast<gint>(s.idle_timeout);
  GOptionEntry entries[] = {
      {"index", 'i', 0, G_OPTION_ARG_FILENAME, &index,
       "FAISS index written by faissindexer (its catalog INDEX.db beside it)", "INDEX"},
      {"port", 'p', 0, G_OPTION_ARG_INT, &port, "TCP port (0: any free one; default 8080)", "PORT"},
      {"bind", 'b', 0, G_OPTION_ARG_STRING, &bind,
       "Address to listen on (default 127.0.0.1; others need --token)", "ADDRESS"},
      {"camera", 'c', 0, G_OPTION_ARG_STRING, &camera,
       "Live source for the live page, as gst-launch-1.0 syntax, e.g. \"v4l2src\" or "
       "\"videotestsrc is-live=true\" (default none)",
       "PIPELINE"},
      {"token", 't', 0, G_OPTION_ARG_STRING, &token,
       "Secret every API request must carry (Authorization: Bearer TOKEN, or ?token=)", "SECRET"},
      {"web-root", 0, 0, G_OPTION_ARG_FILENAME, &web_root, "Folder of the web page", "DIR"},
      {"gallery", 'g', 0, G_OPTION_ARG_FILENAME, &gallery,
       "Gallery folder, to show originals of items without a catalog thumbnail (default: the "
       "folder a galleryindexer catalog records)",
       "DIR"},
      {"dataset", 'd', 0, G_OPTION_ARG_FILENAME, &dataset,
       "CIFAR folder, to show CIFAR items without a catalog thumbnail", "DIR"},
      {"max-upload", 0, 0, G_OPTION_ARG_INT, &max_upload_mb, "Largest upload in MB (default 20)",
       "MB"},
      {"k-max", 0, 0, G_OPTION_ARG_INT, &k_max, "Largest k a request may ask (default 100)", "K"},
      {"idle-timeout", 0, 0, G_OPTION_ARG_INT, &idle_timeout,
       "Close a connection that sends or takes nothing for this long (default 60 s)", "SECONDS"},
      {nullptr}};
  GOptionContext* context = g_option_context_new("- visual search web page and JSON API");
  g_option_context_add_main_entries(context, entries, nullptr);
  g_option_context_add_group(context, gst_init_get_option_group());
  GError* error = nullptr;
  if (!g_option_context_parse(context, &argc, &argv, &error)) {
    g_printerr("visualsearch-server: %s\n", error->message);
    return 2;
  }
  g_option_context_free(context);
  if (!index) {
    g_printerr(
        "visualsearch-server: --index INDEX is required (an index built by "
        "pipelines/index-cifar.sh, index-folder.sh or faissindexer)\n");
    return 2;
  }
  if (port < 0 || port > 65535 || max_upload_mb < 1 || max_upload_mb > 1024 || k_max < 1 ||
      k_max > 1024 || idle_timeout < 1 || idle_timeout > 3600) {
    g_printerr(
        "visualsearch-server: --port must be 0..65535, --max-upload 1..1024, "
        "--k-max 1..1024 and --idle-timeout 1..3600\n");
    return 2;
  }
  s.index = index;
  s.port = port;
  if (bind) s.bind = bind;
  if (camera) s.camera = camera;
  if (token) s.token = token;
  s.web_root = web_root ? web_root : default_web_root();
  if (gallery) s.gallery = gallery;
  if (dataset) s.dataset = dataset;
  s.max_upload = int64_t(max_upload_mb) << 20;
  s.k_max = static_cast<unsigned>(k_max);
  s.idle_timeout = static_cast<unsigned>(idle_timeout);
  s.k_default = std::min(s.k_default, s.k_max);
  if (!is_loopback(s.bind) && s.token.empty()) {
    g_printerr(
        "visualsearch-server: binding %s would let anyone on the network search "
        "and read the gallery; give --token SECRET too, or bind 127.0.0.1\n",
        s.bind.c_str());
    return 2;
  }

  App state;
  app = &state;
  app->settings = s;
  try {
    app->catalog = vs::Catalog::load(vs::catalog_path_for(s.index));
    // A folder gallery's catalog records its folder: originals come from there
    // unless --gallery names another (the gallery was moved).
    if (app->settings.gallery.empty()) app->settings.gallery = app->catalog.facts().gallery_root;
    app->store = std::make_unique<vs::IndexStore>(vs::IndexStore::load(s.index));
    app->thumbnail_cache = std::make_unique<vs::ThumbnailCache>(256, s.dataset, nullptr);
    QueryOptions query_options;
    query_options.index = s.index;
    query_options.batch_size = s.batch_size;
    query_options.k_max = s.k_max + 1;
    app->queries = std::make_unique<QueryPipeline>(query_options);
    if (s.camera != "none") app->live = std::make_unique<LiveCamera>(s.camera, s.index);
  } catch (const std::exception& e) {
    g_printerr("visualsearch-server: %s\n", e.what());
    return 1;
  }
  app->index_json = build_index_json();
  app->workers = g_thread_pool_new(
      [](gpointer data, gpointer) {
        auto* work = static_cast<WorkItem*>(data);
        if (work->search) run_search(work->search);
        if (work->similar) run_similar(work->similar);
        delete work;
      },
      nullptr, 2, FALSE, nullptr);

  SoupServer* server = soup_server_new("server-header", "visualsearch-server ", nullptr);
  // A client that opens a connection and then sends (or reads) nothing, such
  // as one that never ends its headers, is dropped after --idle-timeout
  // instead of holding the connection for good. The live streams write every
  // frame, so a camera that stalls that long drops them too.
  g_signal_connect(server, "request-started",
                   G_CALLBACK(+[](SoupServer*, SoupServerMessage* msg, gpointer) {
                     if (GSocket* socket = soup_server_message_get_socket(msg))
                       g_socket_set_timeout(socket, app->settings.idle_timeout);
                   }),
                   nullptr);
  soup_server_add_early_handler(server, "/api/search", handle_search_early, nullptr, nullptr);
  soup_server_add_handler(server, "/api/search", handle_search, nullptr, nullptr);
  soup_server_add_handler(server, "/api/items/", handle_items, nullptr, nullptr);
  soup_server_add_handler(server, "/api/index", handle_index, nullptr, nullptr);
  soup_server_add_handler(server, "/api/live/events", handle_live, nullptr, nullptr);
  soup_server_add_handler(server, "/api", handle_api_other, nullptr, nullptr);
  soup_server_add_handler(server, "/live.mjpeg", handle_live, GINT_TO_POINTER(1), nullptr);
  soup_server_add_handler(server, nullptr, handle_static, nullptr, nullptr);

  GSocketAddress* address = g_inet_socket_address_new_from_string(
      s.bind == "localhost" ? "127.0.0.1" : s.bind.c_str(), static_cast<guint>(s.port));
  if (!address) {
    g_printerr("visualsearch-server: --bind %s is not an IP address\n", s.bind.c_str());
    return 2;
  }
  if (!soup_server_listen(server, address, static_cast<SoupServerListenOptions>(0), &error)) {
    g_printerr("visualsearch-server: cannot listen on %s:%d: %s\n", s.bind.c_str(), s.port,
               error->message);
    return 1;
  }
  g_object_unref(address);
  GSList* uris = soup_server_get_uris(server);
  for (GSList* u = uris; u; u = u->next) {
    gchar* text = g_uri_to_string(static_cast<GUri*>(u->data));
    g_print("visualsearch-server: serving %s (%" G_GINT64_FORMAT " items, %s) at %s\n",
            s.index.c_str(), app->catalog.facts().count, app->catalog.facts().model_id.c_str(),
            text);
    g_free(text);
  }
  g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  fflush(stdout);  // whoever started the server waits for the line

  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGINT, quit_loop, loop);
  g_unix_signal_add(SIGTERM, quit_loop, loop);
  g_main_loop_run(loop);
  g_print("visualsearch-server: stopping\n");
  soup_server_disconnect(server);
  g_object_unref(server);
  g_thread_pool_free(app->workers, FALSE, TRUE);
  app->live.reset();
  app->queries.reset();
  g_main_loop_unref(loop);
  return 0;
}
