// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-galleryindexer
 * @title: galleryindexer
 *
 * Indexes a folder of pictures and videos and keeps the index up to date:
 * `gallerysrc ! embedder ! faissindexer` in one element. Its properties are
 * the children's, under the names below, with their types, ranges and
 * defaults: #GstGalleryIndexer:location, recursive, label-from,
 * video-interval, max-pixels, strict and shard go to gallerysrc; model, weights,
 * seed, precision, calibration-location, calibration-images, batch-size,
 * input-size, resize, mean, std, roi-types, roi-margin and roi-min-size to
 * embedder; index,
 * index-type, metric, thumbnail-size and checkpoint-interval to faissindexer
 * (location, ...).
 *
 * It is a bin of proxied properties: its children talk only through pads,
 * events and a query (see gallerysrc and faissindexer). #GstGalleryIndexer:index
 * is both faissindexer's location and gallerysrc's index, and
 * #GstGalleryIndexer:mode is faissindexer's mode, so it runs the same as
 * `gst-launch-1.0 gallerysrc location=DIR index=FILE ! embedder !
 * faissindexer location=FILE mode=update`. On top of that line, when every
 * file is unchanged it links gallerysrc straight to faissindexer and leaves
 * the embedder in READY, without loading its model.
 *
 * The index is an IDMap2 around #GstGalleryIndexer:index-type, and the
 * catalog remembers the file of every item (relative path, size,
 * modification time, and the time of a video frame). With
 * #GstGalleryIndexer:mode=update (the default) an existing index is updated:
 * files whose size and modification time are unchanged are skipped before
 * they are decoded and keep their items and ids; new files are added; changed
 * files are embedded again; and once the walk has reached the end of the
 * folder, the items of changed and vanished files are removed from the index
 * and the catalog. Embeddings must match the index (model, preprocessing,
 * dims, metric), as for faissindexer's append; with precision=int8 the
 * update quantizes with the activation ranges the index records, not with
 * ranges calibrated again. mode=rebuild indexes the folder anew. An index that faissindexer or cifarindexer built is not
 * updated (it knows no files): rebuild it.
 *
 * Every #GstGalleryIndexer:checkpoint-interval seconds the index and catalog
 * are written atomically as they stand, so a run that is killed loses at
 * most that much work, and running again continues where it stopped: the
 * files already indexed are unchanged. A video cut short is embedded again.
 * A run stopped by EOS before the end of the walk (gst-launch-1.0 -e and
 * Ctrl-C) writes what it has and removes nothing.
 *
 * At the end, faissindexer's COMPLETE progress message counts the files
 * added, updated, removed, unchanged and skipped as bad.
 *
 * With #GstGalleryIndexer:detector, a gst-launch-1.0 bin description such as
 * `facedetect min-size-width=40 min-size-height=40` (gstreamer1.0-opencv) or
 * `objectdetect model=nanodet.pt`, the bin indexes the regions the detector
 * marks (GstVideoRegionOfInterestMeta) instead of whole frames: `gallerysrc !
 * videoconvert ! DETECTOR ! videoconvert ! embedder roi-types=... !
 * faissindexer`. #GstGalleryIndexer:roi-types, roi-margin and roi-min-size
 * go to the embedder; roi-types left empty means every region. Each region
 * is one item, as with faissindexer: its source is the file with the box as
 * a media fragment (`a.jpg#xywh=175,64,97,97`, `clip.mp4#t=12.000&xywh=...`)
 * and its thumbnail the crop; files without a region give no item (the
 * catalog records them as read). An update of an index of regions works as
 * one of frames: the regions of unchanged files keep their ids and vectors
 * (those files, and unchanged files without a region, are skipped before
 * decoding), a changed file's regions are replaced and a vanished file's
 * removed. Index with another detector or roi-types anew (mode=rebuild):
 * an update reads only new and changed files.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -e galleryindexer location=~/Pictures index=pictures.faiss
 * gst-launch-1.0 -e galleryindexer location=101_ObjectCategories \
 *     index=caltech.faiss mode=rebuild input-size=64 resize=72
 * gst-launch-1.0 -e galleryindexer location=~/Pictures index=faces.faiss \
 *     detector="facedetect min-size-width=40 min-size-height=40" \
 *     roi-types=face model=faceres.pt mean=0,0,0 std=0.0039,0.0039,0.0039
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstgalleryindexer.h"

#include "engine/dataset/image_folder.h"
#include "engine/index/file_inventory.h"
#include "elements.h"
#include "gstembedder.h"
#include "gstfaissindexer.h"
#include "gstgallerysrc.h"
#include "indexing_bin.h"

GST_DEBUG_CATEGORY_STATIC (gst_gallery_indexer_debug);
#define GST_CAT_DEFAULT gst_gallery_indexer_debug

#define DEFAULT_MODE GST_FAISS_INDEXER_MODE_UPDATE
#define DEFAULT_CHECKPOINT_INTERVAL 60

typedef GstFaissIndexerMode Mode;

enum
{
  PROP_0,
  PROP_LOCATION,
  PROP_RECURSIVE,
  PROP_LABEL_FROM,
  PROP_VIDEO_INTERVAL,
  PROP_MAX_PIXELS,
  PROP_STRICT,
  PROP_SHARD,
  PROP_MODEL,
  PROP_WEIGHTS,
  PROP_SEED,
  PROP_PRECISION,
  PROP_CALIBRATION_LOCATION,
  PROP_CALIBRATION_IMAGES,
  PROP_BATCH_SIZE,
  PROP_INPUT_SIZE,
  PROP_RESIZE,
  PROP_INDEX,
  PROP_INDEX_TYPE,
  PROP_METRIC,
  PROP_THUMBNAIL_SIZE,
  PROP_MEAN,
  PROP_STD,
  PROP_ROI_TYPES,
  PROP_ROI_MARGIN,
  PROP_ROI_MIN_SIZE,
  N_PROXIED,
  PROP_CHECKPOINT_INTERVAL = N_PROXIED,
  PROP_MODE,
  PROP_DETECTOR,
};

static const gchar *const child_factories[N_CHILDREN] = {"gallerysrc",
    "embedder", "faissindexer"};

static const ProxiedProperty proxied[N_PROXIED] = {
    {},
    {"location", "Location", CHILD_SOURCE, "location",
        "The folder of pictures and videos to index"},
    {"recursive", "Recursive", CHILD_SOURCE, "recursive", NULL},
    {"label-from", "Label from", CHILD_SOURCE, "label-from", NULL},
    {"video-interval", "Video interval", CHILD_SOURCE, "video-interval", NULL},
    {"max-pixels", "Maximum pixels", CHILD_SOURCE, "max-pixels", NULL},
    {"strict", "Strict", CHILD_SOURCE, "strict", NULL},
    {"shard", "Shard", CHILD_SOURCE, "shard", NULL},
    INDEXING_BIN_EMBEDDER_PROPERTIES,
    {"index", "Index", CHILD_INDEXER, "location",
        "The FAISS index file to write or update; its SQLite catalog goes "
        "beside it (index + \".db\")"},
    {"index-type", "Index type", CHILD_INDEXER, "index-type",
        "FAISS index_factory string, wrapped in an IDMap2 so that items keep "
        "their ids across updates: Flat (exact), IVF<n>,Flat, IVF<n>,PQ<m>, "
        "HNSW<m>, ...; ignored when updating (the index keeps its type)"},
    {"metric", "Metric", CHILD_INDEXER, "metric", NULL},
    {"thumbnail-size", "Thumbnail size", CHILD_INDEXER, "thumbnail-size", NULL},
    {"mean", "Mean", CHILD_EMBEDDER, "mean", NULL},
    {"std", "Standard deviation", CHILD_EMBEDDER, "std", NULL},
    {"roi-types", "ROI types", CHILD_EMBEDDER, "roi-types",
        "With a detector: the region types to embed, a comma-separated list "
        "(e.g. \"face\"); empty with a detector means every region (\"*\"); "
        "empty without one, whole frames"},
    {"roi-margin", "ROI margin", CHILD_EMBEDDER, "roi-margin", NULL},
    {"roi-min-size", "ROI minimum size", CHILD_EMBEDDER, "roi-min-size", NULL},
};

struct _GstGalleryIndexer
{
  GstBin parent;

  /* owned by the bin; NULL only when a child's factory is missing */
  GstElement *children[N_CHILDREN];
  Mode mode; /* under the object lock */
  gboolean adopted_index; /* set the embedder's index for this run */
  /* This run links gallerysrc straight to faissindexer, the embedder kept
   * in READY: no file needs embedding. State changes only. */
  gboolean bypassed;
  gchar *detector; /* under the object lock */
  /* The detector's chain between source and embedder for this run
   * (videoconvert ! detector bin ! videoconvert), NULL without one. State
   * changes only. */
  GstElement *detect_chain[3];
  /* roi-types was empty and is "*" for this run of the detector. */
  gboolean defaulted_roi_types;
};

#define gst_gallery_indexer_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstGalleryIndexer, gst_gallery_indexer, GST_TYPE_BIN,
    GST_DEBUG_CATEGORY_INIT (gst_gallery_indexer_debug, "galleryindexer", 0,
        "gallerysrc ! embedder ! faissindexer, incremental"));
GST_ELEMENT_REGISTER_DEFINE (galleryindexer, "galleryindexer", GST_RANK_NONE,
    GST_TYPE_GALLERY_INDEXER);

static void gst_gallery_indexer_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_gallery_indexer_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_gallery_indexer_finalize (GObject *object);
static GstStateChangeReturn
gst_gallery_indexer_change_state (GstElement *element,
    GstStateChange transition);

static void
gst_gallery_indexer_class_init (GstGalleryIndexerClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GType child_types[N_CHILDREN] = {GST_TYPE_GALLERY_SRC,
      GST_TYPE_EMBEDDER, GST_TYPE_FAISS_INDEXER};
  const GParamFlags flags = (GParamFlags) (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  gobject_class->set_property = gst_gallery_indexer_set_property;
  gobject_class->get_property = gst_gallery_indexer_get_property;
  gobject_class->finalize = gst_gallery_indexer_finalize;

  indexing_bin_install_properties (gobject_class, proxied, N_PROXIED,
      child_types);
  g_object_class_install_property (gobject_class, PROP_CHECKPOINT_INTERVAL,
      g_param_spec_uint ("checkpoint-interval", "Checkpoint interval",
          "Write the index and catalog atomically every this many seconds "
          "while files are embedded, so that a killed run loses at most this "
          "much work and a new run continues from there; 0: only at the end",
          0, 86400, DEFAULT_CHECKPOINT_INTERVAL, flags));
  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_enum ("mode", "Mode",
          "update: keep the items of unchanged files (skipped before "
          "decoding), add new and changed files, remove vanished ones; "
          "rebuild: index the folder anew; append is refused (it would add "
          "every file of the folder again)",
          GST_TYPE_FAISS_INDEXER_MODE, DEFAULT_MODE, flags));
  g_object_class_install_property (gobject_class, PROP_DETECTOR,
      g_param_spec_string ("detector", "Detector",
          "Index the regions a detector finds instead of whole frames: a "
          "gst-launch-1.0 bin description put between the decoded frames and "
          "the embedder, with videoconverts around it (e.g. \"facedetect "
          "min-size-width=40 min-size-height=40\" or \"objectdetect "
          "model=nanodet.pt\"); it must attach GstVideoRegionOfInterestMeta. "
          "Updates keep the regions of unchanged files; read when the element "
          "starts (NULL to READY). "
          "Empty: whole frames",
          NULL, (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_set_static_metadata (element_class, "Gallery indexer",
      "Sink/Analysis",
      "Embeds every picture and video frame of a folder into a FAISS index "
      "and catalog, and keeps them up to date incrementally (gallerysrc ! "
      "embedder ! faissindexer)",
      "visualsearch developers");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_gallery_indexer_change_state);
}

static void
gst_gallery_indexer_init (GstGalleryIndexer *self)
{
  self->mode = DEFAULT_MODE;
  self->bypassed = FALSE;
  indexing_bin_add_children (GST_BIN (self), child_factories, self->children);
  GstElement *source = self->children[CHILD_SOURCE];
  GstElement *indexer = self->children[CHILD_INDEXER];
  if (!source || !self->children[CHILD_EMBEDDER] || !indexer)
    return;
  g_object_set (indexer, "checkpoint-interval", DEFAULT_CHECKPOINT_INTERVAL,
      NULL);
}

static void
gst_gallery_indexer_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstGalleryIndexer *self = GST_GALLERY_INDEXER (object);

  if (prop_id == PROP_MODE) {
    GST_OBJECT_LOCK (self);
    self->mode = (Mode) g_value_get_enum (value);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  if (prop_id == PROP_DETECTOR) {
    /* Taken at the next start (NULL to READY). */
    GST_OBJECT_LOCK (self);
    g_free (self->detector);
    self->detector = g_value_dup_string (value);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  if (prop_id == PROP_CHECKPOINT_INTERVAL) {
    if (GstElement *indexer = self->children[CHILD_INDEXER])
      g_object_set_property (G_OBJECT (indexer), "checkpoint-interval", value);
  } else if (prop_id == PROP_0 || prop_id >= N_PROXIED) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  } else {
    indexing_bin_set_property (self->children, proxied[prop_id], value);
  }
}

static void
gst_gallery_indexer_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstGalleryIndexer *self = GST_GALLERY_INDEXER (object);

  if (prop_id == PROP_MODE) {
    GST_OBJECT_LOCK (self);
    g_value_set_enum (value, self->mode);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  if (prop_id == PROP_DETECTOR) {
    GST_OBJECT_LOCK (self);
    g_value_set_string (value, self->detector);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  if (prop_id == PROP_ROI_TYPES && self->defaulted_roi_types) {
    g_value_set_string (value, "");
    return;
  }
  if (prop_id == PROP_CHECKPOINT_INTERVAL) {
    if (GstElement *indexer = self->children[CHILD_INDEXER])
      g_object_get_property (G_OBJECT (indexer), "checkpoint-interval", value);
    else
      g_param_value_set_default (pspec, value);
  } else if (prop_id == PROP_0 || prop_id >= N_PROXIED) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  } else {
    indexing_bin_get_property (self->children, proxied[prop_id], value, pspec);
  }
}

static void
gst_gallery_indexer_finalize (GObject *object)
{
  GstGalleryIndexer *self = GST_GALLERY_INDEXER (object);

  g_free (self->detector);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* Takes the detector's chain out from between source and embedder, if
 * there is one, and links them again; restores an empty roi-types. Only
 * while the children are in NULL or READY. */
static void
remove_detector (GstGalleryIndexer *self)
{
  GstElement *source = self->children[CHILD_SOURCE];
  GstElement *embedder = self->children[CHILD_EMBEDDER];

  if (self->defaulted_roi_types)
    g_object_set (embedder, "roi-types", "", NULL);
  self->defaulted_roi_types = FALSE;
  if (!self->detect_chain[0])
    return;
  gst_element_unlink_many (source, self->detect_chain[0], self->detect_chain[1],
      self->detect_chain[2], embedder, NULL);
  for (GstElement *&e : self->detect_chain) {
    gst_element_set_state (e, GST_STATE_NULL);
    gst_bin_remove (GST_BIN (self), e);
    e = NULL;
  }
  gst_element_link (source, embedder);
}

/* Puts videoconvert ! DETECTOR ! videoconvert between source and embedder
 * when #GstGalleryIndexer:detector is set. FALSE after an element error when
 * the description does not parse or link. In NULL to READY. */
static gboolean
insert_detector (GstGalleryIndexer *self)
{
  GstElement *source = self->children[CHILD_SOURCE];
  GstElement *embedder = self->children[CHILD_EMBEDDER];

  remove_detector (self);
  GST_OBJECT_LOCK (self);
  gchar *description = g_strdup (self->detector);
  GST_OBJECT_UNLOCK (self);
  if (!description || !*description) {
    g_free (description);
    return TRUE;
  }
  GError *error = NULL;
  GstElement *detector = gst_parse_bin_from_description_full (description, TRUE,
      NULL, GST_PARSE_FLAG_FATAL_ERRORS, &error);
  if (!detector) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Cannot make the detector \"%s\": %s", description,
            error ? error->message : "unknown error"),
        ("detector= is a gst-launch-1.0 bin description with one video sink "
         "and one video source pad, such as \"facedetect min-size-width=40\" "
         "(gstreamer1.0-opencv) or \"objectdetect model=FILE.pt\"; check it "
         "with gst-launch-1.0 videotestsrc num-buffers=1 ! videoconvert ! "
         "DETECTOR ! fakesink."));
    g_clear_error (&error);
    g_free (description);
    return FALSE;
  }
  GstElement *before = gst_element_factory_make ("videoconvert", "detect-in");
  GstElement *after = gst_element_factory_make ("videoconvert", "detect-out");
  if (!before || !after) {
    GST_ELEMENT_ERROR (self, CORE, MISSING_PLUGIN,
        ("The videoconvert element is missing, so galleryindexer cannot run "
         "a detector."),
        ("Install gstreamer1.0-plugins-base."));
    gst_clear_object (&before);
    gst_clear_object (&after);
    gst_object_unref (gst_object_ref_sink (detector));
    g_free (description);
    return FALSE;
  }
  gst_element_unlink (source, embedder);
  self->detect_chain[0] = before;
  self->detect_chain[1] = detector;
  self->detect_chain[2] = after;
  gst_bin_add_many (GST_BIN (self), before, detector, after, NULL);
  if (!gst_element_link_many (source, before, detector, after, embedder,
          NULL)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("The detector \"%s\" cannot be linked between the decoded frames and "
         "the embedder.",
            description),
        ("It needs exactly one unlinked video sink pad and one video source "
         "pad."));
    g_free (description);
    remove_detector (self);
    return FALSE;
  }
  gchar *types = NULL;
  g_object_get (embedder, "roi-types", &types, NULL);
  if (!types || !*types) {
    g_object_set (embedder, "roi-types", "*", NULL);
    self->defaulted_roi_types = TRUE;
  }
  GST_INFO_OBJECT (self, "regions from the detector %s, roi-types %s",
      description, types && *types ? types : "*");
  g_free (types);
  g_free (description);
  return TRUE;
}

/* Whether every file of the folder is held unchanged in the index gallerysrc
 * skips from, or recorded there as unreadable with the same identity, so
 * that the embedder need not even load its model (most of an unchanged
 * update's time). The walk is gallerysrc's own; anything it would
 * report (an unreadable folder, a bad label-from, an unreadable catalog)
 * says no, and gallerysrc reports it. */
static bool
nothing_to_embed (GstGalleryIndexer *self)
{
  gchar *location = NULL, *label_from = NULL, *index = NULL;
  gboolean recursive = TRUE;
  g_object_get (self->children[CHILD_SOURCE], "location", &location,
      "recursive", &recursive, "label-from", &label_from, "index", &index,
      NULL);
  GST_OBJECT_LOCK (self);
  bool unchanged = self->mode == GST_FAISS_INDEXER_MODE_UPDATE;
  GST_OBJECT_UNLOCK (self);
  unchanged =
      unchanged && location != NULL && label_from != NULL && index != NULL;
  try {
    const auto inventory =
        unchanged ? vs::FileInventory::of_index (index) : nullptr;
    unchanged = unchanged && inventory;
    vs::ImageFolderOptions options;
    options.recursive = recursive;
    if (unchanged)
      vs::parse_label_from (label_from, &options);
    const vs::ImageFolder folder = unchanged
        ? vs::ImageFolder::scan (location, options)
        : vs::ImageFolder ();
    for (const vs::FolderFile &file : folder.files ()) {
      /* A file recorded unreadable, unchanged, is passed over unprobed. */
      const std::optional<vs::FileIdentity> identity =
          vs::FileInventory::identify (file.relative, file.path);
      if (!identity
          || !(inventory->holds (*identity)
              || inventory->rejected_unchanged (*identity))) {
        unchanged = false;
        break;
      }
    }
  } catch (const std::exception &e) {
    unchanged = false;
  }
  g_free (location);
  g_free (label_from);
  g_free (index);
  return unchanged;
}

/* Links source ! [detector's chain !] embedder ! indexer, or source !
 * indexer with the embedder (and the detector's chain) held in READY. Only
 * while the children are in READY. */
static void
set_bypass (GstGalleryIndexer *self, gboolean bypass)
{
  GstElement *source = self->children[CHILD_SOURCE];
  GstElement *embedder = self->children[CHILD_EMBEDDER];
  GstElement *indexer = self->children[CHILD_INDEXER];
  GstElement *first = self->detect_chain[0] ? self->detect_chain[0] : embedder;

  if (bypass == self->bypassed)
    return;
  if (bypass) {
    gst_element_unlink (source, first);
    gst_element_unlink (embedder, indexer);
    gst_element_link (source, indexer);
  } else {
    gst_element_unlink (source, indexer);
    gst_element_link (source, first);
    gst_element_link (embedder, indexer);
  }
  gst_element_set_locked_state (embedder, bypass);
  for (GstElement *e : self->detect_chain)
    if (e)
      gst_element_set_locked_state (e, bypass);
  self->bypassed = bypass;
}

/* An update of an int8 gallery quantizes the new files with the ranges the
 * index records, as its other items were, rather than calibrating again on
 * what the calibration folder holds now (which would mix two quantizations
 * in one index, and record only the newer ranges). The embedder adopts them
 * through its index property for this run only. */
static void
adopt_recorded_int8_ranges (GstGalleryIndexer *self, gboolean adopt)
{
  GstElement *embedder = self->children[CHILD_EMBEDDER];

  if (!adopt) {
    if (self->adopted_index)
      g_object_set (embedder, "index", NULL, NULL);
    self->adopted_index = FALSE;
    return;
  }
  gint precision = 0;
  gchar *index = NULL, *location = NULL;
  g_object_get (embedder, "precision", &precision, "index", &index, NULL);
  g_object_get (self->children[CHILD_INDEXER], "location", &location, NULL);
  GEnumClass *precisions =
      G_ENUM_CLASS (g_type_class_ref (GST_TYPE_EMBEDDER_PRECISION));
  GEnumValue *int8 = g_enum_get_value_by_nick (precisions, "int8");
  GST_OBJECT_LOCK (self);
  const gboolean update = self->mode == GST_FAISS_INDEXER_MODE_UPDATE;
  GST_OBJECT_UNLOCK (self);
  if (update && int8 && precision == int8->value && !index && location
      && g_file_test (location, G_FILE_TEST_IS_REGULAR)) {
    GST_INFO_OBJECT (self, "int8 activation ranges from the index %s",
        location);
    g_object_set (embedder, "index", location, NULL);
    self->adopted_index = TRUE;
  }
  g_type_class_unref (precisions);
  g_free (index);
  g_free (location);
}

/* The bin's mode as its children's properties: faissindexer's mode, and
 * gallerysrc's index, the file faissindexer writes, so that the walk
 * announces its files and, in an update, skips those it holds unchanged. */
static void
set_children_mode (GstGalleryIndexer *self, Mode mode)
{
  g_object_set (self->children[CHILD_INDEXER], "mode", mode, NULL);
  gchar *index = NULL;
  g_object_get (self->children[CHILD_INDEXER], "location", &index, NULL);
  g_object_set (self->children[CHILD_SOURCE], "index", index, NULL);
  g_free (index);
}

static GstStateChangeReturn
gst_gallery_indexer_change_state (GstElement *element,
    GstStateChange transition)
{
  GstGalleryIndexer *self = GST_GALLERY_INDEXER (element);

  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    if (!indexing_bin_check_children (element, self->children, child_factories))
      return GST_STATE_CHANGE_FAILURE;
    /* faissindexer, a GstBaseSink, starts (loads the index) in NULL to
     * READY. */
    GST_OBJECT_LOCK (self);
    const Mode mode = self->mode;
    GST_OBJECT_UNLOCK (self);
    if (mode == GST_FAISS_INDEXER_MODE_APPEND) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("galleryindexer does not append: mode=append would add every "
           "file of the folder again."),
          ("Use mode=update, which adds only new and changed files and "
           "keeps the others, or mode=rebuild."));
      return GST_STATE_CHANGE_FAILURE;
    }
    GST_INFO_OBJECT (self, "mode %s",
        mode == GST_FAISS_INDEXER_MODE_UPDATE ? "update" : "rebuild");
    if (!insert_detector (self))
      return GST_STATE_CHANGE_FAILURE;
    set_children_mode (self, mode);
  }
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    /* index may have been set in READY. */
    GST_OBJECT_LOCK (self);
    const Mode mode = self->mode;
    GST_OBJECT_UNLOCK (self);
    set_children_mode (self, mode);
    adopt_recorded_int8_ranges (self, TRUE);
  }
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED
      && nothing_to_embed (self)) {
    GST_INFO_OBJECT (self,
        "every file is unchanged: the embedder is not "
        "started");
    set_bypass (self, TRUE);
  }
  const GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY
      || (transition == GST_STATE_CHANGE_READY_TO_PAUSED
          && ret == GST_STATE_CHANGE_FAILURE)) {
    set_bypass (self, FALSE);
    adopt_recorded_int8_ranges (self, FALSE);
  }
  if (transition == GST_STATE_CHANGE_READY_TO_NULL
      || (transition == GST_STATE_CHANGE_NULL_TO_READY
          && ret == GST_STATE_CHANGE_FAILURE))
    remove_detector (self);
  return ret;
}
