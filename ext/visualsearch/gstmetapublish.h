/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* metapublish: publishes each frame's search results as a JSON document, to
 * an MQTT broker or a JSON-lines file. */
#ifndef __GST_META_PUBLISH_H__
#define __GST_META_PUBLISH_H__

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_META_PUBLISH (gst_meta_publish_get_type ())
G_DECLARE_FINAL_TYPE (GstMetaPublish, gst_meta_publish, GST, META_PUBLISH,
    GstBaseTransform)

typedef enum
{
  GST_META_PUBLISH_METHOD_FILE,
  GST_META_PUBLISH_METHOD_MQTT,
} GstMetaPublishMethod;

typedef enum
{
  GST_META_PUBLISH_EMBEDDING_NONE,
  GST_META_PUBLISH_EMBEDDING_BASE64,
  GST_META_PUBLISH_EMBEDDING_ARRAY,
} GstMetaPublishEmbedding;

G_END_DECLS

#endif
