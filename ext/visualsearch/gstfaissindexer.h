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

G_END_DECLS

#ifdef __cplusplus
#include <memory>

namespace vs {
class FileInventory;
}

/* For galleryindexer, before start: build an IDMap2 index whose items carry
 * their files' identities, updating the one at location when update is TRUE,
 * and whose catalog records root, the folder the sources are relative to
 * (see vs::IndexBuildOptions::gallery, update and gallery_root). */
void gst_faiss_indexer_set_gallery_mode (GstFaissIndexer *indexer,
    gboolean gallery, gboolean update, const gchar *root);
/* The files the index holds, from start to stop of a gallery run; nullptr
 * otherwise. Any thread. */
std::shared_ptr<vs::FileInventory>
gst_faiss_indexer_get_inventory (GstFaissIndexer *indexer);
#endif

#endif
