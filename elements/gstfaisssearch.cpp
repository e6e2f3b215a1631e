/* faisssearch: nearest gallery neighbours of each frame's embedding.
 *
 * Reads the GstVisualSearchEmbeddingMeta that embedder attached, searches the FAISS index
 * built by faissindexer, and attaches the hits as a GstVisualSearchNeighborsMeta, named
 * through the index's catalog. Optionally posts them on the bus as well.
 *
 * Example:
 *   gst-launch-1.0 -m filesrc location=cat.png ! decodebin ! videoconvert !
 *       imagefreeze num-buffers=1 ! embedder ! faisssearch index=cifar.faiss k=5 !
 *       fakesink
 *
 * Each searched frame posts an element message named "visualsearch" with the
 * fields timestamp, stream-time, running-time, duration (guint64), metric
 * (string: "ip" or "l2") and the arrays ids (gint64), distances (float),
 * labels (gint), label-names and sources (string), nearest first.
 *
 * After its caps it sends the sticky event VS_INDEX_EVENT (gstfaisssearch.h)
 * downstream, naming the index and its catalog, so that retrievaleval needs
 * no index= of its own.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "elements/gstfaisssearch.h"

#include <exception>
#include <forward_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base/finite.h"
#include "core/index/gallery.h"
#include "core/base/utf8.h"
#include "elements/elements.h"
#include "element_error.h"
#include "meta/visualsearchmeta.h"

GST_DEBUG_CATEGORY_STATIC (gst_faiss_search_debug);
#define GST_CAT_DEFAULT gst_faiss_search_debug

#define DEFAULT_K 5
#define MAX_K 1024
#define DEFAULT_NPROBE 0
#define DEFAULT_EF_SEARCH 0
#define DEFAULT_MAX_DISTANCE G_MAXDOUBLE
#define DEFAULT_POST_MESSAGES TRUE
#define DEFAULT_RELOAD FALSE

/* A replaced index is loaded once its files have stopped changing for this
 * long, so the index and the catalog written just after it are read as a pair. */
#define RELOAD_SETTLE_TIME (200 * G_TIME_SPAN_MILLISECOND)

enum
{
  PROP_0,
  PROP_INDEX,
  PROP_K,
  PROP_NPROBE,
  PROP_EF_SEARCH,
  PROP_MAX_DISTANCE,
  PROP_POST_MESSAGES,
  PROP_RELOAD,
};

/* The outcome of a background load, shared by the loading thread and the
 * element, so that the element can walk away from a load that never ends (a
 * hung network mount) and still shut down. */
struct ReloadSlot
{
  std::mutex lock;
  bool done = false;
  std::shared_ptr<const vs::Gallery> gallery;
  std::string error;
};

/* The C++ side of the element. Only start(), stop() and the streaming thread
 * touch it, and never at the same time, so it needs no lock. */
struct FaissSearchState
{
  std::string index_path;
  std::string catalog_path;
  std::shared_ptr<const vs::Gallery> gallery;

  /* Reload: the files the gallery (or the last attempt) was loaded from, the
   * replacement waiting for its files to settle, and the load under way. */
  vs::FileStamp loaded_index;
  vs::FileStamp loaded_catalog;
  bool settling = false;
  vs::FileStamp candidate_index;
  vs::FileStamp candidate_catalog;
  gint64 candidate_since = 0;
  std::shared_ptr<ReloadSlot> pending;

  /* Ids the catalog does not list are reported once per gallery. */
  bool warned_unknown_id = false;

  /* Whether the user was told of a NaN or infinite query. */
  bool warned_non_finite = false;

  /* Reused from frame to frame. */
  std::vector<vs::Neighbor> hits;
  std::vector<GstVisualSearchNeighbor> neighbors;
};

struct _GstFaissSearch
{
  GstBaseTransform parent;

  /* Properties, guarded by the object lock. */
  gchar *index;
  guint k;
  gint nprobe;
  gint ef_search;
  gdouble max_distance;
  gboolean post_messages;
  gboolean reload;

  FaissSearchState *state;
};

#define gst_faiss_search_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstFaissSearch, gst_faiss_search,
    GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_faiss_search_debug, "faisssearch", 0,
        "FAISS nearest-neighbour search of frame embeddings"));
GST_ELEMENT_REGISTER_DEFINE (faisssearch, "faisssearch", GST_RANK_NONE,
    GST_TYPE_FAISS_SEARCH);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

/* ------------------------------------------------------------------------ */
/* Properties */

static void
gst_faiss_search_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_INDEX:
      g_free (self->index);
      self->index = g_value_dup_string (value);
      break;
    case PROP_K:
      self->k = g_value_get_uint (value);
      break;
    case PROP_NPROBE:
      self->nprobe = g_value_get_int (value);
      break;
    case PROP_EF_SEARCH:
      self->ef_search = g_value_get_int (value);
      break;
    case PROP_MAX_DISTANCE:
      self->max_distance = g_value_get_double (value);
      break;
    case PROP_POST_MESSAGES:
      self->post_messages = g_value_get_boolean (value);
      break;
    case PROP_RELOAD:
      self->reload = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_faiss_search_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_INDEX:
      g_value_set_string (value, self->index);
      break;
    case PROP_K:
      g_value_set_uint (value, self->k);
      break;
    case PROP_NPROBE:
      g_value_set_int (value, self->nprobe);
      break;
    case PROP_EF_SEARCH:
      g_value_set_int (value, self->ef_search);
      break;
    case PROP_MAX_DISTANCE:
      g_value_set_double (value, self->max_distance);
      break;
    case PROP_POST_MESSAGES:
      g_value_set_boolean (value, self->post_messages);
      break;
    case PROP_RELOAD:
      g_value_set_boolean (value, self->reload);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ------------------------------------------------------------------------ */
/* Lifecycle */

static gboolean
gst_faiss_search_start (GstBaseTransform * trans)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (trans);
  FaissSearchState & st = *self->state;

  GST_OBJECT_LOCK (self);
  st.index_path = self->index ? self->index : "";
  GST_OBJECT_UNLOCK (self);

  if (st.index_path.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No index to search: set the 'index' property to an index file."),
        ("Build one with pipelines/index-cifar.sh or faissindexer."));
    return FALSE;
  }

  st.catalog_path = vs::catalog_path_for (st.index_path);
  st.warned_non_finite = false;
  st.loaded_index = vs::FileStamp::of (st.index_path);
  st.loaded_catalog = vs::FileStamp::of (st.catalog_path);
  st.settling = false;
  try {
    st.gallery = std::make_shared<const vs::Gallery> (
        vs::Gallery::load (st.index_path));
  }
  catch (const std::exception & e) {
    VS_ELEMENT_ERROR (self, e, ("Could not load the search index %s: %s",
            st.index_path.c_str (), e.what ()),
        ("Build the index and its catalog with pipelines/index-cifar.sh (or "
            "faissindexer), then point 'index' at it."));
    return FALSE;
  }

  st.warned_unknown_id = false;
  const vs::IndexFacts & facts = st.gallery->facts ();
  if (!facts.index_digest)
    GST_WARNING_OBJECT (self, "the catalog %s predates the record of its "
        "index (catalog schema 1): whether the two belong together was not "
        "checked. Rebuild the index to get that check.",
        st.catalog_path.c_str ());
  GST_INFO_OBJECT (self, "loaded %s: %" G_GINT64_FORMAT " vectors of %d dims, "
      "metric %s, type %s, model %s", st.index_path.c_str (),
      st.gallery->size (), st.gallery->dims (),
      vs::metric_name (st.gallery->metric ()), facts.index_type.c_str (),
      facts.model_id.c_str ());
  return TRUE;
}

static gboolean
gst_faiss_search_stop (GstBaseTransform * trans)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (trans);
  FaissSearchState & st = *self->state;

  /* A reload still running is left to finish, or hang, on its own: it only
   * touches its slot. */
  if (st.pending)
    GST_DEBUG_OBJECT (self, "abandoning the reload of %s still under way",
        st.index_path.c_str ());
  st.pending.reset ();
  st.gallery.reset ();
  return TRUE;
}

static gboolean
gst_faiss_search_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  FaissSearchState & st = *GST_FAISS_SEARCH (trans)->state;
  const bool caps = GST_EVENT_TYPE (event) == GST_EVENT_CAPS;

  if (!GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event))
    return FALSE;
  if (caps)
    gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (trans),
        gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_STICKY,
            gst_structure_new (VS_INDEX_EVENT,
                "index", G_TYPE_STRING, st.index_path.c_str (),
                "catalog", G_TYPE_STRING, st.catalog_path.c_str (), NULL)));
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Reload */

/* Takes over the gallery a background load produced, unless it failed or was
 * built by another model than the one embedding the stream: then the stream
 * goes on with the previous index and the user gets a warning. */
static void
gst_faiss_search_adopt_reload (GstFaissSearch * self,
    const GstVisualSearchEmbeddingMeta * emeta)
{
  FaissSearchState & st = *self->state;
  std::shared_ptr<const vs::Gallery> gallery = std::move (st.pending->gallery);
  std::string error = std::move (st.pending->error);

  st.pending.reset ();
  if (gallery) {
    try {
      gallery->check_query (emeta->model_id, emeta->preprocessing_id,
          emeta->dims);
    }
    catch (const std::exception & e) {
      error = e.what ();
    }
  }
  if (!error.empty ()) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Could not switch to the replaced index %s; still searching the "
            "previous one. %s", st.index_path.c_str (), error.c_str ()),
        (NULL));
    return;
  }

  if (!gallery->facts ().index_digest)
    GST_WARNING_OBJECT (self, "the catalog %s predates the record of its "
        "index: whether the two belong together was not checked",
        st.catalog_path.c_str ());
  st.warned_unknown_id = false;
  GST_INFO_OBJECT (self, "reloaded %s: %" G_GINT64_FORMAT " vectors",
      st.index_path.c_str (), gallery->size ());
  st.gallery = std::move (gallery);
}

/* Called between frames: notices that faissindexer renamed a new index (and
 * catalog) over the old ones and loads them in the background, so the stream
 * never waits for the disk. */
static void
gst_faiss_search_check_reload (GstFaissSearch * self,
    const GstVisualSearchEmbeddingMeta * emeta)
{
  FaissSearchState & st = *self->state;

  if (st.pending) {
    bool done;
    {
      std::lock_guard<std::mutex> lock (st.pending->lock);
      done = st.pending->done;
    }
    if (done)
      gst_faiss_search_adopt_reload (self, emeta);
    return;
  }

  const vs::FileStamp index = vs::FileStamp::of (st.index_path);
  const vs::FileStamp catalog = vs::FileStamp::of (st.catalog_path);
  if ((index == st.loaded_index && catalog == st.loaded_catalog)
      || !index.exists || !catalog.exists) {
    st.settling = false;
    return;
  }

  const gint64 now = g_get_monotonic_time ();
  if (!st.settling || index != st.candidate_index
      || catalog != st.candidate_catalog) {
    GST_DEBUG_OBJECT (self, "%s changed, waiting for it to settle",
        st.index_path.c_str ());
    st.settling = true;
    st.candidate_index = index;
    st.candidate_catalog = catalog;
    st.candidate_since = now;
    return;
  }
  if (now - st.candidate_since < RELOAD_SETTLE_TIME)
    return;

  GST_INFO_OBJECT (self, "reloading %s", st.index_path.c_str ());
  st.settling = false;
  /* Recorded before the load so that a broken file is tried once, not on
   * every frame, until it changes again. */
  st.loaded_index = index;
  st.loaded_catalog = catalog;
  st.pending = std::make_shared<ReloadSlot> ();
  /* Detached: stop() must not wait for a load stuck on the disk. */
  std::thread ([slot = st.pending, path = st.index_path]() {
        std::shared_ptr<const vs::Gallery> gallery;
        std::string error;
        try {
          gallery = std::make_shared<const vs::Gallery> (
              vs::Gallery::load (path));
        }
        catch (const std::exception & e) {
          error = e.what ();
        }
        std::lock_guard<std::mutex> lock (slot->lock);
        slot->gallery = std::move (gallery);
        slot->error = std::move (error);
        slot->done = true;
      }).detach ();
}

/* ------------------------------------------------------------------------ */
/* The buffer path */

static GValue
value_array_new (void)
{
  GValue array = G_VALUE_INIT;
  g_value_init (&array, GST_TYPE_ARRAY);
  return array;
}

static void
value_init_set (GValue * value, gint64 v)
{
  g_value_init (value, G_TYPE_INT64);
  g_value_set_int64 (value, v);
}

static void
value_init_set (GValue * value, gfloat v)
{
  g_value_init (value, G_TYPE_FLOAT);
  g_value_set_float (value, v);
}

static void
value_init_set (GValue * value, gint v)
{
  g_value_init (value, G_TYPE_INT);
  g_value_set_int (value, v);
}

static void
value_init_set (GValue * value, const gchar * v)
{
  g_value_init (value, G_TYPE_STRING);
  g_value_set_string (value, v);
}

template < typename T > static void
value_array_append (GValue * array, T v)
{
  GValue value = G_VALUE_INIT;
  value_init_set (&value, v);
  gst_value_array_append_and_take_value (array, &value);
}

static void
gst_faiss_search_post_message (GstFaissSearch * self, GstBuffer * buf,
    const GstVisualSearchNeighborsMeta * nmeta)
{
  GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  const GstClockTime ts = GST_BUFFER_PTS (buf);
  GValue ids = value_array_new ();
  GValue distances = value_array_new ();
  GValue labels = value_array_new ();
  GValue label_names = value_array_new ();
  GValue sources = value_array_new ();

  for (guint i = 0; i < nmeta->n_neighbors; i++) {
    const GstVisualSearchNeighbor *nb = &nmeta->neighbors[i];
    value_array_append<gint64> (&ids, nb->id);
    value_array_append<gfloat> (&distances, nb->distance);
    value_array_append<gint> (&labels, nb->label);
    value_array_append<const gchar *>(&label_names, nb->label_name);
    value_array_append<const gchar *>(&sources, nb->source);
  }

  GstStructure *s = gst_structure_new ("visualsearch",
      "timestamp", G_TYPE_UINT64, ts,
      "stream-time", G_TYPE_UINT64,
      gst_segment_to_stream_time (segment, GST_FORMAT_TIME, ts),
      "running-time", G_TYPE_UINT64,
      gst_segment_to_running_time (segment, GST_FORMAT_TIME, ts),
      "duration", G_TYPE_UINT64, GST_BUFFER_DURATION (buf),
      "metric", G_TYPE_STRING, gst_visualsearch_metric_to_string (nmeta->metric),
      NULL);
  gst_structure_take_value (s, "ids", &ids);
  gst_structure_take_value (s, "distances", &distances);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "label-names", &label_names);
  gst_structure_take_value (s, "sources", &sources);

  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

static GstFlowReturn
gst_faiss_search_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (trans);
  FaissSearchState & st = *self->state;
  const GstVisualSearchEmbeddingMeta *emeta = gst_buffer_get_visualsearch_embedding_meta (buf);

  if (emeta == NULL) {
    GST_LOG_OBJECT (self, "no embedding on %" GST_PTR_FORMAT, buf);
    return GST_FLOW_OK;
  }

  GST_OBJECT_LOCK (self);
  const int k = self->k;
  vs::SearchParams params;
  params.nprobe = self->nprobe;
  params.ef_search = self->ef_search;
  std::optional<float> max_distance;
  if (self->max_distance != DEFAULT_MAX_DISTANCE)
    max_distance = self->max_distance;
  const gboolean post_messages = self->post_messages;
  const gboolean reload = self->reload;
  GST_OBJECT_UNLOCK (self);

  if (reload)
    gst_faiss_search_check_reload (self, emeta);

  const vs::Gallery & gallery = *st.gallery;
  try {
    gallery.check_query (emeta->model_id, emeta->preprocessing_id,
        emeta->dims);
  }
  catch (const std::exception & e) {
    VS_ELEMENT_ERROR (self, e,
        ("The index %s was built by another embedder than the one in this "
            "pipeline. %s", st.index_path.c_str (), e.what ()), (NULL));
    return GST_FLOW_ERROR;
  }

  /* FAISS would find no neighbour for it, without a word. */
  const size_t bad = vs::first_non_finite (emeta->values, emeta->dims);
  if (bad < emeta->dims) {
    GST_DEBUG_OBJECT (self, "query at %" GST_TIME_FORMAT " has %f at %u: "
        "no neighbours", GST_TIME_ARGS (GST_BUFFER_PTS (buf)),
        emeta->values[bad], (guint) bad);
    if (!st.warned_non_finite) {
      st.warned_non_finite = true;
      GST_ELEMENT_WARNING (self, STREAM, FAILED,
          ("The embedding of the frame at %" GST_TIME_FORMAT " (model %s) "
              "holds NaN or infinite values: it and any other such frame "
              "pass without neighbours.", GST_TIME_ARGS (GST_BUFFER_PTS (buf)),
              GST_STR_NULL (emeta->model_id)),
          ("value %u of %u is %f", (guint) bad, emeta->dims,
              emeta->values[bad]));
    }
    return GST_FLOW_OK;
  }

  try {
    gallery.search (emeta->values, k, params, max_distance, &st.hits);
  }
  catch (const std::exception & e) {
    VS_ELEMENT_ERROR (self, e,
        ("Searching the index %s failed: %s", st.index_path.c_str (),
            e.what ()), (NULL));
    return GST_FLOW_ERROR;
  }

  /* Metas and bus messages carry UTF-8 (PyGObject crashes on anything else),
   * whatever bytes a catalog holds. Repaired copies live until the meta has
   * copied them; valid text, the usual case, is not copied. */
  std::forward_list < std::string > repaired;
  auto utf8 =[&repaired] (const std::string & text) {
    if (vs::is_valid_utf8 (text))
      return const_cast < gchar * >(text.c_str ());
    repaired.push_front (vs::valid_utf8 (text));
    return const_cast < gchar * >(repaired.front ().c_str ());
  };
  st.neighbors.clear ();
  for (const vs::Neighbor & hit:st.hits) {
    if (!hit.item && !st.warned_unknown_id) {
      st.warned_unknown_id = true;
      GST_ELEMENT_WARNING (self, STREAM, FAILED,
          ("The index %s returned id %" G_GINT64_FORMAT ", which its catalog "
              "%s does not list; such neighbours carry label -1 and no name.",
              st.index_path.c_str (), hit.id, st.catalog_path.c_str ()),
          ("The index holds ids its catalog does not know (an IndexIDMap "
              "built outside visualsearch?). Build the index and catalog "
              "together with faissindexer or galleryindexer."));
    }
    GstVisualSearchNeighbor nb;
    nb.id = hit.id;
    nb.distance = hit.distance;
    nb.label = hit.item ? hit.item->label : -1;
    /* The meta deep-copies the strings; the catalog outlives this call. */
    nb.label_name = hit.item ? utf8 (hit.item->label_name) : NULL;
    nb.source = hit.item ? utf8 (hit.item->source) : NULL;
    st.neighbors.push_back (nb);
  }

  const GstVisualSearchMetric metric =
      gallery.metric () == vs::Metric::InnerProduct ?
      GST_VISUALSEARCH_METRIC_INNER_PRODUCT : GST_VISUALSEARCH_METRIC_L2;
  GstVisualSearchNeighborsMeta *nmeta = gst_buffer_add_visualsearch_neighbors_meta (buf, metric,
      st.neighbors.size (), st.neighbors.data ());

  GST_LOG_OBJECT (self, "%u neighbours, nearest %" G_GINT64_FORMAT " at %f",
      nmeta->n_neighbors, nmeta->n_neighbors ? nmeta->neighbors[0].id : -1,
      nmeta->n_neighbors ? nmeta->neighbors[0].distance : 0.0f);

  if (post_messages)
    gst_faiss_search_post_message (self, buf, nmeta);
  return GST_FLOW_OK;
}

/* ------------------------------------------------------------------------ */
/* GObject */

static void
gst_faiss_search_finalize (GObject * object)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (object);

  delete self->state;
  g_free (self->index);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_faiss_search_class_init (GstFaissSearchClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = gst_faiss_search_set_property;
  gobject_class->get_property = gst_faiss_search_get_property;
  gobject_class->finalize = gst_faiss_search_finalize;

  g_object_class_install_property (gobject_class, PROP_INDEX,
      g_param_spec_string ("index", "Index",
          "FAISS index file to search, as written by faissindexer; its "
          "catalog (the same path + \".db\") must sit beside it", NULL,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property (gobject_class, PROP_K,
      g_param_spec_uint ("k", "k",
          "How many nearest neighbours to return per frame (fewer when the "
          "index holds fewer)", 1, MAX_K, DEFAULT_K,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_NPROBE,
      g_param_spec_int ("nprobe", "nprobe",
          "IVF indexes: how many inverted lists to visit (0 = the index's "
          "own setting)", 0, G_MAXINT, DEFAULT_NPROBE,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_EF_SEARCH,
      g_param_spec_int ("ef-search", "efSearch",
          "HNSW indexes: size of the search queue (0 = the index's own "
          "setting)", 0, G_MAXINT, DEFAULT_EF_SEARCH,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_MAX_DISTANCE,
      g_param_spec_double ("max-distance", "Maximum distance",
          "Drop neighbours past this score, in the index's metric: l2 drops "
          "squared distances above it, ip drops inner products below it "
          "(the default keeps all)", -G_MAXDOUBLE, G_MAXDOUBLE,
          DEFAULT_MAX_DISTANCE,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean ("post-messages", "Post messages",
          "Post a \"visualsearch\" element message with the neighbours of "
          "every searched frame", DEFAULT_POST_MESSAGES,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_RELOAD,
      g_param_spec_boolean ("reload", "Reload",
          "Watch the index file and switch to a new one, loaded in the "
          "background, when it is replaced; the stream keeps flowing",
          DEFAULT_RELOAD,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING)));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "FAISS similarity search", "Filter/Analysis/Video",
      "Finds the nearest gallery images of each frame's embedding in a FAISS "
      "index and attaches them as metadata",
      "visualsearch developers");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_faiss_search_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_faiss_search_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_faiss_search_sink_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_faiss_search_transform_ip);
}

static void
gst_faiss_search_init (GstFaissSearch * self)
{
  self->k = DEFAULT_K;
  self->nprobe = DEFAULT_NPROBE;
  self->ef_search = DEFAULT_EF_SEARCH;
  self->max_distance = DEFAULT_MAX_DISTANCE;
  self->post_messages = DEFAULT_POST_MESSAGES;
  self->reload = DEFAULT_RELOAD;
  self->state = new FaissSearchState ();

  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
}
