/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cifarindexer: the static CIFAR indexer, cifarsrc ! embedder ! faissindexer
 * in one element. */
#ifndef __GST_CIFAR_INDEXER_H__
#define __GST_CIFAR_INDEXER_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_CIFAR_INDEXER (gst_cifar_indexer_get_type ())
G_DECLARE_FINAL_TYPE (GstCifarIndexer, gst_cifar_indexer, GST, CIFAR_INDEXER,
    GstBin)

G_END_DECLS

#endif
