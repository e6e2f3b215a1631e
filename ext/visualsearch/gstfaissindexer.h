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

/**
 * GstFaissIndexerMode:
 * @GST_FAISS_INDEXER_MODE_APPEND: add to the index at location
 * @GST_FAISS_INDEXER_MODE_UPDATE: update a gallery index from gallerysrc's walk
 * @GST_FAISS_INDEXER_MODE_REBUILD: write a new index in place of any there
 *
 * What an indexer does with an index already at its location: the type of
 * both faissindexer's and galleryindexer's mode.
 */
typedef enum
{
  GST_FAISS_INDEXER_MODE_APPEND,
  GST_FAISS_INDEXER_MODE_UPDATE,
  GST_FAISS_INDEXER_MODE_REBUILD,
} GstFaissIndexerMode;

#define GST_TYPE_FAISS_INDEXER_MODE (gst_faiss_indexer_mode_get_type ())
GType gst_faiss_indexer_mode_get_type (void);

G_END_DECLS

#endif
