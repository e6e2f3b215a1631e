// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-cifarindexer
 * @title: cifarindexer
 *
 * The static CIFAR indexer: `cifarsrc ! embedder ! faissindexer` in one
 * element, so that one line builds a gallery for faisssearch with the very
 * embedder settings a search will use later.
 *
 * Its properties are those of the children under the names below, with the
 * children's types, ranges and defaults: #GstCifarIndexer:dataset and
 * #GstCifarIndexer:split go to cifarsrc (location, split);
 * #GstCifarIndexer:model, weights, seed, precision, calibration-location,
 * calibration-images, batch-size, input-size and resize to embedder; #GstCifarIndexer:index, index-type and metric to
 * faissindexer (location, index-type, metric). The children's progress
 * messages, warnings and errors reach the bus unchanged, and the element
 * posts EOS once the index and its catalog are written.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 cifarindexer dataset=cifar-10-batches-py index=cifar10.faiss
 * gst-launch-1.0 cifarindexer dataset=cifar-10-batches-py index=cifar10-32.faiss \
 *     resize=0 input-size=32 precision=bf16 batch-size=256
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstcifarindexer.h"

#include "elements.h"
#include "gstcifarsrc.h"
#include "gstembedder.h"
#include "gstfaissindexer.h"
#include "indexing_bin.h"

GST_DEBUG_CATEGORY_STATIC (gst_cifar_indexer_debug);
#define GST_CAT_DEFAULT gst_cifar_indexer_debug

enum
{
  PROP_0,
  PROP_DATASET,
  PROP_SPLIT,
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
  N_PROPERTIES
};

static const gchar *const child_factories[N_CHILDREN] = {"cifarsrc", "embedder",
    "faissindexer"};

static const ProxiedProperty proxied[N_PROPERTIES] = {
    {},
    {"dataset", "Dataset", CHILD_SOURCE, "location",
        "The CIFAR-10/100 dataset directory (python or binary format) or one "
        "batch file"},
    {"split", "Split", CHILD_SOURCE, "split",
        "Which records to index; ignored when dataset is one batch file"},
    INDEXING_BIN_EMBEDDER_PROPERTIES,
    {"index", "Index", CHILD_INDEXER, "location",
        "The FAISS index file to write; its SQLite catalog goes beside it "
        "(index + \".db\")"},
    {"index-type", "Index type", CHILD_INDEXER, "index-type", NULL},
    {"metric", "Metric", CHILD_INDEXER, "metric", NULL},
};

struct _GstCifarIndexer
{
  GstBin parent;

  /* owned by the bin; NULL only when a child's factory is missing */
  GstElement *children[N_CHILDREN];
};

#define gst_cifar_indexer_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstCifarIndexer, gst_cifar_indexer, GST_TYPE_BIN,
    GST_DEBUG_CATEGORY_INIT (gst_cifar_indexer_debug, "cifarindexer", 0,
        "cifarsrc ! embedder ! faissindexer"));
GST_ELEMENT_REGISTER_DEFINE (cifarindexer, "cifarindexer", GST_RANK_NONE,
    GST_TYPE_CIFAR_INDEXER);

static void gst_cifar_indexer_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_cifar_indexer_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static GstStateChangeReturn gst_cifar_indexer_change_state (GstElement *element,
    GstStateChange transition);

static void
gst_cifar_indexer_class_init (GstCifarIndexerClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GType child_types[N_CHILDREN] = {GST_TYPE_CIFAR_SRC, GST_TYPE_EMBEDDER,
      GST_TYPE_FAISS_INDEXER};

  gobject_class->set_property = gst_cifar_indexer_set_property;
  gobject_class->get_property = gst_cifar_indexer_get_property;

  indexing_bin_install_properties (gobject_class, proxied, N_PROPERTIES,
      child_types);

  gst_element_class_set_static_metadata (element_class, "CIFAR indexer",
      "Sink/Analysis",
      "Embeds a CIFAR-10/100 split and writes a FAISS index and catalog of "
      "it (cifarsrc ! embedder ! faissindexer)",
      "visualsearch developers");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_cifar_indexer_change_state);
}

static void
gst_cifar_indexer_init (GstCifarIndexer *self)
{
  indexing_bin_add_children (GST_BIN (self), child_factories, self->children);
}

static void
gst_cifar_indexer_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstCifarIndexer *self = GST_CIFAR_INDEXER (object);

  if (prop_id == PROP_0 || prop_id >= N_PROPERTIES)
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  else
    indexing_bin_set_property (self->children, proxied[prop_id], value);
}

static void
gst_cifar_indexer_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstCifarIndexer *self = GST_CIFAR_INDEXER (object);

  if (prop_id == PROP_0 || prop_id >= N_PROPERTIES)
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  else
    indexing_bin_get_property (self->children, proxied[prop_id], value, pspec);
}

static GstStateChangeReturn
gst_cifar_indexer_change_state (GstElement *element, GstStateChange transition)
{
  GstCifarIndexer *self = GST_CIFAR_INDEXER (element);

  if (transition == GST_STATE_CHANGE_NULL_TO_READY
      && !indexing_bin_check_children (element, self->children,
          child_factories))
    return GST_STATE_CHANGE_FAILURE;
  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
}
