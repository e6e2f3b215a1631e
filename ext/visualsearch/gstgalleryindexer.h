/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* galleryindexer: gallerysrc ! embedder ! faissindexer in one element, which
 * updates an index incrementally from its folder. */
#ifndef __GST_GALLERY_INDEXER_H__
#define __GST_GALLERY_INDEXER_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_GALLERY_INDEXER (gst_gallery_indexer_get_type ())
G_DECLARE_FINAL_TYPE (GstGalleryIndexer, gst_gallery_indexer, GST,
    GALLERY_INDEXER, GstBin)

G_END_DECLS

#endif
