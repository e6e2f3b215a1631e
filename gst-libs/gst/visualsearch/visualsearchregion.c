/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The results of one region of a frame travel as parameters of its
 * GstVideoRegionOfInterestMeta (a GstStructure per kind, the carrier every
 * GStreamer 1.22 detector and overlay knows), not as metas of their own: the
 * ROI meta's own transform then keeps, scales or drops region and results
 * together, and they map one to one onto GstAnalytics' object-detection and
 * tensor metadata of later GStreamer releases.
 *
 * The embedding's values are one #GBytes of float32: copying the structure
 * (a buffer copy, a tee) takes a reference instead of copying the floats,
 * and readers get a pointer, not a GValue per value. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/visualsearch/visualsearchmeta.h>

/* Adds s to roi's parameters in place of any of its name: the meta would
 * otherwise keep both, and return the older. */
static void
replace_param (GstVideoRegionOfInterestMeta *roi, GstStructure *s)
{
  GstStructure *old = gst_video_region_of_interest_meta_get_param (roi,
      gst_structure_get_name (s));

  if (old) {
    roi->params = g_list_remove (roi->params, old);
    gst_structure_free (old);
  }
  gst_video_region_of_interest_meta_add_param (roi, s);
}

/**
 * gst_visualsearch_region_set_embedding:
 * @roi: a #GstVideoRegionOfInterestMeta
 * @dims: the number of @values
 * @values: (array length=dims): the embedding of the region, copied
 * @model_id: (nullable): the model's identity, as in
 *   #GstVisualSearchEmbeddingMeta
 * @preprocessing_id: (nullable): the preprocessing's identity
 * @normalized: whether @values are L2-normalised
 *
 * Adds (or replaces) the %GST_VISUALSEARCH_REGION_EMBEDDING_PARAM parameter
 * of @roi.
 */
void
gst_visualsearch_region_set_embedding (GstVideoRegionOfInterestMeta *roi,
    guint dims, const gfloat *values, const gchar *model_id,
    const gchar *preprocessing_id, gboolean normalized)
{
  GBytes *bytes;
  GstStructure *s;

  g_return_if_fail (roi != NULL);
  g_return_if_fail (values != NULL || dims == 0);

  bytes = g_bytes_new (values, (gsize) dims * sizeof (gfloat));
  s = gst_structure_new (GST_VISUALSEARCH_REGION_EMBEDDING_PARAM, "dims",
      G_TYPE_UINT, dims, "values", G_TYPE_BYTES, bytes, "model-id",
      G_TYPE_STRING, model_id ? model_id : "", "preprocessing-id",
      G_TYPE_STRING, preprocessing_id ? preprocessing_id : "", "normalized",
      G_TYPE_BOOLEAN, normalized, NULL);
  g_bytes_unref (bytes);
  replace_param (roi, s);
}

/* roi's parameter named name, or NULL; the readers check its fields. */
static GstStructure *
find_param (GstVideoRegionOfInterestMeta *roi, const gchar *name)
{
  g_return_val_if_fail (roi != NULL, NULL);
  return gst_video_region_of_interest_meta_get_param (roi, name);
}

/**
 * gst_visualsearch_region_get_embedding:
 * @roi: a #GstVideoRegionOfInterestMeta
 * @dims: (out): the number of values returned, 0 when there are none
 *
 * Returns: (array length=dims) (transfer none) (nullable): the embedding
 *   embedder attached to the region, or %NULL when it has none (or a
 *   malformed one); valid while @roi is
 */
const gfloat *
gst_visualsearch_region_get_embedding (GstVideoRegionOfInterestMeta *roi,
    guint *dims)
{
  GstStructure *s = find_param (roi, GST_VISUALSEARCH_REGION_EMBEDDING_PARAM);
  const GValue *v;
  GBytes *bytes;
  guint n;
  gsize size;
  gconstpointer data;

  g_return_val_if_fail (dims != NULL, NULL);
  *dims = 0;
  if (s == NULL || !gst_structure_get_uint (s, "dims", &n)
      || (v = gst_structure_get_value (s, "values")) == NULL
      || !G_VALUE_HOLDS (v, G_TYPE_BYTES)
      || (bytes = (GBytes *) g_value_get_boxed (v)) == NULL)
    return NULL;
  data = g_bytes_get_data (bytes, &size);
  if (n == 0 || size != (gsize) n * sizeof (gfloat))
    return NULL;
  *dims = n;
  return (const gfloat *) data;
}

/**
 * gst_visualsearch_region_get_embedding_info:
 * @roi: a #GstVideoRegionOfInterestMeta
 * @model_id: (out) (optional) (transfer none): the model's identity
 * @preprocessing_id: (out) (optional) (transfer none): the preprocessing's
 *   identity
 * @normalized: (out) (optional): whether the values are L2-normalised
 *
 * Returns: %FALSE when the region has no embedding (the out arguments are
 *   then left alone)
 */
gboolean
gst_visualsearch_region_get_embedding_info (GstVideoRegionOfInterestMeta *roi,
    const gchar **model_id, const gchar **preprocessing_id,
    gboolean *normalized)
{
  GstStructure *s = find_param (roi, GST_VISUALSEARCH_REGION_EMBEDDING_PARAM);
  guint dims;

  if (s == NULL || gst_visualsearch_region_get_embedding (roi, &dims) == NULL)
    return FALSE;
  if (model_id)
    *model_id = gst_structure_get_string (s, "model-id");
  if (preprocessing_id)
    *preprocessing_id = gst_structure_get_string (s, "preprocessing-id");
  if (normalized && !gst_structure_get_boolean (s, "normalized", normalized))
    *normalized = FALSE;
  return TRUE;
}

static void
append_value (GValue *array, GType type, gconstpointer v)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, type);
  switch (type) {
    case G_TYPE_INT64:
      g_value_set_int64 (&value, *(const gint64 *) v);
      break;
    case G_TYPE_FLOAT:
      g_value_set_float (&value, *(const gfloat *) v);
      break;
    case G_TYPE_INT:
      g_value_set_int (&value, *(const gint *) v);
      break;
    default:
      g_value_set_string (&value, (const gchar *) v);
      break;
  }
  gst_value_array_append_and_take_value (array, &value);
}

/**
 * gst_visualsearch_region_set_neighbors:
 * @roi: a #GstVideoRegionOfInterestMeta
 * @metric: the metric the distances are measured in
 * @n_neighbors: the number of @neighbors
 * @neighbors: (array length=n_neighbors) (nullable): nearest first, copied
 *
 * Adds (or replaces) the %GST_VISUALSEARCH_REGION_NEIGHBORS_PARAM parameter
 * of @roi.
 */
void
gst_visualsearch_region_set_neighbors (GstVideoRegionOfInterestMeta *roi,
    GstVisualSearchMetric metric, guint n_neighbors,
    const GstVisualSearchNeighbor *neighbors)
{
  GValue ids = G_VALUE_INIT, distances = G_VALUE_INIT, labels = G_VALUE_INIT;
  GValue label_names = G_VALUE_INIT, sources = G_VALUE_INIT;
  GstStructure *s;
  guint i;

  g_return_if_fail (roi != NULL);
  g_return_if_fail (neighbors != NULL || n_neighbors == 0);

  g_value_init (&ids, GST_TYPE_ARRAY);
  g_value_init (&distances, GST_TYPE_ARRAY);
  g_value_init (&labels, GST_TYPE_ARRAY);
  g_value_init (&label_names, GST_TYPE_ARRAY);
  g_value_init (&sources, GST_TYPE_ARRAY);
  for (i = 0; i < n_neighbors; i++) {
    const GstVisualSearchNeighbor *nb = &neighbors[i];
    append_value (&ids, G_TYPE_INT64, &nb->id);
    append_value (&distances, G_TYPE_FLOAT, &nb->distance);
    append_value (&labels, G_TYPE_INT, &nb->label);
    append_value (&label_names, G_TYPE_STRING, nb->label_name);
    append_value (&sources, G_TYPE_STRING, nb->source);
  }
  s = gst_structure_new (GST_VISUALSEARCH_REGION_NEIGHBORS_PARAM, "metric",
      G_TYPE_STRING, gst_visualsearch_metric_to_string (metric), NULL);
  gst_structure_take_value (s, "ids", &ids);
  gst_structure_take_value (s, "distances", &distances);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "label-names", &label_names);
  gst_structure_take_value (s, "sources", &sources);
  replace_param (roi, s);
}

/* The neighbours' arrays of s, NULL unless all five are arrays of n. */
static gboolean
neighbor_arrays (const GstStructure *s, const GValue *arrays[5], guint *n)
{
  static const gchar *names[5] = {"ids", "distances", "labels", "label-names",
      "sources"};
  guint i;

  for (i = 0; i < 5; i++) {
    arrays[i] = gst_structure_get_value (s, names[i]);
    if (arrays[i] == NULL || !GST_VALUE_HOLDS_ARRAY (arrays[i]))
      return FALSE;
    if (i == 0)
      *n = gst_value_array_get_size (arrays[0]);
    else if (gst_value_array_get_size (arrays[i]) != *n)
      return FALSE;
  }
  return TRUE;
}

/**
 * gst_visualsearch_region_get_neighbors_info:
 * @roi: a #GstVideoRegionOfInterestMeta
 * @metric: (out) (optional): the metric the distances are measured in
 * @n_neighbors: (out) (optional): how many neighbours the region has
 *
 * Returns: %FALSE when the region has no neighbours parameter (or a
 *   malformed one; the out arguments are then left alone)
 */
gboolean
gst_visualsearch_region_get_neighbors_info (GstVideoRegionOfInterestMeta *roi,
    GstVisualSearchMetric *metric, guint *n_neighbors)
{
  GstStructure *s = find_param (roi, GST_VISUALSEARCH_REGION_NEIGHBORS_PARAM);
  const GValue *arrays[5];
  GstVisualSearchMetric m;
  guint n;

  if (s == NULL || !neighbor_arrays (s, arrays, &n)
      || !gst_visualsearch_metric_from_string (gst_structure_get_string (s,
                                                   "metric"),
          &m))
    return FALSE;
  if (metric)
    *metric = m;
  if (n_neighbors)
    *n_neighbors = n;
  return TRUE;
}

/**
 * gst_visualsearch_region_get_neighbor:
 * @roi: a #GstVideoRegionOfInterestMeta
 * @index: which neighbour, 0 (the nearest) to n_neighbors - 1
 * @id: (out) (optional): the gallery item's id
 * @distance: (out) (optional): its score in the region's metric
 * @label: (out) (optional): its class label, or -1
 * @label_name: (out) (optional) (nullable) (transfer none): its class name
 * @source: (out) (optional) (nullable) (transfer none): where its image is,
 *   as #GstVisualSearchNeighbor's source
 *
 * Reads a neighbour that faisssearch found for the region, as
 * gst_visualsearch_neighbors_meta_get_neighbor() does for a frame.
 *
 * Returns: %FALSE when the region has no neighbours or @index is out of
 *   range (the out arguments are then left alone)
 */
gboolean
gst_visualsearch_region_get_neighbor (GstVideoRegionOfInterestMeta *roi,
    guint index, gint64 *id, gfloat *distance, gint *label,
    const gchar **label_name, const gchar **source)
{
  GstStructure *s = find_param (roi, GST_VISUALSEARCH_REGION_NEIGHBORS_PARAM);
  const GValue *arrays[5];
  const GValue *v[5];
  guint n, i;

  if (s == NULL || !neighbor_arrays (s, arrays, &n) || index >= n)
    return FALSE;
  for (i = 0; i < 5; i++)
    v[i] = gst_value_array_get_value (arrays[i], index);
  if (!G_VALUE_HOLDS_INT64 (v[0]) || !G_VALUE_HOLDS_FLOAT (v[1])
      || !G_VALUE_HOLDS_INT (v[2]) || !G_VALUE_HOLDS_STRING (v[3])
      || !G_VALUE_HOLDS_STRING (v[4]))
    return FALSE;
  if (id)
    *id = g_value_get_int64 (v[0]);
  if (distance)
    *distance = g_value_get_float (v[1]);
  if (label)
    *label = g_value_get_int (v[2]);
  if (label_name)
    *label_name = g_value_get_string (v[3]);
  if (source)
    *source = g_value_get_string (v[4]);
  return TRUE;
}
