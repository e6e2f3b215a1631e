// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-gallerysrc
 * @title: gallerysrc
 *
 * Walks a folder and pushes every still image in it as one RGB frame at its
 * native size, and every video as one frame every
 * #GstGallerySrc:video-interval seconds. Each frame carries a #GstVisualSearchSampleMeta:
 * id (frames counted from 0 in walk order), label, label name and source, the
 * file's path relative to #GstGallerySrc:location (`cats/tabby.jpg`), plus
 * `#t=SECONDS` for a video frame (`clips/visit.mp4#t=12.000`).
 *
 * The walk is depth first, in sorted name order, the same in every run; it
 * follows symbolic links but enters each folder once, and passes over names
 * starting with '.'. Stills are recognised by content, not by extension:
 * JPEG, PNG, WebP, TIFF, BMP, PNM and JPEG 2000, turned upright by their EXIF
 * orientation. Any other file is handed to GStreamer's decodebin as a video.
 *
 * Labels (#GstGallerySrc:label-from): `folder` numbers the first-level
 * folders in sorted order and labels each file by the one it is under, as
 * torchvision's ImageFolder does; `csv:FILE` reads a CSV whose header names a
 * `path` column (relative to location) and a `label` column; `none` gives
 * every frame label -1. Files outside any labelled folder or CSV row get -1.
 *
 * Frames are RGB at the picture's own size, so the caps change whenever the
 * size does. As with cifarsrc, frame n gets PTS n milliseconds and the source
 * pushes as fast as downstream takes frames.
 *
 * A file that cannot be read as a picture or a video (unreadable, empty,
 * truncated, corrupt, larger than #GstGallerySrc:max-pixels, a FIFO, a
 * symbolic link loop) is skipped; a warning at the end names every one. A
 * folder that cannot be opened or listed is no bad file: another warning
 * names it, and an update keeps what its index holds from it. With
 * #GstGallerySrc:strict the first one is an error instead. Progress messages
 * (#GST_MESSAGE_PROGRESS, code `gallery`) carry `files-done` and
 * `files-total`; they are posted while the pipeline is PLAYING, since
 * gst-launch-1.0 holds a prerolled pipeline in PAUSED while a progress runs.
 *
 * For retrieval evaluation (pipelines/evaluate-folder.sh), #GstGallerySrc:split
 * keeps one side of a split stratified by label: `queries` keeps about
 * #GstGallerySrc:query-fraction of each label's files (at least one, never
 * all), chosen by #GstGallerySrc:split-seed; `gallery` keeps the others.
 * Labels keep their numbers on both sides.
 *
 * #GstGallerySrc:shard `K/N` walks one of N shards of the folder, for
 * indexing it in parts on several machines (tools/dask-index.py): the files
 * of the sorted walk (after the split) are cut into N runs of consecutive
 * files, as equal in count as they can be, and only run K (from 0) gives
 * frames, so a video's frames all stay in one shard. Sources, labels and
 * label names are those of the whole walk; ids count this shard's frames
 * from 0, so that shard 0's frames come first, then shard 1's, and so on, in
 * the order of the whole walk. Progress messages count this shard's files.
 * Entries the walk passes over (links, FIFOs, folders it cannot read) are
 * reported by every shard. Give each shard its own index: an update of an
 * index with one shard removes the other shards' files from it.
 *
 * With #GstGallerySrc:index set to an index this folder was indexed into,
 * the walk feeds that index (see gallery_events.h): each file is announced
 * downstream in an out-of-band custom event (its path, size and
 * modification time) before it is decoded, and the end of a complete walk in
 * another, so that faissindexer's items carry their files. When the
 * indexer downstream updates (faissindexer mode=update, which a custom query
 * asks), files the index holds with the same size and modification time are
 * skipped before they are decoded and give no frame. No index there yet:
 * every file gives frames. A file found unreadable is announced as such, and
 * faissindexer records it in the catalog with its size and modification
 * time: while it stays unchanged, an update skips it without probing it
 * again (the warning still names it, "unchanged since it was found
 * unreadable", and it counts as skipped); a changed one is probed again.
 * A file an index of regions recorded as read without a region is skipped
 * the same way, as unchanged and without a warning.
 *
 * Pictures are decoded by OpenCV in libvisualsearch-codecs.so, opened when
 * the walk starts if it holds a picture; a video's frames by a decodebin pipeline inside the element,
 * which converts only the frames it keeps.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 gallerysrc location=~/Pictures ! embedder ! \
 *     faissindexer location=pictures.faiss
 * gst-launch-1.0 -e gallerysrc location=~/Pictures index=pictures.faiss ! \
 *     embedder ! faissindexer location=pictures.faiss mode=update
 * gst-launch-1.0 gallerysrc location=101_ObjectCategories ! videoscale ! \
 *     video/x-raw,width=320,height=240 ! videoconvert ! autovideosink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstgallerysrc.h"

#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/image_codec.h"
#include "engine/dataset/image_folder.h"
#include "engine/base/utf8.h"
#include "engine/index/file_inventory.h"
#include "elements.h"
#include "element_error.h"
#include "gallery_events.h"
#include "video_sampler.h"

GST_DEBUG_CATEGORY_STATIC (gst_gallery_src_debug);
#define GST_CAT_DEFAULT gst_gallery_src_debug

#define DEFAULT_RECURSIVE TRUE
#define DEFAULT_LABEL_FROM "folder"
#define DEFAULT_VIDEO_INTERVAL 1.0
#define DEFAULT_MAX_PIXELS vs::kDefaultMaxPixels
#define DEFAULT_STRICT FALSE
#define DEFAULT_SPLIT vs::FolderSplit::All
#define DEFAULT_QUERY_FRACTION 0.2
#define DEFAULT_SPLIT_SEED 0
#define DEFAULT_SHARD "0/1"
/* Each frame's nominal duration: frames are pushed as fast as downstream
 * takes them, with monotonic timestamps that are the same in every run. */
#define FRAME_DURATION GST_MSECOND
/* Bad files named in the warning's text; the debug details name them all. */
#define BAD_FILES_NAMED 10

enum
{
  PROP_0,
  PROP_LOCATION,
  PROP_RECURSIVE,
  PROP_LABEL_FROM,
  PROP_VIDEO_INTERVAL,
  PROP_MAX_PIXELS,
  PROP_STRICT,
  PROP_SPLIT,
  PROP_QUERY_FRACTION,
  PROP_SPLIT_SEED,
  PROP_INDEX,
  PROP_SHARD,
};

/* The walk in progress. Only start(), stop() and the streaming thread touch
 * it, never at the same time; unlock() reaches the sampler only. */
struct GalleryWalk
{
  std::string location;
  vs::ImageFolder folder;
  std::vector<std::string> label_names; /* valid UTF-8 */
  guint64 max_pixels = DEFAULT_MAX_PIXELS;
  GstClockTime interval = GST_SECOND;
  bool strict = false;

  size_t next_file = 0;
  /* The files of this shard: [first_file, end_file) of folder.files(). */
  size_t first_file = 0;
  size_t end_file = 0;
  /* The video being sampled, and the file it is. */
  std::unique_ptr<vs::VideoSampler> video;
  size_t video_file = 0;
  std::unique_ptr<GstVideoConverter, decltype (&gst_video_converter_free)>
      converter{nullptr, gst_video_converter_free};
  GstVideoInfo converter_in;

  guint64 frames = 0;
  gint frame_width = 0; /* of the frame last made */
  gint frame_height = 0;
  gint width = 0; /* of the caps last set */
  gint height = 0;
  bool progress_started = false;
  /* The location, absolute, as the file events name it. */
  std::string root;
  /* The index property is set: announce the files downstream. */
  bool announce = false;
  /* What the index property's index holds; nullptr: skip nothing. */
  std::shared_ptr<vs::FileInventory> inventory;
  bool asked = false; /* whether downstream keeps the index's items */
  guint64 unchanged = 0; /* files skipped as the index holds them */
  /* Files passed over as the index records them unreadable, unchanged. */
  guint64 known_bad = 0;
  /* The identity of the file being read (a video's, while it is sampled). */
  vs::FileIdentity current;
  /* One sentence per file skipped, in walk order. */
  std::vector<std::string> bad;
  /* One sentence per folder (or entry) that could not be read: not a bad
   * file, since what it holds is unknown. */
  std::vector<std::string> unread;
};

struct _GstGallerySrc
{
  GstPushSrc parent;

  /* properties, under the object lock */
  gchar *location;
  gboolean recursive;
  gchar *label_from;
  gdouble video_interval;
  guint64 max_pixels;
  gboolean strict;
  vs::FolderSplit split;
  gdouble query_fraction;
  guint split_seed;
  gchar *index;
  gchar *shard;

  /* the C++ state of a run: created in start, destroyed in stop */
  GalleryWalk *walk;
  /* A sampler interrupted by unlock(); guarded by the object lock. */
  vs::VideoSampler *sampling;
  gboolean flushing;
};

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("video/x-raw, format = (string) RGB, "
                         "width = (int) [ 1, MAX ], height = (int) [ 1, MAX ], "
                         "pixel-aspect-ratio = (fraction) 1/1, framerate = "
                         "(fraction) 0/1"));

static void gst_gallery_src_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_gallery_src_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_gallery_src_finalize (GObject *object);
static gboolean gst_gallery_src_negotiate (GstBaseSrc *src);
static gboolean gst_gallery_src_is_seekable (GstBaseSrc *src);
static gboolean gst_gallery_src_start (GstBaseSrc *src);
static gboolean gst_gallery_src_stop (GstBaseSrc *src);
static gboolean gst_gallery_src_unlock (GstBaseSrc *src);
static gboolean gst_gallery_src_unlock_stop (GstBaseSrc *src);
static GstFlowReturn gst_gallery_src_create (GstPushSrc *src, GstBuffer **buf);

#define gst_gallery_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstGallerySrc, gst_gallery_src, GST_TYPE_PUSH_SRC,
    GST_DEBUG_CATEGORY_INIT (gst_gallery_src_debug, "gallerysrc", 0,
        "Folder of pictures and videos source"));
GST_ELEMENT_REGISTER_DEFINE (gallerysrc, "gallerysrc", GST_RANK_NONE,
    GST_TYPE_GALLERY_SRC);

static GType
gst_gallery_src_split_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
      {(gint) vs::FolderSplit::All, "Every file", "all"},
      {(gint) vs::FolderSplit::Gallery,
          "The files that are not queries of the split", "gallery"},
      {(gint) vs::FolderSplit::Queries,
          "The query-fraction of each label's files chosen by split-seed",
          "queries"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstGallerySrcSplit", values);
    g_once_init_leave (&type, t);
  }
  return (GType) type;
}

static void
gst_gallery_src_class_init (GstGallerySrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);
  const GParamFlags flags = (GParamFlags) (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  gobject_class->set_property = gst_gallery_src_set_property;
  gobject_class->get_property = gst_gallery_src_get_property;
  gobject_class->finalize = gst_gallery_src_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "The folder of pictures and videos to walk", NULL, flags));
  g_object_class_install_property (gobject_class, PROP_RECURSIVE,
      g_param_spec_boolean ("recursive", "Recursive",
          "Walk the sub-folders too; when false, only the files directly in "
          "location",
          DEFAULT_RECURSIVE, flags));
  g_object_class_install_property (gobject_class, PROP_LABEL_FROM,
      g_param_spec_string ("label-from", "Label from",
          "Where labels come from: 'folder' (the first-level folder under "
          "location, numbered in sorted order), 'none', or 'csv:FILE' (a CSV "
          "whose header names a 'path' and a 'label' column)",
          DEFAULT_LABEL_FROM, flags));
  g_object_class_install_property (gobject_class, PROP_VIDEO_INTERVAL,
      g_param_spec_double ("video-interval", "Video interval",
          "Seconds between the frames taken from each video file", 0.001,
          86400.0, DEFAULT_VIDEO_INTERVAL, flags));
  g_object_class_install_property (gobject_class, PROP_MAX_PIXELS,
      g_param_spec_uint64 ("max-pixels", "Maximum pixels",
          "Skip pictures whose header declares more pixels than this (width "
          "x height), before decoding them, so a decompression bomb cannot "
          "exhaust memory; and videos whose frames are larger",
          1, G_MAXUINT64, DEFAULT_MAX_PIXELS, flags));
  g_object_class_install_property (gobject_class, PROP_STRICT,
      g_param_spec_boolean ("strict", "Strict",
          "Fail on the first file that is not a readable picture or video; "
          "when false, skip such files and name them in a warning at the end",
          DEFAULT_STRICT, flags));
  g_object_class_install_property (gobject_class, PROP_SPLIT,
      g_param_spec_enum ("split", "Split",
          "Walk every file, or one side of a split by label for retrieval "
          "evaluation: the queries, or the gallery (all the other files)",
          gst_gallery_src_split_get_type (), (gint) DEFAULT_SPLIT, flags));
  g_object_class_install_property (gobject_class, PROP_QUERY_FRACTION,
      g_param_spec_double ("query-fraction", "Query fraction",
          "With split: the share of each label's files that are queries "
          "(rounded, at least one and never all of them)",
          0.001, 0.999, DEFAULT_QUERY_FRACTION, flags));
  g_object_class_install_property (gobject_class, PROP_INDEX,
      g_param_spec_string ("index", "Index",
          "The index this walk feeds (faissindexer location=): each file is "
          "announced downstream before it is decoded, and when the indexer "
          "there updates (faissindexer mode=update), the files the index "
          "holds with the same size and modification time are skipped and "
          "give no frame. Unset: a plain walk",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_SPLIT_SEED,
      g_param_spec_uint ("split-seed", "Split seed",
          "With split: which files are queries; the same seed always splits "
          "a folder the same way",
          0, G_MAXUINT, DEFAULT_SPLIT_SEED, flags));
  g_object_class_install_property (gobject_class, PROP_SHARD,
      g_param_spec_string ("shard", "Shard",
          "K/N: walk only shard K (from 0) of N, the K-th of N runs of "
          "consecutive files of the sorted walk, with the sources and labels "
          "of the whole walk (tools/dask-index.py indexes the shards apart "
          "and merges them); 0/1: every file",
          DEFAULT_SHARD, flags));

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Picture and video folder source", "Source/Video",
      "Walks a folder and pushes every picture and sampled video frame as "
      "native-size RGB, labelled by folder or CSV, with "
      "GstVisualSearchSampleMeta",
      "visualsearch developers");

  basesrc_class->negotiate = GST_DEBUG_FUNCPTR (gst_gallery_src_negotiate);
  basesrc_class->is_seekable = GST_DEBUG_FUNCPTR (gst_gallery_src_is_seekable);
  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_gallery_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_gallery_src_stop);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_gallery_src_unlock);
  basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_gallery_src_unlock_stop);
  pushsrc_class->create = GST_DEBUG_FUNCPTR (gst_gallery_src_create);

  gst_type_mark_as_plugin_api (gst_gallery_src_split_get_type (),
      (GstPluginAPIFlags) 0);
}

static void
gst_gallery_src_init (GstGallerySrc *self)
{
  self->recursive = DEFAULT_RECURSIVE;
  self->label_from = g_strdup (DEFAULT_LABEL_FROM);
  self->video_interval = DEFAULT_VIDEO_INTERVAL;
  self->max_pixels = DEFAULT_MAX_PIXELS;
  self->strict = DEFAULT_STRICT;
  self->split = DEFAULT_SPLIT;
  self->query_fraction = DEFAULT_QUERY_FRACTION;
  self->split_seed = DEFAULT_SPLIT_SEED;
  self->shard = g_strdup (DEFAULT_SHARD);

  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
}

static void
gst_gallery_src_finalize (GObject *object)
{
  GstGallerySrc *self = GST_GALLERY_SRC (object);

  g_free (self->location);
  g_free (self->label_from);
  g_free (self->index);
  g_free (self->shard);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_gallery_src_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstGallerySrc *self = GST_GALLERY_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_RECURSIVE:
      self->recursive = g_value_get_boolean (value);
      break;
    case PROP_LABEL_FROM:
      g_free (self->label_from);
      self->label_from = g_value_dup_string (value);
      break;
    case PROP_VIDEO_INTERVAL:
      self->video_interval = g_value_get_double (value);
      break;
    case PROP_MAX_PIXELS:
      self->max_pixels = g_value_get_uint64 (value);
      break;
    case PROP_STRICT:
      self->strict = g_value_get_boolean (value);
      break;
    case PROP_SPLIT:
      self->split = (vs::FolderSplit) g_value_get_enum (value);
      break;
    case PROP_QUERY_FRACTION:
      self->query_fraction = g_value_get_double (value);
      break;
    case PROP_SPLIT_SEED:
      self->split_seed = g_value_get_uint (value);
      break;
    case PROP_INDEX:
      g_free (self->index);
      self->index = g_value_dup_string (value);
      break;
    case PROP_SHARD:
      g_free (self->shard);
      self->shard = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_gallery_src_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstGallerySrc *self = GST_GALLERY_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_RECURSIVE:
      g_value_set_boolean (value, self->recursive);
      break;
    case PROP_LABEL_FROM:
      g_value_set_string (value, self->label_from);
      break;
    case PROP_VIDEO_INTERVAL:
      g_value_set_double (value, self->video_interval);
      break;
    case PROP_MAX_PIXELS:
      g_value_set_uint64 (value, self->max_pixels);
      break;
    case PROP_STRICT:
      g_value_set_boolean (value, self->strict);
      break;
    case PROP_SPLIT:
      g_value_set_enum (value, (gint) self->split);
      break;
    case PROP_QUERY_FRACTION:
      g_value_set_double (value, self->query_fraction);
      break;
    case PROP_SPLIT_SEED:
      g_value_set_uint (value, self->split_seed);
      break;
    case PROP_INDEX:
      g_value_set_string (value, self->index);
      break;
    case PROP_SHARD:
      g_value_set_string (value, self->shard);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ------------------------------------------------------------------------ */
/* caps */

static GstCaps *
frame_caps (gint width, gint height)
{
  return gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "RGB",
      "width", G_TYPE_INT, width, "height", G_TYPE_INT, height,
      "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, "framerate",
      GST_TYPE_FRACTION, 0, 1, NULL);
}

/* Sets the caps of a width x height frame unless they are set already. */
static gboolean
set_frame_size (GstGallerySrc *self, gint width, gint height)
{
  GalleryWalk &walk = *self->walk;

  if (walk.width == width && walk.height == height)
    return TRUE;
  GstCaps *caps = frame_caps (width, height);
  GST_DEBUG_OBJECT (self, "frame size %dx%d: %" GST_PTR_FORMAT, width, height,
      caps);
  const gboolean ok = gst_base_src_set_caps (GST_BASE_SRC (self), caps);
  gst_caps_unref (caps);
  if (ok) {
    walk.width = width;
    walk.height = height;
  }
  return ok;
}

/* The size is known only once a frame is decoded, so caps are set then, in
 * create(); a reconfigure asks for the current ones again. */
static gboolean
gst_gallery_src_negotiate (GstBaseSrc *src)
{
  GstGallerySrc *self = GST_GALLERY_SRC (src);

  if (!self->walk || self->walk->width == 0)
    return TRUE;
  GstCaps *caps = frame_caps (self->walk->width, self->walk->height);
  const gboolean ok = gst_base_src_set_caps (src, caps);
  gst_caps_unref (caps);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* lifecycle */

static gboolean
gst_gallery_src_is_seekable (GstBaseSrc *src)
{
  return FALSE;
}

/* Progress goes out only while PLAYING: gst-launch-1.0 does not set a
 * prerolled pipeline to PLAYING while a progress is under way, and this
 * source prerolls in the middle of its walk. The first message is the
 * START, the last the COMPLETE. */
static void
post_progress (GstGallerySrc *self, bool complete)
{
  GalleryWalk &walk = *self->walk;
  GST_OBJECT_LOCK (self);
  const bool playing = GST_STATE (self) == GST_STATE_PLAYING;
  GST_OBJECT_UNLOCK (self);
  if (!complete && !playing)
    return;
  const GstProgressType type = complete ? GST_PROGRESS_TYPE_COMPLETE
      : walk.progress_started           ? GST_PROGRESS_TYPE_CONTINUE
                                        : GST_PROGRESS_TYPE_START;
  walk.progress_started = true;

  const guint64 total = walk.end_file - walk.first_file;
  const guint64 done = walk.next_file - walk.first_file;
  gchar *text =
      g_strdup_printf ("%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " files",
          done, total);
  GstMessage *msg =
      gst_message_new_progress (GST_OBJECT (self), type, "gallery", text);
  g_free (text);
  gst_structure_set (gst_message_writable_structure (msg), "files-done",
      G_TYPE_UINT64, done, "files-total", G_TYPE_UINT64, total, "percent",
      G_TYPE_INT, total ? (gint) (done * 100 / total) : 100, NULL);
  gst_element_post_message (GST_ELEMENT (self), msg);
}

/* Parses shard's "K/N" into *k and *n; false when it is not one. */
static bool
parse_shard (const std::string &shard, guint64 *k, guint64 *n)
{
  const size_t slash = shard.find ('/');
  if (shard.empty () || slash == std::string::npos)
    return false;
  const std::string ks = shard.substr (0, slash), ns = shard.substr (slash + 1);
  return !ks.empty () && !ns.empty ()
      && g_ascii_string_to_unsigned (ks.c_str (), 10, 0, G_MAXUINT32, k, NULL)
      && g_ascii_string_to_unsigned (ns.c_str (), 10, 1, G_MAXUINT32, n, NULL)
      && *k < *n;
}

static gboolean
gst_gallery_src_start (GstBaseSrc *src)
{
  GstGallerySrc *self = GST_GALLERY_SRC (src);
  auto walk = std::make_unique<GalleryWalk> ();
  vs::ImageFolderOptions options;

  GST_OBJECT_LOCK (self);
  walk->location = self->location ? self->location : "";
  const std::string label_from = self->label_from ? self->label_from : "";
  options.recursive = self->recursive;
  options.split = self->split;
  options.query_fraction = self->query_fraction;
  options.split_seed = self->split_seed;
  walk->max_pixels = self->max_pixels;
  walk->interval = (GstClockTime) (self->video_interval * GST_SECOND + 0.5);
  walk->strict = self->strict;
  const std::string index = self->index ? self->index : "";
  const std::string shard = self->shard ? self->shard : DEFAULT_SHARD;
  GST_OBJECT_UNLOCK (self);

  if (walk->location.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No gallery folder given; set the 'location' property to the folder "
         "of pictures and videos."),
        (NULL));
    return FALSE;
  }
  guint64 shard_k = 0, shard_n = 1;
  if (!parse_shard (shard, &shard_k, &shard_n)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid shard \"%s\": give K/N, shard K (0 to N-1) of N, such as "
         "0/4; 0/1 walks every file.",
            vs::valid_utf8 (shard).c_str ()),
        (NULL));
    return FALSE;
  }
  try {
    vs::parse_label_from (label_from, &options);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e, ("%s", e.what ()), (NULL));
    return FALSE;
  }
  try {
    walk->folder = vs::ImageFolder::scan (walk->location, options);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e, ("%s", vs::valid_utf8 (e.what ()).c_str ()),
        (NULL));
    return FALSE;
  }
  /* Shard k of n: files [total * k / n, total * (k + 1) / n). */
  const guint64 total_files = walk->folder.files ().size ();
  walk->first_file = (size_t) (total_files * shard_k / shard_n);
  walk->end_file = (size_t) (total_files * (shard_k + 1) / shard_n);
  walk->next_file = walk->first_file;
  walk->announce = !index.empty ();
  if (!index.empty ()) {
    try {
      walk->inventory = vs::FileInventory::of_index (index);
    } catch (const std::exception &e) {
      VS_ELEMENT_ERROR (self, e,
          ("Cannot read what the index %s holds: %s",
              vs::valid_utf8 (index).c_str (),
              vs::valid_utf8 (e.what ()).c_str ()),
          ("Unset index to walk every file, or rebuild the index."));
      return FALSE;
    }
    GST_INFO_OBJECT (self, "index %s: %s", index.c_str (),
        walk->inventory ? "skipping the files it holds unchanged"
                        : "none there yet");
  }
  gchar *root = g_canonicalize_filename (walk->location.c_str (), NULL);
  walk->root = root;
  g_free (root);
  for (const std::string &name : walk->folder.label_names ())
    walk->label_names.push_back (vs::valid_utf8 (name));
  for (const vs::SkippedEntry &entry : walk->folder.skipped ())
    (entry.unread ? walk->unread : walk->bad)
        .push_back (vs::valid_utf8 (walk->location + "/" + entry.relative + " "
            + entry.reason));
  GST_INFO_OBJECT (self,
      "%s: %zu files (shard %s: %zu to %zu), %zu labels, %zu entries "
      "skipped, %zu unreadable",
      walk->location.c_str (), walk->folder.files ().size (), shard.c_str (),
      walk->first_file, walk->end_file, walk->label_names.size (),
      walk->bad.size (), walk->unread.size ());
  for (const std::string &bad : walk->bad)
    GST_WARNING_OBJECT (self, "skipped: %s", bad.c_str ());
  for (const std::string &unread : walk->unread)
    GST_WARNING_OBJECT (self, "not walked: %s", unread.c_str ());
  const std::vector<std::string> &first_fault =
      walk->unread.empty () ? walk->bad : walk->unread;
  if (walk->strict && !first_fault.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, READ,
        ("%s (strict=true)", first_fault.front ().c_str ()), (NULL));
    return FALSE;
  }

  /* The codecs module is opened here, as soon as the walk is known to hold a
   * picture, rather than on the first one: a missing module then fails the
   * state change. The same error posted from the streaming thread in the
   * first moments of a run is lost by gst-launch-1.0 (1.22 quits its main
   * loop from the bus sync handler, possibly before it runs it, and then
   * waits forever). Finding the first picture reads a few bytes per file. */
  for (size_t i = walk->first_file; i < walk->end_file; i++) {
    const vs::FolderFile &file = walk->folder.files ()[i];
    if (!vs::is_image_file (file.path))
      continue;
    try {
      vs::load_image_codecs ();
    } catch (const std::exception &e) {
      VS_ELEMENT_ERROR (self, e, ("%s", e.what ()), (NULL));
      return FALSE;
    }
    break;
  }

  self->walk = walk.release ();
  return TRUE;
}

static void
set_sampling (GstGallerySrc *self, vs::VideoSampler *sampler)
{
  GST_OBJECT_LOCK (self);
  self->sampling = sampler;
  if (sampler && self->flushing)
    sampler->interrupt ();
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_gallery_src_stop (GstBaseSrc *src)
{
  GstGallerySrc *self = GST_GALLERY_SRC (src);

  set_sampling (self, NULL);
  delete self->walk;
  self->walk = NULL;
  return TRUE;
}

static gboolean
gst_gallery_src_unlock (GstBaseSrc *src)
{
  GstGallerySrc *self = GST_GALLERY_SRC (src);

  GST_OBJECT_LOCK (self);
  self->flushing = TRUE;
  if (self->sampling)
    self->sampling->interrupt ();
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

static gboolean
gst_gallery_src_unlock_stop (GstBaseSrc *src)
{
  GstGallerySrc *self = GST_GALLERY_SRC (src);

  GST_OBJECT_LOCK (self);
  self->flushing = FALSE;
  if (self->sampling)
    self->sampling->resume ();
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* the buffer path */

/* Records a file that is no readable picture or video; with strict, that is
 * an error. */
static GstFlowReturn
skip_bad_file (GstGallerySrc *self, const std::string &reason)
{
  GalleryWalk &walk = *self->walk;
  const std::string sentence = vs::valid_utf8 (reason);

  GST_WARNING_OBJECT (self, "skipped: %s", sentence.c_str ());
  walk.bad.push_back (sentence);
  /* So that the index records it, and the next update does not probe it
   * again while it stays unchanged. */
  if (walk.announce)
    gst_pad_push_event (GST_BASE_SRC_PAD (self),
        vs_gallery_file_event_new (walk.root, walk.current, FALSE,
            sentence.c_str ()));
  if (walk.strict) {
    GST_ELEMENT_ERROR (self, STREAM, DECODE,
        ("%s (strict=true)", sentence.c_str ()), (NULL));
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

/* The first BAD_FILES_NAMED sentences for a warning's message, and all of
 * them, one a line, for its details. */
static void
name_sentences (const std::vector<std::string> &sentences, std::string *named,
    std::string *all)
{
  for (size_t i = 0; i < sentences.size (); i++) {
    if (i < BAD_FILES_NAMED)
      *named += (i ? "; " : "") + sentences[i];
    *all += sentences[i] + "\n";
  }
  if (sentences.size () > BAD_FILES_NAMED)
    *named += "; and " + std::to_string (sentences.size () - BAD_FILES_NAMED)
        + " more (listed in the details, and by GST_DEBUG=gallerysrc:2)";
}

/* A folder that cannot be read is no bad file: its files may all be fine,
 * and an index keeps what it holds of them. */
static void
warn_unread_folders (GstGallerySrc *self)
{
  const GalleryWalk &walk = *self->walk;
  if (walk.unread.empty ())
    return;
  std::string named, all;
  name_sentences (walk.unread, &named, &all);
  const std::string location = vs::valid_utf8 (walk.location);
  GST_ELEMENT_WARNING (self, RESOURCE, READ,
      ("Could not walk all of %s: %s. galleryindexer keeps the items the index "
       "holds from %s; make %s readable and run again.",
          location.c_str (), named.c_str (),
          walk.unread.size () == 1 ? "there" : "those",
          walk.unread.size () == 1 ? "it" : "them"),
      ("%s", all.c_str ()));
}

static void
warn_bad_files (GstGallerySrc *self)
{
  const GalleryWalk &walk = *self->walk;
  if (walk.bad.empty ())
    return;
  std::string named, all;
  name_sentences (walk.bad, &named, &all);
  const std::string location = vs::valid_utf8 (walk.location);
  if (walk.bad.size () == 1)
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Skipped 1 file in %s that is "
         "not a readable picture or video: %s",
            location.c_str (), named.c_str ()),
        ("%s", all.c_str ()));
  else
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Skipped %zu files in %s that "
         "are not readable pictures or videos: %s",
            walk.bad.size (), location.c_str (), named.c_str ()),
        ("%s", all.c_str ()));
}

static std::string
frame_source (const vs::FolderFile &file, GstClockTime time)
{
  std::string source = vs::valid_utf8 (file.relative);
  if (GST_CLOCK_TIME_IS_VALID (time)) {
    gchar *t = g_strdup_printf ("#t=%.3f", (double) time / GST_SECOND);
    source += t;
    g_free (t);
  }
  return source;
}

/* A buffer of the frame size, its meta and timestamps set. */
static GstBuffer *
new_frame (GstGallerySrc *self, const vs::FolderFile &file, GstClockTime time,
    GstVideoInfo *info)
{
  GalleryWalk &walk = *self->walk;
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, info->size, NULL);

  GST_BUFFER_PTS (buffer) = walk.frames * FRAME_DURATION;
  GST_BUFFER_DURATION (buffer) = FRAME_DURATION;
  GST_BUFFER_OFFSET (buffer) = walk.frames;
  GST_BUFFER_OFFSET_END (buffer) = walk.frames + 1;
  const std::string source = frame_source (file, time);
  const char *label_name =
      file.label >= 0 ? walk.label_names[file.label].c_str () : NULL;
  gst_buffer_add_visualsearch_sample_meta (buffer, (gint64) walk.frames,
      file.label, label_name, source.c_str ());
  GST_LOG_OBJECT (self, "frame %" G_GUINT64_FORMAT ": %s, %dx%d, label %d",
      walk.frames, source.c_str (), GST_VIDEO_INFO_WIDTH (info),
      GST_VIDEO_INFO_HEIGHT (info), file.label);
  walk.frames++;
  walk.frame_width = GST_VIDEO_INFO_WIDTH (info);
  walk.frame_height = GST_VIDEO_INFO_HEIGHT (info);
  return buffer;
}

static GstBuffer *
still_frame (GstGallerySrc *self, const vs::FolderFile &file,
    const vs::RgbImage &image)
{
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, image.width,
      image.height);
  GstBuffer *buffer = new_frame (self, file, GST_CLOCK_TIME_NONE, &info);
  GstMapInfo map;
  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  /* GStreamer's RGB rows are padded to 4 bytes; the image's are packed. */
  const size_t row = (size_t) image.width * 3;
  const size_t stride = GST_VIDEO_INFO_PLANE_STRIDE (&info, 0);
  for (int y = 0; y < image.height; y++)
    memcpy (map.data + y * stride, image.pixels.data () + y * row, row);
  gst_buffer_unmap (buffer, &map);
  return buffer;
}

/* The sampled video frame as an RGB buffer, or NULL (with *reason) when it
 * cannot be one. */
static GstBuffer *
video_frame (GstGallerySrc *self, const vs::FolderFile &file, GstSample *sample,
    GstClockTime time, std::string *reason)
{
  GalleryWalk &walk = *self->walk;
  GstVideoInfo in;
  if (!gst_video_info_from_caps (&in, gst_sample_get_caps (sample))) {
    *reason = file.path + " decodes to video GStreamer cannot describe";
    return NULL;
  }
  const guint64 pixels = (guint64) in.width * in.height;
  if (pixels > walk.max_pixels) {
    *reason = file.path + " is too large: its video frames have "
        + std::to_string (in.width) + "x" + std::to_string (in.height)
        + " pixels, more than max-pixels (" + std::to_string (walk.max_pixels)
        + ")";
    return NULL;
  }
  GstVideoInfo out;
  gst_video_info_set_format (&out, GST_VIDEO_FORMAT_RGB, in.width, in.height);
  /* The converter changes format only; these must match. */
  out.fps_n = in.fps_n;
  out.fps_d = in.fps_d;
  out.interlace_mode = in.interlace_mode;
  if (!walk.converter || !gst_video_info_is_equal (&in, &walk.converter_in)) {
    walk.converter.reset (gst_video_converter_new (&in, &out, NULL));
    walk.converter_in = in;
  }
  GstVideoFrame src_frame, dst_frame;
  if (!walk.converter
      || !gst_video_frame_map (&src_frame, &in, gst_sample_get_buffer (sample),
          GST_MAP_READ)) {
    *reason = file.path + " decodes to frames that cannot be read";
    return NULL;
  }
  GstBuffer *buffer = new_frame (self, file, time, &out);
  gst_video_frame_map (&dst_frame, &out, buffer, GST_MAP_WRITE);
  gst_video_converter_frame (walk.converter.get (), &src_frame, &dst_frame);
  gst_video_frame_unmap (&dst_frame);
  gst_video_frame_unmap (&src_frame);
  return buffer;
}

static void
end_video (GstGallerySrc *self)
{
  GalleryWalk &walk = *self->walk;

  set_sampling (self, NULL);
  GST_INFO_OBJECT (self, "%s: %" G_GUINT64_FORMAT " frames",
      walk.folder.files ()[walk.video_file].path.c_str (),
      walk.video->frames_sampled ());
  walk.video.reset ();
  post_progress (self, false);
}

/* The next frame of the video being sampled: *buf, or NULL when it has
 * ended or failed. */
static GstFlowReturn
next_video_frame (GstGallerySrc *self, GstBuffer **buf)
{
  GalleryWalk &walk = *self->walk;
  const vs::FolderFile &file = walk.folder.files ()[walk.video_file];
  GstSample *sample = NULL;
  GstClockTime time = 0;
  std::string reason;
  vs::VideoSampler::Result result;

  *buf = NULL;
  try {
    result = walk.video->next (&sample, &time);
  } catch (const std::exception &e) {
    reason = e.what ();
    result = vs::VideoSampler::Result::End;
  }
  if (result == vs::VideoSampler::Result::Interrupted)
    return GST_FLOW_FLUSHING;
  if (result == vs::VideoSampler::Result::Frame) {
    *buf = video_frame (self, file, sample, time, &reason);
    gst_sample_unref (sample);
  }
  if (*buf)
    return GST_FLOW_OK;
  end_video (self);
  return reason.empty () ? GST_FLOW_OK : skip_bad_file (self, reason);
}

/* Whether the indexer downstream keeps the items of the files skipped
 * (VS_GALLERY_QUERY); true when nothing downstream answers. */
static bool
downstream_keeps_items (GstGallerySrc *self)
{
  GstQuery *query = vs_gallery_query_new ();
  gboolean keeps = TRUE;
  if (gst_pad_peer_query (GST_BASE_SRC_PAD (self), query))
    vs_gallery_query_parse (query, &keeps);
  gst_query_unref (query);
  return keeps;
}

/* reason, a sentence that starts with the file's path ("/p/notes.txt is
 * neither..."), with the path turned into "it", to follow another sentence
 * on the file; reason itself when it names the file otherwise. */
static std::string
reason_about_it (const std::string &reason, const std::string &relative)
{
  const std::string named = relative + " ";
  const size_t at = reason.find (named);
  if (at == std::string::npos || (at > 0 && reason[at - 1] != '/'))
    return reason;
  return "it " + reason.substr (at + named.size ());
}

static GstFlowReturn
gst_gallery_src_create (GstPushSrc *src, GstBuffer **buf)
{
  GstGallerySrc *self = GST_GALLERY_SRC (src);
  GalleryWalk &walk = *self->walk;
  GstBuffer *buffer = NULL;
  const std::vector<vs::FolderFile> &files = walk.folder.files ();

  while (!buffer) {
    if (walk.video) {
      const GstFlowReturn ret = next_video_frame (self, &buffer);
      if (ret != GST_FLOW_OK)
        return ret;
      continue;
    }
    if (walk.next_file >= walk.end_file) {
      GST_DEBUG_OBJECT (self,
          "all %zu files walked: %" G_GUINT64_FORMAT
          " frames, %zu skipped (%" G_GUINT64_FORMAT
          " known unreadable, not read again), %" G_GUINT64_FORMAT " unchanged",
          walk.end_file - walk.first_file, walk.frames, walk.bad.size (),
          walk.known_bad, walk.unchanged);
      std::vector<vs::WalkGap> gaps;
      for (const vs::SkippedEntry &entry : walk.folder.skipped ())
        gaps.push_back (vs::WalkGap{entry.relative, entry.unread});
      if (walk.announce)
        gst_pad_push_event (GST_BASE_SRC_PAD (self),
            vs_gallery_walked_event_new (gaps));
      post_progress (self, true);
      warn_unread_folders (self);
      warn_bad_files (self);
      return GST_FLOW_EOS;
    }
    const size_t index = walk.next_file++;
    const vs::FolderFile &file = files[index];
    /* Stat'ed before the file is decoded: the identity the index records. */
    std::optional<vs::FileIdentity> identity =
        vs::FileInventory::identify (file.relative, file.path);
    if (walk.inventory && !walk.asked) {
      walk.asked = true;
      if (!downstream_keeps_items (self)) {
        GST_INFO_OBJECT (self,
            "downstream rebuilds or appends: no file is "
            "skipped");
        walk.inventory.reset ();
      }
    }
    const bool skip =
        identity && walk.inventory && walk.inventory->holds (*identity);
    /* The index records it unreadable with the same size and modification
     * time: probing it again (some formats take seconds to refuse) would
     * only find the same. */
    const std::optional<std::string> known_bad =
        !skip && identity && walk.inventory
        ? walk.inventory->rejected_unchanged (*identity)
        : std::nullopt;
    if (!identity) {
      identity.emplace ();
      identity->path = file.relative;
    }
    walk.current = *identity;
    if (known_bad) {
      if (walk.announce)
        gst_pad_push_event (GST_BASE_SRC_PAD (self),
            vs_gallery_file_event_new (walk.root, *identity, TRUE,
                known_bad->c_str ()));
      /* Read before and found without a region (an index of regions): as
       * unchanged as a file whose items the index holds. */
      if (*known_bad == vs::FileInventory::kReadWithoutItems) {
        GST_LOG_OBJECT (self, "file %zu/%zu: %s is unchanged (no region)",
            index + 1, files.size (), file.path.c_str ());
        walk.unchanged++;
        continue;
      }
      GST_DEBUG_OBJECT (self,
          "file %zu/%zu: %s is not read again: unchanged since it was found "
          "unreadable",
          index + 1, files.size (), file.path.c_str ());
      walk.known_bad++;
      walk.bad.push_back (vs::valid_utf8 (walk.location + "/" + file.relative
          + " is unchanged since it was found unreadable: "
          + reason_about_it (*known_bad, file.relative)));
      GST_WARNING_OBJECT (self, "skipped: %s", walk.bad.back ().c_str ());
      if (walk.strict) {
        GST_ELEMENT_ERROR (self, STREAM, DECODE,
            ("%s (strict=true)", walk.bad.back ().c_str ()), (NULL));
        return GST_FLOW_ERROR;
      }
      continue;
    }
    if (walk.announce)
      gst_pad_push_event (GST_BASE_SRC_PAD (self),
          vs_gallery_file_event_new (walk.root, *identity, skip));
    if (skip) {
      GST_LOG_OBJECT (self, "file %zu/%zu: %s is unchanged", index + 1,
          files.size (), file.path.c_str ());
      walk.unchanged++;
      continue;
    }
    GST_DEBUG_OBJECT (self, "file %zu/%zu: %s", index + 1, files.size (),
        file.path.c_str ());
    try {
      const vs::RgbImage image = vs::read_image (file.path, walk.max_pixels);
      buffer = still_frame (self, file, image);
      post_progress (self, false);
    } catch (const vs::ImageError &e) {
      if (e.reason () != vs::ImageError::Reason::NotAnImage) {
        post_progress (self, false);
        if (skip_bad_file (self, e.what ()) != GST_FLOW_OK)
          return GST_FLOW_ERROR;
        continue;
      }
      try {
        walk.video =
            std::make_unique<vs::VideoSampler> (file.path, walk.interval);
        walk.video_file = index;
        set_sampling (self, walk.video.get ());
      } catch (const std::exception &video_error) {
        post_progress (self, false);
        if (skip_bad_file (self, video_error.what ()) != GST_FLOW_OK)
          return GST_FLOW_ERROR;
      }
    } catch (const std::exception &e) {
      /* The codecs module itself is missing: no file can be read. */
      VS_ELEMENT_ERROR (self, e, ("%s", e.what ()), (NULL));
      return GST_FLOW_ERROR;
    }
  }

  if (!set_frame_size (self, walk.frame_width, walk.frame_height)) {
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("Downstream does not accept "
         "%dx%d RGB frames; gallerysrc pushes every picture at its own "
         "size, so put videoscale and videoconvert after it.",
            walk.frame_width, walk.frame_height),
        (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  *buf = buffer;
  return GST_FLOW_OK;
}
