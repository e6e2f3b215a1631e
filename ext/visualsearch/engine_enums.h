/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine's enums as the elements' GEnums. engine/ keeps its own C++ enums
 * (vs::Metric, vs::Precision) and knows nothing of GLib; the elements'
 * properties are GEnums: GstVisualSearchMetric from the metadata library,
 * GstEmbedderPrecision. Every element converts through these pairs and
 * nowhere else. Users type the GEnums' nicks; the catalog records
 * vs::metric_name () and the embedder settings vs::precision_name (), the
 * same words. */
#ifndef __GST_VISUALSEARCH_ENGINE_ENUMS_H__
#define __GST_VISUALSEARCH_ENGINE_ENUMS_H__

#include <gst/visualsearch/visualsearchmeta.h>

#include "engine/index/index_store.h"
#include "engine/model/embedding_engine.h"
#include "gstembedder.h"

GstVisualSearchMetric to_gst_metric (vs::Metric metric);
vs::Metric to_engine_metric (GstVisualSearchMetric metric);

GstEmbedderPrecision to_gst_precision (vs::Precision precision);
vs::Precision to_engine_precision (GstEmbedderPrecision precision);

#endif
