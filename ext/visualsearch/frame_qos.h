/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QoS for the elements that let a late frame pass unprocessed instead of
 * dropping it as GstBaseTransform would (embedder, objectdetect): the
 * earliest running time downstream still wants processed, taken from its QoS
 * events and kept in the element's instance under the object lock. */
#ifndef __VISUALSEARCH_FRAME_QOS_H__
#define __VISUALSEARCH_FRAME_QOS_H__

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

/* Forgets the lateness *earliest holds (start, flush). */
void frame_qos_reset (GstBaseTransform *trans, GstClockTime *earliest);

/* Stores in *earliest the running time a QoS event (a GST_EVENT_QOS) asks
 * frames to be processed from. */
void frame_qos_update (GstBaseTransform *trans, GstEvent *event,
    GstClockTime *earliest);

/* The running time of buf when downstream is so late that it should pass
 * unprocessed, logged to cat with what the element does not do ("embedding
 * it"); GST_CLOCK_TIME_NONE when it is in time, QoS is off or the segment is
 * not in time. */
GstClockTime frame_qos_late (GstBaseTransform *trans, GstDebugCategory *cat,
    const GstClockTime *earliest, GstBuffer *buf, const gchar *not_doing);

/* Posts the QoS message for buf, late at running_time and passed
 * unprocessed, with the element's counts of frames processed and skipped. */
void frame_qos_post_skipped (GstBaseTransform *trans, GstBuffer *buf,
    GstClockTime running_time, guint64 processed, guint64 skipped);

#endif
