/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* searchoverlay: draws each frame's nearest gallery images onto it. */
#ifndef __GST_SEARCH_OVERLAY_H__
#define __GST_SEARCH_OVERLAY_H__

#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

/**
 * GstSearchOverlayPosition:
 * @GST_SEARCH_OVERLAY_POSITION_TOP: a row along the top edge
 * @GST_SEARCH_OVERLAY_POSITION_BOTTOM: a row along the bottom edge
 * @GST_SEARCH_OVERLAY_POSITION_LEFT: a column along the left edge
 * @GST_SEARCH_OVERLAY_POSITION_RIGHT: a column along the right edge
 */
typedef enum
{
  GST_SEARCH_OVERLAY_POSITION_TOP,
  GST_SEARCH_OVERLAY_POSITION_BOTTOM,
  GST_SEARCH_OVERLAY_POSITION_LEFT,
  GST_SEARCH_OVERLAY_POSITION_RIGHT,
} GstSearchOverlayPosition;

#define GST_TYPE_SEARCH_OVERLAY (gst_search_overlay_get_type ())
G_DECLARE_FINAL_TYPE (GstSearchOverlay, gst_search_overlay, GST, SEARCH_OVERLAY,
    GstVideoFilter)

G_END_DECLS

#endif /* __GST_SEARCH_OVERLAY_H__ */
