// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-faisssearch
 * @title: faisssearch
 *
 * Finds the nearest gallery neighbours of each frame's embedding. Reads the
 * #GstVisualSearchEmbeddingMeta that embedder attached, searches the FAISS
 * index built by faissindexer, and attaches the hits as a
 * #GstVisualSearchNeighborsMeta, named through the index's catalog (the index
 * path + ".db"). Frames without an embedding pass untouched.
 *
 * Unless #GstFaissSearch:post-messages is off, each searched frame posts an
 * element message named `visualsearch` with the fields timestamp,
 * stream-time, running-time, duration (guint64), metric (string: "ip" or
 * "l2") and the arrays ids (gint64), distances (float), labels (gint),
 * label-names and sources (string), nearest first. The distances there, as
 * in the meta, are the scores FAISS ranks by: the inner product for ip
 * (larger is closer), the squared L2 distance for l2. #GstFaissSearch:max-distance
 * is a distance for both metrics, smaller is closer: 1 - the inner product
 * for ip, the squared L2 distance for l2 (docs/scores.md). The read-only
 * #GstFaissSearch:metric says which metric the index ranks by, as the
 * #GstVisualSearchMetric that faissindexer's metric property takes.
 *
 * Regions: the #GstVideoRegionOfInterestMeta of a frame that carry an
 * embedding (embedder with #GstEmbedder:roi-types) are searched together;
 * each gets its neighbours as the parameter "visualsearch-neighbors" (see
 * gst_visualsearch_region_get_neighbor()), and, unless post-messages is off,
 * the frame posts one element message named `visualsearch-regions` with
 * timestamp, stream-time, running-time, duration, metric and regions: an
 * array of one `region` structure per searched region with roi-id (gint),
 * roi-type (string), x, y, w, h (guint) and the arrays ids, distances,
 * labels, label-names and sources, nearest first. An index of regions
 * (its catalog records the embedder's roi-types) refuses whole-frame queries,
 * and an index of whole frames refuses regions, each with an element error.
 *
 * With #GstFaissSearch:max-batch above 1, frames are held and their
 * embeddings searched together (offline evaluation: retrievaleval over a test
 * set): a Flat index is read once per batch instead of once per frame, other
 * types get a FAISS call for several frames where that keeps hits exact.
 * Each frame gets exactly the neighbours it gets alone. A batch is searched
 * when it is full, and before any serialized event (caps, segment, EOS,
 * gap...) or drain query passes, so frames and events keep their order; a
 * flush drops it. A live upstream gets no batching: each frame is searched
 * as it comes, as with max-batch=1.
 *
 * With #GstFaissSearch:reload, an index that faissindexer renames over the
 * searched one is loaded in the background and taken over between frames.
 * After its caps the element sends the sticky event VS_INDEX_EVENT
 * (gstfaisssearch.h) downstream, naming the index and its catalog, so that
 * retrievaleval and searchoverlay need no index of their own.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=cat.png ! decodebin ! videoconvert ! \
 *     imagefreeze num-buffers=1 ! embedder index=cifar.faiss ! \
 *     faisssearch index=cifar.faiss k=5 ! fakesink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstfaisssearch.h"

#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include <chrono>
#include <exception>
#include <forward_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/finite.h"
#include "engine/index/gallery.h"
#include "engine/index/gallery_reload.h"
#include "engine/base/utf8.h"
#include "elements.h"
#include "element_error.h"
#include "engine_enums.h"
#include "region_embeddings.h"

GST_DEBUG_CATEGORY_STATIC (gst_faiss_search_debug);
#define GST_CAT_DEFAULT gst_faiss_search_debug

#define DEFAULT_K 5
#define MAX_K 1024
#define DEFAULT_NPROBE 0
#define DEFAULT_EF_SEARCH 0
#define DEFAULT_REFINE_FACTOR 0.0f
#define MAX_REFINE_FACTOR 1000.0f
#define DEFAULT_MAX_DISTANCE G_MAXDOUBLE
#define DEFAULT_POST_MESSAGES TRUE
#define DEFAULT_RELOAD FALSE
#define DEFAULT_MMAP FALSE
#define DEFAULT_MAX_BATCH 1
#define MAX_MAX_BATCH 1024

/* A replaced index is loaded once its files have stopped changing for this
 * long, so the index and the catalog written just after it are read as a pair. */
static constexpr std::chrono::milliseconds kReloadSettleTime (200);

enum
{
  PROP_0,
  PROP_INDEX,
  PROP_K,
  PROP_NPROBE,
  PROP_EF_SEARCH,
  PROP_REFINE_FACTOR,
  PROP_MAX_DISTANCE,
  PROP_POST_MESSAGES,
  PROP_RELOAD,
  PROP_MMAP,
  PROP_MAX_BATCH,
  PROP_METRIC,
};

static GParamSpec *metric_pspec;

enum class IndexKind
{
  UNKNOWN,
  FRAMES,
  REGIONS,
};

/* The kind of the gallery's items, and the roi-types that embedded them. */
static IndexKind
index_kind (const vs::Gallery &gallery, std::string *roi_types)
{
  const std::string &config = gallery.facts ().embedder_config;
  roi_types->clear ();
  if (config.empty ())
    return IndexKind::UNKNOWN;
  GstStructure *s = gst_structure_from_string (config.c_str (), NULL);
  if (!s)
    return IndexKind::UNKNOWN;
  const gchar *types = gst_structure_get_string (s, "roi-types");
  const IndexKind kind = types ? IndexKind::REGIONS : IndexKind::FRAMES;
  if (types)
    *roi_types = types;
  gst_structure_free (s);
  return kind;
}

/* The C++ state of a stream: created in start, destroyed in stop. Only
 * start(), stop() and the streaming thread touch it, and never at the same
 * time, so it needs no lock. */
struct FaissSearchState
{
  std::shared_ptr<const vs::Gallery> gallery;

  /* The index and catalog paths, and when to load them again. */
  std::unique_ptr<vs::GalleryReload> reload;

  /* Ids the catalog does not list are reported once per gallery. */
  bool warned_unknown_id = false;

  /* So are searches that return fewer than k neighbours from an index that
   * holds k. */
  bool warned_few_hits = false;

  /* Whether the user was told of a NaN or infinite query. */
  bool warned_non_finite = false;

  /* What the index's items are, from the embedder settings its catalog
   * records: regions (embedder roi-types, which roi_types holds), whole
   * frames, or unknown (no record: either kind of query is searched). */
  IndexKind kind = IndexKind::UNKNOWN;
  std::string roi_types;

  /* Batching: the frames held for one search (a reference each), and
   * whether upstream is live (asked at the first frame; then none is held). */
  std::vector<GstBuffer *> held;
  std::optional<bool> live;

  /* Reused from frame to frame. */
  std::vector<vs::Neighbor> hits;
  std::vector<GstVisualSearchNeighbor> neighbors;
  std::vector<float> batch_queries;
  std::vector<std::vector<vs::Neighbor> > batch_hits;
  /* The searched regions of a frame, their queries and hits. */
  std::vector<GstVideoRegionOfInterestMeta *> regions;
  std::vector<float> region_queries;
  std::vector<std::vector<vs::Neighbor> > region_hits;

  void drop_held ()
  {
    for (GstBuffer *buf : held)
      gst_buffer_unref (buf);
    held.clear ();
  }

  ~FaissSearchState ()
  {
    drop_held ();
  }
};

struct _GstFaissSearch
{
  GstBaseTransform parent;

  /* Properties, guarded by the object lock. */
  gchar *index;
  guint k;
  gint nprobe;
  gint ef_search;
  gfloat refine_factor;
  gdouble max_distance;
  gboolean post_messages;
  gboolean reload;
  gboolean mmap;
  guint max_batch;
  /* The searched index's, read-only: set in start and when a reload is
   * taken over. */
  GstVisualSearchMetric metric;

  /* created in start, destroyed in stop */
  FaissSearchState *state;
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

#define gst_faiss_search_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstFaissSearch, gst_faiss_search,
    GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_faiss_search_debug, "faisssearch", 0,
        "FAISS nearest-neighbour search of frame embeddings"));
GST_ELEMENT_REGISTER_DEFINE (faisssearch, "faisssearch", GST_RANK_NONE,
    GST_TYPE_FAISS_SEARCH);

static void gst_faiss_search_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_faiss_search_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_faiss_search_finalize (GObject *object);
static gboolean gst_faiss_search_start (GstBaseTransform *trans);
static gboolean gst_faiss_search_stop (GstBaseTransform *trans);
static gboolean gst_faiss_search_sink_event (GstBaseTransform *trans,
    GstEvent *event);
static gboolean gst_faiss_search_query (GstBaseTransform *trans,
    GstPadDirection direction, GstQuery *query);
static GstFlowReturn gst_faiss_search_transform_ip (GstBaseTransform *trans,
    GstBuffer *buf);
static GstFlowReturn
gst_faiss_search_submit_input_buffer (GstBaseTransform *trans,
    gboolean is_discont, GstBuffer *buf);
static GstFlowReturn gst_faiss_search_drain (GstFaissSearch *self);

static void
gst_faiss_search_class_init (GstFaissSearchClass *klass)
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
          "catalog (the same path + \".db\") must sit beside it",
          NULL,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property (gobject_class, PROP_K,
      g_param_spec_uint ("k", "k",
          "How many nearest neighbours to return per frame (fewer when the "
          "index holds fewer)",
          1, MAX_K, DEFAULT_K,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_NPROBE,
      g_param_spec_int ("nprobe", "nprobe",
          "IVF indexes: how many inverted lists to visit (0 = the index's "
          "own setting)",
          0, G_MAXINT, DEFAULT_NPROBE,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_EF_SEARCH,
      g_param_spec_int ("ef-search", "efSearch",
          "HNSW indexes: size of the search queue (0 = the index's own "
          "setting)",
          0, G_MAXINT, DEFAULT_EF_SEARCH,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_REFINE_FACTOR,
      g_param_spec_float ("refine-factor", "Refine factor",
          "Indexes with an exact re-ranking stage (index-type ending in "
          "\",RFlat\"): how many candidates per neighbour the first stage "
          "passes on to be re-ranked over the full vectors; k x this, at "
          "least k (0 = the index's own setting, FAISS's k_factor)",
          0.0f, MAX_REFINE_FACTOR, DEFAULT_REFINE_FACTOR,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_MAX_DISTANCE,
      g_param_spec_double ("max-distance", "Maximum distance",
          "Drop neighbours farther than this distance (smaller is closer): "
          "for ip 1 - the inner product (the cosine distance of unit "
          "vectors), for l2 the squared L2 distance; find-duplicates' "
          "MAX_DISTANCE and the server's max-distance mean the same (the "
          "default keeps all)",
          -G_MAXDOUBLE, G_MAXDOUBLE, DEFAULT_MAX_DISTANCE,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean ("post-messages", "Post messages",
          "Post a \"visualsearch\" element message with the neighbours of "
          "every searched frame",
          DEFAULT_POST_MESSAGES,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (gobject_class, PROP_RELOAD,
      g_param_spec_boolean ("reload", "Reload",
          "Watch the index file and switch to a new one, loaded in the "
          "background, when it is replaced; the stream keeps flowing",
          DEFAULT_RELOAD,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING)));

  g_object_class_install_property (gobject_class, PROP_MMAP,
      g_param_spec_boolean ("mmap", "Map the index",
          "Search the index from its file's pages instead of a copy in "
          "memory: starts without reading the vectors in, and processes "
          "searching one file share its pages. Flat (also with an id map) "
          "and IVF (Flat, PQ, SQ) indexes, and the re-ranking vectors of a "
          "refine stage over flat vectors (PCA128,HNSW32,RFlat: never copied, "
          "only the graph and the PCA are read in); others "
          "are loaded into memory as without it. The file must be replaced "
          "by renaming, never rewritten in place",
          DEFAULT_MMAP,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));

  g_object_class_install_property (gobject_class, PROP_MAX_BATCH,
      g_param_spec_uint ("max-batch", "Maximum batch",
          "Search up to this many frames' embeddings together, for offline "
          "evaluation: frames are held until the batch is full or an event, "
          "such as EOS, follows them. Each frame gets the neighbours it gets "
          "alone. A live source gets no batching",
          1, MAX_MAX_BATCH, DEFAULT_MAX_BATCH,
          (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY)));

  metric_pspec = g_param_spec_enum ("metric", "Metric",
      "The metric of the index being searched, the one faissindexer's "
      "metric chose (read-only; known once the index is loaded, from READY "
      "to PAUSED on): ip ranks by inner product, larger is closer; l2 by "
      "squared Euclidean distance, smaller is closer",
      GST_TYPE_VISUALSEARCH_METRIC, GST_VISUALSEARCH_METRIC_INNER_PRODUCT,
      (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_METRIC, metric_pspec);

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
  trans_class->submit_input_buffer =
      GST_DEBUG_FUNCPTR (gst_faiss_search_submit_input_buffer);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_faiss_search_query);
}

static void
gst_faiss_search_init (GstFaissSearch *self)
{
  self->k = DEFAULT_K;
  self->nprobe = DEFAULT_NPROBE;
  self->ef_search = DEFAULT_EF_SEARCH;
  self->refine_factor = DEFAULT_REFINE_FACTOR;
  self->max_distance = DEFAULT_MAX_DISTANCE;
  self->post_messages = DEFAULT_POST_MESSAGES;
  self->reload = DEFAULT_RELOAD;
  self->mmap = DEFAULT_MMAP;
  self->max_batch = DEFAULT_MAX_BATCH;
  self->metric = GST_VISUALSEARCH_METRIC_INNER_PRODUCT;

  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_faiss_search_finalize (GObject *object)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (object);

  g_free (self->index);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* ------------------------------------------------------------------------ */
/* Properties */

static void
gst_faiss_search_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
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
    case PROP_REFINE_FACTOR:
      self->refine_factor = g_value_get_float (value);
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
    case PROP_MMAP:
      self->mmap = g_value_get_boolean (value);
      break;
    case PROP_MAX_BATCH:
      self->max_batch = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_faiss_search_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
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
    case PROP_REFINE_FACTOR:
      g_value_set_float (value, self->refine_factor);
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
    case PROP_MMAP:
      g_value_set_boolean (value, self->mmap);
      break;
    case PROP_MAX_BATCH:
      g_value_set_uint (value, self->max_batch);
      break;
    case PROP_METRIC:
      g_value_set_enum (value, self->metric);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* The read-only metric property follows the index searched. */
static void
gst_faiss_search_set_metric (GstFaissSearch *self, vs::Metric metric)
{
  GST_OBJECT_LOCK (self);
  const GstVisualSearchMetric was = self->metric;
  self->metric = to_gst_metric (metric);
  const bool changed = self->metric != was;
  GST_OBJECT_UNLOCK (self);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), metric_pspec);
}

/* ------------------------------------------------------------------------ */
/* Lifecycle */

static gboolean
gst_faiss_search_start (GstBaseTransform *trans)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (trans);

  GST_OBJECT_LOCK (self);
  const std::string index_path = self->index ? self->index : "";
  const vs::IndexLoadMode mode =
      self->mmap ? vs::IndexLoadMode::Map : vs::IndexLoadMode::Copy;
  GST_OBJECT_UNLOCK (self);

  if (index_path.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No index to search: set the 'index' property to an index file."),
        ("Build one with pipelines/index-cifar.sh or faissindexer."));
    return FALSE;
  }

  auto state = std::make_unique<FaissSearchState> ();
  FaissSearchState &st = *state;
  st.reload =
      std::make_unique<vs::GalleryReload> (index_path, mode, kReloadSettleTime);
  st.reload->mark_loaded ();
  try {
    st.gallery =
        std::make_shared<const vs::Gallery> (vs::Gallery::load (index_path,
            mode));
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Could not load the search index %s: %s", index_path.c_str (),
            e.what ()),
        ("Build the index and its catalog with pipelines/index-cifar.sh (or "
         "faissindexer), then point 'index' at it."));
    return FALSE;
  }

  gst_faiss_search_set_metric (self, st.gallery->metric ());
  st.kind = index_kind (*st.gallery, &st.roi_types);
  const vs::IndexFacts &facts = st.gallery->facts ();
  if (!facts.index_digest)
    GST_WARNING_OBJECT (self,
        "the catalog %s predates the record of its "
        "index (catalog schema 1): whether the two belong together was not "
        "checked. Rebuild the index to get that check.",
        st.reload->catalog_path ().c_str ());
  GST_INFO_OBJECT (self,
      "loaded %s: %" G_GINT64_FORMAT " vectors of %d dims, "
      "metric %s, type %s, model %s",
      index_path.c_str (), st.gallery->size (), st.gallery->dims (),
      vs::metric_name (st.gallery->metric ()), facts.index_type.c_str (),
      facts.model_id.c_str ());
  GST_INFO_OBJECT (self, "%s: %s", index_path.c_str (),
      st.gallery->search_path ().c_str ());
  if (mode == vs::IndexLoadMode::Map)
    GST_INFO_OBJECT (self,
        st.gallery->mapped () ? "searching %s in place from its file (mmap)"
                              : "%s is loaded into memory: mmap applies to "
                                "Flat and IVF indexes and RFlat refine stages "
                                "only",
        index_path.c_str ());
  self->state = state.release ();
  return TRUE;
}

static gboolean
gst_faiss_search_stop (GstBaseTransform *trans)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (trans);

  /* A reload still running is left to finish, or hang, on its own. */
  delete self->state;
  self->state = NULL;
  return TRUE;
}

static gboolean
gst_faiss_search_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  FaissSearchState &st = *GST_FAISS_SEARCH (trans)->state;
  const bool caps = GST_EVENT_TYPE (event) == GST_EVENT_CAPS;

  /* Held frames go before the event that follows them; a flush drops them.
   * The event passes even if they could not (an error was posted). */
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    st.drop_held ();
  else if (GST_EVENT_IS_SERIALIZED (event))
    gst_faiss_search_drain (GST_FAISS_SEARCH (trans));

  if (!GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event))
    return FALSE;
  if (caps)
    gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (trans),
        gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_STICKY,
            gst_structure_new (VS_INDEX_EVENT, "index", G_TYPE_STRING,
                st.reload->index_path ().c_str (), "catalog", G_TYPE_STRING,
                st.reload->catalog_path ().c_str (), NULL)));
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Reload */

/* What a query must share with the index: a frame's or a region's. */
struct QueryIdentity
{
  const gchar *model_id;
  const gchar *preprocessing_id;
  guint dims;
};

/* The identity of buf's frame embedding, or else of its first embedded
 * region; false when it has neither. */
static bool
query_identity (GstBuffer *buf, QueryIdentity *query)
{
  if (const GstVisualSearchEmbeddingMeta *emeta =
          gst_buffer_get_visualsearch_embedding_meta (buf)) {
    *query = {emeta->model_id, emeta->preprocessing_id, emeta->dims};
    return true;
  }
  /* Stopped by the first region with an embedding. */
  return !for_each_region_embedding (buf, [query] (const RegionEmbedding &r) {
    *query = {r.model_id, r.preprocessing_id, r.dims};
    return false;
  });
}

/* Takes over the gallery a background load produced, unless it failed or was
 * built by another model than the one embedding the stream: then the stream
 * goes on with the previous index and the user gets a warning. */
static void
gst_faiss_search_adopt_reload (GstFaissSearch *self, const QueryIdentity &query)
{
  FaissSearchState &st = *self->state;
  vs::GalleryReload::Loaded loaded = st.reload->take ();
  std::shared_ptr<const vs::Gallery> gallery = std::move (loaded.gallery);
  std::string error = std::move (loaded.error);

  if (gallery) {
    try {
      gallery->check_query (query.model_id, query.preprocessing_id, query.dims);
    } catch (const std::exception &e) {
      error = e.what ();
    }
  }
  if (!error.empty ()) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Could not switch to the replaced index %s; still searching the "
         "previous one. %s",
            st.reload->index_path ().c_str (), error.c_str ()),
        (NULL));
    return;
  }

  if (!gallery->facts ().index_digest)
    GST_WARNING_OBJECT (self,
        "the catalog %s predates the record of its "
        "index: whether the two belong together was not checked",
        st.reload->catalog_path ().c_str ());
  st.warned_unknown_id = false;
  st.warned_few_hits = false;
  GST_INFO_OBJECT (self, "reloaded %s: %" G_GINT64_FORMAT " vectors",
      st.reload->index_path ().c_str (), gallery->size ());
  st.gallery = std::move (gallery);
  st.kind = index_kind (*st.gallery, &st.roi_types);
  gst_faiss_search_set_metric (self, st.gallery->metric ());
}

/* Called between frames: notices that faissindexer renamed a new index (and
 * catalog) over the old ones and loads them in the background, so the stream
 * never waits for the disk. */
static void
gst_faiss_search_check_reload (GstFaissSearch *self, const QueryIdentity &query)
{
  FaissSearchState &st = *self->state;

  switch (st.reload->poll (std::chrono::steady_clock::now ())) {
    case vs::GalleryReload::Step::Settling:
      GST_DEBUG_OBJECT (self, "%s changed, waiting for it to settle",
          st.reload->index_path ().c_str ());
      break;
    case vs::GalleryReload::Step::Started:
      GST_INFO_OBJECT (self, "reloading %s", st.reload->index_path ().c_str ());
      break;
    case vs::GalleryReload::Step::Finished:
      gst_faiss_search_adopt_reload (self, query);
      break;
    case vs::GalleryReload::Step::Unchanged:
    case vs::GalleryReload::Step::Loading:
      break;
  }
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
value_init_set (GValue *value, gint64 v)
{
  g_value_init (value, G_TYPE_INT64);
  g_value_set_int64 (value, v);
}

static void
value_init_set (GValue *value, gfloat v)
{
  g_value_init (value, G_TYPE_FLOAT);
  g_value_set_float (value, v);
}

static void
value_init_set (GValue *value, gint v)
{
  g_value_init (value, G_TYPE_INT);
  g_value_set_int (value, v);
}

static void
value_init_set (GValue *value, const gchar *v)
{
  g_value_init (value, G_TYPE_STRING);
  g_value_set_string (value, v);
}

template <typename T>
static void
value_array_append (GValue *array, T v)
{
  GValue value = G_VALUE_INIT;
  value_init_set (&value, v);
  gst_value_array_append_and_take_value (array, &value);
}

static void
gst_faiss_search_post_message (GstFaissSearch *self, GstBuffer *buf,
    const GstVisualSearchNeighborsMeta *nmeta)
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
    value_array_append<const gchar *> (&label_names, nb->label_name);
    value_array_append<const gchar *> (&sources, nb->source);
  }

  GstStructure *s = gst_structure_new ("visualsearch", "timestamp",
      G_TYPE_UINT64, ts, "stream-time", G_TYPE_UINT64,
      gst_segment_to_stream_time (segment, GST_FORMAT_TIME, ts), "running-time",
      G_TYPE_UINT64, gst_segment_to_running_time (segment, GST_FORMAT_TIME, ts),
      "duration", G_TYPE_UINT64, GST_BUFFER_DURATION (buf), "metric",
      G_TYPE_STRING, gst_visualsearch_metric_to_string (nmeta->metric), NULL);
  gst_structure_take_value (s, "ids", &ids);
  gst_structure_take_value (s, "distances", &distances);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "label-names", &label_names);
  gst_structure_take_value (s, "sources", &sources);

  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* The search settings, read once per search. */
struct SearchSettings
{
  int k;
  vs::SearchParams params;
  std::optional<float> max_distance;
  gboolean post_messages;
  gboolean reload;
};

static SearchSettings
gst_faiss_search_settings (GstFaissSearch *self)
{
  SearchSettings settings;
  GST_OBJECT_LOCK (self);
  settings.k = self->k;
  settings.params.nprobe = self->nprobe;
  settings.params.ef_search = self->ef_search;
  settings.params.refine_factor = self->refine_factor;
  if (self->max_distance != DEFAULT_MAX_DISTANCE)
    settings.max_distance = self->max_distance;
  settings.post_messages = self->post_messages;
  settings.reload = self->reload;
  GST_OBJECT_UNLOCK (self);
  return settings;
}

/* Whether the embedding of buf can be searched: FALSE with flow OK for a
 * frame that passes without neighbours, with an error for one from another
 * embedder than the index's. */
static gboolean
gst_faiss_search_accepts (GstFaissSearch *self, GstBuffer *buf,
    const GstVisualSearchEmbeddingMeta *emeta, GstFlowReturn *flow)
{
  FaissSearchState &st = *self->state;

  *flow = GST_FLOW_OK;
  if (emeta == NULL) {
    GST_LOG_OBJECT (self, "no embedding on %" GST_PTR_FORMAT, buf);
    return FALSE;
  }
  if (st.kind == IndexKind::REGIONS) {
    GST_ELEMENT_ERROR (self, STREAM, WRONG_TYPE,
        ("The index %s holds regions (embedder roi-types=%s built it), but "
         "this frame's embedding is of the whole frame. Set roi-types=%s on "
         "the embedder (with a detector in front) to search its regions.",
            st.reload->index_path ().c_str (), st.roi_types.c_str (),
            st.roi_types.c_str ()),
        (NULL));
    *flow = GST_FLOW_ERROR;
    return FALSE;
  }
  try {
    st.gallery->check_query (emeta->model_id, emeta->preprocessing_id,
        emeta->dims);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("The index %s was built by another embedder than the one in this "
         "pipeline. %s",
            st.reload->index_path ().c_str (), e.what ()),
        (NULL));
    *flow = GST_FLOW_ERROR;
    return FALSE;
  }

  /* FAISS would find no neighbour for it, without a word. */
  const size_t bad = vs::first_non_finite (emeta->values, emeta->dims);
  if (bad < emeta->dims) {
    GST_DEBUG_OBJECT (self,
        "query at %" GST_TIME_FORMAT " has %f at %u: "
        "no neighbours",
        GST_TIME_ARGS (GST_BUFFER_PTS (buf)), emeta->values[bad], (guint) bad);
    if (!st.warned_non_finite) {
      st.warned_non_finite = true;
      GST_ELEMENT_WARNING (self, STREAM, FAILED,
          ("The embedding of the frame at %" GST_TIME_FORMAT " (model %s) "
           "holds NaN or infinite values: it and any other such frame "
           "pass without neighbours.",
              GST_TIME_ARGS (GST_BUFFER_PTS (buf)),
              GST_STR_NULL (emeta->model_id)),
          ("value %u of %u is %f", (guint) bad, emeta->dims,
              emeta->values[bad]));
    }
    return FALSE;
  }
  return TRUE;
}

/* A sound index of at least k vectors gives k neighbours (max-distance
 * aside): fewer mean an HNSW graph without links, with self-loops only or a
 * part cut off, or an IVF search that probes too few lists. */
static void
gst_faiss_search_check_count (GstFaissSearch *self, GstBuffer *buf,
    size_t found, const SearchSettings &settings)
{
  FaissSearchState &st = *self->state;

  if (st.warned_few_hits || settings.max_distance
      || found >= (size_t) settings.k || st.gallery->size () < settings.k)
    return;
  st.warned_few_hits = true;
  GST_ELEMENT_WARNING (self, STREAM, FAILED,
      ("The index %s holds %" G_GINT64_FORMAT " vectors but the search for "
       "the frame at %" GST_TIME_FORMAT " returned only %zu of the %d "
       "neighbours asked for (k); other frames may get fewer too. Raise "
       "nprobe or ef-search, or rebuild the index: its HNSW graph may be "
       "damaged.",
          st.reload->index_path ().c_str (), st.gallery->size (),
          GST_TIME_ARGS (GST_BUFFER_PTS (buf)), found, settings.k),
      (NULL));
}

/* The hits as the metas' neighbours, in st.neighbors. Metas and bus messages
 * carry UTF-8 (PyGObject crashes on anything else), whatever bytes a catalog
 * holds: repaired copies go to repaired, which must live until the metas
 * have copied them; valid text, the usual case, is not copied. */
static void
gst_faiss_search_name_neighbors (GstFaissSearch *self,
    const std::vector<vs::Neighbor> &hits,
    std::forward_list<std::string> &repaired)
{
  FaissSearchState &st = *self->state;

  auto utf8 = [&repaired] (const std::string &text) {
    if (vs::is_valid_utf8 (text))
      return const_cast<gchar *> (text.c_str ());
    repaired.push_front (vs::valid_utf8 (text));
    return const_cast<gchar *> (repaired.front ().c_str ());
  };
  st.neighbors.clear ();
  for (const vs::Neighbor &hit : hits) {
    if (!hit.item && !st.warned_unknown_id) {
      st.warned_unknown_id = true;
      GST_ELEMENT_WARNING (self, STREAM, FAILED,
          ("The index %s returned id %" G_GINT64_FORMAT ", which its catalog "
           "%s does not list; such neighbours carry label -1 and no name.",
              st.reload->index_path ().c_str (), hit.id,
              st.reload->catalog_path ().c_str ()),
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
}

/* Attaches the hits of buf's embedding as a GstVisualSearchNeighborsMeta, and posts
 * them when asked to. */
static void
gst_faiss_search_attach (GstFaissSearch *self, GstBuffer *buf,
    const std::vector<vs::Neighbor> &hits, const SearchSettings &settings)
{
  FaissSearchState &st = *self->state;

  gst_faiss_search_check_count (self, buf, hits.size (), settings);
  std::forward_list<std::string> repaired;
  gst_faiss_search_name_neighbors (self, hits, repaired);

  GstVisualSearchNeighborsMeta *nmeta =
      gst_buffer_add_visualsearch_neighbors_meta (buf,
          to_gst_metric (st.gallery->metric ()), st.neighbors.size (),
          st.neighbors.data ());

  GST_LOG_OBJECT (self, "%u neighbours, nearest %" G_GINT64_FORMAT " at %f",
      nmeta->n_neighbors, nmeta->n_neighbors ? nmeta->neighbors[0].id : -1,
      nmeta->n_neighbors ? nmeta->neighbors[0].distance : 0.0f);

  if (settings.post_messages)
    gst_faiss_search_post_message (self, buf, nmeta);
}

static GstFlowReturn
gst_faiss_search_failed (GstFaissSearch *self, const std::exception &e)
{
  VS_ELEMENT_ERROR (self, e,
      ("Searching the index %s failed: %s",
          self->state->reload->index_path ().c_str (), e.what ()),
      (NULL));
  return GST_FLOW_ERROR;
}

/* The regions of buf that embedder embedded, in st.regions, with their
 * queries one after another in st.region_queries. false after posting an
 * error for regions another embedder than the index's embedded. */
static bool
gst_faiss_search_collect_regions (GstFaissSearch *self, GstBuffer *buf)
{
  FaissSearchState &st = *self->state;

  st.regions.clear ();
  st.region_queries.clear ();
  return for_each_region_embedding (buf,
      [self, buf, &st] (const RegionEmbedding &r) {
        if (st.kind == IndexKind::FRAMES) {
          GST_ELEMENT_ERROR (self, STREAM, WRONG_TYPE,
              ("The index %s holds whole frames, but regions (%s) of this "
               "frame were embedded (embedder roi-types). Search a region "
               "index (faissindexer after embedder roi-types=...), or leave "
               "roi-types unset to search whole frames.",
                  st.reload->index_path ().c_str (),
                  g_quark_to_string (r.roi->roi_type)),
              (NULL));
          return false;
        }
        try {
          st.gallery->check_query (r.model_id, r.preprocessing_id, r.dims);
        } catch (const std::exception &e) {
          VS_ELEMENT_ERROR (self, e,
              ("The index %s was built by another embedder than the one that "
               "embedded the regions (%s) in this pipeline. %s",
                  st.reload->index_path ().c_str (),
                  g_quark_to_string (r.roi->roi_type), e.what ()),
              (NULL));
          return false;
        }
        const size_t bad = vs::first_non_finite (r.values, r.dims);
        if (bad < r.dims) {
          GST_DEBUG_OBJECT (self, "region %d has %f at %u: no neighbours",
              r.roi->id, r.values[bad], (guint) bad);
          if (!st.warned_non_finite) {
            st.warned_non_finite = true;
            GST_ELEMENT_WARNING (self, STREAM, FAILED,
                ("The embedding of a region (%s) of the frame at "
                 "%" GST_TIME_FORMAT
                 " holds NaN or infinite values: it and any other such region "
                 "or frame pass without neighbours.",
                    g_quark_to_string (r.roi->roi_type),
                    GST_TIME_ARGS (GST_BUFFER_PTS (buf))),
                ("value %u of %u is %f", (guint) bad, r.dims, r.values[bad]));
          }
          return true;
        }
        st.regions.push_back (r.roi);
        st.region_queries.insert (st.region_queries.end (), r.values,
            r.values + r.dims);
        return true;
      });
}

/* One region's entry of the visualsearch-regions message: where it is and
 * what was found for it. */
static GstStructure *
region_entry (const GstVideoRegionOfInterestMeta *roi,
    const std::vector<GstVisualSearchNeighbor> &neighbors)
{
  GValue ids = value_array_new ();
  GValue distances = value_array_new ();
  GValue labels = value_array_new ();
  GValue label_names = value_array_new ();
  GValue sources = value_array_new ();

  for (const GstVisualSearchNeighbor &nb : neighbors) {
    value_array_append<gint64> (&ids, nb.id);
    value_array_append<gfloat> (&distances, nb.distance);
    value_array_append<gint> (&labels, nb.label);
    value_array_append<const gchar *> (&label_names, nb.label_name);
    value_array_append<const gchar *> (&sources, nb.source);
  }
  GstStructure *s = gst_structure_new ("region", "roi-id", G_TYPE_INT, roi->id,
      "roi-type", G_TYPE_STRING, g_quark_to_string (roi->roi_type), "x",
      G_TYPE_UINT, roi->x, "y", G_TYPE_UINT, roi->y, "w", G_TYPE_UINT, roi->w,
      "h", G_TYPE_UINT, roi->h, NULL);
  gst_structure_take_value (s, "ids", &ids);
  gst_structure_take_value (s, "distances", &distances);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "label-names", &label_names);
  gst_structure_take_value (s, "sources", &sources);
  return s;
}

/* Searches every embedded region of buf in one batch, attaches each one's
 * neighbours to its ROI meta and posts one visualsearch-regions message for
 * the frame. */
static GstFlowReturn
gst_faiss_search_regions (GstFaissSearch *self, GstBuffer *buf,
    const SearchSettings &settings)
{
  FaissSearchState &st = *self->state;

  if (!gst_faiss_search_collect_regions (self, buf))
    return GST_FLOW_ERROR;
  if (st.regions.empty ())
    return GST_FLOW_OK;
  try {
    st.gallery->search_batch (st.region_queries.data (), st.regions.size (),
        settings.k, settings.params, settings.max_distance, &st.region_hits);
  } catch (const std::exception &e) {
    return gst_faiss_search_failed (self, e);
  }
  GST_LOG_OBJECT (self,
      "searched %zu regions of the frame at %" GST_TIME_FORMAT,
      st.regions.size (), GST_TIME_ARGS (GST_BUFFER_PTS (buf)));

  const GstVisualSearchMetric metric = to_gst_metric (st.gallery->metric ());
  GValue entries = value_array_new ();
  for (size_t i = 0; i < st.regions.size (); i++) {
    gst_faiss_search_check_count (self, buf, st.region_hits[i].size (),
        settings);
    std::forward_list<std::string> repaired;
    gst_faiss_search_name_neighbors (self, st.region_hits[i], repaired);
    gst_visualsearch_region_set_neighbors (st.regions[i], metric,
        st.neighbors.size (), st.neighbors.data ());
    if (settings.post_messages) {
      GValue entry = G_VALUE_INIT;
      g_value_init (&entry, GST_TYPE_STRUCTURE);
      g_value_take_boxed (&entry, region_entry (st.regions[i], st.neighbors));
      gst_value_array_append_and_take_value (&entries, &entry);
    }
  }
  if (!settings.post_messages) {
    g_value_unset (&entries);
    return GST_FLOW_OK;
  }

  GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  const GstClockTime ts = GST_BUFFER_PTS (buf);
  GstStructure *s = gst_structure_new ("visualsearch-regions", "timestamp",
      G_TYPE_UINT64, ts, "stream-time", G_TYPE_UINT64,
      gst_segment_to_stream_time (segment, GST_FORMAT_TIME, ts), "running-time",
      G_TYPE_UINT64, gst_segment_to_running_time (segment, GST_FORMAT_TIME, ts),
      "duration", G_TYPE_UINT64, GST_BUFFER_DURATION (buf), "metric",
      G_TYPE_STRING, gst_visualsearch_metric_to_string (metric), NULL);
  gst_structure_take_value (s, "regions", &entries);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_faiss_search_transform_ip (GstBaseTransform *trans, GstBuffer *buf)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (trans);
  FaissSearchState &st = *self->state;
  const GstVisualSearchEmbeddingMeta *emeta =
      gst_buffer_get_visualsearch_embedding_meta (buf);
  const SearchSettings settings = gst_faiss_search_settings (self);

  QueryIdentity query;
  if (settings.reload && query_identity (buf, &query))
    gst_faiss_search_check_reload (self, query);

  GstFlowReturn flow;
  if (gst_faiss_search_accepts (self, buf, emeta, &flow)) {
    try {
      st.gallery->search (emeta->values, settings.k, settings.params,
          settings.max_distance, &st.hits);
    } catch (const std::exception &e) {
      return gst_faiss_search_failed (self, e);
    }
    gst_faiss_search_attach (self, buf, st.hits, settings);
  } else if (flow != GST_FLOW_OK) {
    return flow;
  }
  return gst_faiss_search_regions (self, buf, settings);
}

/* Searches the held frames in one go and pushes them, in order. */
static GstFlowReturn
gst_faiss_search_drain (GstFaissSearch *self)
{
  FaissSearchState &st = *self->state;
  if (st.held.empty ())
    return GST_FLOW_OK;

  const SearchSettings settings = gst_faiss_search_settings (self);
  std::vector<GstBuffer *> held;
  held.swap (st.held);

  /* One gallery for the whole batch: a replaced index is taken up between
   * batches. */
  if (settings.reload) {
    for (GstBuffer *buf : held) {
      QueryIdentity query;
      if (query_identity (buf, &query)) {
        gst_faiss_search_check_reload (self, query);
        break;
      }
    }
  }

  GstFlowReturn flow = GST_FLOW_OK;
  std::vector<bool> searched (held.size (), false);
  st.batch_queries.clear ();
  for (size_t i = 0; i < held.size () && flow == GST_FLOW_OK; i++) {
    const GstVisualSearchEmbeddingMeta *emeta =
        gst_buffer_get_visualsearch_embedding_meta (held[i]);
    searched[i] = gst_faiss_search_accepts (self, held[i], emeta, &flow);
    if (searched[i])
      st.batch_queries.insert (st.batch_queries.end (), emeta->values,
          emeta->values + emeta->dims);
  }
  if (flow == GST_FLOW_OK && !st.batch_queries.empty ()) {
    try {
      st.gallery->search_batch (st.batch_queries.data (),
          st.batch_queries.size () / st.gallery->dims (), settings.k,
          settings.params, settings.max_distance, &st.batch_hits);
    } catch (const std::exception &e) {
      flow = gst_faiss_search_failed (self, e);
    }
  }
  GST_LOG_OBJECT (self, "searched a batch of %zu frames",
      st.batch_queries.size () / st.gallery->dims ());

  size_t next_hits = 0;
  for (size_t i = 0; i < held.size (); i++) {
    if (flow != GST_FLOW_OK) {
      gst_buffer_unref (held[i]);
      continue;
    }
    if (searched[i])
      gst_faiss_search_attach (self, held[i], st.batch_hits[next_hits++],
          settings);
    flow = gst_faiss_search_regions (self, held[i], settings);
    if (flow != GST_FLOW_OK) {
      gst_buffer_unref (held[i]);
      continue;
    }
    flow = gst_pad_push (GST_BASE_TRANSFORM_SRC_PAD (self), held[i]);
  }
  return flow;
}

/* With max-batch above 1 and a source that is not live, holds the frame for
 * a batch; otherwise it goes the usual way, to transform_ip. */
static GstFlowReturn
gst_faiss_search_submit_input_buffer (GstBaseTransform *trans,
    gboolean is_discont, GstBuffer *buf)
{
  GstFaissSearch *self = GST_FAISS_SEARCH (trans);
  FaissSearchState &st = *self->state;

  GST_OBJECT_LOCK (self);
  const guint max_batch = self->max_batch;
  GST_OBJECT_UNLOCK (self);

  if (max_batch > 1 && !st.live) {
    GstQuery *query = gst_query_new_latency ();
    gboolean live = FALSE;
    if (gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (trans), query))
      gst_query_parse_latency (query, &live, NULL, NULL);
    gst_query_unref (query);
    st.live = live;
    if (live)
      GST_INFO_OBJECT (self,
          "upstream is live: frames are searched one by "
          "one, as they come, whatever max-batch says");
  }
  if (max_batch <= 1 || *st.live) {
    if (!st.held.empty ()) {
      GstFlowReturn flow = gst_faiss_search_drain (self);
      if (flow != GST_FLOW_OK) {
        gst_buffer_unref (buf);
        return flow;
      }
    }
    return GST_BASE_TRANSFORM_CLASS (parent_class)
        ->submit_input_buffer (trans, is_discont, buf);
  }

  st.held.push_back (gst_buffer_make_writable (buf));
  if (st.held.size () < max_batch)
    return GST_FLOW_OK;
  return gst_faiss_search_drain (self);
}

static gboolean
gst_faiss_search_query (GstBaseTransform *trans, GstPadDirection direction,
    GstQuery *query)
{
  /* Downstream is to see every frame that came before the drain. */
  if (direction == GST_PAD_SINK && GST_QUERY_TYPE (query) == GST_QUERY_DRAIN)
    gst_faiss_search_drain (GST_FAISS_SEARCH (trans));
  return GST_BASE_TRANSFORM_CLASS (parent_class)
      ->query (trans, direction, query);
}
