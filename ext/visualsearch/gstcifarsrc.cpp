// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-cifarsrc
 * @title: cifarsrc
 *
 * Reads CIFAR-10 or CIFAR-100 and pushes every image as a 32x32 RGB video
 * frame that carries a #GstVisualSearchSampleMeta: id (the record's position in the
 * selected split order, counted from the first record of the split, not from
 * #GstCifarSrc:offset), label, label name and source, e.g.
 * `cifar10/train/1234` (the index within its own split, which the
 * searchoverlay and the catalog use to find the image again).
 *
 * #GstCifarSrc:location is the dataset directory (cifar-10-batches-py,
 * cifar-100-python, cifar-10-batches-bin, cifar-100-binary, or a directory
 * holding one of them) or a single batch file; both official formats are
 * detected. With split=all the training records come first, then the test
 * records. The stream ends with EOS after the last record, or after
 * #GstBaseSrc:num-buffers frames.
 *
 * Timestamps: with the default framerate 0/1 the element is not live and
 * pushes frames as fast as downstream takes them; frame n gets PTS n
 * milliseconds and a duration of 1 ms, so timestamps are monotonic and the
 * same in every run. With a framerate N/D the element is a live source, like
 * `videotestsrc is-live=true`: frame n gets PTS n*D/N seconds after the
 * running time at which streaming started (GstBaseSrc adds that offset to a
 * live stream) and GstBaseSrc waits on the pipeline clock before pushing it.
 * The source is not seekable.
 *
 * A truncated or corrupt file is an error unless #GstCifarSrc:strict is
 * false: then every complete record is kept and a warning says how many were
 * dropped.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 cifarsrc location=cifar-10-batches-py split=test ! embedder ! \
 *     faisssearch index=train.faiss ! fakesink
 * gst-launch-1.0 cifarsrc location=cifar-100-binary label-kind=coarse framerate=5/1 ! \
 *     videoscale ! video/x-raw,width=256,height=256 ! videoconvert ! autovideosink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstcifarsrc.h"

#include <gst/visualsearch/visualsearchmeta.h>

#include <string>

#include "engine/dataset/cifar_dataset.h"
#include "elements.h"
#include "element_error.h"

GST_DEBUG_CATEGORY_STATIC (gst_cifar_src_debug);
#define GST_CAT_DEFAULT gst_cifar_src_debug

#define DEFAULT_SPLIT GST_CIFAR_SRC_SPLIT_TRAIN
#define DEFAULT_OFFSET 0
#define DEFAULT_LABEL_KIND GST_CIFAR_SRC_LABEL_KIND_FINE
#define DEFAULT_STRICT TRUE
#define DEFAULT_FPS_N 0
#define DEFAULT_FPS_D 1
/* The nominal duration of a frame when the framerate is 0/1. */
#define UNPACED_FRAME_DURATION GST_MSECOND

enum
{
  PROP_0,
  PROP_LOCATION,
  PROP_SPLIT,
  PROP_OFFSET,
  PROP_LABEL_KIND,
  PROP_STRICT,
  PROP_FRAMERATE,
};

struct _GstCifarSrc
{
  GstPushSrc parent;

  /* properties, under the object lock */
  gchar *location;
  GstCifarSrcSplit split;
  guint64 offset;
  GstCifarSrcLabelKind label_kind;
  gboolean strict;
  gint fps_n;
  gint fps_d;

  /* the C++ state: created in start, destroyed in stop */
  vs::CifarDataset *dataset;
  /* streaming state, set in start */
  guint64 position; /* next record */
  guint64 frames; /* frames pushed since start */
  gint stream_fps_n;
  gint stream_fps_d;
};

#define CIFAR_CAPS \
  "video/x-raw, format = (string) RGB, width = (int) 32, height = (int) 32, " \
  "pixel-aspect-ratio = (fraction) 1/1, framerate = (fraction) [ 0/1, MAX ]"

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (CIFAR_CAPS));

#define GST_TYPE_CIFAR_SRC_SPLIT (gst_cifar_src_split_get_type ())
static GType
gst_cifar_src_split_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_CIFAR_SRC_SPLIT_TRAIN, "The training batches", "train"},
      {GST_CIFAR_SRC_SPLIT_TEST, "The test batch", "test"},
      {GST_CIFAR_SRC_SPLIT_ALL, "The training batches, then the test batch",
          "all"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstCifarSrcSplit", values));
  return (GType) type;
}

#define GST_TYPE_CIFAR_SRC_LABEL_KIND (gst_cifar_src_label_kind_get_type ())
static GType
gst_cifar_src_label_kind_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_CIFAR_SRC_LABEL_KIND_FINE,
          "The fine classes (CIFAR-10's 10, "
          "CIFAR-100's 100)",
          "fine"},
      {GST_CIFAR_SRC_LABEL_KIND_COARSE, "CIFAR-100's 20 superclasses",
          "coarse"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstCifarSrcLabelKind", values));
  return (GType) type;
}

static void gst_cifar_src_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_cifar_src_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_cifar_src_finalize (GObject *object);
static GstCaps *gst_cifar_src_get_caps (GstBaseSrc *src, GstCaps *filter);
static gboolean gst_cifar_src_query (GstBaseSrc *src, GstQuery *query);
static gboolean gst_cifar_src_is_seekable (GstBaseSrc *src);
static gboolean gst_cifar_src_start (GstBaseSrc *src);
static gboolean gst_cifar_src_stop (GstBaseSrc *src);
static void gst_cifar_src_get_times (GstBaseSrc *src, GstBuffer *buffer,
    GstClockTime *start, GstClockTime *end);
static GstFlowReturn gst_cifar_src_create (GstPushSrc *src, GstBuffer **buf);

#define gst_cifar_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstCifarSrc, gst_cifar_src, GST_TYPE_PUSH_SRC,
    GST_DEBUG_CATEGORY_INIT (gst_cifar_src_debug, "cifarsrc", 0,
        "CIFAR-10/100 dataset source"));
GST_ELEMENT_REGISTER_DEFINE (cifarsrc, "cifarsrc", GST_RANK_NONE,
    GST_TYPE_CIFAR_SRC);

static void
gst_cifar_src_class_init (GstCifarSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);
  const GParamFlags flags = (GParamFlags) (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  gobject_class->set_property = gst_cifar_src_set_property;
  gobject_class->get_property = gst_cifar_src_get_property;
  gobject_class->finalize = gst_cifar_src_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "The CIFAR dataset directory (e.g. cifar-10-batches-py, "
          "cifar-100-binary) or one batch file",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_SPLIT,
      g_param_spec_enum ("split", "Split",
          "Which records to read; ignored when location is one batch file",
          GST_TYPE_CIFAR_SRC_SPLIT, DEFAULT_SPLIT, flags));
  g_object_class_install_property (gobject_class, PROP_OFFSET,
      g_param_spec_uint64 ("offset", "Offset",
          "Position of the first record to push in the split order "
          "(with split=all the test records follow the training ones)",
          0, G_MAXUINT64, DEFAULT_OFFSET, flags));
  g_object_class_install_property (gobject_class, PROP_LABEL_KIND,
      g_param_spec_enum ("label-kind", "Label kind",
          "Which labels to attach: fine classes, or CIFAR-100's coarse "
          "superclasses",
          GST_TYPE_CIFAR_SRC_LABEL_KIND, DEFAULT_LABEL_KIND, flags));
  g_object_class_install_property (gobject_class, PROP_STRICT,
      g_param_spec_boolean ("strict", "Strict",
          "Fail on a truncated or corrupt file; when false, push every "
          "complete record and post a warning saying what was dropped",
          DEFAULT_STRICT, flags));
  g_object_class_install_property (gobject_class, PROP_FRAMERATE,
      gst_param_spec_fraction ("framerate", "Frame rate",
          "Frames per second: 0/1 pushes frames as fast as downstream takes "
          "them; any other rate makes the element a live source paced by the "
          "pipeline clock",
          0, 1, G_MAXINT, 1, DEFAULT_FPS_N, DEFAULT_FPS_D, flags));

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "CIFAR dataset source",
      "Source/Video",
      "Reads CIFAR-10/100 (python and binary formats) and pushes 32x32 RGB "
      "frames carrying their label as GstVisualSearchSampleMeta",
      "visualsearch developers");

  basesrc_class->get_caps = GST_DEBUG_FUNCPTR (gst_cifar_src_get_caps);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_cifar_src_query);
  basesrc_class->is_seekable = GST_DEBUG_FUNCPTR (gst_cifar_src_is_seekable);
  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_cifar_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_cifar_src_stop);
  basesrc_class->get_times = GST_DEBUG_FUNCPTR (gst_cifar_src_get_times);
  pushsrc_class->create = GST_DEBUG_FUNCPTR (gst_cifar_src_create);

  gst_type_mark_as_plugin_api (GST_TYPE_CIFAR_SRC_SPLIT, (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_CIFAR_SRC_LABEL_KIND,
      (GstPluginAPIFlags) 0);
}

static void
gst_cifar_src_init (GstCifarSrc *self)
{
  self->split = DEFAULT_SPLIT;
  self->offset = DEFAULT_OFFSET;
  self->label_kind = DEFAULT_LABEL_KIND;
  self->strict = DEFAULT_STRICT;
  self->fps_n = DEFAULT_FPS_N;
  self->fps_d = DEFAULT_FPS_D;

  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
}

static void
gst_cifar_src_finalize (GObject *object)
{
  GstCifarSrc *self = GST_CIFAR_SRC (object);

  g_free (self->location);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_cifar_src_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstCifarSrc *self = GST_CIFAR_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_SPLIT:
      self->split = (GstCifarSrcSplit) g_value_get_enum (value);
      break;
    case PROP_OFFSET:
      self->offset = g_value_get_uint64 (value);
      break;
    case PROP_LABEL_KIND:
      self->label_kind = (GstCifarSrcLabelKind) g_value_get_enum (value);
      break;
    case PROP_STRICT:
      self->strict = g_value_get_boolean (value);
      break;
    case PROP_FRAMERATE:
      self->fps_n = gst_value_get_fraction_numerator (value);
      self->fps_d = gst_value_get_fraction_denominator (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  const gboolean live = self->fps_n > 0;
  GST_OBJECT_UNLOCK (self);

  /* GstBaseSrc reads liveness before start(), when going to PAUSED. */
  if (prop_id == PROP_FRAMERATE)
    gst_base_src_set_live (GST_BASE_SRC (self), live);
}

static void
gst_cifar_src_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstCifarSrc *self = GST_CIFAR_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_SPLIT:
      g_value_set_enum (value, self->split);
      break;
    case PROP_OFFSET:
      g_value_set_uint64 (value, self->offset);
      break;
    case PROP_LABEL_KIND:
      g_value_set_enum (value, self->label_kind);
      break;
    case PROP_STRICT:
      g_value_set_boolean (value, self->strict);
      break;
    case PROP_FRAMERATE:
      gst_value_set_fraction (value, self->fps_n, self->fps_d);
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
gst_cifar_src_get_caps (GstBaseSrc *src, GstCaps *filter)
{
  GstCifarSrc *self = GST_CIFAR_SRC (src);

  GST_OBJECT_LOCK (self);
  GstCaps *caps =
      gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "RGB",
          "width", G_TYPE_INT, vs::CifarDataset::kWidth, "height", G_TYPE_INT,
          vs::CifarDataset::kHeight, "pixel-aspect-ratio", GST_TYPE_FRACTION, 1,
          1, "framerate", GST_TYPE_FRACTION, self->fps_n, self->fps_d, NULL);
  GST_OBJECT_UNLOCK (self);

  if (filter) {
    GstCaps *intersection =
        gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (caps);
    caps = intersection;
  }
  return caps;
}

/* ------------------------------------------------------------------------ */
/* lifecycle */

static GstClockTime
frame_pts (GstCifarSrc *self, guint64 frame)
{
  if (self->stream_fps_n == 0)
    return frame * UNPACED_FRAME_DURATION;
  return gst_util_uint64_scale (frame, GST_SECOND * self->stream_fps_d,
      self->stream_fps_n);
}

static gboolean
gst_cifar_src_query (GstBaseSrc *src, GstQuery *query)
{
  GstCifarSrc *self = GST_CIFAR_SRC (src);

  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY
      && gst_base_src_is_live (src)) {
    GST_OBJECT_LOCK (self);
    const GstClockTime latency =
        gst_util_uint64_scale (GST_SECOND, self->fps_d, self->fps_n);
    GST_OBJECT_UNLOCK (self);
    /* A live frame is complete one frame duration after its timestamp. */
    gst_query_set_latency (query, TRUE, latency, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS (parent_class)->query (src, query);
}

static gboolean
gst_cifar_src_is_seekable (GstBaseSrc *src)
{
  return FALSE;
}

static gboolean
gst_cifar_src_start (GstBaseSrc *src)
{
  GstCifarSrc *self = GST_CIFAR_SRC (src);
  vs::CifarOptions options;

  GST_OBJECT_LOCK (self);
  const std::string location = self->location ? self->location : "";
  options.split = self->split == GST_CIFAR_SRC_SPLIT_TEST ? vs::CifarSplit::Test
      : self->split == GST_CIFAR_SRC_SPLIT_ALL            ? vs::CifarSplit::All
                                               : vs::CifarSplit::Train;
  options.label_kind = self->label_kind == GST_CIFAR_SRC_LABEL_KIND_COARSE
      ? vs::CifarLabelKind::Coarse
      : vs::CifarLabelKind::Fine;
  options.strict = self->strict;
  const guint64 offset = self->offset;
  self->stream_fps_n = self->fps_n;
  self->stream_fps_d = self->fps_d;
  GST_OBJECT_UNLOCK (self);

  if (location.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No CIFAR dataset given; set the 'location' property to the dataset "
         "directory (e.g. cifar-10-batches-py) or one batch file."),
        (NULL));
    return FALSE;
  }

  try {
    self->dataset =
        new vs::CifarDataset (vs::CifarDataset::open (location, options));
  } catch (const vs::CifarError &e) {
    VS_ELEMENT_ERROR (self, e, ("%s", e.what ()), (NULL));
    return FALSE;
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Cannot read the CIFAR dataset at %s: %s", location.c_str (),
            e.what ()),
        (NULL));
    return FALSE;
  }

  const vs::CifarDataset &dataset = *self->dataset;
  for (const std::string &warning : dataset.warnings ())
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("%s", warning.c_str ()),
        (NULL));
  GST_INFO_OBJECT (self, "opened %s at %s: %zu records",
      dataset.name ().c_str (), location.c_str (), dataset.size ());

  if (dataset.size () > 0 && offset >= dataset.size ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("The offset %" G_GUINT64_FORMAT " is past the end of the selected "
         "records of %s (%zu); choose an offset below %zu.",
            offset, location.c_str (), dataset.size (), dataset.size ()),
        (NULL));
    delete self->dataset;
    self->dataset = NULL;
    return FALSE;
  }
  self->position = offset;
  self->frames = 0;
  return TRUE;
}

static gboolean
gst_cifar_src_stop (GstBaseSrc *src)
{
  GstCifarSrc *self = GST_CIFAR_SRC (src);

  delete self->dataset;
  self->dataset = NULL;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* the buffer path */

static void
gst_cifar_src_get_times (GstBaseSrc *src, GstBuffer *buffer,
    GstClockTime *start, GstClockTime *end)
{
  /* Only a live source waits on the clock; otherwise push at once. */
  if (!gst_base_src_is_live (src)) {
    *start = *end = GST_CLOCK_TIME_NONE;
    return;
  }
  *start = GST_BUFFER_PTS (buffer);
  *end = GST_BUFFER_DURATION_IS_VALID (buffer)
      ? *start + GST_BUFFER_DURATION (buffer)
      : GST_CLOCK_TIME_NONE;
}

static GstFlowReturn
gst_cifar_src_create (GstPushSrc *src, GstBuffer **buf)
{
  GstCifarSrc *self = GST_CIFAR_SRC (src);
  const vs::CifarDataset &dataset = *self->dataset;

  if (self->position >= dataset.size ()) {
    GST_DEBUG_OBJECT (self, "all %zu records pushed", dataset.size ());
    return GST_FLOW_EOS;
  }

  const size_t i = self->position;
  GstBuffer *buffer =
      gst_buffer_new_allocate (NULL, vs::CifarDataset::kImageBytes, NULL);
  GstMapInfo map;
  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  dataset.rgb (i, map.data);
  gst_buffer_unmap (buffer, &map);

  GST_BUFFER_PTS (buffer) = frame_pts (self, self->frames);
  GST_BUFFER_DURATION (buffer) =
      frame_pts (self, self->frames + 1) - GST_BUFFER_PTS (buffer);
  GST_BUFFER_OFFSET (buffer) = i;
  GST_BUFFER_OFFSET_END (buffer) = i + 1;

  const int label = dataset.label (i);
  const std::string source = dataset.source (i);
  gst_buffer_add_visualsearch_sample_meta (buffer, static_cast<gint64> (i),
      label, dataset.label_name (label).c_str (), source.c_str ());
  GST_LOG_OBJECT (self, "record %zu: %s, label %d", i, source.c_str (), label);

  self->position++;
  self->frames++;
  *buf = buffer;
  return GST_FLOW_OK;
}
