/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* faissindexer: collects the embeddings of a stream into a FAISS index and
 * its SQLite catalog, written atomically at EOS. */
#ifndef __GST_FAISS_INDEXER_H__
#define __GST_FAISS_INDEXER_H__

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_FAISS_INDEXER (gst_faiss_indexer_get_type ())
G_DECLARE_FINAL_TYPE (GstFaissIndexer, gst_faiss_indexer, GST, FAISS_INDEXER,
    GstBaseSink)

#define GST_TYPE_FAISS_INDEXER_MODE (gst_faiss_indexer_mode_get_type ())
GType gst_faiss_indexer_mode_get_type (void);

G_END_DECLS

#endif
