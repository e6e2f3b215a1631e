/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* visualsearch results of one region of a frame, carried as parameters of
 * its GstVideoRegionOfInterestMeta (see visualsearchregion.c) */
#ifndef __GST_VISUALSEARCH_REGION_H__
#define __GST_VISUALSEARCH_REGION_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>

G_BEGIN_DECLS

/**
 * GST_VISUALSEARCH_REGION_EMBEDDING_PARAM:
 *
 * The name of the #GstStructure that embedder adds to a region's
 * #GstVideoRegionOfInterestMeta: "visualsearch-embedding", with the fields
 * dims (guint), values (#GBytes: dims native-endian float32), model-id and
 * preprocessing-id (strings) and normalized (gboolean).
 */
#define GST_VISUALSEARCH_REGION_EMBEDDING_PARAM "visualsearch-embedding"

/**
 * GST_VISUALSEARCH_REGION_NEIGHBORS_PARAM:
 *
 * The name of the #GstStructure that faisssearch adds to a region's
 * #GstVideoRegionOfInterestMeta: "visualsearch-neighbors", with the field
 * metric (string: "ip" or "l2") and the arrays (#GstValueArray) ids
 * (gint64), distances (gfloat), labels (gint), label-names and sources
 * (strings), nearest first, as in the whole-frame "visualsearch" message.
 */
#define GST_VISUALSEARCH_REGION_NEIGHBORS_PARAM "visualsearch-neighbors"

GST_VISUALSEARCH_API
void gst_visualsearch_region_set_embedding (GstVideoRegionOfInterestMeta *roi,
    guint dims, const gfloat *values, const gchar *model_id,
    const gchar *preprocessing_id, gboolean normalized);

GST_VISUALSEARCH_API
const gfloat *
gst_visualsearch_region_get_embedding (GstVideoRegionOfInterestMeta *roi,
    guint *dims);

GST_VISUALSEARCH_API
gboolean
gst_visualsearch_region_get_embedding_info (GstVideoRegionOfInterestMeta *roi,
    const gchar **model_id, const gchar **preprocessing_id,
    gboolean *normalized);

GST_VISUALSEARCH_API
void gst_visualsearch_region_set_neighbors (GstVideoRegionOfInterestMeta *roi,
    GstVisualSearchMetric metric, guint n_neighbors,
    const GstVisualSearchNeighbor *neighbors);

GST_VISUALSEARCH_API
gboolean
gst_visualsearch_region_get_neighbors_info (GstVideoRegionOfInterestMeta *roi,
    GstVisualSearchMetric *metric, guint *n_neighbors);

GST_VISUALSEARCH_API
gboolean
gst_visualsearch_region_get_neighbor (GstVideoRegionOfInterestMeta *roi,
    guint index, gint64 *id, gfloat *distance, gint *label,
    const gchar **label_name, const gchar **source);

G_END_DECLS

#endif /* __GST_VISUALSEARCH_REGION_H__ */
