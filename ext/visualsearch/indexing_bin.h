/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the indexing bins (cifarindexer, galleryindexer) share: three children
 * source ! embedder ! indexer, and properties that stand for theirs. */
#ifndef __VISUALSEARCH_INDEXING_BIN_H__
#define __VISUALSEARCH_INDEXING_BIN_H__

#include <gst/gst.h>

enum IndexingChild
{
  CHILD_SOURCE,
  CHILD_EMBEDDER,
  CHILD_INDEXER,
  N_CHILDREN
};

/* A property of the bin that stands for child_property of a child. */
struct ProxiedProperty
{
  const gchar *name;
  const gchar *nick;
  IndexingChild child;
  const gchar *child_property;
  const gchar *blurb; /* NULL: the child's own */
};

/* The embedder's properties that both bins stand for, in this order; each
 * bin's property enum lists PROP_MODEL, PROP_WEIGHTS, PROP_SEED,
 * PROP_PRECISION, PROP_CALIBRATION_LOCATION, PROP_CALIBRATION_IMAGES,
 * PROP_BATCH_SIZE, PROP_INPUT_SIZE and PROP_RESIZE in the same order. */
#define INDEXING_BIN_EMBEDDER_PROPERTIES \
  {"model", "Model", CHILD_EMBEDDER, "model", NULL}, \
      {"weights", "Weights", CHILD_EMBEDDER, "weights", NULL}, \
      {"seed", "Seed", CHILD_EMBEDDER, "seed", NULL}, \
      {"precision", "Precision", CHILD_EMBEDDER, "precision", NULL}, \
      {"calibration-location", "Calibration location", CHILD_EMBEDDER, \
          "calibration-location", NULL}, \
      {"calibration-images", "Calibration images", CHILD_EMBEDDER, \
          "calibration-images", NULL}, \
      {"batch-size", "Batch size", CHILD_EMBEDDER, "batch-size", NULL}, \
      {"input-size", "Input size", CHILD_EMBEDDER, "input-size", NULL}, \
  { \
    "resize", "Resize", CHILD_EMBEDDER, "resize", NULL \
  }

/* Makes the children from factories (named source, embedder, indexer), adds
 * them to bin and links them; a missing factory leaves NULL. */
void indexing_bin_add_children (GstBin *bin,
    const gchar *const factories[N_CHILDREN], GstElement *children[N_CHILDREN]);

/* Installs properties[1..n-1] as property ids 1..n-1, each with the type,
 * range, default and flags of the child's, so the two can never disagree. */
void indexing_bin_install_properties (GObjectClass *klass,
    const ProxiedProperty *properties, guint n,
    const GType child_types[N_CHILDREN]);

/* A property with the type, range, default and flags of child_property of
 * child_class; blurb NULL takes the child's own. */
GParamSpec *proxy_param_spec (const gchar *name, const gchar *nick,
    const gchar *blurb, GObjectClass *child_class, const gchar *child_property);

void indexing_bin_set_property (GstElement *const children[N_CHILDREN],
    const ProxiedProperty &property, const GValue *value);
void indexing_bin_get_property (GstElement *const children[N_CHILDREN],
    const ProxiedProperty &property, GValue *value, GParamSpec *pspec);

/* FALSE, after an element error naming the missing element, unless every
 * child exists. For NULL to READY. */
gboolean indexing_bin_check_children (GstElement *bin,
    GstElement *const children[N_CHILDREN],
    const gchar *const factories[N_CHILDREN]);

#endif
