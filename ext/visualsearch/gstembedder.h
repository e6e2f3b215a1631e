/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* embedder: attaches a ResNet (or TorchScript) embedding to video frames. */
#ifndef __GST_EMBEDDER_H__
#define __GST_EMBEDDER_H__

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_EMBEDDER (gst_embedder_get_type ())
G_DECLARE_FINAL_TYPE (GstEmbedder, gst_embedder, GST, EMBEDDER,
    GstBaseTransform)

/* The "precision" and "active-precision" properties' type; engine_enums.h
 * converts it to and from vs::Precision. */
typedef enum
{
  GST_EMBEDDER_PRECISION_FP32 = 0,
  GST_EMBEDDER_PRECISION_BF16 = 1,
  GST_EMBEDDER_PRECISION_AUTO = 2,
  GST_EMBEDDER_PRECISION_INT8 = 3,
} GstEmbedderPrecision;

#define GST_TYPE_EMBEDDER_PRECISION (gst_embedder_precision_get_type ())
GType gst_embedder_precision_get_type (void);

G_END_DECLS

#endif /* __GST_EMBEDDER_H__ */
