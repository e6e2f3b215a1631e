/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* visualsearch metadata: embeddings, nearest neighbours and dataset samples
 * attached to GstBuffers.
 *
 * The structs are plain so that C and C++ applications can read them; Python
 * (PyGObject) reads them through the GstVisualSearch-1.0 typelib, with
 * accessor functions for the arrays.
 *
 * Transforms. The metas are registered without tags, so elements that know
 * nothing of them (videoconvert, videoscale, videorate, tee, queue, encoders)
 * pass them on; where a buffer is copied, the copy gets its own deep copy.
 * What each kind of transform does:
 *
 * | transform                          | embedding, neighbours | sample |
 * |------------------------------------|-----------------------|--------|
 * | copy of the whole buffer           | deep copy             | deep copy |
 * | scale ("gst-video-scale")          | deep copy             | deep copy |
 * | copy of a part of the buffer       | dropped               | deep copy |
 * | any other (e.g. a crop's matrix)   | dropped               | deep copy |
 *
 * An embedding describes the whole picture the embedder saw, and the
 * neighbours were found for that embedding: a scaled or colour-converted
 * frame shows the same picture (the embedder resizes and converts anyway),
 * a part of it does not, so both go with a partial copy and with any
 * transform that may cut the picture. A sample meta says where the pixels
 * came from, which stays true of any part of them. Tagless metas reach a
 * transform function only as a copy, though: an element that crops by
 * copying its metas whole (videocrop in GStreamer 1.22 does so) keeps the
 * embedding of the uncropped frame. Embed after cropping, not before.
 */
#ifndef __GST_VISUALSEARCH_META_H__
#define __GST_VISUALSEARCH_META_H__

#include <gst/gst.h>
#include <gst/visualsearch/visualsearch-prelude.h>

G_BEGIN_DECLS

/**
 * GstVisualSearchMetric:
 * @GST_VISUALSEARCH_METRIC_INNER_PRODUCT: inner product; larger is closer
 *   (cosine similarity when embeddings are L2-normalised). Nick "ip".
 * @GST_VISUALSEARCH_METRIC_L2: squared Euclidean distance, as FAISS returns it;
 *   smaller is closer. Nick "l2".
 *
 * The metric an index ranks by: the type of faissindexer's and faisssearch's
 * "metric" properties and of #GstVisualSearchNeighborsMeta's @metric. Its
 * #GType is GST_TYPE_VISUALSEARCH_METRIC, and its value nicks are how
 * gst-launch and the catalog spell it.
 */
typedef enum /*< underscore_name=gst_visualsearch_metric >*/
{
  GST_VISUALSEARCH_METRIC_INNER_PRODUCT = 0, /*< nick=ip >*/
  GST_VISUALSEARCH_METRIC_L2 = 1, /*< nick=l2 >*/
} GstVisualSearchMetric;

GST_VISUALSEARCH_API
const gchar *gst_visualsearch_metric_to_string (GstVisualSearchMetric metric);

GST_VISUALSEARCH_API
gboolean gst_visualsearch_metric_from_string (const gchar *str,
    GstVisualSearchMetric *metric);

/* ------------------------------------------------------------------------ */

/**
 * GstVisualSearchEmbeddingMeta:
 * @meta: parent #GstMeta
 * @dims: number of values
 * @values: (array length=dims): the embedding, owned by the meta
 * @model_id: which model produced it, e.g. "resnet18:f37072fd"
 * @preprocessing_id: how the frame was prepared, e.g. "rgb;resize=256;crop=224;mean=...;std=..."
 * @normalized: whether @values has unit L2 norm
 *
 * The embedding of the buffer's whole picture. Copied with the whole buffer
 * and through a scale; dropped by a partial copy or any other transform (see
 * the introduction).
 */
typedef struct
{
  GstMeta meta;

  guint dims;
  gfloat *values;
  gchar *model_id;
  gchar *preprocessing_id;
  gboolean normalized;
} GstVisualSearchEmbeddingMeta;

GST_VISUALSEARCH_API GType gst_visualsearch_embedding_meta_api_get_type (void);
#define GST_VISUALSEARCH_EMBEDDING_META_API_TYPE \
  (gst_visualsearch_embedding_meta_api_get_type ())
GST_VISUALSEARCH_API const GstMetaInfo *
gst_visualsearch_embedding_meta_get_info (void);
#define GST_VISUALSEARCH_EMBEDDING_META_INFO \
  (gst_visualsearch_embedding_meta_get_info ())

GST_VISUALSEARCH_API
GstVisualSearchEmbeddingMeta *
gst_buffer_get_visualsearch_embedding_meta (GstBuffer *buffer);

GST_VISUALSEARCH_API
const gfloat *
gst_visualsearch_embedding_meta_get_values (const GstVisualSearchEmbeddingMeta
                                                *meta,
    guint *n_values);

GST_VISUALSEARCH_API
GstVisualSearchEmbeddingMeta *
gst_buffer_add_visualsearch_embedding_meta (GstBuffer *buffer, guint dims,
    const gfloat *values, const gchar *model_id, const gchar *preprocessing_id,
    gboolean normalized);

/* ------------------------------------------------------------------------ */

/**
 * GstVisualSearchNeighbor:
 * @id: the gallery item's id in the index and catalog
 * @distance: the score as FAISS returns it for the meta's metric
 * @label: class label, or -1 when unknown
 * @label_name: (nullable): class name
 * @source: (nullable): where the gallery image can be read back, e.g.
 *   "cifar10/train/1234" or a file path
 */
typedef struct
{
  gint64 id;
  gfloat distance;
  gint label;
  gchar *label_name;
  gchar *source;
} GstVisualSearchNeighbor;

/**
 * GstVisualSearchNeighborsMeta:
 * @meta: parent #GstMeta
 * @metric: the metric @distance is measured in
 * @n_neighbors: number of entries in @neighbors
 * @neighbors: (array length=n_neighbors): nearest first, owned by the meta
 *
 * The gallery items nearest to the buffer's #GstVisualSearchEmbeddingMeta; it goes where
 * that goes (see the introduction).
 */
typedef struct
{
  GstMeta meta;

  GstVisualSearchMetric metric;
  guint n_neighbors;
  GstVisualSearchNeighbor *neighbors;
} GstVisualSearchNeighborsMeta;

GST_VISUALSEARCH_API GType gst_visualsearch_neighbors_meta_api_get_type (void);
#define GST_VISUALSEARCH_NEIGHBORS_META_API_TYPE \
  (gst_visualsearch_neighbors_meta_api_get_type ())
GST_VISUALSEARCH_API const GstMetaInfo *
gst_visualsearch_neighbors_meta_get_info (void);
#define GST_VISUALSEARCH_NEIGHBORS_META_INFO \
  (gst_visualsearch_neighbors_meta_get_info ())

GST_VISUALSEARCH_API
GstVisualSearchNeighborsMeta *
gst_buffer_get_visualsearch_neighbors_meta (GstBuffer *buffer);

GST_VISUALSEARCH_API
gboolean
gst_visualsearch_neighbors_meta_get_neighbor (const GstVisualSearchNeighborsMeta
                                                  *meta,
    guint index, gint64 *id, gfloat *distance, gint *label,
    const gchar **label_name, const gchar **source);

GST_VISUALSEARCH_API
GstVisualSearchNeighborsMeta *
gst_buffer_add_visualsearch_neighbors_meta (GstBuffer *buffer,
    GstVisualSearchMetric metric, guint n_neighbors,
    const GstVisualSearchNeighbor *neighbors);

/* ------------------------------------------------------------------------ */

/**
 * GstVisualSearchSampleMeta:
 * @meta: parent #GstMeta
 * @id: the sample's id in its dataset split (record index)
 * @label: class label, or -1 when unknown
 * @label_name: (nullable): class name
 * @source: (nullable): where the sample comes from, e.g. "cifar10/train/1234"
 *
 * Which dataset sample the buffer's pixels come from; every transform keeps
 * it, as it stays true of any part of them.
 */
typedef struct
{
  GstMeta meta;

  gint64 id;
  gint label;
  gchar *label_name;
  gchar *source;
} GstVisualSearchSampleMeta;

GST_VISUALSEARCH_API GType gst_visualsearch_sample_meta_api_get_type (void);
#define GST_VISUALSEARCH_SAMPLE_META_API_TYPE \
  (gst_visualsearch_sample_meta_api_get_type ())
GST_VISUALSEARCH_API const GstMetaInfo *
gst_visualsearch_sample_meta_get_info (void);
#define GST_VISUALSEARCH_SAMPLE_META_INFO \
  (gst_visualsearch_sample_meta_get_info ())

GST_VISUALSEARCH_API
GstVisualSearchSampleMeta *
gst_buffer_get_visualsearch_sample_meta (GstBuffer *buffer);

GST_VISUALSEARCH_API
GstVisualSearchSampleMeta *
gst_buffer_add_visualsearch_sample_meta (GstBuffer *buffer, gint64 id,
    gint label, const gchar *label_name, const gchar *source);

G_END_DECLS

#include <gst/visualsearch/visualsearch-enumtypes.h>
#include <gst/visualsearch/visualsearchregion.h>

#endif /* __GST_VISUALSEARCH_META_H__ */
