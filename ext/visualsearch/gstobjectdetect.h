/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* objectdetect: runs a TorchScript object detector (NanoDet) and attaches one
 * GstVideoRegionOfInterestMeta per detection. */
#ifndef __GST_OBJECTDETECT_H__
#define __GST_OBJECTDETECT_H__

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_OBJECTDETECT (gst_objectdetect_get_type ())
G_DECLARE_FINAL_TYPE (GstObjectDetect, gst_objectdetect, GST, OBJECTDETECT,
    GstBaseTransform)

G_END_DECLS

#endif /* __GST_OBJECTDETECT_H__ */
