/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gallerysrc: every picture and video under a folder, as native-size RGB
 * frames with their label and source. */
#ifndef __GST_GALLERY_SRC_H__
#define __GST_GALLERY_SRC_H__

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_GALLERY_SRC (gst_gallery_src_get_type ())
G_DECLARE_FINAL_TYPE (GstGallerySrc, gst_gallery_src, GST, GALLERY_SRC,
    GstPushSrc)

G_END_DECLS

#endif
