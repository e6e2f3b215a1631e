/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The regions of a frame that embedder embedded (roi-types), as faisssearch
 * searches them and faissindexer indexes them. */
#ifndef __VISUALSEARCH_REGION_EMBEDDINGS_H__
#define __VISUALSEARCH_REGION_EMBEDDINGS_H__

#include <gst/video/video.h>
#include <gst/visualsearch/visualsearchmeta.h>

/* A region's ROI meta and the embedding on it; valid while the buffer is. */
struct RegionEmbedding
{
  GstVideoRegionOfInterestMeta *roi;
  const gfloat *values;
  guint dims;
  const gchar *model_id;
  const gchar *preprocessing_id;
};

/* Calls visit (const RegionEmbedding &) for each region of buffer that
 * carries an embedding, in meta order, while it returns true; false when a
 * call returned false. */
template <typename Visit>
static bool
for_each_region_embedding (GstBuffer *buffer, Visit visit)
{
  gpointer iter = NULL;
  while (GstMeta *meta = gst_buffer_iterate_meta_filtered (buffer, &iter,
             GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    RegionEmbedding r;
    r.roi = reinterpret_cast<GstVideoRegionOfInterestMeta *> (meta);
    r.values = gst_visualsearch_region_get_embedding (r.roi, &r.dims);
    if (r.values
        && gst_visualsearch_region_get_embedding_info (r.roi, &r.model_id,
            &r.preprocessing_id, NULL)
        && !visit (static_cast<const RegionEmbedding &> (r)))
      return false;
  }
  return true;
}

#endif
