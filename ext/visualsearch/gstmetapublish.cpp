// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-metapublish
 * @title: metapublish
 *
 * Publishes the search results of every frame as one JSON document (schema
 * `visualsearch-result/1`, described in docs/elements.md): the stream's
 * #GstMetaPublish:source-name, the frame's number, PTS and wall-clock time,
 * the frame's own item when it carries a #GstVisualSearchSampleMeta, the
 * neighbours of its #GstVisualSearchNeighborsMeta (id, label, label name,
 * source, rank, distance) and, with #GstMetaPublish:include-embedding, its
 * #GstVisualSearchEmbeddingMeta (base64 of the float32 little-endian bytes,
 * or a JSON array), and the regions faisssearch searched (the optional
 * member "regions": each #GstVideoRegionOfInterestMeta with neighbours, its
 * roi_id, roi_type, box and neighbours). A frame is published when it
 * carries neighbours, an embedding that is to be included, or regions with
 * neighbours; other frames pass untouched. The buffers themselves always
 * pass unchanged.
 *
 * #GstMetaPublish:method=file appends one line per document to
 * #GstMetaPublish:location (`-` is stdout), each line in one write(2) on a
 * file opened for appending, so that concurrent writers never interleave
 * inside a line.
 *
 * #GstMetaPublish:method=mqtt publishes to an MQTT broker (libmosquitto) at
 * #GstMetaPublish:address on #GstMetaPublish:topic, whose `%s` becomes the
 * source name. The connection is kept by libmosquitto's own thread, which
 * reconnects after any loss (1 s, doubling up to
 * #GstMetaPublish:reconnect-delay-max); the streaming thread only hands
 * documents over and never waits for the network. While there is no
 * connection, up to #GstMetaPublish:max-queued documents wait in order and
 * are sent on reconnection; past that the oldest are dropped (counted in
 * #GstMetaPublish:dropped, with one warning per outage). A broker that cannot
 * be reached, or goes away, gets a warning and the pipeline keeps running; a
 * refused login, a failed TLS handshake or a malformed address is an error.
 * #GstMetaPublish:tls-ca-file turns TLS on. While connected, up to 1000
 * documents the broker has not yet taken wait inside libmosquitto; past
 * that they wait in the same bounded queue, so that a broker slower than the
 * frames costs bounded memory. At stop, documents still
 * unsent get up to 2 s to leave when connected; what remains is counted in
 * #GstMetaPublish:failed.
 *
 * #GstMetaPublish:published, #GstMetaPublish:dropped and
 * #GstMetaPublish:failed count the documents of the current run.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! embedder index=gallery.faiss ! \
 *     faisssearch index=gallery.faiss k=5 ! metapublish method=mqtt \
 *     address=broker.lan:1883 topic=cameras/%s/results source-name=door \
 *     qos=1 ! fakesink
 * mosquitto_sub -h broker.lan -v -t 'cameras/+/results'
 * ]|
 * |[
 * gst-launch-1.0 cifarsrc location=cifar-10-batches-py split=test ! \
 *     embedder index=train.faiss ! faisssearch index=train.faiss \
 *     post-messages=false ! metapublish method=file location=results.jsonl \
 *     include-embedding=base64 ! fakesink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstmetapublish.h"

#include <errno.h>
#include <fcntl.h>
#include <gst/visualsearch/visualsearchmeta.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#ifdef HAVE_MOSQUITTO
#include <mosquitto.h>
#endif

#include "elements.h"
#include "json/documents.h"
#ifdef HAVE_MOSQUITTO
#include "mqtt/first_connection.h"
#endif

GST_DEBUG_CATEGORY_STATIC (gst_meta_publish_debug);
#define GST_CAT_DEFAULT gst_meta_publish_debug

#define DEFAULT_METHOD GST_META_PUBLISH_METHOD_FILE
#define DEFAULT_ADDRESS "127.0.0.1:1883"
#define DEFAULT_TOPIC "visualsearch/%s"
#define DEFAULT_QOS 0
#define DEFAULT_KEEP_ALIVE 60
#define DEFAULT_RECONNECT_DELAY_MAX 30
#define DEFAULT_MAX_QUEUED 1000
#define DEFAULT_INCLUDE_EMBEDDING GST_META_PUBLISH_EMBEDDING_NONE
/* documents handed to libmosquitto and not yet taken by the broker; more
 * wait in the element's own queue (bounded by max-queued) */
#define MAX_IN_FLIGHT 1000
/* how long stop waits for documents still on their way to the broker */
#define STOP_FLUSH_TIMEOUT_MS 2000

enum
{
  PROP_0,
  PROP_METHOD,
  PROP_LOCATION,
  PROP_ADDRESS,
  PROP_TOPIC,
  PROP_QOS,
  PROP_CLIENT_ID,
  PROP_USERNAME,
  PROP_PASSWORD,
  PROP_TLS_CA_FILE,
  PROP_TLS_CERT_FILE,
  PROP_TLS_KEY_FILE,
  PROP_TLS_INSECURE,
  PROP_KEEP_ALIVE,
  PROP_RECONNECT_DELAY_MAX,
  PROP_MAX_QUEUED,
  PROP_SOURCE_NAME,
  PROP_INCLUDE_EMBEDDING,
  PROP_PUBLISHED,
  PROP_DROPPED,
  PROP_FAILED,
};

namespace {

/* The run's counters, read by get_property from any thread. */
struct Counters
{
  std::atomic<guint64> published{0};
  std::atomic<guint64> dropped{0};
  std::atomic<guint64> failed{0};

  void reset ()
  {
    published = 0;
    dropped = 0;
    failed = 0;
  }
};

/* The properties, copied under the object lock at start. */
struct Settings
{
  GstMetaPublishMethod method = DEFAULT_METHOD;
  std::string location;
  std::string address;
  std::string topic;
  int qos = DEFAULT_QOS;
  std::string client_id;
  std::string username;
  std::string password;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  bool tls_insecure = false;
  int keep_alive = DEFAULT_KEEP_ALIVE;
  int reconnect_delay_max = DEFAULT_RECONNECT_DELAY_MAX;
  guint max_queued = DEFAULT_MAX_QUEUED;
  std::string source_name;
  vs::json::EmbeddingEncoding encoding = vs::json::EmbeddingEncoding::None;
};

/* Where the documents go. publish() is called from the streaming thread and
 * must not wait for anything slow. */
class Publisher {
public:
  virtual ~Publisher () = default;
  virtual void publish (std::string document) = 0;
  /* at stop, before destruction: sends what it can within a bounded time */
  virtual void finish ()
  {
  }
};

/* method=file: one line per document, each in one write(2). */
class FilePublisher : public Publisher {
public:
  FilePublisher (GstElement *element, Counters *counters, int fd, bool owned,
      std::string location)
      : element_ (element), counters_ (counters), fd_ (fd), owned_ (owned),
        location_ (std::move (location))
  {
  }

  ~FilePublisher () override
  {
    if (owned_)
      close (fd_);
  }

  void publish (std::string document) override
  {
    document += '\n';
    const char *data = document.data ();
    size_t left = document.size ();
    while (left > 0) {
      ssize_t n = write (fd_, data, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        counters_->failed++;
        if (!warned_) {
          warned_ = true;
          int err = n < 0 ? errno : ENOSPC;
          GST_ELEMENT_WARNING (element_, RESOURCE, WRITE,
              ("Could not write the results to \"%s\": %s. The pipeline "
               "goes on; further failures are only counted (failed).",
                  location_.c_str (), g_strerror (err)),
              (NULL));
        }
        return;
      }
      data += n;
      left -= (size_t) n;
    }
    counters_->published++;
  }

private:
  GstElement *element_;
  Counters *counters_;
  int fd_;
  bool owned_;
  std::string location_;
  bool warned_ = false;
};

#ifdef HAVE_MOSQUITTO

/* method=mqtt. libmosquitto's thread (mosquitto_loop_start) keeps the
 * connection, reconnects and runs the callbacks; the streaming thread hands
 * documents to the library, or to the bounded queue while disconnected.
 *
 * Lock order: mutex_ is taken inside libmosquitto's callback lock (in the
 * callbacks) and mosquitto_publish, called under mutex_, never takes that
 * lock in threaded mode, so the two cannot deadlock. */
class MqttPublisher : public Publisher {
public:
  MqttPublisher (GstElement *element, Counters *counters, Settings settings,
      std::string host, int port, std::string topic)
      : element_ (element), counters_ (counters),
        settings_ (std::move (settings)), host_ (std::move (host)),
        port_ (port), topic_ (std::move (topic))
  {
  }

  ~MqttPublisher () override
  {
    starter_.stop ();
    if (mosq_) {
      if (loop_started_ || starter_.loop_started ())
        mosquitto_loop_stop (mosq_, cancel_loop_);
      mosquitto_destroy (mosq_);
    }
  }

  /* Connects (asynchronously) and starts the network thread; false with an
   * error posted when the settings cannot work. */
  bool open ()
  {
    static gsize initialized = 0;
    if (g_once_init_enter (&initialized)) {
      mosquitto_lib_init ();
      g_once_init_leave (&initialized, 1);
    }

    const char *id =
        settings_.client_id.empty () ? NULL : settings_.client_id.c_str ();
    mosq_ = mosquitto_new (id, true, this);
    if (!mosq_) {
      GST_ELEMENT_ERROR (element_, RESOURCE, SETTINGS,
          ("Could not create the MQTT client: %s.", g_strerror (errno)),
          (NULL));
      return false;
    }
    mosquitto_connect_callback_set (mosq_, on_connect);
    mosquitto_disconnect_callback_set (mosq_, on_disconnect);
    mosquitto_publish_callback_set (mosq_, on_publish);
    mosquitto_log_callback_set (mosq_, on_log);
    mosquitto_reconnect_delay_set (mosq_, 1, settings_.reconnect_delay_max,
        true);

    int rc;
    if (!settings_.username.empty ()) {
      rc = mosquitto_username_pw_set (mosq_, settings_.username.c_str (),
          settings_.password.empty () ? NULL : settings_.password.c_str ());
      if (rc != MOSQ_ERR_SUCCESS)
        return settings_error ("username/password", rc);
    }
    if (!settings_.tls_ca_file.empty ()) {
      rc = mosquitto_tls_set (mosq_, settings_.tls_ca_file.c_str (), NULL,
          settings_.tls_cert_file.empty () ? NULL
                                           : settings_.tls_cert_file.c_str (),
          settings_.tls_key_file.empty () ? NULL
                                          : settings_.tls_key_file.c_str (),
          NULL);
      if (rc != MOSQ_ERR_SUCCESS)
        return settings_error ("tls-ca-file/tls-cert-file/tls-key-file", rc);
      if (settings_.tls_insecure)
        mosquitto_tls_insecure_set (mosq_, true);
    } else if (!settings_.tls_cert_file.empty ()) {
      GST_ELEMENT_ERROR (element_, RESOURCE, SETTINGS,
          ("tls-cert-file needs tls-ca-file: set the CA that signed the "
           "broker's certificate."),
          (NULL));
      return false;
    }

    rc = mosquitto_connect_async (mosq_, host_.c_str (), port_,
        settings_.keep_alive);
    if (rc == MOSQ_ERR_EAI) {
      GST_ELEMENT_ERROR (element_, RESOURCE, NOT_FOUND,
          ("Cannot resolve the MQTT broker's host \"%s\" (address %s).",
              host_.c_str (), settings_.address.c_str ()),
          (NULL));
      return false;
    }
    if (rc == MOSQ_ERR_TLS) {
      tls_error ();
      return false;
    }
    if (rc == MOSQ_ERR_ERRNO) {
      /* Nobody listens (yet). libmosquitto's thread only ever reconnects a
       * connection that once was: until the first one is made, a thread of
       * ours tries again, then starts the library's. */
      const int err = errno;
      {
        std::lock_guard<std::mutex> lock (mutex_);
        outage_warning_locked (g_strerror (err));
      }
      starter_.start (
          mosq_, host_, port_, settings_.keep_alive,
          settings_.reconnect_delay_max,
          [this] (int rc) { return retry_after (rc); },
          [this] (int) {
            GST_ELEMENT_ERROR (element_, RESOURCE, FAILED,
                ("Could not start the MQTT client's thread."), (NULL));
          });
      GST_INFO_OBJECT (element_,
          "publishing to %s:%d on topic %s, qos %d, once it listens",
          host_.c_str (), port_, topic_.c_str (), settings_.qos);
      return true;
    } else if (rc != MOSQ_ERR_SUCCESS) {
      return settings_error ("address", rc);
    }
    rc = mosquitto_loop_start (mosq_);
    if (rc != MOSQ_ERR_SUCCESS) {
      GST_ELEMENT_ERROR (element_, RESOURCE, FAILED,
          ("Could not start the MQTT client's thread: %s.",
              mosquitto_strerror (rc)),
          (NULL));
      return false;
    }
    loop_started_ = true;
    GST_INFO_OBJECT (element_, "publishing to %s:%d on topic %s, qos %d",
        host_.c_str (), port_, topic_.c_str (), settings_.qos);
    return true;
  }

  void publish (std::string document) override
  {
    std::lock_guard<std::mutex> lock (mutex_);
    if (refused_) {
      counters_->failed++;
      return;
    }
    if (connected_ && queue_.empty () && in_flight_ < MAX_IN_FLIGHT
        && send_locked (document))
      return;
    queue_.push_back (std::move (document));
    if (!connected_ && !outage_warned_ && ever_connected_)
      outage_warning_locked ("not connected");
    while (queue_.size () > settings_.max_queued) {
      queue_.pop_front ();
      counters_->dropped++;
      if (!drop_warned_) {
        drop_warned_ = true;
        GST_ELEMENT_WARNING (element_, RESOURCE, WRITE,
            ("Dropping the oldest results: more than max-queued (%u) wait "
             "for the MQTT broker at %s. Further drops in this outage are "
             "only counted (dropped).",
                settings_.max_queued, settings_.address.c_str ()),
            (NULL));
      }
    }
  }

  void finish () override
  {
    std::unique_lock<std::mutex> lock (mutex_);
    stopping_ = true;
    if (connected_) {
      cond_.wait_for (lock, std::chrono::milliseconds (STOP_FLUSH_TIMEOUT_MS),
          [this] { return queue_.empty () && in_flight_ == 0; });
    }
    const guint64 unsent = queue_.size () + in_flight_;
    if (unsent > 0) {
      GST_WARNING_OBJECT (element_,
          "%" G_GUINT64_FORMAT " results never reached the broker", unsent);
      counters_->failed += unsent;
    }
    queue_.clear ();
    in_flight_ = 0;
    cancel_loop_ = !connected_;
    lock.unlock ();
    starter_.stop ();
    mosquitto_disconnect (mosq_);
  }

private:
  /* Whether the first connection, while nobody listened at open(), is tried
   * again (after 1 s, then twice as long each time up to reconnect-delay-max)
   * after mosquitto_connect_async failed with rc. */
  bool retry_after (int rc)
  {
    if (rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_EAI)
      return true;
    if (rc == MOSQ_ERR_TLS) {
      if (!refused_.exchange (true))
        tls_error ();
      return false;
    }
    GST_WARNING_OBJECT (element_, "connect failed: %s",
        mosquitto_strerror (rc));
    return true;
  }

  bool settings_error (const char *what, int rc)
  {
    GST_ELEMENT_ERROR (element_, RESOURCE, SETTINGS,
        ("Invalid MQTT %s: %s.", what, mosquitto_strerror (rc)), (NULL));
    return false;
  }

  /* sends what waits, in order, as far as MAX_IN_FLIGHT allows */
  void send_queued_locked ()
  {
    while (!queue_.empty () && in_flight_ < MAX_IN_FLIGHT
        && send_locked (queue_.front ()))
      queue_.pop_front ();
  }

  void tls_error ()
  {
    GST_ELEMENT_ERROR (element_, RESOURCE, OPEN_WRITE,
        ("The TLS handshake with the MQTT broker at %s failed. Check that "
         "tls-ca-file holds the CA that signed the broker's certificate, that "
         "the certificate names the host of address (or set tls-insecure), "
         "and that the broker's port speaks TLS.",
            settings_.address.c_str ()),
        (NULL));
  }

  /* libmosquitto's log: to the debug log; a TLS failure in the network
   * thread, which ends that thread, is also the element's error */
  static void on_log (struct mosquitto *mosq, void *data, int level,
      const char *text)
  {
    auto *self = static_cast<MqttPublisher *> (data);
    GST_DEBUG_OBJECT (self->element_, "libmosquitto: %s", text);
    /* no mutex_ here: the library logs from inside mosquitto_publish too,
     * which runs under it; what stays queued is counted as failed at stop */
    if ((level & MOSQ_LOG_ERR) && strstr (text, "OpenSSL")
        && !self->refused_.exchange (true))
      self->tls_error ();
  }

  /* hands one document to the library; false if it must wait for a
   * connection */
  bool send_locked (const std::string &document)
  {
    int mid = 0;
    int rc = mosquitto_publish (mosq_, &mid, topic_.c_str (),
        (int) document.size (), document.data (), settings_.qos, false);
    if (rc == MOSQ_ERR_SUCCESS) {
      in_flight_++;
      return true;
    }
    if (rc == MOSQ_ERR_NO_CONN) {
      connected_ = false;
      return false;
    }
    counters_->failed++;
    GST_WARNING_OBJECT (element_, "publish failed: %s",
        mosquitto_strerror (rc));
    return true;
  }

  void outage_warning_locked (const char *why)
  {
    if (outage_warned_ || stopping_)
      return;
    outage_warned_ = true;
    GST_ELEMENT_WARNING (element_, RESOURCE, OPEN_WRITE,
        ("No connection to the MQTT broker at %s (%s). Reconnecting (every "
         "1 to %d s); up to max-queued (%u) results wait meanwhile.",
            settings_.address.c_str (), why, settings_.reconnect_delay_max,
            settings_.max_queued),
        (NULL));
  }

  static void on_connect (struct mosquitto *mosq, void *data, int rc)
  {
    auto *self = static_cast<MqttPublisher *> (data);
    std::lock_guard<std::mutex> lock (self->mutex_);
    if (rc != 0) {
      /* a CONNACK refusal: bad credentials, client id or protocol */
      self->refused_ = true;
      self->counters_->failed += self->queue_.size ();
      self->queue_.clear ();
      GST_ELEMENT_ERROR (self->element_, RESOURCE, OPEN_WRITE,
          ("The MQTT broker at %s refused the connection (%s) Check "
           "username, password and client-id.",
              self->settings_.address.c_str (), mosquitto_connack_string (rc)),
          (NULL));
      mosquitto_disconnect (mosq);
      return;
    }
    self->connected_ = true;
    if (self->outage_warned_ && !self->stopping_) {
      GST_ELEMENT_INFO (self->element_, RESOURCE, OPEN_WRITE,
          ("Connected to the MQTT broker at %s.",
              self->settings_.address.c_str ()),
          (NULL));
    }
    self->ever_connected_ = true;
    self->outage_warned_ = false;
    self->drop_warned_ = false;
    self->send_queued_locked ();
    self->cond_.notify_all ();
  }

  static void on_disconnect (struct mosquitto *mosq, void *data, int rc)
  {
    auto *self = static_cast<MqttPublisher *> (data);
    std::lock_guard<std::mutex> lock (self->mutex_);
    self->connected_ = false;
    if (self->settings_.qos == 0) {
      /* QoS 0 documents not yet written are gone with the connection */
      self->counters_->failed += self->in_flight_;
      self->in_flight_ = 0;
    }
    if (rc != 0 && !self->refused_)
      self->outage_warning_locked (mosquitto_strerror (rc));
    self->cond_.notify_all ();
  }

  static void on_publish (struct mosquitto *mosq, void *data, int mid)
  {
    auto *self = static_cast<MqttPublisher *> (data);
    std::lock_guard<std::mutex> lock (self->mutex_);
    if (self->in_flight_ > 0)
      self->in_flight_--;
    self->counters_->published++;
    if (self->connected_)
      self->send_queued_locked ();
    self->cond_.notify_all ();
  }

  GstElement *element_;
  Counters *counters_;
  Settings settings_;
  std::string host_;
  int port_;
  std::string topic_;
  struct mosquitto *mosq_ = nullptr;
  bool loop_started_ = false;
  /* not connected at stop: the network thread may be inside a blocking
   * connect to an unreachable host (minutes), so it is cancelled rather than
   * waited for */
  bool cancel_loop_ = false;

  /* the first connection's retries, while nobody listened at open() */
  vs::mqtt::FirstConnection starter_;

  /* guarded by mutex_ */
  std::mutex mutex_;
  std::condition_variable cond_;
  std::deque<std::string> queue_;
  guint64 in_flight_ = 0;
  bool connected_ = false;
  bool ever_connected_ = false;
  std::atomic<bool> refused_{false};
  bool stopping_ = false;
  bool outage_warned_ = false;
  bool drop_warned_ = false;
};

/* "host:port", "[v6]:port" or "host" (port 1883). */
bool
parse_address (const std::string &address, std::string *host, int *port)
{
  std::string h = address, p;
  if (!address.empty () && address[0] == '[') {
    size_t close = address.find (']');
    if (close == std::string::npos)
      return false;
    h = address.substr (1, close - 1);
    if (close + 1 < address.size ()) {
      if (address[close + 1] != ':')
        return false;
      p = address.substr (close + 2);
    }
  } else {
    size_t colon = address.rfind (':');
    if (colon != std::string::npos) {
      if (address.find (':') != colon)
        return false;
      h = address.substr (0, colon);
      p = address.substr (colon + 1);
    }
  }
  if (h.empty ())
    return false;
  *host = h;
  *port = 1883;
  if (!p.empty ()) {
    gchar *end = NULL;
    guint64 v = g_ascii_strtoull (p.c_str (), &end, 10);
    if (*end || v < 1 || v > 65535)
      return false;
    *port = (int) v;
  }
  return true;
}

std::string
replace_all (std::string text, const std::string &from, const std::string &to)
{
  for (size_t at = text.find (from); at != std::string::npos;
       at = text.find (from, at + to.size ()))
    text.replace (at, from.size (), to);
  return text;
}

#endif /* HAVE_MOSQUITTO */

} // namespace

struct _GstMetaPublish
{
  GstBaseTransform parent;

  /* properties, guarded by the object lock */
  GstMetaPublishMethod method;
  gchar *location;
  gchar *address;
  gchar *topic;
  gint qos;
  gchar *client_id;
  gchar *username;
  gchar *password;
  gchar *tls_ca_file;
  gchar *tls_cert_file;
  gchar *tls_key_file;
  gboolean tls_insecure;
  gint keep_alive;
  gint reconnect_delay_max;
  guint max_queued;
  gchar *source_name;
  GstMetaPublishEmbedding include_embedding;

  /* made in init, freed in finalize; reset at start */
  Counters *counters;

  /* the run's state: made in start, freed in stop */
  Publisher *publisher;
  std::string *source;
  vs::json::EmbeddingEncoding encoding;
  guint64 frames;
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

#define GST_TYPE_META_PUBLISH_METHOD (gst_meta_publish_method_get_type ())
static GType
gst_meta_publish_method_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_META_PUBLISH_METHOD_FILE, "JSON lines appended to location", "file"},
      {GST_META_PUBLISH_METHOD_MQTT,
          "MQTT messages to the broker at address"
#ifndef HAVE_MOSQUITTO
          " (not built: libmosquitto was missing)"
#endif
          ,
          "mqtt"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstMetaPublishMethod", values));
  return type;
}

#define GST_TYPE_META_PUBLISH_EMBEDDING (gst_meta_publish_embedding_get_type ())
static GType
gst_meta_publish_embedding_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_META_PUBLISH_EMBEDDING_NONE, "Leave the embedding out", "none"},
      {GST_META_PUBLISH_EMBEDDING_BASE64,
          "Base64 of the float32 little-endian bytes", "base64"},
      {GST_META_PUBLISH_EMBEDDING_ARRAY, "A JSON array of numbers", "array"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstMetaPublishEmbedding", values));
  return type;
}

#define gst_meta_publish_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstMetaPublish, gst_meta_publish,
    GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_meta_publish_debug, "metapublish", 0,
        "Publishing of search results (MQTT, JSON lines)"));
GST_ELEMENT_REGISTER_DEFINE (metapublish, "metapublish", GST_RANK_NONE,
    GST_TYPE_META_PUBLISH);

static void gst_meta_publish_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_meta_publish_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_meta_publish_finalize (GObject *object);
static gboolean gst_meta_publish_start (GstBaseTransform *trans);
static gboolean gst_meta_publish_stop (GstBaseTransform *trans);
static GstFlowReturn gst_meta_publish_transform_ip (GstBaseTransform *trans,
    GstBuffer *buf);

#define STRING_PROP(id, name, nick, blurb, def) \
  g_object_class_install_property (gobject_class, id, \
      g_param_spec_string (name, nick, blurb, def, \
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS \
              | GST_PARAM_MUTABLE_READY)))

static void
gst_meta_publish_class_init (GstMetaPublishClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags rw = (GParamFlags) (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const GParamFlags ro =
      (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  gobject_class->set_property = gst_meta_publish_set_property;
  gobject_class->get_property = gst_meta_publish_get_property;
  gobject_class->finalize = gst_meta_publish_finalize;

  g_object_class_install_property (gobject_class, PROP_METHOD,
      g_param_spec_enum ("method", "Method",
          "Where the results go: file (JSON lines) or mqtt (an MQTT broker)"
#ifndef HAVE_MOSQUITTO
          "; this build has no mqtt (libmosquitto was missing)"
#endif
          ,
          GST_TYPE_META_PUBLISH_METHOD, DEFAULT_METHOD, rw));
  STRING_PROP (PROP_LOCATION, "location", "Location",
      "method=file: the file the JSON lines are appended to (created if "
      "missing), or - for stdout",
      NULL);
  STRING_PROP (PROP_ADDRESS, "address", "Address",
      "method=mqtt: the broker as host:port, [IPv6]:port or host (port 1883)",
      DEFAULT_ADDRESS);
  STRING_PROP (PROP_TOPIC, "topic", "Topic",
      "method=mqtt: the topic published on; every %s becomes source-name",
      DEFAULT_TOPIC);
  g_object_class_install_property (gobject_class, PROP_QOS,
      g_param_spec_int ("qos", "QoS",
          "method=mqtt: MQTT quality of service: 0 at most once, 1 at least "
          "once, 2 exactly once",
          0, 2, DEFAULT_QOS, rw));
  STRING_PROP (PROP_CLIENT_ID, "client-id", "Client id",
      "method=mqtt: the MQTT client id; unset, the library makes a random one",
      NULL);
  STRING_PROP (PROP_USERNAME, "username", "Username",
      "method=mqtt: the user name to log in with; unset, none", NULL);
  STRING_PROP (PROP_PASSWORD, "password", "Password",
      "method=mqtt: the password to log in with (needs username)", NULL);
  STRING_PROP (PROP_TLS_CA_FILE, "tls-ca-file", "TLS CA file",
      "method=mqtt: PEM file of the CA(s) that signed the broker's "
      "certificate; set, the connection uses TLS",
      NULL);
  STRING_PROP (PROP_TLS_CERT_FILE, "tls-cert-file", "TLS certificate file",
      "method=mqtt: PEM client certificate, for brokers that require one "
      "(needs tls-ca-file and tls-key-file)",
      NULL);
  STRING_PROP (PROP_TLS_KEY_FILE, "tls-key-file", "TLS key file",
      "method=mqtt: PEM private key of tls-cert-file", NULL);
  g_object_class_install_property (gobject_class, PROP_TLS_INSECURE,
      g_param_spec_boolean ("tls-insecure", "TLS insecure",
          "method=mqtt: do not check that the broker's certificate names its "
          "host (testing only)",
          FALSE, rw));
  g_object_class_install_property (gobject_class, PROP_KEEP_ALIVE,
      g_param_spec_int ("keep-alive", "Keep-alive",
          "method=mqtt: seconds between keep-alive pings when idle; a broker "
          "silent for 1.5 times this is taken as gone",
          5, 65535, DEFAULT_KEEP_ALIVE, rw));
  g_object_class_install_property (gobject_class, PROP_RECONNECT_DELAY_MAX,
      g_param_spec_int ("reconnect-delay-max", "Reconnect delay max",
          "method=mqtt: after a lost connection, reconnect after 1 s, then "
          "twice as long each time up to this many seconds",
          1, 3600, DEFAULT_RECONNECT_DELAY_MAX, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_QUEUED,
      g_param_spec_uint ("max-queued", "Max queued",
          "method=mqtt: results kept while the broker is unreachable, sent on "
          "reconnection; past this the oldest are dropped (0 drops them all)",
          0, G_MAXINT, DEFAULT_MAX_QUEUED, rw));
  STRING_PROP (PROP_SOURCE_NAME, "source-name", "Source name",
      "The stream's name: the documents' \"source\" and the topic's %s; "
      "unset, the host name",
      NULL);
  g_object_class_install_property (gobject_class, PROP_INCLUDE_EMBEDDING,
      g_param_spec_enum ("include-embedding", "Include embedding",
          "Whether and how to add the frame's embedding to the document",
          GST_TYPE_META_PUBLISH_EMBEDDING, DEFAULT_INCLUDE_EMBEDDING, rw));
  g_object_class_install_property (gobject_class, PROP_PUBLISHED,
      g_param_spec_uint64 ("published", "Published",
          "Documents of this run written (file) or delivered to the broker "
          "(mqtt: written for qos 0, acknowledged for qos 1 and 2)",
          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_DROPPED,
      g_param_spec_uint64 ("dropped", "Dropped",
          "Documents of this run dropped, oldest first, because more than "
          "max-queued waited for the broker",
          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_FAILED,
      g_param_spec_uint64 ("failed", "Failed",
          "Documents of this run that could not be written or published, "
          "lost with a qos 0 connection, or still unsent at stop",
          0, G_MAXUINT64, 0, ro));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Search result publisher", "Sink/Network/Metadata",
      "Publishes each frame's neighbours (and embedding) as JSON to an MQTT "
      "broker or a JSON-lines file; buffers pass unchanged",
      "visualsearch developers");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_meta_publish_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_meta_publish_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_meta_publish_transform_ip);

  gst_type_mark_as_plugin_api (GST_TYPE_META_PUBLISH_METHOD,
      (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_META_PUBLISH_EMBEDDING,
      (GstPluginAPIFlags) 0);
}

static void
gst_meta_publish_init (GstMetaPublish *self)
{
  self->method = DEFAULT_METHOD;
  self->address = g_strdup (DEFAULT_ADDRESS);
  self->topic = g_strdup (DEFAULT_TOPIC);
  self->qos = DEFAULT_QOS;
  self->keep_alive = DEFAULT_KEEP_ALIVE;
  self->reconnect_delay_max = DEFAULT_RECONNECT_DELAY_MAX;
  self->max_queued = DEFAULT_MAX_QUEUED;
  self->include_embedding = DEFAULT_INCLUDE_EMBEDDING;
  self->counters = new Counters ();

  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_meta_publish_finalize (GObject *object)
{
  GstMetaPublish *self = GST_META_PUBLISH (object);

  g_free (self->location);
  g_free (self->address);
  g_free (self->topic);
  g_free (self->client_id);
  g_free (self->username);
  g_free (self->password);
  g_free (self->tls_ca_file);
  g_free (self->tls_cert_file);
  g_free (self->tls_key_file);
  g_free (self->source_name);
  delete self->counters;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static gchar **
string_field (GstMetaPublish *self, guint prop_id)
{
  switch (prop_id) {
    case PROP_LOCATION:
      return &self->location;
    case PROP_ADDRESS:
      return &self->address;
    case PROP_TOPIC:
      return &self->topic;
    case PROP_CLIENT_ID:
      return &self->client_id;
    case PROP_USERNAME:
      return &self->username;
    case PROP_PASSWORD:
      return &self->password;
    case PROP_TLS_CA_FILE:
      return &self->tls_ca_file;
    case PROP_TLS_CERT_FILE:
      return &self->tls_cert_file;
    case PROP_TLS_KEY_FILE:
      return &self->tls_key_file;
    case PROP_SOURCE_NAME:
      return &self->source_name;
    default:
      return NULL;
  }
}

static void
gst_meta_publish_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstMetaPublish *self = GST_META_PUBLISH (object);

  GST_OBJECT_LOCK (self);
  gchar **field = string_field (self, prop_id);
  if (field) {
    g_free (*field);
    *field = g_value_dup_string (value);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  switch (prop_id) {
    case PROP_METHOD:
      self->method = (GstMetaPublishMethod) g_value_get_enum (value);
      break;
    case PROP_QOS:
      self->qos = g_value_get_int (value);
      break;
    case PROP_TLS_INSECURE:
      self->tls_insecure = g_value_get_boolean (value);
      break;
    case PROP_KEEP_ALIVE:
      self->keep_alive = g_value_get_int (value);
      break;
    case PROP_RECONNECT_DELAY_MAX:
      self->reconnect_delay_max = g_value_get_int (value);
      break;
    case PROP_MAX_QUEUED:
      self->max_queued = g_value_get_uint (value);
      break;
    case PROP_INCLUDE_EMBEDDING:
      self->include_embedding =
          (GstMetaPublishEmbedding) g_value_get_enum (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_meta_publish_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstMetaPublish *self = GST_META_PUBLISH (object);

  switch (prop_id) {
    case PROP_PUBLISHED:
      g_value_set_uint64 (value, self->counters->published);
      return;
    case PROP_DROPPED:
      g_value_set_uint64 (value, self->counters->dropped);
      return;
    case PROP_FAILED:
      g_value_set_uint64 (value, self->counters->failed);
      return;
    default:
      break;
  }

  GST_OBJECT_LOCK (self);
  gchar **field = string_field (self, prop_id);
  if (field) {
    g_value_set_string (value, *field);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  switch (prop_id) {
    case PROP_METHOD:
      g_value_set_enum (value, self->method);
      break;
    case PROP_QOS:
      g_value_set_int (value, self->qos);
      break;
    case PROP_TLS_INSECURE:
      g_value_set_boolean (value, self->tls_insecure);
      break;
    case PROP_KEEP_ALIVE:
      g_value_set_int (value, self->keep_alive);
      break;
    case PROP_RECONNECT_DELAY_MAX:
      g_value_set_int (value, self->reconnect_delay_max);
      break;
    case PROP_MAX_QUEUED:
      g_value_set_uint (value, self->max_queued);
      break;
    case PROP_INCLUDE_EMBEDDING:
      g_value_set_enum (value, self->include_embedding);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static std::string
str (const gchar *s)
{
  return s ? s : "";
}

static Settings
read_settings (GstMetaPublish *self)
{
  Settings s;
  GST_OBJECT_LOCK (self);
  s.method = self->method;
  s.location = str (self->location);
  s.address = str (self->address);
  s.topic = str (self->topic);
  s.qos = self->qos;
  s.client_id = str (self->client_id);
  s.username = str (self->username);
  s.password = str (self->password);
  s.tls_ca_file = str (self->tls_ca_file);
  s.tls_cert_file = str (self->tls_cert_file);
  s.tls_key_file = str (self->tls_key_file);
  s.tls_insecure = self->tls_insecure;
  s.keep_alive = self->keep_alive;
  s.reconnect_delay_max = self->reconnect_delay_max;
  s.max_queued = self->max_queued;
  s.source_name = self->source_name ? self->source_name : g_get_host_name ();
  switch (self->include_embedding) {
    case GST_META_PUBLISH_EMBEDDING_BASE64:
      s.encoding = vs::json::EmbeddingEncoding::Base64;
      break;
    case GST_META_PUBLISH_EMBEDDING_ARRAY:
      s.encoding = vs::json::EmbeddingEncoding::Array;
      break;
    default:
      s.encoding = vs::json::EmbeddingEncoding::None;
      break;
  }
  GST_OBJECT_UNLOCK (self);
  return s;
}

static Publisher *
open_file (GstMetaPublish *self, const Settings &s)
{
  GstElement *element = GST_ELEMENT (self);
  if (s.location.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("method=file needs location: a file to append the JSON lines to, "
         "or - for stdout."),
        (NULL));
    return NULL;
  }
  if (s.location == "-")
    return new FilePublisher (element, self->counters, STDOUT_FILENO, false,
        "stdout");
  int fd = open (s.location.c_str (), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
      0666);
  if (fd < 0) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not open \"%s\" to append the results: %s.",
            s.location.c_str (), g_strerror (errno)),
        (NULL));
    return NULL;
  }
  return new FilePublisher (element, self->counters, fd, true, s.location);
}

static Publisher *
open_mqtt (GstMetaPublish *self, const Settings &s)
{
#ifdef HAVE_MOSQUITTO
  std::string host;
  int port = 0;
  if (!parse_address (s.address, &host, &port)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid MQTT broker address \"%s\": give host:port (port 1 to "
         "65535), [IPv6]:port or host.",
            s.address.c_str ()),
        (NULL));
    return NULL;
  }
  std::string topic = replace_all (s.topic, "%s", s.source_name);
  if (topic.empty ()
      || mosquitto_pub_topic_check (topic.c_str ()) != MOSQ_ERR_SUCCESS) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid MQTT topic \"%s\" (from topic=\"%s\"): a topic to publish "
         "on is not empty and has no + or # wildcard.",
            topic.c_str (), s.topic.c_str ()),
        (NULL));
    return NULL;
  }
  if (!s.password.empty () && s.username.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("password is set but username is not: MQTT logs in with both."),
        (NULL));
    return NULL;
  }
  auto *publisher = new MqttPublisher (GST_ELEMENT (self), self->counters, s,
      host, port, topic);
  if (!publisher->open ()) {
    delete publisher;
    return NULL;
  }
  return publisher;
#else
  GST_ELEMENT_ERROR (self, CORE, NOT_IMPLEMENTED,
      ("This build of metapublish has no method=mqtt: libmosquitto-dev was "
       "missing when it was built. Install it (scripts/install-deps.sh) and "
       "rebuild, or use method=file."),
      (NULL));
  return NULL;
#endif
}

static gboolean
gst_meta_publish_start (GstBaseTransform *trans)
{
  GstMetaPublish *self = GST_META_PUBLISH (trans);
  Settings s = read_settings (self);

  self->counters->reset ();
  self->frames = 0;
  self->encoding = s.encoding;
  self->source = new std::string (s.source_name);
  self->publisher = s.method == GST_META_PUBLISH_METHOD_MQTT
      ? open_mqtt (self, s)
      : open_file (self, s);
  if (!self->publisher) {
    delete self->source;
    self->source = NULL;
    return FALSE;
  }
  return TRUE;
}

static gboolean
gst_meta_publish_stop (GstBaseTransform *trans)
{
  GstMetaPublish *self = GST_META_PUBLISH (trans);

  if (self->publisher) {
    self->publisher->finish ();
    delete self->publisher;
    self->publisher = NULL;
  }
  delete self->source;
  self->source = NULL;
  GST_INFO_OBJECT (self,
      "published %" G_GUINT64_FORMAT ", dropped %" G_GUINT64_FORMAT
      ", failed %" G_GUINT64_FORMAT,
      (guint64) self->counters->published, (guint64) self->counters->dropped,
      (guint64) self->counters->failed);
  return TRUE;
}

static GstFlowReturn
gst_meta_publish_transform_ip (GstBaseTransform *trans, GstBuffer *buf)
{
  GstMetaPublish *self = GST_META_PUBLISH (trans);

  GstVisualSearchNeighborsMeta *nmeta =
      gst_buffer_get_visualsearch_neighbors_meta (buf);
  GstVisualSearchEmbeddingMeta *emeta =
      self->encoding == vs::json::EmbeddingEncoding::None
      ? NULL
      : gst_buffer_get_visualsearch_embedding_meta (buf);
  std::vector<vs::json::Region> regions = vs::json::regions_of (buf);
  if (!nmeta && !emeta && regions.empty ())
    return GST_FLOW_OK;

  vs::json::PublishedResult r;
  r.source = *self->source;
  r.frame = self->frames++;
  if (GST_BUFFER_PTS_IS_VALID (buf))
    r.pts = GST_BUFFER_PTS (buf);
  r.wall_time_us = g_get_real_time ();
  if (GstVisualSearchSampleMeta *sample =
          gst_buffer_get_visualsearch_sample_meta (buf)) {
    r.sample = vs::json::Item{sample->id, sample->label,
        str (sample->label_name), str (sample->source)};
  }
  if (nmeta) {
    r.has_neighbors = true;
    r.metric = gst_visualsearch_metric_to_string (nmeta->metric);
    r.neighbors = vs::json::neighbors_of (nmeta);
  }
  r.embedding = emeta;
  r.encoding = self->encoding;
  r.regions = std::move (regions);
  self->publisher->publish (vs::json::published_result (r));
  return GST_FLOW_OK;
}
