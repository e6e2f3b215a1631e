// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-searchoverlay
 * @title: searchoverlay
 *
 * Draws each frame's nearest gallery images onto it. For every frame that
 * carries a #GstVisualSearchNeighborsMeta (from faisssearch), draws a strip
 * of the neighbours' thumbnails along one edge, each captioned with its label
 * and its score as FAISS returned it.
 *
 * Thumbnails come from the catalog of the index faisssearch searches (index +
 * ".db"), where faissindexer stores them, so the originals need not be at
 * hand; a catalog renamed over the old one by a writer is reopened. The
 * element finds that index by itself (faisssearch names it in a sticky event
 * before the first frame); #GstSearchOverlay:index, when set, wins. Items
 * without a thumbnail are read back through the neighbour's source: CIFAR
 * records ("cifar10/train/17") from the directory in
 * #GstSearchOverlay:dataset, anything else as an image file path, relative to
 * the gallery folder the catalog records (galleryindexer's location). They
 * are cached, so steady results cost no disk access.
 *
 * When the catalog's model id names random weights (e.g.
 * "resnet18:random-seed42"), a line in orange along the opposite edge says
 * "RANDOM WEIGHTS: scores not meaningful": such scores all read about the
 * same, whatever the pictures show.
 *
 * Regions: for each #GstVideoRegionOfInterestMeta to which faisssearch
 * attached neighbours (embedder with #GstEmbedder:roi-types upstream), the
 * region's box is outlined in green and its best match drawn beside it (a
 * tile below the box, or above it when there is no room below): thumbnail,
 * label and score, as in the strip.
 *
 * Frames without neighbours pass through untouched, unless
 * #GstSearchOverlay:persist is set: then the last results stay on screen
 * (embedder's inference-interval and QoS leave frames without an embedding,
 * which would make the strip flicker).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! embedder index=cifar.faiss ! \
 *     faisssearch index=cifar.faiss ! \
 *     searchoverlay dataset=cifar-10-batches-py position=bottom ! \
 *     videoconvert ! autovideosink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsearchoverlay.h"

#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "engine/dataset/cifar_dataset.h"
#include "engine/index/catalog.h"
#include "engine/index/gallery.h"
#include "engine/model/model_id.h"
#include "engine/render/result_strip.h"
#include "engine/render/thumbnail_cache.h"
#include "elements.h"
#include "element_error.h"
#include "gstfaisssearch.h"

GST_DEBUG_CATEGORY_STATIC (gst_search_overlay_debug);
#define GST_CAT_DEFAULT gst_search_overlay_debug

#define DEFAULT_THUMB_SIZE 64
#define DEFAULT_POSITION GST_SEARCH_OVERLAY_POSITION_BOTTOM
#define DEFAULT_MAX_THUMBS 5
#define DEFAULT_CACHE_SIZE 256
#define DEFAULT_PERSIST FALSE

enum
{
  PROP_0,
  PROP_THUMB_SIZE,
  PROP_POSITION,
  PROP_DATASET,
  PROP_MAX_THUMBS,
  PROP_CACHE_SIZE,
  PROP_PERSIST,
  PROP_INDEX,
};

/* The C++ state of a stream, only touched by start, stop and the streaming
 * thread. */
struct SearchOverlayState
{
  std::unique_ptr<vs::ThumbnailCache> thumbnails;
  std::string thumbnails_dataset; /* what thumbnails was made for */
  guint thumbnails_capacity = 0;
  std::string thumbnails_index; /* "" when no index is known */
  std::string stream_index; /* named by faisssearch upstream */
  vs::FileStamp thumbnails_catalog; /* the catalog file thumbnails read */
  vs::ResultStrip strip;
  /* The index's model id names random weights: its scores mean nothing. */
  bool random_weights = false;
  /* The results last drawn; reused from frame to frame, and drawn again on
   * frames without results when persisting. Empty: nothing to persist. */
  std::vector<vs::StripTile> tiles;
};

struct _GstSearchOverlay
{
  GstVideoFilter parent;

  /* Properties, guarded by the object lock. */
  guint thumb_size;
  GstSearchOverlayPosition position;
  gchar *dataset;
  guint max_thumbs;
  guint cache_size;
  gboolean persist;
  gchar *index;

  /* created in start, destroyed in stop */
  SearchOverlayState *state;
};

#define VIDEO_CAPS GST_VIDEO_CAPS_MAKE ("{ RGB, BGR, RGBx, BGRx, I420, NV12 }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

static GType
gst_search_overlay_position_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_SEARCH_OVERLAY_POSITION_TOP, "A row along the top edge", "top"},
      {GST_SEARCH_OVERLAY_POSITION_BOTTOM, "A row along the bottom edge",
          "bottom"},
      {GST_SEARCH_OVERLAY_POSITION_LEFT, "A column along the left edge",
          "left"},
      {GST_SEARCH_OVERLAY_POSITION_RIGHT, "A column along the right edge",
          "right"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstSearchOverlayPosition", values);
    g_once_init_leave (&type, t);
  }
  return (GType) type;
}

#define gst_search_overlay_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstSearchOverlay, gst_search_overlay,
    GST_TYPE_VIDEO_FILTER,
    GST_DEBUG_CATEGORY_INIT (gst_search_overlay_debug, "searchoverlay", 0,
        "Draws search results onto video frames"));
GST_ELEMENT_REGISTER_DEFINE (searchoverlay, "searchoverlay", GST_RANK_NONE,
    GST_TYPE_SEARCH_OVERLAY);

static void gst_search_overlay_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_search_overlay_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_search_overlay_finalize (GObject *object);
static gboolean gst_search_overlay_start (GstBaseTransform *trans);
static gboolean gst_search_overlay_stop (GstBaseTransform *trans);
static gboolean gst_search_overlay_sink_event (GstBaseTransform *trans,
    GstEvent *event);
static void gst_search_overlay_before_transform (GstBaseTransform *trans,
    GstBuffer *buffer);
static GstFlowReturn
gst_search_overlay_transform_frame_ip (GstVideoFilter *filter,
    GstVideoFrame *frame);

static void
gst_search_overlay_class_init (GstSearchOverlayClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
  const GParamFlags flags = (GParamFlags) (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);

  gobject_class->set_property = gst_search_overlay_set_property;
  gobject_class->get_property = gst_search_overlay_get_property;
  gobject_class->finalize = gst_search_overlay_finalize;

  g_object_class_install_property (gobject_class, PROP_THUMB_SIZE,
      g_param_spec_uint ("thumb-size", "Thumbnail size",
          "Width and height of each neighbour's thumbnail, in pixels", 16, 512,
          DEFAULT_THUMB_SIZE, flags));
  g_object_class_install_property (gobject_class, PROP_POSITION,
      g_param_spec_enum ("position", "Position",
          "Frame edge along which the strip of results is drawn",
          gst_search_overlay_position_get_type (), DEFAULT_POSITION, flags));
  g_object_class_install_property (gobject_class, PROP_DATASET,
      g_param_spec_string ("dataset", "Dataset",
          "CIFAR directory (or batch file) that neighbours with sources such "
          "as \"cifar10/train/17\" are read from; image file sources need "
          "none",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_INDEX,
      g_param_spec_string ("index", "Index",
          "The FAISS index the neighbours come from; unset: the index the "
          "faisssearch upstream names. Thumbnails stored in its catalog "
          "(index + \".db\") are drawn without reading the originals; items "
          "without one are read through their source, relative to the "
          "gallery folder the catalog records",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_MAX_THUMBS,
      g_param_spec_uint ("max-thumbs", "Maximum thumbnails",
          "Draw at most this many neighbours (fewer when the frame has no "
          "room)",
          1, 1024, DEFAULT_MAX_THUMBS, flags));
  g_object_class_install_property (gobject_class, PROP_CACHE_SIZE,
      g_param_spec_uint ("cache-size", "Cache size",
          "How many thumbnails to keep in memory", 1, 65536, DEFAULT_CACHE_SIZE,
          flags));
  g_object_class_install_property (gobject_class, PROP_PERSIST,
      g_param_spec_boolean ("persist", "Persist",
          "Keep drawing the last results on frames that carry none (frames "
          "the embedder skipped), until new results or a flush arrive",
          DEFAULT_PERSIST, flags));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Search results overlay", "Filter/Effect/Video",
      "Draws the nearest gallery images of each frame, with labels and "
      "scores, onto the frame",
      "visualsearch developers");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_search_overlay_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_search_overlay_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_search_overlay_sink_event);
  trans_class->before_transform =
      GST_DEBUG_FUNCPTR (gst_search_overlay_before_transform);
  filter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (gst_search_overlay_transform_frame_ip);

  gst_type_mark_as_plugin_api (gst_search_overlay_position_get_type (),
      (GstPluginAPIFlags) 0);
}

static void
gst_search_overlay_init (GstSearchOverlay *self)
{
  self->thumb_size = DEFAULT_THUMB_SIZE;
  self->position = DEFAULT_POSITION;
  self->max_thumbs = DEFAULT_MAX_THUMBS;
  self->cache_size = DEFAULT_CACHE_SIZE;
  self->persist = DEFAULT_PERSIST;
}

static void
gst_search_overlay_finalize (GObject *object)
{
  GstSearchOverlay *self = GST_SEARCH_OVERLAY (object);

  g_free (self->dataset);
  g_free (self->index);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* ------------------------------------------------------------------------ */
/* Properties */

static void
gst_search_overlay_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstSearchOverlay *self = GST_SEARCH_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_THUMB_SIZE:
      self->thumb_size = g_value_get_uint (value);
      break;
    case PROP_POSITION:
      self->position = (GstSearchOverlayPosition) g_value_get_enum (value);
      break;
    case PROP_DATASET:
      g_free (self->dataset);
      self->dataset = g_value_dup_string (value);
      break;
    case PROP_MAX_THUMBS:
      self->max_thumbs = g_value_get_uint (value);
      break;
    case PROP_CACHE_SIZE:
      self->cache_size = g_value_get_uint (value);
      break;
    case PROP_PERSIST:
      self->persist = g_value_get_boolean (value);
      break;
    case PROP_INDEX:
      g_free (self->index);
      self->index = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_search_overlay_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstSearchOverlay *self = GST_SEARCH_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_THUMB_SIZE:
      g_value_set_uint (value, self->thumb_size);
      break;
    case PROP_POSITION:
      g_value_set_enum (value, self->position);
      break;
    case PROP_DATASET:
      g_value_set_string (value, self->dataset);
      break;
    case PROP_MAX_THUMBS:
      g_value_set_uint (value, self->max_thumbs);
      break;
    case PROP_CACHE_SIZE:
      g_value_set_uint (value, self->cache_size);
      break;
    case PROP_PERSIST:
      g_value_set_boolean (value, self->persist);
      break;
    case PROP_INDEX:
      g_value_set_string (value, self->index);
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
gst_search_overlay_start (GstBaseTransform *trans)
{
  GstSearchOverlay *self = GST_SEARCH_OVERLAY (trans);

  self->state = new SearchOverlayState ();
  return TRUE;
}

static gboolean
gst_search_overlay_stop (GstBaseTransform *trans)
{
  GstSearchOverlay *self = GST_SEARCH_OVERLAY (trans);

  /* A CIFAR split held for thumbnails is ~150 MB: let it go with the stream. */
  delete self->state;
  self->state = NULL;
  return TRUE;
}

static gboolean
gst_search_overlay_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstSearchOverlay *self = GST_SEARCH_OVERLAY (trans);

  /* Results from before a seek or flush describe frames that are gone. */
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    self->state->tiles.clear ();
  if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY
      && gst_event_has_name (event, VS_INDEX_EVENT)) {
    const gchar *index =
        gst_structure_get_string (gst_event_get_structure (event), "index");
    GST_DEBUG_OBJECT (self, "faisssearch upstream searches %s",
        GST_STR_NULL (index));
    self->state->stream_index = index ? index : "";
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* ------------------------------------------------------------------------ */
/* The buffer path */

static gboolean
has_neighbors (GstBuffer *buffer)
{
  const GstVisualSearchNeighborsMeta *nmeta =
      gst_buffer_get_visualsearch_neighbors_meta (buffer);
  return nmeta != NULL && nmeta->n_neighbors > 0;
}

/* Whether a region of buffer has a neighbour (faisssearch over regions). */
static gboolean
has_region_neighbors (GstBuffer *buffer)
{
  gpointer iter = NULL;
  while (GstMeta *meta = gst_buffer_iterate_meta_filtered (buffer, &iter,
             GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    guint n;
    if (gst_visualsearch_region_get_neighbors_info (
            reinterpret_cast<GstVideoRegionOfInterestMeta *> (meta), NULL, &n)
        && n > 0)
      return TRUE;
  }
  return FALSE;
}

/* Frames with nothing to draw are not even mapped: in passthrough mode the
 * base class hands them on as they came. */
static void
gst_search_overlay_before_transform (GstBaseTransform *trans, GstBuffer *buffer)
{
  GstSearchOverlay *self = GST_SEARCH_OVERLAY (trans);

  GST_OBJECT_LOCK (self);
  const gboolean persist = self->persist;
  GST_OBJECT_UNLOCK (self);

  gst_base_transform_set_passthrough (trans,
      !has_neighbors (buffer) && !has_region_neighbors (buffer)
          && !(persist && !self->state->tiles.empty ()));
}

static vs::PixelLayout
pixel_layout (GstVideoFormat format)
{
  switch (format) {
    case GST_VIDEO_FORMAT_BGR:
      return vs::PixelLayout::BGR;
    case GST_VIDEO_FORMAT_RGBx:
      return vs::PixelLayout::RGBx;
    case GST_VIDEO_FORMAT_BGRx:
      return vs::PixelLayout::BGRx;
    case GST_VIDEO_FORMAT_I420:
      return vs::PixelLayout::I420;
    case GST_VIDEO_FORMAT_NV12:
      return vs::PixelLayout::NV12;
    default:
      return vs::PixelLayout::RGB;
  }
}

static vs::StripEdge
strip_edge (GstSearchOverlayPosition position)
{
  switch (position) {
    case GST_SEARCH_OVERLAY_POSITION_TOP:
      return vs::StripEdge::Top;
    case GST_SEARCH_OVERLAY_POSITION_LEFT:
      return vs::StripEdge::Left;
    case GST_SEARCH_OVERLAY_POSITION_RIGHT:
      return vs::StripEdge::Right;
    default:
      return vs::StripEdge::Bottom;
  }
}

static void
format_caption (const GstVisualSearchNeighbor *nb, vs::StripTile *tile)
{
  char text[64];

  if (nb->label_name && *nb->label_name) {
    tile->label = nb->label_name;
  } else {
    if (nb->label >= 0)
      std::snprintf (text, sizeof text, "class %d", nb->label);
    else
      std::snprintf (text, sizeof text, "id %" G_GINT64_FORMAT, nb->id);
    tile->label = text;
  }
  std::snprintf (text, sizeof text, "%.3f", nb->distance);
  tile->score = text;
}

/* Each region with neighbours: its box, and its best match beside it. */
static void
draw_regions (GstSearchOverlay *self, GstBuffer *buffer, int thumb_size,
    const vs::FrameView &view)
{
  SearchOverlayState &st = *self->state;
  gpointer iter = NULL;
  vs::StripTile tile;

  while (GstMeta *meta = gst_buffer_iterate_meta_filtered (buffer, &iter,
             GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *> (meta);
    GstVisualSearchNeighbor best;
    const gchar *label_name = NULL, *source = NULL;
    if (!gst_visualsearch_region_get_neighbor (roi, 0, &best.id, &best.distance,
            &best.label, &label_name, &source))
      continue;
    best.label_name = const_cast<gchar *> (label_name);
    best.source = const_cast<gchar *> (source);
    tile.thumbnail =
        st.thumbnails->get (best.id, source ? source : "", thumb_size);
    format_caption (&best, &tile);
    const cv::Rect box ((int) MIN (roi->x, (guint) G_MAXINT / 2),
        (int) MIN (roi->y, (guint) G_MAXINT / 2),
        (int) MIN (roi->w, (guint) G_MAXINT / 2),
        (int) MIN (roi->h, (guint) G_MAXINT / 2));
    const cv::Rect drawn = st.strip.draw_region (box, tile, thumb_size, view);
    GST_LOG_OBJECT (self,
        "region %d (%s) at %u,%u %ux%u: best match %" G_GINT64_FORMAT
        " drawn at %d,%d",
        roi->id, g_quark_to_string (roi->roi_type), roi->x, roi->y, roi->w,
        roi->h, best.id, drawn.x, drawn.y);
  }
}

static GstFlowReturn
gst_search_overlay_transform_frame_ip (GstVideoFilter *filter,
    GstVideoFrame *frame)
{
  GstSearchOverlay *self = GST_SEARCH_OVERLAY (filter);
  SearchOverlayState &st = *self->state;
  const GstVisualSearchNeighborsMeta *nmeta =
      gst_buffer_get_visualsearch_neighbors_meta (frame->buffer);
  const bool fresh = has_neighbors (frame->buffer);
  const bool regions = has_region_neighbors (frame->buffer);

  GST_OBJECT_LOCK (self);
  const int thumb_size = self->thumb_size;
  const vs::StripEdge edge = strip_edge (self->position);
  const guint max_thumbs = self->max_thumbs;
  const guint cache_size = self->cache_size;
  const gboolean persist = self->persist;
  const char *dataset = self->dataset ? self->dataset : "";
  const char *index =
      self->index && *self->index ? self->index : st.stream_index.c_str ();
  bool new_cache = !st.thumbnails || st.thumbnails_dataset != dataset
      || st.thumbnails_capacity != cache_size || st.thumbnails_index != index;
  /* Copied only when it changed: no allocation per frame. */
  std::string new_dataset = new_cache ? dataset : "";
  std::string new_index = new_cache ? index : "";
  GST_OBJECT_UNLOCK (self);

  const bool strip = fresh || (persist && !st.tiles.empty ());
  if (!strip && !regions)
    return GST_FLOW_OK;

  /* faisssearch reloads a rebuilt index: its ids then name other items. */
  vs::FileStamp catalog_stamp;
  if ((fresh || regions)
      && !(new_cache ? new_index : st.thumbnails_index).empty ()) {
    catalog_stamp = vs::FileStamp::of (vs::catalog_path_for (new_cache
            ? new_index
            : st.thumbnails_index));
    if (!new_cache && catalog_stamp != st.thumbnails_catalog) {
      new_cache = true;
      new_dataset = st.thumbnails_dataset;
      new_index = st.thumbnails_index;
    }
  }

  if (new_cache) {
    std::shared_ptr<vs::CatalogThumbnails> catalog;
    std::string files_root;
    bool random_weights = false;
    if (!new_index.empty ()) {
      try {
        const std::string path = vs::catalog_path_for (new_index);
        const vs::IndexFacts facts = vs::Catalog::load_facts (path);
        files_root = facts.gallery_root;
        random_weights = vs::has_random_weights (facts.model_id);
        catalog = vs::CatalogThumbnails::open (path);
        if (!catalog)
          GST_INFO_OBJECT (self, "the catalog of %s holds no thumbnails",
              new_index.c_str ());
      } catch (const std::exception &e) {
        VS_ELEMENT_WARNING (self, e,
            ("Cannot read thumbnails from the catalog of %s: %s Thumbnails "
             "are read from the original files instead.",
                new_index.c_str (), e.what ()),
            (NULL));
      }
    }
    st.thumbnails = std::make_unique<vs::ThumbnailCache> (cache_size,
        std::make_shared<vs::CifarSources> (new_dataset), std::move (catalog),
        std::move (files_root));
    st.thumbnails_dataset = std::move (new_dataset);
    st.thumbnails_index = std::move (new_index);
    st.thumbnails_capacity = cache_size;
    st.thumbnails_catalog = catalog_stamp;
    st.random_weights = random_weights;
  }

  try {
    if (fresh) {
      st.tiles.resize (MIN (nmeta->n_neighbors, max_thumbs));
      for (guint i = 0; i < st.tiles.size (); i++) {
        const GstVisualSearchNeighbor *nb = &nmeta->neighbors[i];
        st.tiles[i].thumbnail = st.thumbnails->get (nb->id,
            nb->source ? nb->source : "", thumb_size);
        format_caption (nb, &st.tiles[i]);
      }
    }

    vs::FrameView view;
    view.layout = pixel_layout (GST_VIDEO_FRAME_FORMAT (frame));
    view.width = GST_VIDEO_FRAME_WIDTH (frame);
    view.height = GST_VIDEO_FRAME_HEIGHT (frame);
    for (guint p = 0; p < 3; p++) {
      const bool mapped = p < GST_VIDEO_FRAME_N_PLANES (frame);
      view.planes[p] = mapped
          ? static_cast<uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (frame, p))
          : NULL;
      view.strides[p] = mapped ? GST_VIDEO_FRAME_PLANE_STRIDE (frame, p) : 0;
    }

    if (strip) {
      const cv::Rect drawn = st.strip.draw (st.tiles, thumb_size, edge, view);
      if (drawn.empty ())
        GST_LOG_OBJECT (self, "a %dx%d frame has no room for %d px thumbnails",
            view.width, view.height, thumb_size);
    }
    if (regions)
      draw_regions (self, frame->buffer, thumb_size, view);
    if (st.random_weights)
      st.strip.draw_notice ("RANDOM WEIGHTS: scores not meaningful", thumb_size,
          edge, view);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Could not draw the search results: %s", e.what ()), (NULL));
    return GST_FLOW_ERROR;
  }

  for (const std::string &warning : st.thumbnails->take_warnings ())
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("%s", warning.c_str ()),
        (NULL));
  return GST_FLOW_OK;
}
