/* faisssearch: nearest gallery neighbours of each frame's embedding. */
#ifndef __GST_FAISS_SEARCH_H__
#define __GST_FAISS_SEARCH_H__

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_FAISS_SEARCH (gst_faiss_search_get_type ())
G_DECLARE_FINAL_TYPE (GstFaissSearch, gst_faiss_search, GST, FAISS_SEARCH,
    GstBaseTransform)

G_END_DECLS

#endif /* __GST_FAISS_SEARCH_H__ */
