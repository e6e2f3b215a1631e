/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* visualsearch metadata: see visualsearchmeta.h, whose introduction says
 * what each transform does to each meta and why.
 *
 * The metas carry no tags, so that elements which know nothing of them pass
 * them on (GstBaseTransform only copies a tagless meta, and only if it has a
 * transform function). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/visualsearch/visualsearchmeta.h>

#include <string.h>

/**
 * gst_visualsearch_metric_to_string:
 * @metric: a #GstVisualSearchMetric
 *
 * Returns: (transfer none): the metric's nick, as the elements' "metric"
 *   properties spell it ("ip" or "l2"), or "unknown"
 */
const gchar *
gst_visualsearch_metric_to_string (GstVisualSearchMetric metric)
{
  GEnumClass *klass =
      G_ENUM_CLASS (g_type_class_ref (GST_TYPE_VISUALSEARCH_METRIC));
  const GEnumValue *value = g_enum_get_value (klass, metric);
  /* The class of a static type is never freed: the nick outlives the ref. */
  g_type_class_unref (klass);
  return value ? value->value_nick : "unknown";
}

/**
 * gst_visualsearch_metric_from_string:
 * @str: (nullable): a #GstVisualSearchMetric nick, "ip" or "l2", in any case
 * @metric: (out): the metric @str names
 *
 * Returns: %TRUE when @str names a metric; @metric is left alone otherwise
 */
gboolean
gst_visualsearch_metric_from_string (const gchar *str,
    GstVisualSearchMetric *metric)
{
  GEnumClass *klass;
  gboolean found = FALSE;

  if (str == NULL)
    return FALSE;
  klass = G_ENUM_CLASS (g_type_class_ref (GST_TYPE_VISUALSEARCH_METRIC));
  for (guint i = 0; i < klass->n_values; i++) {
    if (g_ascii_strcasecmp (str, klass->values[i].value_nick) == 0) {
      *metric = (GstVisualSearchMetric) klass->values[i].value;
      found = TRUE;
      break;
    }
  }
  g_type_class_unref (klass);
  return found;
}

/* --- GstVisualSearchEmbeddingMeta ---------------------------------------------------- */

/**
 * gst_visualsearch_embedding_meta_api_get_type:
 *
 * Returns: the #GType of the GstVisualSearchEmbeddingMeta API, for gst_buffer_get_meta()
 */
GType
gst_visualsearch_embedding_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = {NULL};

  if (g_once_init_enter (&type)) {
    GType _type =
        gst_meta_api_type_register ("GstVisualSearchEmbeddingMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

static gboolean
gst_visualsearch_embedding_meta_init (GstMeta *meta, gpointer params,
    GstBuffer *buffer)
{
  GstVisualSearchEmbeddingMeta *emeta = (GstVisualSearchEmbeddingMeta *) meta;

  emeta->dims = 0;
  emeta->values = NULL;
  emeta->model_id = NULL;
  emeta->preprocessing_id = NULL;
  emeta->normalized = FALSE;
  return TRUE;
}

static void
gst_visualsearch_embedding_meta_free (GstMeta *meta, GstBuffer *buffer)
{
  GstVisualSearchEmbeddingMeta *emeta = (GstVisualSearchEmbeddingMeta *) meta;

  g_free (emeta->values);
  g_free (emeta->model_id);
  g_free (emeta->preprocessing_id);
}

/* Whether a transform keeps the whole picture of the frame, so that an
 * embedding of it, and the neighbours found for that, still describe the new
 * buffer: a copy of the whole buffer, or a scale ("gst-video-scale", named
 * here so that the library needs no GstVideo). A copy of part of the buffer
 * and every other transform (a crop, or what later GStreamer versions add)
 * may not keep it. */
static gboolean
keeps_whole_picture (GQuark type, gpointer data)
{
  if (GST_META_TRANSFORM_IS_COPY (type))
    return !((GstMetaTransformCopy *) data)->region;
  return type == g_quark_from_static_string ("gst-video-scale");
}

static gboolean
gst_visualsearch_embedding_meta_transform (GstBuffer *dest, GstMeta *meta,
    GstBuffer *buffer, GQuark type, gpointer data)
{
  GstVisualSearchEmbeddingMeta *src = (GstVisualSearchEmbeddingMeta *) meta;

  /* Dropped: TRUE, as nothing failed. */
  if (!keeps_whole_picture (type, data))
    return TRUE;
  return gst_buffer_add_visualsearch_embedding_meta (dest, src->dims,
             src->values, src->model_id, src->preprocessing_id, src->normalized)
      != NULL;
}

/**
 * gst_visualsearch_embedding_meta_get_info:
 *
 * Returns: (transfer none): the registration of #GstVisualSearchEmbeddingMeta
 */
const GstMetaInfo *
gst_visualsearch_embedding_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) &info)) {
    const GstMetaInfo *mi =
        gst_meta_register (GST_VISUALSEARCH_EMBEDDING_META_API_TYPE,
            "GstVisualSearchEmbeddingMeta",
            sizeof (GstVisualSearchEmbeddingMeta),
            gst_visualsearch_embedding_meta_init,
            gst_visualsearch_embedding_meta_free,
            gst_visualsearch_embedding_meta_transform);
    g_once_init_leave ((GstMetaInfo **) &info, (GstMetaInfo *) mi);
  }
  return info;
}

/**
 * gst_buffer_get_visualsearch_embedding_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the embedding of @buffer, or %NULL
 *   when it has none; valid while @buffer is
 */
GstVisualSearchEmbeddingMeta *
gst_buffer_get_visualsearch_embedding_meta (GstBuffer *buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstVisualSearchEmbeddingMeta *) gst_buffer_get_meta (buffer,
      GST_VISUALSEARCH_EMBEDDING_META_API_TYPE);
}

/**
 * gst_visualsearch_embedding_meta_get_values:
 * @meta: a #GstVisualSearchEmbeddingMeta
 * @n_values: (out): the number of values, @meta's dims
 *
 * For language bindings, which cannot read the @values array field.
 *
 * Returns: (array length=n_values) (transfer none) (nullable): the
 *   embedding, owned by @meta
 */
const gfloat *
gst_visualsearch_embedding_meta_get_values (const GstVisualSearchEmbeddingMeta
                                                *meta,
    guint *n_values)
{
  g_return_val_if_fail (meta != NULL, NULL);
  g_return_val_if_fail (n_values != NULL, NULL);

  *n_values = meta->dims;
  return meta->values;
}

/**
 * gst_buffer_add_visualsearch_embedding_meta:
 * @buffer: a #GstBuffer
 * @dims: the number of @values
 * @values: (array length=dims) (nullable): the embedding, copied
 * @model_id: (nullable): which model produced it
 * @preprocessing_id: (nullable): how the frame was prepared
 * @normalized: whether @values has unit L2 norm
 *
 * Returns: (transfer none) (nullable): the new meta, or %NULL on bad input
 */
GstVisualSearchEmbeddingMeta *
gst_buffer_add_visualsearch_embedding_meta (GstBuffer *buffer, guint dims,
    const gfloat *values, const gchar *model_id, const gchar *preprocessing_id,
    gboolean normalized)
{
  GstVisualSearchEmbeddingMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (dims == 0 || values != NULL, NULL);

  meta = (GstVisualSearchEmbeddingMeta *) gst_buffer_add_meta (buffer,
      GST_VISUALSEARCH_EMBEDDING_META_INFO, NULL);
  if (meta == NULL)
    return NULL;

  meta->dims = dims;
  meta->values = dims ? g_memdup2 (values, sizeof (gfloat) * dims) : NULL;
  meta->model_id = g_strdup (model_id);
  meta->preprocessing_id = g_strdup (preprocessing_id);
  meta->normalized = normalized;
  return meta;
}

/* --- GstVisualSearchNeighborsMeta ---------------------------------------------------- */

/**
 * gst_visualsearch_neighbors_meta_api_get_type:
 *
 * Returns: the #GType of the GstVisualSearchNeighborsMeta API, for gst_buffer_get_meta()
 */
GType
gst_visualsearch_neighbors_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = {NULL};

  if (g_once_init_enter (&type)) {
    GType _type =
        gst_meta_api_type_register ("GstVisualSearchNeighborsMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

static gboolean
gst_visualsearch_neighbors_meta_init (GstMeta *meta, gpointer params,
    GstBuffer *buffer)
{
  GstVisualSearchNeighborsMeta *nmeta = (GstVisualSearchNeighborsMeta *) meta;

  nmeta->metric = GST_VISUALSEARCH_METRIC_INNER_PRODUCT;
  nmeta->n_neighbors = 0;
  nmeta->neighbors = NULL;
  return TRUE;
}

static void
gst_visualsearch_neighbors_meta_free (GstMeta *meta, GstBuffer *buffer)
{
  GstVisualSearchNeighborsMeta *nmeta = (GstVisualSearchNeighborsMeta *) meta;
  guint i;

  for (i = 0; i < nmeta->n_neighbors; i++) {
    g_free (nmeta->neighbors[i].label_name);
    g_free (nmeta->neighbors[i].source);
  }
  g_free (nmeta->neighbors);
}

static gboolean
gst_visualsearch_neighbors_meta_transform (GstBuffer *dest, GstMeta *meta,
    GstBuffer *buffer, GQuark type, gpointer data)
{
  GstVisualSearchNeighborsMeta *src = (GstVisualSearchNeighborsMeta *) meta;

  if (!keeps_whole_picture (type, data))
    return TRUE;
  return gst_buffer_add_visualsearch_neighbors_meta (dest, src->metric,
             src->n_neighbors, src->neighbors)
      != NULL;
}

/**
 * gst_visualsearch_neighbors_meta_get_info:
 *
 * Returns: (transfer none): the registration of #GstVisualSearchNeighborsMeta
 */
const GstMetaInfo *
gst_visualsearch_neighbors_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) &info)) {
    const GstMetaInfo *mi =
        gst_meta_register (GST_VISUALSEARCH_NEIGHBORS_META_API_TYPE,
            "GstVisualSearchNeighborsMeta",
            sizeof (GstVisualSearchNeighborsMeta),
            gst_visualsearch_neighbors_meta_init,
            gst_visualsearch_neighbors_meta_free,
            gst_visualsearch_neighbors_meta_transform);
    g_once_init_leave ((GstMetaInfo **) &info, (GstMetaInfo *) mi);
  }
  return info;
}

/**
 * gst_buffer_get_visualsearch_neighbors_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the nearest neighbours of @buffer, or
 *   %NULL when it has none; valid while @buffer is
 */
GstVisualSearchNeighborsMeta *
gst_buffer_get_visualsearch_neighbors_meta (GstBuffer *buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstVisualSearchNeighborsMeta *) gst_buffer_get_meta (buffer,
      GST_VISUALSEARCH_NEIGHBORS_META_API_TYPE);
}

/**
 * gst_visualsearch_neighbors_meta_get_neighbor:
 * @meta: a #GstVisualSearchNeighborsMeta
 * @index: which neighbour, 0 (the nearest) to n_neighbors - 1
 * @id: (out) (optional): the gallery item's id
 * @distance: (out) (optional): its score in @meta's metric
 * @label: (out) (optional): its class label, or -1
 * @label_name: (out) (optional) (nullable) (transfer none): its class name
 * @source: (out) (optional) (nullable) (transfer none): where its image is
 *
 * For language bindings, which cannot read the @neighbors array field.
 *
 * Returns: %FALSE when @index is out of range (the out arguments are then
 *   left alone)
 */
gboolean
gst_visualsearch_neighbors_meta_get_neighbor (const GstVisualSearchNeighborsMeta
                                                  *meta,
    guint index, gint64 *id, gfloat *distance, gint *label,
    const gchar **label_name, const gchar **source)
{
  const GstVisualSearchNeighbor *nb;

  g_return_val_if_fail (meta != NULL, FALSE);

  if (index >= meta->n_neighbors)
    return FALSE;
  nb = &meta->neighbors[index];
  if (id)
    *id = nb->id;
  if (distance)
    *distance = nb->distance;
  if (label)
    *label = nb->label;
  if (label_name)
    *label_name = nb->label_name;
  if (source)
    *source = nb->source;
  return TRUE;
}

/**
 * gst_buffer_add_visualsearch_neighbors_meta:
 * @buffer: a #GstBuffer
 * @metric: the metric the distances are measured in
 * @n_neighbors: the number of @neighbors
 * @neighbors: (array length=n_neighbors) (nullable): nearest first, deep-copied
 *   (strings included)
 *
 * Returns: (transfer none) (nullable): the new meta, or %NULL on bad input
 */
GstVisualSearchNeighborsMeta *
gst_buffer_add_visualsearch_neighbors_meta (GstBuffer *buffer,
    GstVisualSearchMetric metric, guint n_neighbors,
    const GstVisualSearchNeighbor *neighbors)
{
  GstVisualSearchNeighborsMeta *meta;
  guint i;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (n_neighbors == 0 || neighbors != NULL, NULL);

  meta = (GstVisualSearchNeighborsMeta *) gst_buffer_add_meta (buffer,
      GST_VISUALSEARCH_NEIGHBORS_META_INFO, NULL);
  if (meta == NULL)
    return NULL;

  meta->metric = metric;
  meta->n_neighbors = n_neighbors;
  meta->neighbors = g_new0 (GstVisualSearchNeighbor, MAX (n_neighbors, 1));
  for (i = 0; i < n_neighbors; i++) {
    meta->neighbors[i].id = neighbors[i].id;
    meta->neighbors[i].distance = neighbors[i].distance;
    meta->neighbors[i].label = neighbors[i].label;
    meta->neighbors[i].label_name = g_strdup (neighbors[i].label_name);
    meta->neighbors[i].source = g_strdup (neighbors[i].source);
  }
  return meta;
}

/* --- GstVisualSearchSampleMeta ------------------------------------------------------- */

/**
 * gst_visualsearch_sample_meta_api_get_type:
 *
 * Returns: the #GType of the GstVisualSearchSampleMeta API, for gst_buffer_get_meta()
 */
GType
gst_visualsearch_sample_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = {NULL};

  if (g_once_init_enter (&type)) {
    GType _type =
        gst_meta_api_type_register ("GstVisualSearchSampleMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

static gboolean
gst_visualsearch_sample_meta_init (GstMeta *meta, gpointer params,
    GstBuffer *buffer)
{
  GstVisualSearchSampleMeta *smeta = (GstVisualSearchSampleMeta *) meta;

  smeta->id = -1;
  smeta->label = -1;
  smeta->label_name = NULL;
  smeta->source = NULL;
  return TRUE;
}

static void
gst_visualsearch_sample_meta_free (GstMeta *meta, GstBuffer *buffer)
{
  GstVisualSearchSampleMeta *smeta = (GstVisualSearchSampleMeta *) meta;

  g_free (smeta->label_name);
  g_free (smeta->source);
}

static gboolean
gst_visualsearch_sample_meta_transform (GstBuffer *dest, GstMeta *meta,
    GstBuffer *buffer, GQuark type, gpointer data)
{
  GstVisualSearchSampleMeta *src = (GstVisualSearchSampleMeta *) meta;

  /* Whatever is done to the pixels, they still come from this sample. */
  return gst_buffer_add_visualsearch_sample_meta (dest, src->id, src->label,
             src->label_name, src->source)
      != NULL;
}

/**
 * gst_visualsearch_sample_meta_get_info:
 *
 * Returns: (transfer none): the registration of #GstVisualSearchSampleMeta
 */
const GstMetaInfo *
gst_visualsearch_sample_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) &info)) {
    const GstMetaInfo *mi =
        gst_meta_register (GST_VISUALSEARCH_SAMPLE_META_API_TYPE,
            "GstVisualSearchSampleMeta", sizeof (GstVisualSearchSampleMeta),
            gst_visualsearch_sample_meta_init,
            gst_visualsearch_sample_meta_free,
            gst_visualsearch_sample_meta_transform);
    g_once_init_leave ((GstMetaInfo **) &info, (GstMetaInfo *) mi);
  }
  return info;
}

/**
 * gst_buffer_get_visualsearch_sample_meta:
 * @buffer: a #GstBuffer
 *
 * Returns: (transfer none) (nullable): the dataset sample @buffer was read
 *   from, or %NULL when it has none; valid while @buffer is
 */
GstVisualSearchSampleMeta *
gst_buffer_get_visualsearch_sample_meta (GstBuffer *buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstVisualSearchSampleMeta *) gst_buffer_get_meta (buffer,
      GST_VISUALSEARCH_SAMPLE_META_API_TYPE);
}

/**
 * gst_buffer_add_visualsearch_sample_meta:
 * @buffer: a #GstBuffer
 * @id: the sample's record index in its split
 * @label: its class label, or -1
 * @label_name: (nullable): its class name, copied
 * @source: (nullable): where it comes from, copied
 *
 * Returns: (transfer none) (nullable): the new meta, or %NULL on bad input
 */
GstVisualSearchSampleMeta *
gst_buffer_add_visualsearch_sample_meta (GstBuffer *buffer, gint64 id,
    gint label, const gchar *label_name, const gchar *source)
{
  GstVisualSearchSampleMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  meta = (GstVisualSearchSampleMeta *) gst_buffer_add_meta (buffer,
      GST_VISUALSEARCH_SAMPLE_META_INFO, NULL);
  if (meta == NULL)
    return NULL;

  meta->id = id;
  meta->label = label;
  meta->label_name = g_strdup (label_name);
  meta->source = g_strdup (source);
  return meta;
}
