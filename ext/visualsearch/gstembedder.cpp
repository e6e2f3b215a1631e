// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-embedder
 * @title: embedder
 *
 * Runs each video frame through a ResNet (torchvision weights, native C++) or
 * a TorchScript module and attaches the embedding as a
 * #GstVisualSearchEmbeddingMeta. Buffers pass through unchanged; frames can
 * be batched (#GstEmbedder:batch-size), thinned out
 * (#GstEmbedder:inference-interval) or, when downstream is late, skipped by
 * QoS.
 *
 * With #GstEmbedder:roi-types, it embeds regions instead of whole frames:
 * each #GstVideoRegionOfInterestMeta of those types that an upstream
 * detector attached (facedetect's "face", for one) is cropped, grown by
 * #GstEmbedder:roi-margin and clipped to the frame, preprocessed exactly as a
 * frame would be, and embedded in batches of #GstEmbedder:batch-size regions
 * gathered across frames. Each region's embedding is attached to its ROI meta
 * as the parameter "visualsearch-embedding" (see
 * gst_visualsearch_region_get_embedding()); regions smaller than
 * #GstEmbedder:roi-min-size are left out, and so are empty ones and ones
 * outside the frame (with a warning). Frames without such regions pass
 * untouched.
 *
 * Once its caps are set it announces the settings that define its embedding
 * space downstream (see embedder_settings.h); faissindexer records them in
 * the catalog. With #GstEmbedder:index the element adopts the settings
 * recorded for that index, so a query is embedded exactly as the gallery
 * was. A property set by the application must then agree with the index
 * (model and weights files by their identity, the model id); precision,
 * batch-size, inference-interval, threads and device are free. An index
 * built with precision=int8 records its activation ranges: unless precision
 * is set, the element adopts int8 with those ranges (no calibration-location
 * needed), so queries are quantized exactly as the gallery was. A catalog
 * without the record (written before catalog schema 4, or from embeddings no
 * embedder made) is an error: rebuild the index, or set the properties
 * instead.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=clip.mp4 ! decodebin ! videoconvert ! \
 *     embedder model=resnet50 batch-size=8 ! fakesink
 * ]|
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! embedder index=g.faiss ! \
 *     faisssearch index=g.faiss ! fakesink
 * ]|
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! facedetect display=false ! \
 *     embedder roi-types=face roi-margin=0.2 ! faisssearch index=faces.faiss ! \
 *     fakesink
 * ]|
 * |[
 * gst-launch-1.0 gallerysrc location=photos/ ! embedder precision=int8 \
 *     calibration-location=photos/ batch-size=16 ! faissindexer location=g.faiss
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstembedder.h"

#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/index/catalog.h"
#include "engine/base/cpu_features.h"
#include "engine/model/embedding_engine.h"
#include "engine/base/finite.h"
#include "element_error.h"
#include "embedder_settings.h"
#include "engine_enums.h"
#include "frame_qos.h"

GST_DEBUG_CATEGORY_STATIC (gst_embedder_debug);
#define GST_CAT_DEFAULT gst_embedder_debug

#define DEFAULT_MODEL "resnet18"
#define DEFAULT_WEIGHTS NULL
#define DEFAULT_INPUT_SIZE 224
#define DEFAULT_RESIZE 256
#define DEFAULT_MEAN "0.485,0.456,0.406"
#define DEFAULT_STD "0.229,0.224,0.225"
#define DEFAULT_NORMALIZE TRUE
#define DEFAULT_PRECISION vs::Precision::AUTO
#define DEFAULT_BATCH_SIZE 1
#define DEFAULT_INFERENCE_INTERVAL 1
#define DEFAULT_THREADS 0
#define DEFAULT_DEVICE "cpu"
#define DEFAULT_SEED 42
#define DEFAULT_INDEX NULL
#define DEFAULT_CALIBRATION_LOCATION NULL
#define DEFAULT_CALIBRATION_IMAGES 64
#define DEFAULT_ROI_TYPES NULL
#define DEFAULT_ROI_MARGIN 0.0
#define MAX_ROI_MARGIN 4.0
#define DEFAULT_ROI_MIN_SIZE 16

/* Regions embedded per frame at most: a detector gone wrong (thousands of
 * boxes) costs a bounded time per frame, with a warning. */
static constexpr size_t kMaxRegionsPerFrame = 256;

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_WEIGHTS,
  PROP_INPUT_SIZE,
  PROP_RESIZE,
  PROP_MEAN,
  PROP_STD,
  PROP_NORMALIZE,
  PROP_PRECISION,
  PROP_BATCH_SIZE,
  PROP_INFERENCE_INTERVAL,
  PROP_THREADS,
  PROP_DEVICE,
  PROP_SEED,
  PROP_INDEX,
  PROP_CALIBRATION_LOCATION,
  PROP_CALIBRATION_IMAGES,
  PROP_ROI_TYPES,
  PROP_ROI_MARGIN,
  PROP_ROI_MIN_SIZE,
  PROP_FRAMES_EMBEDDED,
  PROP_FRAMES_SKIPPED,
  PROP_MEAN_INFERENCE_MS,
  PROP_ACTIVE_PRECISION,
  PROP_REGIONS_EMBEDDED,
};

/* What a row of the engine's pending batch embeds: a whole frame (roi
 * null), or a region of it. The region is named by its meta, not its id:
 * detectors leave ids at 0 (facedetect does). The meta stays where it is
 * while the element holds the writable buffer. */
struct PendingRow
{
  GstBuffer *buffer;
  GstVideoRegionOfInterestMeta *roi;
};

/* Which regions roi-types asks for: none (whole frames), some types, or all. */
struct RoiFilter
{
  bool regions = false;
  bool all = false;
  std::vector<GQuark> types;

  bool wants (GQuark type) const
  {
    return all
        || std::find (types.begin (), types.end (), type) != types.end ();
  }
};

/* The C++ state of a stream: created in start, destroyed in stop. start(),
 * stop(), the caps and the streaming thread touch it, never at the same time,
 * so it needs no lock. */
struct EmbedderState
{
  std::unique_ptr<vs::EmbeddingEngine> engine;
  /* The model property the engine was made from: a name or a file. */
  std::string model;
  /* What the engine embeds with, announced downstream at caps time. */
  std::unique_ptr<GstStructure, decltype (&gst_structure_free)>
      settings{nullptr, gst_structure_free};

  GstVideoInfo info;
  /* YUV frames go through RGB first; packed RGB is read in place. */
  std::unique_ptr<GstVideoConverter, decltype (&gst_video_converter_free)>
      converter{nullptr, gst_video_converter_free};
  GstVideoInfo rgb_info;
  std::vector<uint8_t> rgb;

  /* Frames waiting for the batch, in arrival order, and frames ready to go;
   * the frame or region of each row of the engine's pending batch. */
  std::deque<GstBuffer *> held;
  std::deque<GstBuffer *> ready;
  std::vector<PendingRow> rows;

  /* roi-types, roi-margin and roi-min-size, read at start. */
  RoiFilter roi_filter;
  double roi_margin = DEFAULT_ROI_MARGIN;
  guint roi_min_size = DEFAULT_ROI_MIN_SIZE;
  /* Whether the user was told of regions clipped to the frame, regions with
   * nothing left inside it, and frames with more than kMaxRegionsPerFrame. */
  bool warned_clipped = false;
  bool warned_outside = false;
  bool warned_too_many = false;

  bool normalized = true;
  /* False when the caps' frames are too elongated for the resize: they pass
   * without an embedding. */
  bool embeddable = true;
  /* Whether the user was told that the model made a non-finite embedding,
   * and an all-zero one. */
  bool warned_non_finite = false;
  bool warned_all_zero = false;
  /* Whether the log says that the engine's kernels fell back. */
  bool logged_degraded = false;
  guint64 frame_count = 0;

  void drop_buffers ()
  {
    for (GstBuffer *b : held)
      gst_buffer_unref (b);
    held.clear ();
    rows.clear ();
    for (GstBuffer *b : ready)
      gst_buffer_unref (b);
    ready.clear ();
    if (engine)
      engine->clear ();
  }

  ~EmbedderState ()
  {
    drop_buffers ();
  }
};

struct _GstEmbedder
{
  GstBaseTransform parent;

  /* Properties and statistics, guarded by the object lock. */
  gchar *model;
  gchar *weights;
  guint input_size;
  guint resize;
  gchar *mean;
  gchar *std;
  gboolean normalize;
  vs::Precision precision;
  guint batch_size;
  guint inference_interval;
  guint threads;
  gchar *device;
  guint64 seed;
  gchar *index;
  gchar *calibration_location;
  guint calibration_images;
  gchar *roi_types;
  gdouble roi_margin;
  guint roi_min_size;
  /* Bit 1 << PROP_x for each property the application set: those must agree
   * with the index, the others are adopted from it. */
  guint explicit_props;
  /* Set while start() writes the index's settings into the properties. */
  gboolean adopting;
  guint64 frames_embedded;
  guint64 frames_skipped;
  guint64 regions_embedded;
  /* Milliseconds spent preprocessing and running the model since start. */
  double busy_ms;
  /* Frames due before this running time go without embedding; set from
   * downstream's thread by QoS events. */
  GstClockTime qos_earliest;
  /* What the running engine computes in; unset (-1) until start. */
  gint active_precision;

  /* created in start, destroyed in stop */
  EmbedderState *state;
};

#define VIDEO_FORMATS \
  "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, " \
  "ABGR, GRAY8, I420, NV12, YUY2 }"

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
        GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
        GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

GType
gst_embedder_precision_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_EMBEDDER_PRECISION_FP32, "32-bit float, matches torchvision to 1e-4",
          "fp32"},
      {GST_EMBEDDER_PRECISION_BF16,
          "bfloat16 weights and activations: several times faster on CPUs "
          "with AVX-512 BF16 or AMX, within 0.99 cosine of fp32",
          "bf16"},
      {GST_EMBEDDER_PRECISION_AUTO,
          "the fastest of these whose embeddings stay within 0.999 cosine of "
          "fp32 on this CPU, checked on a calibration batch at start",
          "auto"},
      {GST_EMBEDDER_PRECISION_INT8,
          "8-bit integer weights and activations (native ResNets): about "
          "twice as fast as fp32 (resnet18 on an AVX2 CPU), within 0.99 "
          "cosine of fp32; "
          "activation ranges calibrated on calibration-location at start, or "
          "taken from an int8 index",
          "int8"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstEmbedderPrecision", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

#define gst_embedder_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstEmbedder, gst_embedder, GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_embedder_debug, "embedder", 0,
        "ResNet / TorchScript frame embeddings"));
GST_ELEMENT_REGISTER_DEFINE (embedder, "embedder", GST_RANK_NONE,
    GST_TYPE_EMBEDDER);

static void gst_embedder_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_embedder_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_embedder_finalize (GObject *object);
static gboolean gst_embedder_start (GstBaseTransform *trans);
static gboolean gst_embedder_stop (GstBaseTransform *trans);
static gboolean gst_embedder_set_caps (GstBaseTransform *trans, GstCaps *incaps,
    GstCaps *outcaps);
static gboolean gst_embedder_sink_event (GstBaseTransform *trans,
    GstEvent *event);
static gboolean gst_embedder_src_event (GstBaseTransform *trans,
    GstEvent *event);
static gboolean gst_embedder_query (GstBaseTransform *trans,
    GstPadDirection direction, GstQuery *query);
static GstFlowReturn gst_embedder_submit_input_buffer (GstBaseTransform *trans,
    gboolean is_discont, GstBuffer *buf);
static GstFlowReturn gst_embedder_generate_output (GstBaseTransform *trans,
    GstBuffer **outbuf);

static void
gst_embedder_class_init (GstEmbedderClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags rw = static_cast<GParamFlags> (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const GParamFlags live = static_cast<GParamFlags> (G_PARAM_READWRITE
      | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  const GParamFlags ro =
      static_cast<GParamFlags> (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  gobject_class->set_property = gst_embedder_set_property;
  gobject_class->get_property = gst_embedder_get_property;
  gobject_class->finalize = gst_embedder_finalize;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "resnet18, resnet34, resnet50, resnet101, resnet152 (native, "
          "torchvision weights), or the path of a TorchScript file whose "
          "forward maps a normalised NCHW float batch to (N, D) embeddings",
          DEFAULT_MODEL, rw));
  g_object_class_install_property (gobject_class, PROP_WEIGHTS,
      g_param_spec_string ("weights", "Weights",
          "torchvision .pth state dict of the ResNet; unset: the official file "
          "(e.g. resnet18-f37072fd.pth) under $TORCH_HOME/hub/checkpoints, "
          "else "
          "~/.cache/torch/hub/checkpoints; \"random\": deterministic random "
          "weights from 'seed' (meaningless for similarity). See "
          "models/README.md",
          DEFAULT_WEIGHTS, rw));
  g_object_class_install_property (gobject_class, PROP_INPUT_SIZE,
      g_param_spec_uint ("input-size", "Input size",
          "Side of the square the model sees (centre crop)", 1, 4096,
          DEFAULT_INPUT_SIZE, rw));
  g_object_class_install_property (gobject_class, PROP_RESIZE,
      g_param_spec_uint ("resize", "Resize",
          "Shorter side after the antialiased bilinear resize and before the "
          "centre crop; 0 stretches the frame straight to input-size (e.g. "
          "CIFAR at 32x32). The longer side keeps the aspect ratio, so frames "
          "more elongated than 32:1 (whose resized longer side would exceed "
          "32 x resize) are not embedded: a warning at caps time, then they "
          "pass without an embedding",
          0, 8192, DEFAULT_RESIZE, rw));
  g_object_class_install_property (gobject_class, PROP_MEAN,
      g_param_spec_string ("mean", "Mean",
          "Per-channel (R,G,B) mean subtracted after scaling to [0,1], as "
          "three comma-separated finite numbers",
          DEFAULT_MEAN, rw));
  g_object_class_install_property (gobject_class, PROP_STD,
      g_param_spec_string ("std", "Standard deviation",
          "Per-channel (R,G,B) standard deviation divided by after the mean, "
          "as three comma-separated positive numbers",
          DEFAULT_STD, rw));
  g_object_class_install_property (gobject_class, PROP_NORMALIZE,
      g_param_spec_boolean ("normalize", "Normalize",
          "L2-normalise the embedding (inner product = cosine similarity)",
          DEFAULT_NORMALIZE, rw));
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "Arithmetic of the model; bf16 needs a CPU with native bf16 and "
          "otherwise runs as fp32; auto measures fp32 and (where native) "
          "bf16 on a batch of batch-size at start and keeps the faster one "
          "that stays within 0.999 cosine of fp32, cached per CPU, model, "
          "input size, batch size and threads in the user's cache folder "
          "(see active-precision); int8 needs calibration-location (or "
          "index= naming an int8 index)",
          GST_TYPE_EMBEDDER_PRECISION, to_gst_precision (DEFAULT_PRECISION),
          rw));
  g_object_class_install_property (gobject_class, PROP_BATCH_SIZE,
      g_param_spec_uint ("batch-size", "Batch size",
          "Frames held back and embedded together (throughput for offline "
          "indexing; adds latency). Order and timestamps are kept; EOS and "
          "flushes drain the batch",
          1, 1024, DEFAULT_BATCH_SIZE, live));
  g_object_class_install_property (gobject_class, PROP_INFERENCE_INTERVAL,
      g_param_spec_uint ("inference-interval", "Inference interval",
          "Embed every Nth frame; the frames in between pass without "
          "metadata",
          1, G_MAXUINT, DEFAULT_INFERENCE_INTERVAL, live));
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_uint ("threads", "Threads",
          "Intra-op threads of the model; 0 = the number of cores", 0, 1024,
          DEFAULT_THREADS, rw));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "cpu, or cuda / cuda:N when LibTorch was built with CUDA",
          DEFAULT_DEVICE, rw));
  g_object_class_install_property (gobject_class, PROP_SEED,
      g_param_spec_uint64 ("seed", "Seed",
          "Seed of weights=random: the same seed gives the same weights in "
          "every process",
          0, G_MAXUINT64, DEFAULT_SEED, rw));
  g_object_class_install_property (gobject_class, PROP_INDEX,
      g_param_spec_string ("index", "Index",
          "A FAISS index built by faissindexer: embed exactly as its gallery "
          "was, with the model, weights, seed, input-size, resize, mean, std "
          "and normalize its catalog records (index + \".db\"). Those set "
          "here too must agree with the index (files by identity), or the "
          "element fails to start; the others are taken from the index, "
          "roi-types too for an index of regions",
          DEFAULT_INDEX, rw));
  g_object_class_install_property (gobject_class, PROP_CALIBRATION_LOCATION,
      g_param_spec_string ("calibration-location", "Calibration location",
          "precision=int8: a folder of images like those to be embedded "
          "(e.g. the gallery), of which the first calibration-images in "
          "sorted order, preprocessed as frames, calibrate the activation "
          "ranges at start. Not needed with index= naming an int8 index, "
          "whose catalog records the ranges",
          DEFAULT_CALIBRATION_LOCATION, rw));
  g_object_class_install_property (gobject_class, PROP_CALIBRATION_IMAGES,
      g_param_spec_uint ("calibration-images", "Calibration images",
          "precision=int8: how many images of calibration-location to "
          "calibrate on (each costs two fp32 passes at start)",
          1, 4096, DEFAULT_CALIBRATION_IMAGES, rw));
  g_object_class_install_property (gobject_class, PROP_ROI_TYPES,
      g_param_spec_string ("roi-types", "ROI types",
          "Embed regions instead of whole frames: a comma-separated list of "
          "the GstVideoRegionOfInterestMeta types to embed (e.g. \"face\" "
          "from facedetect), or \"*\" for every region. Each region is "
          "cropped (see roi-margin, roi-min-size), preprocessed exactly as a "
          "frame, batched with batch-size regions across frames, and its "
          "embedding attached to its ROI meta as the parameter "
          "\"visualsearch-embedding\"; such frames get no frame embedding. "
          "At most 256 regions per frame are embedded (a warning says when "
          "more come). Unset or empty: whole frames",
          DEFAULT_ROI_TYPES, rw));
  g_object_class_install_property (gobject_class, PROP_ROI_MARGIN,
      g_param_spec_double ("roi-margin", "ROI margin",
          "roi-types: the fraction of a region's width (height) added to its "
          "left and right (top and bottom) before cropping; the crop is "
          "clipped to the frame",
          0.0, MAX_ROI_MARGIN, DEFAULT_ROI_MARGIN, rw));
  g_object_class_install_property (gobject_class, PROP_ROI_MIN_SIZE,
      g_param_spec_uint ("roi-min-size", "ROI minimum size",
          "roi-types: regions whose shorter side, once clipped to the frame, "
          "is below this many pixels are not embedded",
          1, G_MAXINT, DEFAULT_ROI_MIN_SIZE, rw));
  g_object_class_install_property (gobject_class, PROP_FRAMES_EMBEDDED,
      g_param_spec_uint64 ("frames-embedded", "Frames embedded",
          "Frames that received an embedding since the element started "
          "(with roi-types: frames of which at least one region was "
          "embedded)",
          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_REGIONS_EMBEDDED,
      g_param_spec_uint64 ("regions-embedded", "Regions embedded",
          "roi-types: regions that received an embedding since the element "
          "started",
          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_FRAMES_SKIPPED,
      g_param_spec_uint64 ("frames-skipped", "Frames skipped",
          "Frames passed without an embedding (inference-interval, QoS when "
          "downstream is late, frames too elongated for resize, or a model "
          "that made a NaN or infinite embedding; with roi-types, frames "
          "without a region to embed)",
          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_ACTIVE_PRECISION,
      g_param_spec_enum ("active-precision", "Active precision",
          "The arithmetic the model really runs in (fp32, bf16 or int8, "
          "never auto): precision=bf16 runs as fp32 (with a warning) on a CPU "
          "without native bf16 (AVX512_BF16 or AMX-BF16), or when "
          "VISUALSEARCH_HIDE_NATIVE_BF16=1 is set; precision=int8 runs as "
          "fp32 (with a warning) where LibTorch has no quantized engine for "
          "this CPU or device; precision=auto shows what it measured; "
          "before start, a guess (fp32 for auto)",
          GST_TYPE_EMBEDDER_PRECISION, to_gst_precision (vs::Precision::FP32),
          ro));
  g_object_class_install_property (gobject_class, PROP_MEAN_INFERENCE_MS,
      g_param_spec_double ("mean-inference-ms", "Mean inference time",
          "Mean milliseconds spent per embedded frame (preprocessing and "
          "model)",
          0.0, G_MAXDOUBLE, 0.0, ro));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Frame embedder",
      "Filter/Analysis/Video",
      "Attaches a ResNet or TorchScript embedding of each frame as "
      "GstVisualSearchEmbeddingMeta, with torchvision-exact preprocessing",
      "visualsearch developers");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_embedder_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_embedder_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_embedder_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_embedder_sink_event);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_embedder_src_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_embedder_query);
  trans_class->submit_input_buffer =
      GST_DEBUG_FUNCPTR (gst_embedder_submit_input_buffer);
  trans_class->generate_output =
      GST_DEBUG_FUNCPTR (gst_embedder_generate_output);

  gst_type_mark_as_plugin_api (GST_TYPE_EMBEDDER_PRECISION,
      static_cast<GstPluginAPIFlags> (0));
}

static void
gst_embedder_init (GstEmbedder *self)
{
  self->model = g_strdup (DEFAULT_MODEL);
  self->weights = g_strdup (DEFAULT_WEIGHTS);
  self->input_size = DEFAULT_INPUT_SIZE;
  self->resize = DEFAULT_RESIZE;
  self->mean = g_strdup (DEFAULT_MEAN);
  self->std = g_strdup (DEFAULT_STD);
  self->normalize = DEFAULT_NORMALIZE;
  self->precision = DEFAULT_PRECISION;
  self->batch_size = DEFAULT_BATCH_SIZE;
  self->inference_interval = DEFAULT_INFERENCE_INTERVAL;
  self->threads = DEFAULT_THREADS;
  self->device = g_strdup (DEFAULT_DEVICE);
  self->seed = DEFAULT_SEED;
  self->index = g_strdup (DEFAULT_INDEX);
  self->calibration_location = g_strdup (DEFAULT_CALIBRATION_LOCATION);
  self->calibration_images = DEFAULT_CALIBRATION_IMAGES;
  self->roi_types = g_strdup (DEFAULT_ROI_TYPES);
  self->roi_margin = DEFAULT_ROI_MARGIN;
  self->roi_min_size = DEFAULT_ROI_MIN_SIZE;
  self->active_precision = -1;
  self->qos_earliest = GST_CLOCK_TIME_NONE;

  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_embedder_finalize (GObject *object)
{
  GstEmbedder *self = GST_EMBEDDER (object);

  g_free (self->model);
  g_free (self->weights);
  g_free (self->mean);
  g_free (self->std);
  g_free (self->device);
  g_free (self->index);
  g_free (self->calibration_location);
  g_free (self->roi_types);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* ------------------------------------------------------------------------ */
/* Properties */

/* What start() will run in: bf16 on a CPU only where it is native; auto
 * decides by measuring at start (EmbeddingEngine::precision_reason()), so
 * until then it reads as fp32, what it keeps whenever bf16 does not win. */
static vs::Precision
predicted_precision (vs::Precision asked, const gchar *device)
{
  const bool cpu = device == NULL || g_str_has_prefix (device, "cpu");
  if (asked == vs::Precision::AUTO)
    return vs::Precision::FP32;
  if (asked == vs::Precision::BF16 && cpu && !vs::native_bf16 ())
    return vs::Precision::FP32;
  return asked;
}

static void
gst_embedder_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstEmbedder *self = GST_EMBEDDER (object);

  GST_OBJECT_LOCK (self);
  if (!self->adopting)
    self->explicit_props |= 1u << prop_id;
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model);
      self->model = g_value_dup_string (value);
      break;
    case PROP_WEIGHTS:
      g_free (self->weights);
      self->weights = g_value_dup_string (value);
      break;
    case PROP_INPUT_SIZE:
      self->input_size = g_value_get_uint (value);
      break;
    case PROP_RESIZE:
      self->resize = g_value_get_uint (value);
      break;
    case PROP_MEAN:
      g_free (self->mean);
      self->mean = g_value_dup_string (value);
      break;
    case PROP_STD:
      g_free (self->std);
      self->std = g_value_dup_string (value);
      break;
    case PROP_NORMALIZE:
      self->normalize = g_value_get_boolean (value);
      break;
    case PROP_PRECISION:
      self->precision =
          to_engine_precision ((GstEmbedderPrecision) g_value_get_enum (value));
      break;
    case PROP_BATCH_SIZE:
      self->batch_size = g_value_get_uint (value);
      break;
    case PROP_INFERENCE_INTERVAL:
      self->inference_interval = g_value_get_uint (value);
      break;
    case PROP_THREADS:
      self->threads = g_value_get_uint (value);
      break;
    case PROP_DEVICE:
      g_free (self->device);
      self->device = g_value_dup_string (value);
      break;
    case PROP_SEED:
      self->seed = g_value_get_uint64 (value);
      break;
    case PROP_INDEX:
      g_free (self->index);
      self->index = g_value_dup_string (value);
      break;
    case PROP_CALIBRATION_LOCATION:
      g_free (self->calibration_location);
      self->calibration_location = g_value_dup_string (value);
      break;
    case PROP_CALIBRATION_IMAGES:
      self->calibration_images = g_value_get_uint (value);
      break;
    case PROP_ROI_TYPES:
      g_free (self->roi_types);
      self->roi_types = g_value_dup_string (value);
      break;
    case PROP_ROI_MARGIN:
      self->roi_margin = g_value_get_double (value);
      break;
    case PROP_ROI_MIN_SIZE:
      self->roi_min_size = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_embedder_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstEmbedder *self = GST_EMBEDDER (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model);
      break;
    case PROP_WEIGHTS:
      g_value_set_string (value, self->weights);
      break;
    case PROP_INPUT_SIZE:
      g_value_set_uint (value, self->input_size);
      break;
    case PROP_RESIZE:
      g_value_set_uint (value, self->resize);
      break;
    case PROP_MEAN:
      g_value_set_string (value, self->mean);
      break;
    case PROP_STD:
      g_value_set_string (value, self->std);
      break;
    case PROP_NORMALIZE:
      g_value_set_boolean (value, self->normalize);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, to_gst_precision (self->precision));
      break;
    case PROP_BATCH_SIZE:
      g_value_set_uint (value, self->batch_size);
      break;
    case PROP_INFERENCE_INTERVAL:
      g_value_set_uint (value, self->inference_interval);
      break;
    case PROP_THREADS:
      g_value_set_uint (value, self->threads);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    case PROP_SEED:
      g_value_set_uint64 (value, self->seed);
      break;
    case PROP_INDEX:
      g_value_set_string (value, self->index);
      break;
    case PROP_CALIBRATION_LOCATION:
      g_value_set_string (value, self->calibration_location);
      break;
    case PROP_CALIBRATION_IMAGES:
      g_value_set_uint (value, self->calibration_images);
      break;
    case PROP_ROI_TYPES:
      g_value_set_string (value, self->roi_types);
      break;
    case PROP_ROI_MARGIN:
      g_value_set_double (value, self->roi_margin);
      break;
    case PROP_ROI_MIN_SIZE:
      g_value_set_uint (value, self->roi_min_size);
      break;
    case PROP_REGIONS_EMBEDDED:
      g_value_set_uint64 (value, self->regions_embedded);
      break;
    case PROP_FRAMES_EMBEDDED:
      g_value_set_uint64 (value, self->frames_embedded);
      break;
    case PROP_FRAMES_SKIPPED:
      g_value_set_uint64 (value, self->frames_skipped);
      break;
    case PROP_ACTIVE_PRECISION:
      g_value_set_enum (value,
          to_gst_precision (self->active_precision >= 0
                  ? static_cast<vs::Precision> (self->active_precision)
                  : predicted_precision (self->precision, self->device)));
      break;
    case PROP_MEAN_INFERENCE_MS:
      g_value_set_double (value,
          self->frames_embedded ? self->busy_ms / self->frames_embedded : 0.0);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ------------------------------------------------------------------------ */
/* Lifecycle */

/* The properties as an engine configuration; false, with the offending
 * property in *invalid, when mean or std does not parse. */
static bool
config_from_properties (GstEmbedder *self, vs::EmbeddingConfig *config,
    std::string *invalid)
{
  GST_OBJECT_LOCK (self);
  config->model = self->model ? self->model : "";
  config->weights = self->weights ? self->weights : "";
  config->seed = self->seed;
  config->input_size = static_cast<int> (self->input_size);
  config->resize = static_cast<int> (self->resize);
  if (!parse_triple (self->mean, &config->mean))
    *invalid = std::string ("mean=") + GST_STR_NULL (self->mean);
  else if (!parse_triple (self->std, &config->std))
    *invalid = std::string ("std=") + GST_STR_NULL (self->std);
  config->normalize = self->normalize;
  config->precision = self->precision;
  config->calibration_location =
      self->calibration_location ? self->calibration_location : "";
  config->calibration_images = static_cast<int> (self->calibration_images);
  config->threads = static_cast<int> (self->threads);
  config->batch_size = static_cast<int> (self->batch_size);
  config->device = self->device ? self->device : "";
  GST_OBJECT_UNLOCK (self);
  return invalid->empty ();
}

/* A property the application set that the index's settings contradict. */
struct Contradiction
{
  const gchar *property;
  std::string set;
  std::string recorded;
};

static std::string
weights_text (const std::string &weights)
{
  return weights.empty () ? "(unset: the official file)" : weights;
}

/* Model and weights files are compared later, by the identity of what they
 * load (the model id): the same file may live elsewhere now. So is anything
 * set against a TorchScript index's model, which has no weights or seed. */
static std::optional<Contradiction>
find_contradiction (const vs::EmbeddingConfig &mine, guint set,
    const EmbedderSettings &index)
{
  const vs::EmbeddingConfig &theirs = index.config;
  auto is_set = [set] (guint prop) { return (set & (1u << prop)) != 0; };
  auto text = [] (auto value) { return std::to_string (value); };
  auto flag = [] (bool value) {
    return std::string (value ? "true" : "false");
  };

  if (is_set (PROP_MODEL) && !index.torchscript ()
      && mine.model != theirs.model)
    return Contradiction{"model", mine.model, theirs.model};
  if (is_set (PROP_WEIGHTS) && !index.torchscript ()
      && (mine.weights == "random") != (theirs.weights == "random"))
    return Contradiction{"weights", weights_text (mine.weights),
        weights_text (theirs.weights)};
  if (is_set (PROP_SEED) && !index.torchscript () && theirs.weights == "random"
      && mine.seed != theirs.seed)
    return Contradiction{"seed", text (mine.seed), text (theirs.seed)};
  if (is_set (PROP_INPUT_SIZE) && mine.input_size != theirs.input_size)
    return Contradiction{"input-size", text (mine.input_size),
        text (theirs.input_size)};
  if (is_set (PROP_RESIZE) && mine.resize != theirs.resize)
    return Contradiction{"resize", text (mine.resize), text (theirs.resize)};
  if (is_set (PROP_MEAN) && mine.mean != theirs.mean)
    return Contradiction{"mean", format_triple (mine.mean),
        format_triple (theirs.mean)};
  if (is_set (PROP_STD) && mine.std != theirs.std)
    return Contradiction{"std", format_triple (mine.std),
        format_triple (theirs.std)};
  if (is_set (PROP_NORMALIZE) && mine.normalize != theirs.normalize)
    return Contradiction{"normalize", flag (mine.normalize),
        flag (theirs.normalize)};
  return std::nullopt;
}

/* The roi-types an embedder of regions records with its settings (see
 * announce_engine); "" for an index of whole frames. */
static std::string
recorded_roi_types (const std::string &text)
{
  std::string types;
  if (GstStructure *s = gst_structure_from_string (text.c_str (), NULL)) {
    if (const gchar *t = gst_structure_get_string (s, "roi-types"))
      types = t;
    gst_structure_free (s);
  }
  return types;
}

/* Takes the settings recorded for index into the properties the application
 * did not set, after checking that those it set agree with them. The
 * recorded settings, or nullopt after posting an error. */
static std::optional<EmbedderSettings>
adopt_index_settings (GstEmbedder *self, const std::string &index)
{
  EmbedderSettings recorded;
  std::string roi_types;
  const std::string catalog = vs::catalog_path_for (index);
  try {
    const std::string text = vs::Catalog::load_facts (catalog).embedder_config;
    if (text.empty ()) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("The index %s does not record the embedder settings it was built "
           "with, so index= cannot adopt them: its catalog %s predates "
           "catalog schema 4, or its embeddings did not come from an "
           "embedder. Rebuild the index (faissindexer after an embedder), "
           "or set model, weights, input-size, resize, mean, std and "
           "normalize as when it was built instead of index=.",
              index.c_str (), catalog.c_str ()),
          (NULL));
      return std::nullopt;
    }
    recorded = embedder_settings_from_string (text);
    roi_types = recorded_roi_types (text);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e,
        ("Cannot read the embedder settings of the index %s: %s",
            index.c_str (), e.what ()),
        (NULL));
    return std::nullopt;
  }

  vs::EmbeddingConfig mine;
  std::string invalid;
  config_from_properties (self, &mine, &invalid);
  GST_OBJECT_LOCK (self);
  const guint set = self->explicit_props;
  GST_OBJECT_UNLOCK (self);
  if (const auto c = find_contradiction (mine, set, recorded)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("%s=%s contradicts the index %s, which was built with %s=%s. Leave "
         "%s unset to adopt the index's setting, or build an index with "
         "yours.",
            c->property, c->set.c_str (), index.c_str (), c->property,
            c->recorded.c_str (), c->property),
        (NULL));
    return std::nullopt;
  }

  /* Through the properties, with notify (gst-launch-1.0 -v prints them),
   * without counting as set by the application. */
  const vs::EmbeddingConfig &c = recorded.config;
  auto adopt = [self, set] (guint prop, const gchar *name, auto value) {
    if (set & (1u << prop))
      return;
    GST_DEBUG_OBJECT (self, "adopting %s from the index", name);
    GST_OBJECT_LOCK (self);
    self->adopting = TRUE;
    GST_OBJECT_UNLOCK (self);
    g_object_set (self, name, value, NULL);
    GST_OBJECT_LOCK (self);
    self->adopting = FALSE;
    GST_OBJECT_UNLOCK (self);
  };
  adopt (PROP_MODEL, "model", c.model.c_str ());
  adopt (PROP_WEIGHTS, "weights",
      c.weights.empty () ? NULL : c.weights.c_str ());
  if (c.weights == "random")
    adopt (PROP_SEED, "seed", (guint64) c.seed);
  adopt (PROP_INPUT_SIZE, "input-size", (guint) c.input_size);
  adopt (PROP_RESIZE, "resize", (guint) c.resize);
  adopt (PROP_MEAN, "mean", format_triple (c.mean).c_str ());
  adopt (PROP_STD, "std", format_triple (c.std).c_str ());
  adopt (PROP_NORMALIZE, "normalize", (gboolean) c.normalize);
  /* A gallery of regions is searched with the regions of the same types. */
  if (!roi_types.empty ())
    adopt (PROP_ROI_TYPES, "roi-types", roi_types.c_str ());
  /* Queries quantized as the gallery was; precision stays free when set. */
  if (c.precision == vs::Precision::INT8)
    adopt (PROP_PRECISION, "precision",
        static_cast<gint> (to_gst_precision (c.precision)));
  GST_INFO_OBJECT (self,
      "embedding as the index %s was built: model %s, "
      "preprocessing %s",
      index.c_str (), recorded.model_id.c_str (),
      recorded.preprocessing_id.c_str ());
  return recorded;
}

/* Slower kernels give the same embeddings, so a fallback is a debug log
 * warning, not a message on the bus. */
static void
log_kernels (GstEmbedder *self, EmbedderState *st)
{
  if (st->logged_degraded)
    return;
  const std::string kernels = st->engine->kernels ();
  if (st->engine->kernels_degraded ()) {
    GST_WARNING_OBJECT (self, "the model runs on %s", kernels.c_str ());
    st->logged_degraded = true;
  } else {
    GST_INFO_OBJECT (self, "the model runs on %s", kernels.c_str ());
  }
}

/* The configuration the engine loads with: the properties, and with an
 * index the int8 activation ranges it records. false after posting an error. */
static bool
config_for_start (GstEmbedder *self, const std::string &index,
    const std::optional<EmbedderSettings> &recorded,
    vs::EmbeddingConfig *config)
{
  std::string invalid;
  if (!config_from_properties (self, config, &invalid)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid %s: mean and std take three comma-separated numbers such "
         "as \"0.485,0.456,0.406\".",
            invalid.c_str ()),
        (NULL));
    return false;
  }

  /* Ranges recorded with the index, not calibrated again, so that queries
   * are quantized exactly as the gallery was. */
  if (recorded && config->precision == vs::Precision::INT8
      && recorded->config.precision == vs::Precision::INT8) {
    config->int8_activations = recorded->config.int8_activations;
    GST_INFO_OBJECT (self, "int8 activation ranges from the index %s",
        index.c_str ());
    /* Ranges calibrated anew would quantize the queries unlike the gallery. */
    if (config->int8_activations.empty ()) {
      GST_ELEMENT_ERROR (self, STREAM, DECODE,
          ("The index %s records precision=int8 but no int8 activation "
           "ranges: its catalog %s is damaged. Rebuild the index.",
              index.c_str (), vs::catalog_path_for (index).c_str ()),
          (NULL));
      return false;
    }
  }
  return true;
}

/* Loads the model config names; with an index, checks that it is the model
 * the index was built with. nullptr after posting an error. */
static std::unique_ptr<EmbedderState>
load_engine (GstEmbedder *self, const vs::EmbeddingConfig &config,
    const std::string &index, const std::optional<EmbedderSettings> &recorded)
{
  auto st = std::make_unique<EmbedderState> ();
  st->model = config.model;
  st->normalized = config.normalize;
  /* A file the index names may have moved since it was built. */
  const std::string adopted_from = recorded ? " (model and weights as the "
                                              "index "
          + index
          + " records them; if the file has moved, set model or "
            "weights to where it is now)"
                                            : "";
  try {
    st->engine = vs::load_embedding_engine (config);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e, ("%s%s", e.what (), adopted_from.c_str ()),
        ("model=%s weights=%s", config.model.c_str (),
            config.weights.c_str ()));
    return nullptr;
  }
  if (recorded && st->engine->model_id () != recorded->model_id) {
    const std::string loaded = "model=" + config.model
        + (config.weights.empty () ? "" : " with weights=" + config.weights);
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("%s is %s, but the index %s was built with %s. Use the model and "
         "weights files the index was built with (leave model and weights "
         "unset to adopt them), or build an index with these.",
            loaded.c_str (), st->engine->model_id ().c_str (), index.c_str (),
            recorded->model_id.c_str ()),
        (NULL));
    return nullptr;
  }
  return st;
}

/* What the engine runs with: the settings announced downstream, its
 * warnings on the bus, active-precision and the debug log. */
static void
announce_engine (GstEmbedder *self, EmbedderState *st,
    const vs::EmbeddingConfig &config)
{
  EmbedderSettings announced;
  announced.config = config;
  announced.config.precision = st->engine->active_precision ();
  announced.config.int8_activations = st->engine->int8_activations ();
  announced.model_id = st->engine->model_id ();
  announced.preprocessing_id = st->engine->preprocessing_id ();
  announced.dims = st->engine->dims ();
  st->settings.reset (embedder_settings_to_structure (announced));
  /* A gallery of regions is searched with regions (faisssearch checks). */
  if (st->roi_filter.regions) {
    GST_OBJECT_LOCK (self);
    gst_structure_set (st->settings.get (), "roi-types", G_TYPE_STRING,
        self->roi_types, NULL);
    GST_OBJECT_UNLOCK (self);
  }
  GST_DEBUG_OBJECT (self, "announcing %" GST_PTR_FORMAT, st->settings.get ());

  for (const std::string &warning : st->engine->warnings ())
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS, ("%s", warning.c_str ()),
        (NULL));
  const vs::Precision active = st->engine->active_precision ();
  GST_OBJECT_LOCK (self);
  self->active_precision = static_cast<gint> (active);
  GST_OBJECT_UNLOCK (self);
  const vs::CpuFeatures &cpu = vs::cpu_features ();
  GST_INFO_OBJECT (self,
      "model %s (%d dims), preprocessing %s, precision %s "
      "(asked %s: %s) on %s (avx2 %d, avx512bw/vl/dq %d, avx512_bf16 %d, "
      "amx_bf16 %d)",
      st->engine->model_id ().c_str (), st->engine->dims (),
      st->engine->preprocessing_id ().c_str (), vs::precision_name (active),
      vs::precision_name (config.precision),
      st->engine->precision_reason ().c_str (), cpu.model.c_str (), cpu.avx2,
      cpu.avx512bw && cpu.avx512vl && cpu.avx512dq, cpu.avx512_bf16,
      cpu.amx_bf16);
}

/* roi-types, roi-margin and roi-min-size into the state. */
static void
roi_settings (GstEmbedder *self, EmbedderState *st)
{
  GST_OBJECT_LOCK (self);
  gchar **types = g_strsplit (self->roi_types ? self->roi_types : "", ",", -1);
  st->roi_margin = self->roi_margin;
  st->roi_min_size = self->roi_min_size;
  GST_OBJECT_UNLOCK (self);

  RoiFilter &filter = st->roi_filter;
  for (gchar **t = types; *t; t++) {
    g_strstrip (*t);
    if (**t == '\0')
      continue;
    filter.regions = true;
    if (g_str_equal (*t, "*"))
      filter.all = true;
    else
      filter.types.push_back (g_quark_from_string (*t));
  }
  g_strfreev (types);
  if (filter.regions)
    GST_INFO_OBJECT (self,
        "embedding regions (%s%zu types), margin %.3f, at least %u pixels",
        filter.all ? "every type, " : "", filter.types.size (), st->roi_margin,
        st->roi_min_size);
}

static gboolean
gst_embedder_start (GstBaseTransform *trans)
{
  GstEmbedder *self = GST_EMBEDDER (trans);

  GST_OBJECT_LOCK (self);
  const std::string index = self->index ? self->index : "";
  self->frames_embedded = 0;
  self->frames_skipped = 0;
  self->regions_embedded = 0;
  self->busy_ms = 0.0;
  self->qos_earliest = GST_CLOCK_TIME_NONE;
  GST_OBJECT_UNLOCK (self);

  std::optional<EmbedderSettings> recorded;
  if (!index.empty () && !(recorded = adopt_index_settings (self, index)))
    return FALSE;

  vs::EmbeddingConfig config;
  if (!config_for_start (self, index, recorded, &config))
    return FALSE;

  std::unique_ptr<EmbedderState> st =
      load_engine (self, config, index, recorded);
  if (!st)
    return FALSE;

  roi_settings (self, st.get ());
  announce_engine (self, st.get (), config);
  log_kernels (self, st.get ());
  self->state = st.release ();
  return TRUE;
}

static gboolean
gst_embedder_stop (GstBaseTransform *trans)
{
  GstEmbedder *self = GST_EMBEDDER (trans);

  delete self->state;
  self->state = NULL;
  GST_OBJECT_LOCK (self);
  self->active_precision = -1;
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Caps */

static gboolean
gst_embedder_set_caps (GstBaseTransform *trans, GstCaps *incaps,
    GstCaps *outcaps)
{
  GstEmbedder *self = GST_EMBEDDER (trans);
  EmbedderState *st = self->state;

  if (!gst_video_info_from_caps (&st->info, incaps)) {
    GST_ERROR_OBJECT (self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  st->converter.reset ();
  if (GST_VIDEO_INFO_IS_YUV (&st->info)) {
    gst_video_info_set_format (&st->rgb_info, GST_VIDEO_FORMAT_RGB,
        GST_VIDEO_INFO_WIDTH (&st->info), GST_VIDEO_INFO_HEIGHT (&st->info));
    /* The converter only changes the format, so the rest must agree. */
    GST_VIDEO_INFO_FPS_N (&st->rgb_info) = GST_VIDEO_INFO_FPS_N (&st->info);
    GST_VIDEO_INFO_FPS_D (&st->rgb_info) = GST_VIDEO_INFO_FPS_D (&st->info);
    GST_VIDEO_INFO_PAR_N (&st->rgb_info) = GST_VIDEO_INFO_PAR_N (&st->info);
    GST_VIDEO_INFO_PAR_D (&st->rgb_info) = GST_VIDEO_INFO_PAR_D (&st->info);
    GST_VIDEO_INFO_INTERLACE_MODE (&st->rgb_info) =
        GST_VIDEO_INFO_INTERLACE_MODE (&st->info);
    st->converter.reset (gst_video_converter_new (&st->info, &st->rgb_info,
        NULL));
    if (!st->converter) {
      GST_ERROR_OBJECT (self, "cannot convert %s to RGB",
          GST_VIDEO_INFO_NAME (&st->info));
      return FALSE;
    }
    st->rgb.resize (GST_VIDEO_INFO_SIZE (&st->rgb_info));
  }
  /* Told once here rather than for every frame; the stream goes on. */
  try {
    st->engine->check_frame_size (GST_VIDEO_INFO_WIDTH (&st->info),
        GST_VIDEO_INFO_HEIGHT (&st->info));
    st->embeddable = true;
  } catch (const std::exception &e) {
    VS_ELEMENT_WARNING (self, e,
        ("Cannot embed these frames: %s. They pass without an embedding.",
            e.what ()),
        ("caps %" GST_PTR_FORMAT, incaps));
    st->embeddable = false;
  }
  GST_DEBUG_OBJECT (self, "embedding %dx%d %s frames",
      GST_VIDEO_INFO_WIDTH (&st->info), GST_VIDEO_INFO_HEIGHT (&st->info),
      GST_VIDEO_INFO_NAME (&st->info));
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* The buffer path */

/* A frame whose embedding holds NaN or infinity, or only zeros (no direction
 * to compare: as near to every query as to none), passes without one: such a
 * vector would poison an index or a search. The first of each kind is
 * reported. */
static void
report_unusable (GstEmbedder *self, GstBuffer *buf, bool *warned,
    const char *what, const std::string &detail)
{
  EmbedderState *st = self->state;

  GST_DEBUG_OBJECT (self,
      "embedding of the frame at %" GST_TIME_FORMAT
      " (%s): passing the frame without it",
      GST_TIME_ARGS (GST_BUFFER_PTS (buf)), detail.c_str ());
  if (*warned)
    return;
  *warned = true;
  GST_ELEMENT_WARNING (self, STREAM, FAILED,
      ("Model %s (%s) made %s embedding for the frame at %" GST_TIME_FORMAT
       ": it and any other such frame pass without an embedding "
       "(frames-skipped counts them).",
          st->model.c_str (), st->engine->model_id ().c_str (), what,
          GST_TIME_ARGS (GST_BUFFER_PTS (buf))),
      ("%s", detail.c_str ()));
}

/* Attaches one row of the batch's embeddings to its frame or region; false
 * for an embedding no search could use. */
static bool
attach_row (GstEmbedder *self, const PendingRow &row, const float *v)
{
  EmbedderState *st = self->state;
  const guint dims = st->engine->dims ();

  const size_t bad = vs::first_non_finite (v, dims);
  if (bad < dims) {
    gchar *detail =
        g_strdup_printf ("value %u of %u is %f", (guint) bad, dims, v[bad]);
    report_unusable (self, row.buffer, &st->warned_non_finite,
        "a NaN or infinite", detail);
    g_free (detail);
    return false;
  }
  if (std::all_of (v, v + dims, [] (float x) { return x == 0.0f; })) {
    report_unusable (self, row.buffer, &st->warned_all_zero, "an all-zero",
        "every value is 0");
    return false;
  }
  if (!row.roi) {
    gst_buffer_add_visualsearch_embedding_meta (row.buffer, dims, v,
        st->engine->model_id ().c_str (),
        st->engine->preprocessing_id ().c_str (), st->normalized);
    return true;
  }
  gst_visualsearch_region_set_embedding (row.roi, dims, v,
      st->engine->model_id ().c_str (),
      st->engine->preprocessing_id ().c_str (), st->normalized);
  return true;
}

/* Runs the pending batch and releases every held frame, in order. */
static bool
run_batch (GstEmbedder *self)
{
  EmbedderState *st = self->state;
  bool ok = true;

  if (st->engine->pending () > 0) {
    const size_t n = st->engine->pending ();
    const auto t0 = std::chrono::steady_clock::now ();
    std::vector<float> values;
    try {
      values = st->engine->run ();
    } catch (const std::exception &e) {
      VS_ELEMENT_ERROR (self, e,
          ("Embedding a batch of %u %s failed: %s", (guint) n,
              st->roi_filter.regions ? "regions" : "frames", e.what ()),
          (NULL));
      ok = false;
    }
    const std::chrono::duration<double, std::milli> took =
        std::chrono::steady_clock::now () - t0;
    GST_LOG_OBJECT (self, "embedded %u %s in %.1f ms", (guint) n,
        st->roi_filter.regions ? "regions" : "frames", took.count ());
    if (st->engine->kernels_degraded ())
      log_kernels (self, st);

    const guint dims = st->engine->dims ();
    guint64 frames = 0, regions = 0, unusable = 0;
    for (size_t row = 0; ok && row < st->rows.size (); row++) {
      const PendingRow &r = st->rows[row];
      if (!attach_row (self, r, &values[row * dims]))
        unusable++;
      else if (!r.roi)
        frames++;
      else
        regions++;
    }
    st->rows.clear ();
    GST_OBJECT_LOCK (self);
    self->busy_ms += took.count ();
    self->regions_embedded += regions;
    if (!st->roi_filter.regions) {
      self->frames_embedded += frames;
      self->frames_skipped += unusable;
    }
    GST_OBJECT_UNLOCK (self);
  }
  for (GstBuffer *b : st->held)
    st->ready.push_back (b);
  st->held.clear ();
  return ok;
}

/* Pushes every frame still held, e.g. before EOS or a new segment. */
static GstFlowReturn
drain (GstEmbedder *self)
{
  EmbedderState *st = self->state;
  GstFlowReturn ret = GST_FLOW_OK;

  if (st->held.empty () && st->ready.empty ())
    return GST_FLOW_OK;
  GST_DEBUG_OBJECT (self, "draining %u frames", (guint) st->held.size ());
  if (!run_batch (self))
    ret = GST_FLOW_ERROR;
  while (!st->ready.empty ()) {
    GstBuffer *buf = st->ready.front ();
    st->ready.pop_front ();
    GstFlowReturn r = gst_pad_push (GST_BASE_TRANSFORM_SRC_PAD (self), buf);
    if (ret == GST_FLOW_OK)
      ret = r;
  }
  return ret;
}

static gboolean
gst_embedder_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstEmbedder *self = GST_EMBEDDER (trans);
  EmbedderState *st = self->state;

  /* Downstream, the embeddings and their settings are this element's. */
  if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY
      && gst_event_has_name (event, VS_EMBEDDER_SETTINGS_EVENT)) {
    gst_event_unref (event);
    return TRUE;
  }
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP) {
    st->drop_buffers ();
    frame_qos_reset (trans, &self->qos_earliest);
  } else if (GST_EVENT_IS_SERIALIZED (event)) {
    /* Held frames came before this event: they must not be overtaken. */
    drain (self);
  }
  const bool caps = GST_EVENT_TYPE (event) == GST_EVENT_CAPS;
  if (!GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event))
    return FALSE;
  /* After the caps, so the settings reach downstream before any frame. */
  if (caps && st->settings)
    gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (trans),
        gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_STICKY,
            gst_structure_copy (st->settings.get ())));
  return TRUE;
}

static gboolean
gst_embedder_query (GstBaseTransform *trans, GstPadDirection direction,
    GstQuery *query)
{
  if (direction == GST_PAD_SINK && GST_QUERY_TYPE (query) == GST_QUERY_DRAIN)
    drain (GST_EMBEDDER (trans));
  return GST_BASE_TRANSFORM_CLASS (parent_class)
      ->query (trans, direction, query);
}

static gboolean
gst_embedder_src_event (GstBaseTransform *trans, GstEvent *event)
{
  GstEmbedder *self = GST_EMBEDDER (trans);

  if (GST_EVENT_TYPE (event) == GST_EVENT_QOS) {
    frame_qos_update (trans, event, &self->qos_earliest);
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->src_event (trans, event);
}

/* Whether downstream is so late that this frame should go without meta. */
static bool
too_late (GstEmbedder *self, GstBuffer *buf)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  const GstClockTime running_time = frame_qos_late (trans, GST_CAT_DEFAULT,
      &self->qos_earliest, buf, "embedding it");
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    return false;

  GST_OBJECT_LOCK (self);
  const guint64 embedded = self->frames_embedded;
  const guint64 skipped = self->frames_skipped + 1;
  GST_OBJECT_UNLOCK (self);
  frame_qos_post_skipped (trans, buf, running_time, embedded, skipped);
  return true;
}

/* A frame mapped for reading as packed RGB: in place, or converted from YUV
 * into the state's buffer. Unmapped when it goes out of scope. */
class MappedFrame {
public:
  MappedFrame (GstEmbedder *self, GstBuffer *buf) : st_ (self->state)
  {
    if (!gst_video_frame_map (&frame_, &st_->info, buf, GST_MAP_READ)) {
      GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot read a video frame."),
          ("gst_video_frame_map failed for %" GST_PTR_FORMAT, buf));
      return;
    }
    have_frame_ = true;
    view_.width = GST_VIDEO_FRAME_WIDTH (&frame_);
    view_.height = GST_VIDEO_FRAME_HEIGHT (&frame_);
    if (!st_->converter) {
      const GstVideoFormatInfo *finfo = frame_.info.finfo;
      view_.data =
          static_cast<const uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (&frame_,
              0));
      view_.stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame_, 0);
      view_.pixel_stride = GST_VIDEO_FRAME_COMP_PSTRIDE (&frame_, 0);
      for (guint c = 0; c < 3; c++)
        view_.offsets[c] = GST_VIDEO_FORMAT_INFO_IS_GRAY (finfo)
            ? 0
            : GST_VIDEO_FRAME_COMP_POFFSET (&frame_, c);
      return;
    }
    GstBuffer *wrapped =
        gst_buffer_new_wrapped_full (static_cast<GstMemoryFlags> (0),
            st_->rgb.data (), st_->rgb.size (), 0, st_->rgb.size (), NULL,
            NULL);
    have_rgb_ =
        gst_video_frame_map (&rgb_, &st_->rgb_info, wrapped, GST_MAP_WRITE);
    gst_buffer_unref (wrapped);
    if (!have_rgb_) {
      GST_ELEMENT_ERROR (self, CORE, FAILED, ("Cannot convert to RGB."),
          (NULL));
      return;
    }
    gst_video_converter_frame (st_->converter.get (), &frame_, &rgb_);
    view_.data =
        static_cast<const uint8_t *> (GST_VIDEO_FRAME_PLANE_DATA (&rgb_, 0));
    view_.stride = GST_VIDEO_FRAME_PLANE_STRIDE (&rgb_, 0);
    view_.pixel_stride = 3;
    view_.offsets = {{0, 1, 2}};
  }

  ~MappedFrame ()
  {
    if (have_rgb_)
      gst_video_frame_unmap (&rgb_);
    if (have_frame_)
      gst_video_frame_unmap (&frame_);
  }

  MappedFrame (const MappedFrame &) = delete;
  MappedFrame &operator= (const MappedFrame &) = delete;

  bool ok () const
  {
    return have_frame_ && (have_rgb_ || !st_->converter);
  }

  const vs::ImageView &view () const
  {
    return view_;
  }

private:
  EmbedderState *st_;
  GstVideoFrame frame_;
  GstVideoFrame rgb_;
  bool have_frame_ = false;
  bool have_rgb_ = false;
  vs::ImageView view_;
};

/* Preprocesses an image (a frame, or a region's crop of it) into the
 * engine's pending batch. */
static bool
add_view (GstEmbedder *self, const vs::ImageView &view)
{
  bool ok = true;
  const auto t0 = std::chrono::steady_clock::now ();
  try {
    self->state->engine->add (view);
  } catch (const std::exception &e) {
    VS_ELEMENT_ERROR (self, e, ("Cannot preprocess a frame."),
        ("%s", e.what ()));
    ok = false;
  }
  const std::chrono::duration<double, std::milli> took =
      std::chrono::steady_clock::now () - t0;
  GST_OBJECT_LOCK (self);
  self->busy_ms += took.count ();
  GST_OBJECT_UNLOCK (self);
  return ok;
}

/* Preprocesses one frame into the engine's pending batch. */
static bool
add_frame (GstEmbedder *self, GstBuffer *buf)
{
  MappedFrame frame (self, buf);
  if (!frame.ok () || !add_view (self, frame.view ()))
    return false;
  self->state->rows.push_back ({buf, nullptr});
  return true;
}

/* Whether a region can be embedded, and if not, why. */
enum class RegionFit
{
  OK,
  EMPTY,
  OUTSIDE,
  TOO_SMALL,
  TOO_ELONGATED,
};

/* A region's box grown by the margin and clipped to the frame, in box (x, y,
 * width, height). *clipped tells whether the box itself (before the margin)
 * reached outside the frame. */
static RegionFit
region_crop (const EmbedderState *st, const GstVideoRegionOfInterestMeta *roi,
    int width, int height, int box[4], bool *clipped)
{
  const double w = roi->w, h = roi->h;
  const double x0 = roi->x - st->roi_margin * w;
  const double y0 = roi->y - st->roi_margin * h;
  const double x1 = roi->x + w + st->roi_margin * w;
  const double y1 = roi->y + h + st->roi_margin * h;

  *clipped = (guint64) roi->x + roi->w > (guint64) width
      || (guint64) roi->y + roi->h > (guint64) height;
  if (roi->w == 0 || roi->h == 0)
    return RegionFit::EMPTY;
  if (roi->x >= (guint) width || roi->y >= (guint) height)
    return RegionFit::OUTSIDE;
  box[0] = (int) std::max (0.0, std::floor (x0));
  box[1] = (int) std::max (0.0, std::floor (y0));
  box[2] = (int) std::min ((double) width, std::ceil (x1)) - box[0];
  box[3] = (int) std::min ((double) height, std::ceil (y1)) - box[1];
  if ((guint) std::min (box[2], box[3]) < st->roi_min_size)
    return RegionFit::TOO_SMALL;
  try {
    st->engine->check_frame_size (box[2], box[3]);
  } catch (const std::exception &) {
    return RegionFit::TOO_ELONGATED;
  }
  return RegionFit::OK;
}

/* The first time a kind of bad region comes, a warning; then the debug log. */
static void
warn_region_once (GstEmbedder *self, bool *warned, const gchar *what,
    GstBuffer *buf, const GstVideoRegionOfInterestMeta *roi)
{
  GST_DEBUG_OBJECT (self,
      "region %d (%s, %u,%u %ux%u) of the frame at %" GST_TIME_FORMAT ": %s",
      roi->id, g_quark_to_string (roi->roi_type), roi->x, roi->y, roi->w,
      roi->h, GST_TIME_ARGS (GST_BUFFER_PTS (buf)), what);
  if (*warned)
    return;
  *warned = true;
  GST_ELEMENT_WARNING (self, STREAM, FAILED,
      ("Region %d (%s, %u,%u %ux%u) of the %dx%d frame at %" GST_TIME_FORMAT
       " %s; other such regions are treated alike without a warning "
       "(GST_DEBUG=embedder:5 lists them).",
          roi->id, g_quark_to_string (roi->roi_type), roi->x, roi->y, roi->w,
          roi->h, GST_VIDEO_INFO_WIDTH (&self->state->info),
          GST_VIDEO_INFO_HEIGHT (&self->state->info),
          GST_TIME_ARGS (GST_BUFFER_PTS (buf)), what),
      (NULL));
}

/* Crops every region roi-types asks for into the pending batch, running the
 * batch whenever batch-size regions wait; the regions of frames before are
 * then done, so those frames are released. How many regions went in, or -1
 * after an error. */
static int
add_regions (GstEmbedder *self, GstBuffer *buf, guint batch_size)
{
  EmbedderState *st = self->state;
  const int width = GST_VIDEO_INFO_WIDTH (&st->info);
  const int height = GST_VIDEO_INFO_HEIGHT (&st->info);
  std::optional<MappedFrame> frame;
  int added = 0;
  gpointer iter = NULL;
  GstMeta *meta;

  while ((meta = gst_buffer_iterate_meta_filtered (buf, &iter,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *> (meta);
    if (!st->roi_filter.wants (roi->roi_type))
      continue;
    if ((size_t) added == kMaxRegionsPerFrame) {
      warn_region_once (self, &st->warned_too_many,
          "is one too many: at most 256 regions of a frame are embedded, "
          "the others pass without an embedding",
          buf, roi);
      break;
    }
    int box[4];
    bool clipped;
    const RegionFit fit = region_crop (st, roi, width, height, box, &clipped);
    if (fit == RegionFit::EMPTY || fit == RegionFit::OUTSIDE) {
      warn_region_once (self, &st->warned_outside,
          fit == RegionFit::EMPTY
              ? "is empty: it passes without an embedding"
              : "lies outside the frame: it passes without an embedding",
          buf, roi);
      continue;
    }
    if (fit != RegionFit::OK) {
      GST_LOG_OBJECT (self, "region %d (%ux%u): not embedded, %s", roi->id,
          roi->w, roi->h,
          fit == RegionFit::TOO_SMALL ? "shorter than roi-min-size"
                                      : "too elongated for resize");
      continue;
    }
    if (clipped)
      warn_region_once (self, &st->warned_clipped,
          "reaches outside the frame: it is clipped to it", buf, roi);

    if (!frame) {
      frame.emplace (self, buf);
      if (!frame->ok ())
        return -1;
    }
    vs::ImageView crop = frame->view ();
    crop.data += box[1] * crop.stride + box[0] * crop.pixel_stride;
    crop.width = box[2];
    crop.height = box[3];
    GST_LOG_OBJECT (self, "region %d (%s): crop %d,%d %dx%d", roi->id,
        g_quark_to_string (roi->roi_type), box[0], box[1], box[2], box[3]);
    if (!add_view (self, crop))
      return -1;
    st->rows.push_back ({buf, roi});
    added++;
    if (st->engine->pending () >= batch_size && !run_batch (self))
      return -1;
  }
  return added;
}

static GstFlowReturn
gst_embedder_submit_input_buffer (GstBaseTransform *trans, gboolean is_discont,
    GstBuffer *buf)
{
  GstEmbedder *self = GST_EMBEDDER (trans);
  EmbedderState *st = self->state;

  GST_OBJECT_LOCK (self);
  const guint interval = self->inference_interval;
  const guint batch_size = self->batch_size;
  GST_OBJECT_UNLOCK (self);

  const bool due = st->frame_count++ % interval == 0;
  const bool regions = st->roi_filter.regions;
  const bool embed =
      due && (regions || st->embeddable) && !too_late (self, buf);
  if (!embed) {
    GST_OBJECT_LOCK (self);
    self->frames_skipped++;
    GST_OBJECT_UNLOCK (self);
    if (st->held.empty ())
      st->ready.push_back (buf);
    else
      st->held.push_back (buf);
    return GST_FLOW_OK;
  }

  /* Only the buffer's metadata changes, so this copies no pixels. */
  buf = gst_buffer_make_writable (buf);
  if (!regions) {
    if (!add_frame (self, buf)) {
      gst_buffer_unref (buf);
      return GST_FLOW_ERROR;
    }
    st->held.push_back (buf);
    if (st->engine->pending () >= batch_size && !run_batch (self))
      return GST_FLOW_ERROR;
    return GST_FLOW_OK;
  }

  const int added = add_regions (self, buf, batch_size);
  if (added < 0) {
    /* Rows of the batch may name it: held until a flush or stop drops both. */
    st->held.push_back (buf);
    return GST_FLOW_ERROR;
  }
  GST_OBJECT_LOCK (self);
  if (added > 0)
    self->frames_embedded++;
  else
    self->frames_skipped++;
  GST_OBJECT_UNLOCK (self);
  /* A frame whose regions have all run (or that has none) waits only for
   * the frames before it. */
  st->held.push_back (buf);
  if (st->engine->pending () == 0) {
    for (GstBuffer *b : st->held)
      st->ready.push_back (b);
    st->held.clear ();
  }
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_embedder_generate_output (GstBaseTransform *trans, GstBuffer **outbuf)
{
  EmbedderState *st = GST_EMBEDDER (trans)->state;

  *outbuf = NULL;
  if (!st->ready.empty ()) {
    *outbuf = st->ready.front ();
    st->ready.pop_front ();
  }
  return GST_FLOW_OK;
}
