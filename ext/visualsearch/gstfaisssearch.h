/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* faisssearch: nearest gallery neighbours of each frame's embedding. */
#ifndef __GST_FAISS_SEARCH_H__
#define __GST_FAISS_SEARCH_H__

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/* The sticky custom downstream event faisssearch sends after its caps, so
 * that elements downstream (retrievaleval) find the gallery by themselves:
 * fields index and catalog (strings, the paths faisssearch reads). */
#define VS_INDEX_EVENT "visualsearch-index"

#define GST_TYPE_FAISS_SEARCH (gst_faiss_search_get_type ())
G_DECLARE_FINAL_TYPE (GstFaissSearch, gst_faiss_search, GST, FAISS_SEARCH,
    GstBaseTransform)

G_END_DECLS

#endif /* __GST_FAISS_SEARCH_H__ */
