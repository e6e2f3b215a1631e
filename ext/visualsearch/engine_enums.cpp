/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine's enums as the elements' GEnums: see engine_enums.h. The
 * switches name every value, so a value added on one side and not the other
 * is a -Wswitch warning. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "engine_enums.h"

GstVisualSearchMetric
to_gst_metric (vs::Metric metric)
{
  switch (metric) {
    case vs::Metric::InnerProduct:
      return GST_VISUALSEARCH_METRIC_INNER_PRODUCT;
    case vs::Metric::L2:
      return GST_VISUALSEARCH_METRIC_L2;
  }
  g_return_val_if_reached (GST_VISUALSEARCH_METRIC_INNER_PRODUCT);
}

vs::Metric
to_engine_metric (GstVisualSearchMetric metric)
{
  switch (metric) {
    case GST_VISUALSEARCH_METRIC_INNER_PRODUCT:
      return vs::Metric::InnerProduct;
    case GST_VISUALSEARCH_METRIC_L2:
      return vs::Metric::L2;
  }
  g_return_val_if_reached (vs::Metric::InnerProduct);
}

GstEmbedderPrecision
to_gst_precision (vs::Precision precision)
{
  switch (precision) {
    case vs::Precision::FP32:
      return GST_EMBEDDER_PRECISION_FP32;
    case vs::Precision::BF16:
      return GST_EMBEDDER_PRECISION_BF16;
    case vs::Precision::AUTO:
      return GST_EMBEDDER_PRECISION_AUTO;
    case vs::Precision::INT8:
      return GST_EMBEDDER_PRECISION_INT8;
  }
  g_return_val_if_reached (GST_EMBEDDER_PRECISION_FP32);
}

vs::Precision
to_engine_precision (GstEmbedderPrecision precision)
{
  switch (precision) {
    case GST_EMBEDDER_PRECISION_FP32:
      return vs::Precision::FP32;
    case GST_EMBEDDER_PRECISION_BF16:
      return vs::Precision::BF16;
    case GST_EMBEDDER_PRECISION_AUTO:
      return vs::Precision::AUTO;
    case GST_EMBEDDER_PRECISION_INT8:
      return vs::Precision::INT8;
  }
  g_return_val_if_reached (vs::Precision::FP32);
}
