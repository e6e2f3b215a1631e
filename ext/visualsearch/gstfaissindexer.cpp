// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-faissindexer
 * @title: faissindexer
 *
 * Builds a gallery for faisssearch: adds the #GstVisualSearchEmbeddingMeta of every
 * buffer to a FAISS index, and the frame's identity from its #GstVisualSearchSampleMeta
 * (label, label name, source; from cifarsrc) to the SQLite catalog beside it
 * (#GstFaissIndexer:location + ".db"). Index id N is the Nth embedding.
 * Buffers without an embedding are counted and skipped, with a warning at EOS.
 *
 * A frame whose regions were embedded instead (embedder with
 * #GstEmbedder:roi-types) gives one item per embedded region: the frame's
 * label and name (the region's type without a name), its source with the
 * box as a media fragment ("photos/a.jpg#xywh=175,64,97,97"), and the crop
 * as its thumbnail. In a run that indexed regions, frames without one are
 * passed over without a warning, and a gallery file none of whose frames had
 * one counts as added (read, with no item), not as bad: the catalog records
 * it with the unreadable files (reason "no region to index"), so that an
 * update passes over it while it is unchanged. #GstFaissIndexer:mode update
 * keeps regions by their file as it keeps frames.
 *
 * At EOS a trainable #GstFaissIndexer:index-type (IVF, PQ, OPQ) is trained on
 * the collected vectors, then the index and the catalog are written: each to a
 * temporary file of its own in the same directory (location.tmp.PID.XXXXXX),
 * flushed, and renamed over the old one, so a failure or a kill while writing
 * leaves the previous files intact. The catalog records the size and CRC-32 of
 * the index written with it; faisssearch refuses a pair that does not match.
 *
 * Writers of one location take turns through a lock file beside it
 * (location + ".lock", flock): an appending run holds it from start to EOS,
 * any other run while it writes; one that has to wait says so in a progress
 * message (CONTINUE, then COMPLETE once it holds the lock, or CANCELED) and
 * gives up after a minute. Holding the lock, a writer removes the
 * temporaries of killed writers. The directory must exist and be writable at
 * start (READY to PAUSED), before any embedding work.
 * With #GstFaissIndexer:export-npy, embeddings.npy and labels.npy are written
 * to the index's directory too. With #GstFaissIndexer:checkpoint-interval the
 * index and catalog are also written, the same way, every so many seconds
 * while embeddings arrive, so that a killed run loses at most that much.
 *
 * #GstFaissIndexer:mode says what becomes of an index already at location:
 * `rebuild` (the default) writes a new one in its place, `append` adds to it
 * (the older #GstFaissIndexer:append=true), and `update` updates a gallery
 * index incrementally, created when absent. A gallery index is what
 * `gallerysrc index=` feeds (see gallery_events.h): an IDMap2 around
 * #GstFaissIndexer:index-type whose catalog keeps each item's file (relative
 * path, size, modification time, time of a video frame) and the folder
 * walked. gallerysrc, asked by a custom query, skips in an update the files
 * the index holds unchanged and announces each file in an out-of-band custom
 * event before its frames; faissindexer keeps the items and ids of the
 * skipped files, gives the new items their files, and once gallerysrc
 * announces the end of its walk, removes at EOS the items of the files
 * changed or gone. The files gallerysrc found unreadable go into the
 * catalog too (table rejected_files: path, size, modification time, reason),
 * those still there unchanged kept, so that updates do not probe them again;
 * the entries of files gone or changed are dropped. A walk stopped early
 * removes nothing. The COMPLETE
 * progress message then counts the files added, updated, removed, unchanged
 * and skipped as bad. An index with no id map is refused by mode=update.
 * galleryindexer is this line in one element.
 *
 * When the buffers are raw video (embedder passes its frames through), each
 * item's thumbnail goes into the catalog too: a JPEG whose longer side is
 * #GstFaissIndexer:thumbnail-size, so searchoverlay and applications can show
 * results without the original files (video frames, galleries on another
 * disk). thumbnail-size=0, or caps other than video/x-raw, store none.
 *
 * The catalog also records the settings the embedder upstream announces (see
 * embedder_settings.h), so that `embedder index=` can adopt them
 * when searching the index. Settings that do not describe the embeddings that
 * arrive (another model id or preprocessing) are not recorded, with a
 * warning.
 *
 * The element posts GST_MESSAGE_PROGRESS messages (code "faissindexer"): at
 * the first embedding, every #GstFaissIndexer:progress-interval embeddings,
 * for each phase at EOS, and when done. Their structures also carry the
 * counts so far in "indexed" and "skipped" (guint64).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 cifarsrc location=cifar-10-batches-py split=train ! \
 *     embedder resize=0 input-size=32 ! faissindexer location=cifar10.faiss
 * gst-launch-1.0 -e gallerysrc location=~/Pictures index=pictures.faiss ! \
 *     embedder ! faissindexer location=pictures.faiss mode=update
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstfaissindexer.h"

#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>
#include <opencv2/core.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/error.h"
#include "engine/base/finite.h"
#include "engine/base/utf8.h"
#include "engine/index/index_builder.h"
#include "engine/render/thumbnail_cache.h"
#include "elements.h"
#include "embedder_settings.h"
#include "element_error.h"
#include "engine_enums.h"
#include "gallery_events.h"
#include "region_embeddings.h"

GST_DEBUG_CATEGORY_STATIC (gst_faiss_indexer_debug);
#define GST_CAT_DEFAULT gst_faiss_indexer_debug

#define DEFAULT_LOCATION NULL
#define DEFAULT_INDEX_TYPE "Flat"
#define DEFAULT_METRIC vs::Metric::InnerProduct
#define DEFAULT_MODE GST_FAISS_INDEXER_MODE_REBUILD
#define DEFAULT_TRAIN_SIZE 0
#define DEFAULT_EF_CONSTRUCTION 0
#define DEFAULT_REFINE_FACTOR 0.0f
#define DEFAULT_EXPORT_NPY FALSE
#define DEFAULT_PROGRESS_INTERVAL 1000
#define DEFAULT_THUMBNAIL_SIZE vs::kDefaultThumbnailSize
#define MAX_THUMBNAIL_SIZE 1024
#define DEFAULT_CHECKPOINT_INTERVAL 0

#define PROGRESS_CODE "faissindexer"

enum
{
  PROP_0,
  PROP_LOCATION,
  PROP_INDEX_TYPE,
  PROP_METRIC,
  PROP_APPEND,
  PROP_TRAIN_SIZE,
  PROP_EF_CONSTRUCTION,
  PROP_REFINE_FACTOR,
  PROP_EXPORT_NPY,
  PROP_PROGRESS_INTERVAL,
  PROP_THUMBNAIL_SIZE,
  PROP_CHECKPOINT_INTERVAL,
  PROP_MODE,
};

typedef GstFaissIndexerMode Mode;

struct _GstFaissIndexer
{
  GstBaseSink parent;

  /* properties, guarded by the object lock */
  gchar *location;
  gchar *index_type;
  vs::Metric metric;
  Mode mode;
  gint64 train_size;
  gint ef_construction;
  gfloat refine_factor;
  gboolean export_npy;
  guint progress_interval;
  guint thumbnail_size;
  guint checkpoint_interval;
  /* the C++ state of one run: created in start, destroyed in stop;
   * otherwise used by the streaming thread, and by the gallery events
   * (gallery_events.h), which arrive out of band from upstream's thread but
   * touch only the builder's FileInventory, which locks, once the first one
   * has set the gallery root (before any frame of the walk) */
  vs::IndexBuilder *builder;
  Mode run_mode;
  std::string *gallery_root; /* the last announced; NULL until then */
  guint64 not_held; /* files gallerysrc skipped that the index lacks */
  guint64 skipped;
  guint64 region_items; /* items of regions this run */
  gboolean embeds_regions; /* the embedder announced roi-types */
  /* The sources of the frames that reached this sink without an embedding,
   * for a run of regions: a file none of whose frames had a region was
   * still read (not bad). NULL until the first. */
  std::vector<std::string> *unembedded_sources;
  guint progress_every;
  guint thumbnail_longer_side; /* 0: no thumbnails this run */
  gboolean have_video; /* the caps are raw video: info is valid */
  GstVideoInfo info;
  GstVideoConverter *to_rgb; /* NULL when the frames are RGB already */
  GstVideoInfo rgb_info;
  /* The embedder's settings, announced upstream and not yet checked against
   * an embedding; NULL when none are pending. */
  GstStructure *embedder_settings;
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

#define gst_faiss_indexer_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstFaissIndexer, gst_faiss_indexer, GST_TYPE_BASE_SINK,
    GST_DEBUG_CATEGORY_INIT (gst_faiss_indexer_debug, "faissindexer", 0,
        "Builds a FAISS index and catalog from embeddings"));
GST_ELEMENT_REGISTER_DEFINE (faissindexer, "faissindexer", GST_RANK_NONE,
    GST_TYPE_FAISS_INDEXER);

static void gst_faiss_indexer_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_faiss_indexer_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_faiss_indexer_finalize (GObject *object);
static GstStateChangeReturn gst_faiss_indexer_change_state (GstElement *element,
    GstStateChange transition);
static gboolean gst_faiss_indexer_stop (GstBaseSink *sink);
static gboolean gst_faiss_indexer_event (GstBaseSink *sink, GstEvent *event);
static gboolean gst_faiss_indexer_query (GstBaseSink *sink, GstQuery *query);
static gboolean gst_faiss_indexer_set_caps (GstBaseSink *sink, GstCaps *caps);
static GstFlowReturn gst_faiss_indexer_render (GstBaseSink *sink,
    GstBuffer *buffer);

GType
gst_faiss_indexer_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_FAISS_INDEXER_MODE_APPEND,
          "Add to the index and catalog at location (created when absent); "
          "their model, preprocessing, dims and metric must match",
          "append"},
      {GST_FAISS_INDEXER_MODE_UPDATE,
          "Update the gallery index at location (created when absent) from "
          "gallerysrc's walk: keep the items of the files it skips as "
          "unchanged, add new and changed files, and once the walk is "
          "complete remove the items of files changed or gone",
          "update"},
      {GST_FAISS_INDEXER_MODE_REBUILD,
          "Write a new index and catalog at location, replacing any there "
          "(a gallery index that mode=update can update when gallerysrc "
          "index= announces its files)",
          "rebuild"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFaissIndexerMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static void
gst_faiss_indexer_class_init (GstFaissIndexerClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *base_sink_class = GST_BASE_SINK_CLASS (klass);
  const GParamFlags flags = (GParamFlags) (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  gobject_class->set_property = gst_faiss_indexer_set_property;
  gobject_class->get_property = gst_faiss_indexer_get_property;
  gobject_class->finalize = gst_faiss_indexer_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "The FAISS index file to write; the SQLite catalog goes beside it "
          "(location + \".db\")",
          DEFAULT_LOCATION, flags));
  g_object_class_install_property (gobject_class, PROP_INDEX_TYPE,
      g_param_spec_string ("index-type", "Index type",
          "FAISS index_factory string: Flat (exact), IVF<n>,Flat, "
          "IVF<n>,PQ<m>, HNSW<m>, OPQ<m>,IVF<n>,PQ<m>... (PQ<m>np skips "
          "FAISS's slow polysemous training); ignored when appending (the "
          "existing index keeps its type)",
          DEFAULT_INDEX_TYPE, flags));
  g_object_class_install_property (gobject_class, PROP_METRIC,
      g_param_spec_enum ("metric", "Metric",
          "Similarity the index ranks by: ip, the inner product (cosine "
          "similarity on normalised embeddings), or l2, the squared "
          "Euclidean distance",
          GST_TYPE_VISUALSEARCH_METRIC, to_gst_metric (DEFAULT_METRIC), flags));
  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_enum ("mode", "Mode",
          "What to do with an index already at location: rebuild writes a "
          "new one in its place; append adds to it; update keeps the items "
          "of the files gallerysrc skips as unchanged, adds the others and, "
          "once the walk is complete, removes the items of files changed or "
          "gone (see the element's documentation)",
          GST_TYPE_FAISS_INDEXER_MODE, DEFAULT_MODE, flags));
  g_object_class_install_property (gobject_class, PROP_APPEND,
      g_param_spec_boolean ("append", "Append",
          "The older spelling of mode=append: true sets it, false sets "
          "mode=rebuild if it was append; reads whether mode is append",
          FALSE, flags));
  g_object_class_install_property (gobject_class, PROP_TRAIN_SIZE,
      g_param_spec_int64 ("train-size", "Training set size",
          "Trainable index types: train on the first this many embeddings, "
          "then add the rest as they come (less memory); 0 trains on all of "
          "them at EOS",
          0, G_MAXINT64, DEFAULT_TRAIN_SIZE, flags));
  g_object_class_install_property (gobject_class, PROP_EF_CONSTRUCTION,
      g_param_spec_int ("ef-construction", "efConstruction",
          "HNSW index types: how many candidates each vector's links are "
          "chosen from as the graph is built; larger builds a graph that "
          "needs a smaller ef-search for the same recall, in a build that "
          "takes about proportionally longer (0 = FAISS's 40)",
          0, 65536, DEFAULT_EF_CONSTRUCTION, flags));
  g_object_class_install_property (gobject_class, PROP_REFINE_FACTOR,
      g_param_spec_float ("refine-factor", "Refine factor",
          "Index types with an exact re-ranking stage (ending in \",RFlat\"): "
          "the factor written into the index, how many candidates per "
          "neighbour its first stage passes on (k x this); faisssearch "
          "refine-factor can change it per search (0 = FAISS's 1: no more "
          "candidates than neighbours)",
          0.0f, 1000.0f, DEFAULT_REFINE_FACTOR, flags));
  g_object_class_install_property (gobject_class, PROP_EXPORT_NPY,
      g_param_spec_boolean ("export-npy", "Export NumPy",
          "Also write embeddings.npy (float32, count x dims) and labels.npy "
          "(int64, -1 when unknown) into the index's directory, row N = index "
          "id N",
          DEFAULT_EXPORT_NPY, flags));
  g_object_class_install_property (gobject_class, PROP_PROGRESS_INTERVAL,
      g_param_spec_uint ("progress-interval", "Progress interval",
          "Post a progress message every this many embeddings (0: only at "
          "the start and for the phases at EOS)",
          0, G_MAXUINT, DEFAULT_PROGRESS_INTERVAL, flags));
  g_object_class_install_property (gobject_class, PROP_THUMBNAIL_SIZE,
      g_param_spec_uint ("thumbnail-size", "Thumbnail size",
          "Store a JPEG thumbnail of each raw video frame in the catalog, "
          "this many pixels on its longer side, so results can be shown "
          "without the original files; 0 turns it off",
          0, MAX_THUMBNAIL_SIZE, DEFAULT_THUMBNAIL_SIZE, flags));
  g_object_class_install_property (gobject_class, PROP_CHECKPOINT_INTERVAL,
      g_param_spec_uint ("checkpoint-interval", "Checkpoint interval",
          "Also write the index and catalog (atomically, as at EOS) every "
          "this many seconds while embeddings arrive, so that a killed run "
          "loses at most this much work; trainable types only once trained "
          "(train-size). 0: only at EOS",
          0, 86400, DEFAULT_CHECKPOINT_INTERVAL, flags));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "FAISS indexer",
      "Sink/Analysis",
      "Collects embeddings into a FAISS index and an SQLite catalog of the "
      "frames they came from, written atomically at EOS",
      "visualsearch developers");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_faiss_indexer_change_state);
  base_sink_class->stop = GST_DEBUG_FUNCPTR (gst_faiss_indexer_stop);
  base_sink_class->event = GST_DEBUG_FUNCPTR (gst_faiss_indexer_event);
  base_sink_class->query = GST_DEBUG_FUNCPTR (gst_faiss_indexer_query);
  base_sink_class->set_caps = GST_DEBUG_FUNCPTR (gst_faiss_indexer_set_caps);
  base_sink_class->render = GST_DEBUG_FUNCPTR (gst_faiss_indexer_render);

  gst_type_mark_as_plugin_api (GST_TYPE_FAISS_INDEXER_MODE,
      (GstPluginAPIFlags) 0);
}

static void
gst_faiss_indexer_init (GstFaissIndexer *self)
{
  self->location = g_strdup (DEFAULT_LOCATION);
  self->index_type = g_strdup (DEFAULT_INDEX_TYPE);
  self->metric = DEFAULT_METRIC;
  self->mode = DEFAULT_MODE;
  self->train_size = DEFAULT_TRAIN_SIZE;
  self->ef_construction = DEFAULT_EF_CONSTRUCTION;
  self->refine_factor = DEFAULT_REFINE_FACTOR;
  self->export_npy = DEFAULT_EXPORT_NPY;
  self->progress_interval = DEFAULT_PROGRESS_INTERVAL;
  self->thumbnail_size = DEFAULT_THUMBNAIL_SIZE;
  self->checkpoint_interval = DEFAULT_CHECKPOINT_INTERVAL;
  self->to_rgb = NULL;
  self->have_video = FALSE;
  self->embedder_settings = NULL;

  /* Every buffer is stored; waiting for the clock would only slow indexing. */
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
}

static void
gst_faiss_indexer_finalize (GObject *object)
{
  GstFaissIndexer *self = GST_FAISS_INDEXER (object);

  if (self->embedder_settings)
    gst_structure_free (self->embedder_settings);
  g_free (self->location);
  g_free (self->index_type);
  delete self->gallery_root;
  delete self->unembedded_sources;

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_faiss_indexer_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstFaissIndexer *self = GST_FAISS_INDEXER (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_INDEX_TYPE:
      g_free (self->index_type);
      self->index_type = g_value_dup_string (value);
      break;
    case PROP_METRIC:
      self->metric =
          to_engine_metric ((GstVisualSearchMetric) g_value_get_enum (value));
      break;
    case PROP_APPEND:
      /* The older spelling of mode=append. */
      if (g_value_get_boolean (value))
        self->mode = GST_FAISS_INDEXER_MODE_APPEND;
      else if (self->mode == GST_FAISS_INDEXER_MODE_APPEND)
        self->mode = GST_FAISS_INDEXER_MODE_REBUILD;
      break;
    case PROP_MODE:
      self->mode = (Mode) g_value_get_enum (value);
      break;
    case PROP_TRAIN_SIZE:
      self->train_size = g_value_get_int64 (value);
      break;
    case PROP_EF_CONSTRUCTION:
      self->ef_construction = g_value_get_int (value);
      break;
    case PROP_REFINE_FACTOR:
      self->refine_factor = g_value_get_float (value);
      break;
    case PROP_EXPORT_NPY:
      self->export_npy = g_value_get_boolean (value);
      break;
    case PROP_PROGRESS_INTERVAL:
      self->progress_interval = g_value_get_uint (value);
      break;
    case PROP_THUMBNAIL_SIZE:
      self->thumbnail_size = g_value_get_uint (value);
      break;
    case PROP_CHECKPOINT_INTERVAL:
      self->checkpoint_interval = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_faiss_indexer_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstFaissIndexer *self = GST_FAISS_INDEXER (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_INDEX_TYPE:
      g_value_set_string (value, self->index_type);
      break;
    case PROP_METRIC:
      g_value_set_enum (value, to_gst_metric (self->metric));
      break;
    case PROP_APPEND:
      g_value_set_boolean (value, self->mode == GST_FAISS_INDEXER_MODE_APPEND);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    case PROP_TRAIN_SIZE:
      g_value_set_int64 (value, self->train_size);
      break;
    case PROP_EF_CONSTRUCTION:
      g_value_set_int (value, self->ef_construction);
      break;
    case PROP_REFINE_FACTOR:
      g_value_set_float (value, self->refine_factor);
      break;
    case PROP_EXPORT_NPY:
      g_value_set_boolean (value, self->export_npy);
      break;
    case PROP_PROGRESS_INTERVAL:
      g_value_set_uint (value, self->progress_interval);
      break;
    case PROP_THUMBNAIL_SIZE:
      g_value_set_uint (value, self->thumbnail_size);
      break;
    case PROP_CHECKPOINT_INTERVAL:
      g_value_set_uint (value, self->checkpoint_interval);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ------------------------------------------------------------------------ */
/* progress */

static void
post_progress (GstFaissIndexer *self, GstProgressType type,
    const std::string &text)
{
  GstMessage *message = gst_message_new_progress (GST_OBJECT (self), type,
      PROGRESS_CODE, text.c_str ());
  guint64 indexed = self->builder ? self->builder->added () : 0;

  gst_structure_set (gst_message_writable_structure (message), "indexed",
      G_TYPE_UINT64, indexed, "skipped", G_TYPE_UINT64, self->skipped, NULL);
  GST_INFO_OBJECT (self, "%s", text.c_str ());
  gst_element_post_message (GST_ELEMENT (self), message);
}

/* ------------------------------------------------------------------------ */
/* lifecycle */

/* Opens the index for writing (and takes its lock); posts the error and
 * returns FALSE when it cannot. */
static gboolean
gst_faiss_indexer_open (GstFaissIndexer *self)
{
  vs::IndexBuildOptions options;

  GST_OBJECT_LOCK (self);
  options.location = self->location ? self->location : "";
  options.index_type = self->index_type ? self->index_type : "";
  options.metric = self->metric;
  options.append = self->mode == GST_FAISS_INDEXER_MODE_APPEND;
  /* A gallery index (an IDMap2 whose items carry their files): gallerysrc's
   * file events update it. A rebuild becomes one when they arrive. */
  options.gallery = options.update =
      self->mode == GST_FAISS_INDEXER_MODE_UPDATE;
  self->run_mode = self->mode;
  options.train_size = self->train_size;
  options.ef_construction = self->ef_construction;
  options.refine_factor = self->refine_factor;
  options.export_npy = self->export_npy;
  options.checkpoint_interval =
      std::chrono::seconds (self->checkpoint_interval);
  self->progress_every = self->progress_interval;
  self->thumbnail_longer_side = self->thumbnail_size;
  GST_OBJECT_UNLOCK (self);

  self->skipped = 0;
  self->region_items = 0;
  self->embeds_regions = FALSE;
  delete self->unembedded_sources;
  self->unembedded_sources = NULL;
  self->not_held = 0;
  delete self->gallery_root;
  self->gallery_root = NULL;
  if (options.location.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No index file to write."),
        ("Set location to the path of the FAISS index to build."));
    return FALSE;
  }

  vs::IndexBuilder *builder;
  try {
    builder = new vs::IndexBuilder (
        options,
        [self] (const std::string &step) {
          post_progress (self, GST_PROGRESS_TYPE_CONTINUE, step);
        },
        [self] (const std::string &warning) {
          GST_ELEMENT_WARNING (self, STREAM, FAILED, ("%s", warning.c_str ()),
              (NULL));
        },
        /* gst-launch-1.0 holds a prerolled pipeline in PAUSED until a
         * progress it saw start is over: a wait left open would never let
         * it play. */
        [self, location = options.location] (bool taken) {
          if (taken)
            post_progress (self, GST_PROGRESS_TYPE_COMPLETE,
                "the other writer of " + location + " has finished");
          else
            post_progress (self, GST_PROGRESS_TYPE_CANCELED,
                "gave up waiting for the other writer of " + location);
        });
  } catch (const std::exception &e) {
    if (options.append || options.update)
      VS_ELEMENT_ERROR (self, e,
          ("Cannot %s the index %s: %s",
              options.append ? "append to" : "update",
              options.location.c_str (), e.what ()),
          (NULL));
    else
      VS_ELEMENT_ERROR (self, e,
          ("Cannot write the index %s: %s", options.location.c_str (),
              e.what ()),
          (NULL));
    return FALSE;
  }
  self->builder = builder;
  if (self->builder->existing () > 0)
    GST_INFO_OBJECT (self,
        "appending to %s, which holds %" G_GINT64_FORMAT " vectors",
        options.location.c_str (), self->builder->existing ());
  return TRUE;
}

/* GstBaseSink follows a start() that failed with a second, generic error
 * ("state change failed and some element failed to post a proper error
 * message"). Opened in NULL to READY, where the base class would start
 * (galleryindexer reads the inventory in READY), but before it, a failure
 * reaches the application as the one error that says what is wrong. */
static GstStateChangeReturn
gst_faiss_indexer_change_state (GstElement *element, GstStateChange transition)
{
  if (transition == GST_STATE_CHANGE_NULL_TO_READY
      && !gst_faiss_indexer_open (GST_FAISS_INDEXER (element)))
    return GST_STATE_CHANGE_FAILURE;
  const GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY
      && ret == GST_STATE_CHANGE_FAILURE)
    gst_faiss_indexer_stop (GST_BASE_SINK (element));
  return ret;
}

static gboolean
gst_faiss_indexer_stop (GstBaseSink *sink)
{
  GstFaissIndexer *self = GST_FAISS_INDEXER (sink);

  delete self->builder;
  self->builder = NULL;
  g_clear_pointer (&self->to_rgb, gst_video_converter_free);
  g_clear_pointer (&self->embedder_settings, gst_structure_free);
  self->have_video = FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* thumbnails */

static gboolean
gst_faiss_indexer_set_caps (GstBaseSink *sink, GstCaps *caps)
{
  GstFaissIndexer *self = GST_FAISS_INDEXER (sink);

  g_clear_pointer (&self->to_rgb, gst_video_converter_free);
  self->have_video = gst_video_info_from_caps (&self->info, caps)
      && GST_VIDEO_INFO_FORMAT (&self->info) != GST_VIDEO_FORMAT_ENCODED;
  if (!self->have_video) {
    GST_INFO_OBJECT (self, "no thumbnails from caps %" GST_PTR_FORMAT, caps);
    return TRUE;
  }
  gst_video_info_set_format (&self->rgb_info, GST_VIDEO_FORMAT_RGB,
      GST_VIDEO_INFO_WIDTH (&self->info), GST_VIDEO_INFO_HEIGHT (&self->info));
  /* The converter refuses two frame rates. */
  GST_VIDEO_INFO_FPS_N (&self->rgb_info) = GST_VIDEO_INFO_FPS_N (&self->info);
  GST_VIDEO_INFO_FPS_D (&self->rgb_info) = GST_VIDEO_INFO_FPS_D (&self->info);
  if (GST_VIDEO_INFO_FORMAT (&self->info) != GST_VIDEO_FORMAT_RGB)
    self->to_rgb = gst_video_converter_new (&self->info, &self->rgb_info, NULL);
  if (GST_VIDEO_INFO_FORMAT (&self->info) != GST_VIDEO_FORMAT_RGB
      && self->to_rgb == NULL) {
    GST_WARNING_OBJECT (self, "cannot convert %s to RGB: no thumbnails",
        gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (&self->info)));
    self->have_video = FALSE;
  }
  return TRUE;
}

/* The frame in buffer, or its part crop (inside the frame) when set, as a
 * JPEG thumbnail; empty when the stream is not raw video. Throws vs::Error. */
static std::vector<uint8_t>
make_thumbnail (GstFaissIndexer *self, GstBuffer *buffer,
    const cv::Rect *crop = nullptr)
{
  if (self->thumbnail_longer_side == 0 || !self->have_video)
    return {};
  GstVideoFrame frame;
  if (!gst_video_frame_map (&frame, &self->info, buffer, GST_MAP_READ))
    throw vs::Error (vs::ErrorKind::Format,
        "The frame does not match its caps ("
            + std::to_string (gst_buffer_get_size (buffer))
            + " bytes), so no "
              "thumbnail can be made of it.");
  std::vector<uint8_t> jpeg;
  try {
    if (self->to_rgb) {
      /* Scaled after conversion: cv::INTER_AREA averages every pixel, where
       * the converter's scaler would alias a large shrink. */
      cv::Mat rgb (GST_VIDEO_INFO_HEIGHT (&self->rgb_info),
          GST_VIDEO_INFO_WIDTH (&self->rgb_info), CV_8UC3);
      GstVideoFrame out = {};
      out.info = self->rgb_info;
      out.data[0] = rgb.data;
      out.info.stride[0] = static_cast<gint> (rgb.step[0]);
      out.info.offset[0] = 0;
      gst_video_converter_frame (self->to_rgb, &frame, &out);
      jpeg = vs::encode_thumbnail (crop ? rgb (*crop) : rgb,
          self->thumbnail_longer_side);
    } else {
      cv::Mat rgb (GST_VIDEO_FRAME_HEIGHT (&frame),
          GST_VIDEO_FRAME_WIDTH (&frame), CV_8UC3,
          GST_VIDEO_FRAME_PLANE_DATA (&frame, 0),
          GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0));
      jpeg = vs::encode_thumbnail (crop ? rgb (*crop) : rgb,
          self->thumbnail_longer_side);
    }
  } catch (...) {
    gst_video_frame_unmap (&frame);
    throw;
  }
  gst_video_frame_unmap (&frame);
  return jpeg;
}

/* ------------------------------------------------------------------------ */
/* EOS: train, add, write */

static gboolean
gst_faiss_indexer_finish (GstFaissIndexer *self)
{
  vs::IndexBuilder &builder = *self->builder;

  if ((self->region_items > 0 || self->embeds_regions)
      && self->unembedded_sources && builder.inventory ()) {
    /* A run of regions: frames without one are not a fault, and their
     * files were read. A file with no region at all is recorded as such, so
     * that updates pass over it while it is unchanged. */
    for (const std::string &source : *self->unembedded_sources)
      builder.inventory ()->read_without_items (source);
    GST_INFO_OBJECT (self, "%" G_GUINT64_FORMAT " frames had no region",
        self->skipped);
  } else if (self->skipped > 0)
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("%" G_GUINT64_FORMAT " buffers carried no embedding and were not "
         "indexed.",
            self->skipped),
        ("Put an embedder upstream, with inference-interval=1, so that every "
         "frame is embedded."));
  try {
    const bool wrote = builder.finish ();
    std::string files;
    if (const auto &inventory = builder.inventory ()) {
      const vs::FileInventory::Counts c = inventory->counts ();
      files = "; " + std::to_string (builder.added ())
          + " frames embedded; "
            "files: added "
          + std::to_string (c.added) + ", updated " + std::to_string (c.updated)
          + ", removed " + std::to_string (c.removed) + ", unchanged "
          + std::to_string (c.unchanged) + ", skipped-bad "
          + std::to_string (c.bad)
          + (c.unread > 0 ? ", unreadable " + std::to_string (c.unread)
                      + " (their items kept)"
                          : "")
          + (inventory->walked_all () ? ""
                                      : " (the walk was stopped before its "
                                        "end: run again to finish it)");
    }
    if (wrote)
      post_progress (self, GST_PROGRESS_TYPE_COMPLETE,
          "wrote "
              + std::to_string (builder.existing () + builder.added ()
                  - builder.removed ())
              + " vectors to " + builder.location () + " and its catalog "
              + builder.catalog_path () + files);
    else if (!files.empty ())
      post_progress (self, GST_PROGRESS_TYPE_COMPLETE,
          builder.location () + " is up to date" + files);
  } catch (const std::exception &e) {
    post_progress (self, GST_PROGRESS_TYPE_ERROR, e.what ());
    /* The message says whether the previous files are still in place. */
    VS_ELEMENT_ERROR (self, e,
        ("Could not finish the index %s: %s", builder.location ().c_str (),
            e.what ()),
        (NULL));
    return FALSE;
  }
  return TRUE;
}

/* gallerysrc's events (gallery_events.h): out of band, so from upstream's
 * thread. An appending run takes none of them. */
static gboolean
gst_faiss_indexer_gallery_event (GstFaissIndexer *self, GstEvent *event)
{
  std::string root;
  vs::FileIdentity identity;
  gboolean skipped = FALSE;
  std::string rejected;
  std::vector<vs::WalkGap> gaps;

  GST_LOG_OBJECT (self, "%" GST_PTR_FORMAT, event);
  if (vs_gallery_file_event_parse (event, &root, &identity, &skipped,
          &rejected)) {
    if (self->run_mode == GST_FAISS_INDEXER_MODE_APPEND || !self->builder)
      return TRUE;
    if (!self->gallery_root || *self->gallery_root != root) {
      try {
        self->builder->set_gallery_root (root);
      } catch (const std::exception &e) {
        VS_ELEMENT_ERROR (self, e, ("%s", e.what ()), (NULL));
        return FALSE;
      }
      delete self->gallery_root;
      self->gallery_root = new std::string (root);
    }
    const auto &inventory = self->builder->inventory ();
    if (inventory && !rejected.empty ()) {
      inventory->rejected (identity, rejected, skipped);
      return TRUE;
    }
    if (inventory && !inventory->met (identity, skipped) && skipped
        && self->not_held++ == 0)
      GST_ELEMENT_WARNING (self, STREAM, FAILED,
          ("gallerysrc skipped %s as unchanged, but %s does not hold it, so "
           "it is missing from the index.",
              vs::valid_utf8 (identity.path).c_str (),
              self->builder->location ().c_str ()),
          ("Give gallerysrc index= the same file as faissindexer location=, "
           "with mode=update."));
    return TRUE;
  }
  if (vs_gallery_walked_event_parse (event, &gaps)) {
    if (self->run_mode != GST_FAISS_INDEXER_MODE_APPEND && self->builder)
      if (const auto &inventory = self->builder->inventory ())
        inventory->walk_complete (gaps);
    return TRUE;
  }
  return FALSE;
}

static gboolean
gst_faiss_indexer_query (GstBaseSink *sink, GstQuery *query)
{
  GstFaissIndexer *self = GST_FAISS_INDEXER (sink);

  if (vs_gallery_query_answer (query,
          self->run_mode == GST_FAISS_INDEXER_MODE_UPDATE))
    return TRUE;
  return GST_BASE_SINK_CLASS (parent_class)->query (sink, query);
}

static gboolean
gst_faiss_indexer_event (GstBaseSink *sink, GstEvent *event)
{
  GstFaissIndexer *self = GST_FAISS_INDEXER (sink);

  if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_DOWNSTREAM_OOB
      && (gst_event_has_name (event, VS_GALLERY_FILE_EVENT)
          || gst_event_has_name (event, VS_GALLERY_WALKED_EVENT))) {
    const gboolean ok = gst_faiss_indexer_gallery_event (self, event);
    gst_event_unref (event);
    return ok;
  }

  if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY
      && gst_event_has_name (event, VS_EMBEDDER_SETTINGS_EVENT)) {
    GST_DEBUG_OBJECT (self, "embedder settings %" GST_PTR_FORMAT,
        gst_event_get_structure (event));
    g_clear_pointer (&self->embedder_settings, gst_structure_free);
    self->embedder_settings =
        gst_structure_copy (gst_event_get_structure (event));
    if (gst_structure_has_field (self->embedder_settings, "roi-types"))
      self->embeds_regions = TRUE;
  }
  /* Before chaining up: EOS reaches the application only once the files are
   * in place. */
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS && self->builder
      && !gst_faiss_indexer_finish (self)) {
    gst_event_unref (event);
    return FALSE;
  }
  return GST_BASE_SINK_CLASS (parent_class)->event (sink, event);
}

/* ------------------------------------------------------------------------ */
/* buffer path */

/* Hands the pending embedder settings to the builder if they describe this
 * embedding: an element between embedder and faissindexer could have
 * replaced the embeddings. */
static void
record_embedder_settings (GstFaissIndexer *self, const gchar *embedding_model,
    const gchar *embedding_preprocessing)
{
  const GstStructure *s = self->embedder_settings;
  const gchar *model_id = gst_structure_get_string (s, "model-id");
  const gchar *preprocessing_id =
      gst_structure_get_string (s, "preprocessing-id");

  if (g_strcmp0 (model_id, embedding_model) == 0
      && g_strcmp0 (preprocessing_id, embedding_preprocessing) == 0) {
    gchar *text = gst_structure_to_string (s);
    self->builder->set_embedder_config (text);
    g_free (text);
  } else {
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("The embedder settings announced upstream (model %s, preprocessing "
         "%s) do not describe the embeddings that arrive (model %s, "
         "preprocessing %s), so the catalog does not record them and "
         "embedder index= cannot adopt them from this index.",
            GST_STR_NULL (model_id), GST_STR_NULL (preprocessing_id),
            GST_STR_NULL (embedding_model),
            GST_STR_NULL (embedding_preprocessing)),
        (NULL));
  }
  g_clear_pointer (&self->embedder_settings, gst_structure_free);
}

/* Adds one embedding and its item; false after posting an error. */
static bool
add_embedding (GstFaissIndexer *self, const gfloat *values, guint dims,
    const gchar *model_id, const gchar *preprocessing_id,
    const vs::CatalogItem &item)
{
  vs::IndexBuilder &builder = *self->builder;

  if (self->embedder_settings)
    record_embedder_settings (self, model_id, preprocessing_id);
  try {
    builder.add (values, static_cast<int> (dims), model_id ? model_id : "",
        preprocessing_id ? preprocessing_id : "", item);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Cannot index this embedding into %s: %s",
            builder.location ().c_str (), e.what ()),
        (NULL));
    return false;
  }
  const int64_t added = builder.added ();
  if (added == 1)
    post_progress (self, GST_PROGRESS_TYPE_START,
        "indexing embeddings of " + std::to_string (dims) + " dims from "
            + (model_id ? model_id : "an unnamed model"));
  else if (self->progress_every > 0 && added % self->progress_every == 0)
    post_progress (self, GST_PROGRESS_TYPE_CONTINUE,
        "collected " + std::to_string (added) + " embeddings");
  return true;
}

/* A frame whose regions were embedded (embedder roi-types=...) gives one
 * item per region: the frame's label and name (the region's type when the
 * frame has no name), its source with the box as a media fragment
 * ("a.jpg#xywh=175,64,97,97", "clip.mp4#t=12.000&xywh=..."), and the crop as
 * its thumbnail. *indexed says whether the frame had any. */
static GstFlowReturn
render_regions (GstFaissIndexer *self, GstBuffer *buffer, gboolean *indexed)
{
  GstVisualSearchSampleMeta *sample =
      gst_buffer_get_visualsearch_sample_meta (buffer);

  const bool ok = for_each_region_embedding (buffer,
      [self, buffer, sample, indexed] (const RegionEmbedding &r) {
        const size_t bad = vs::first_non_finite (r.values, r.dims);
        if (bad < r.dims) {
          GST_ELEMENT_ERROR (self, STREAM, FAILED,
              ("The embedding of a region (%s) of the frame at "
               "%" GST_TIME_FORMAT
               " holds NaN or infinite values (value %u of %u is %f): refusing "
               "to index it into %s. The model %s is broken for this input.",
                  g_quark_to_string (r.roi->roi_type),
                  GST_TIME_ARGS (GST_BUFFER_PTS (buffer)), (guint) bad, r.dims,
                  r.values[bad], self->builder->location ().c_str (),
                  GST_STR_NULL (r.model_id)),
              (NULL));
          return false;
        }
        const GstVideoRegionOfInterestMeta *roi = r.roi;
        vs::CatalogItem item;
        std::string source = sample && sample->source ? sample->source : "";
        if (sample) {
          item.label = sample->label;
          item.label_name = sample->label_name ? sample->label_name : "";
        }
        if (item.label_name.empty ())
          item.label_name = g_quark_to_string (roi->roi_type);
        gchar *fragment = g_strdup_printf ("%sxywh=%u,%u,%u,%u",
            source.find ('#') == std::string::npos ? "#" : "&", roi->x, roi->y,
            roi->w, roi->h);
        item.source = source + fragment;
        g_free (fragment);

        if (self->have_video) {
          const cv::Rect frame_rect (0, 0, GST_VIDEO_INFO_WIDTH (&self->info),
              GST_VIDEO_INFO_HEIGHT (&self->info));
          const cv::Rect crop = frame_rect
              & cv::Rect ((int) MIN (roi->x, (guint) G_MAXINT / 2),
                  (int) MIN (roi->y, (guint) G_MAXINT / 2),
                  (int) MIN (roi->w, (guint) G_MAXINT / 2),
                  (int) MIN (roi->h, (guint) G_MAXINT / 2));
          try {
            if (!crop.empty ())
              item.thumbnail = make_thumbnail (self, buffer, &crop);
          } catch (const std::exception &e) {
            VS_ELEMENT_ERROR (self, e,
                ("Cannot make the thumbnail of a region for %s: %s",
                    self->builder->location ().c_str (), e.what ()),
                ("Set thumbnail-size=0 to index without thumbnails."));
            return false;
          }
        }
        if (!add_embedding (self, r.values, r.dims, r.model_id,
                r.preprocessing_id, item))
          return false;
        *indexed = TRUE;
        self->region_items++;
        return true;
      });
  return ok ? GST_FLOW_OK : GST_FLOW_ERROR;
}

static GstFlowReturn
gst_faiss_indexer_render (GstBaseSink *sink, GstBuffer *buffer)
{
  GstFaissIndexer *self = GST_FAISS_INDEXER (sink);
  GstVisualSearchEmbeddingMeta *embedding =
      gst_buffer_get_visualsearch_embedding_meta (buffer);

  if (embedding == NULL) {
    gboolean indexed = FALSE;
    const GstFlowReturn flow = render_regions (self, buffer, &indexed);
    if (!indexed) {
      GST_LOG_OBJECT (self, "no embedding on %" GST_PTR_FORMAT, buffer);
      self->skipped++;
      GstVisualSearchSampleMeta *sample =
          gst_buffer_get_visualsearch_sample_meta (buffer);
      if (sample && sample->source) {
        if (!self->unembedded_sources)
          self->unembedded_sources = new std::vector<std::string> ();
        self->unembedded_sources->push_back (sample->source);
      }
    }
    return flow;
  }

  vs::CatalogItem item;
  GstVisualSearchSampleMeta *sample =
      gst_buffer_get_visualsearch_sample_meta (buffer);
  if (sample) {
    item.label = sample->label;
    item.label_name = sample->label_name ? sample->label_name : "";
    item.source = sample->source ? sample->source : "";
  }

  vs::IndexBuilder &builder = *self->builder;
  /* One NaN makes every distance to the vector NaN: the index would hold
   * garbage that no search can find or rank. */
  const size_t bad = vs::first_non_finite (embedding->values, embedding->dims);
  if (bad < embedding->dims) {
    gchar *frame = sample ? g_strdup_printf ("sample %" G_GINT64_FORMAT " (%s)",
                       sample->id, item.source.c_str ())
        : GST_BUFFER_PTS_IS_VALID (buffer)
        ? g_strdup_printf ("the frame at %" GST_TIME_FORMAT,
            GST_TIME_ARGS (GST_BUFFER_PTS (buffer)))
        : g_strdup_printf ("frame %" G_GINT64_FORMAT " of the stream",
            builder.added () + (gint64) self->skipped + 1);
    GST_ELEMENT_ERROR (self, STREAM, FAILED,
        ("The embedding of %s holds NaN or infinite values (value %u of %u "
         "is %f): refusing to index it into %s. The model %s is broken for "
         "this input.",
            frame, (guint) bad, embedding->dims, embedding->values[bad],
            builder.location ().c_str (), GST_STR_NULL (embedding->model_id)),
        (NULL));
    g_free (frame);
    return GST_FLOW_ERROR;
  }

  try {
    item.thumbnail = make_thumbnail (self, buffer);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Cannot make the thumbnail of this frame for %s: %s",
            builder.location ().c_str (), e.what ()),
        ("Set thumbnail-size=0 to index without thumbnails."));
    return GST_FLOW_ERROR;
  }

  if (!add_embedding (self, embedding->values, embedding->dims,
          embedding->model_id, embedding->preprocessing_id, item))
    return GST_FLOW_ERROR;
  return GST_FLOW_OK;
}
