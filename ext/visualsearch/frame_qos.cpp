// SPDX-License-Identifier: LGPL-2.1-or-later
#include "frame_qos.h"

void
frame_qos_reset (GstBaseTransform *trans, GstClockTime *earliest)
{
  GST_OBJECT_LOCK (trans);
  *earliest = GST_CLOCK_TIME_NONE;
  GST_OBJECT_UNLOCK (trans);
}

void
frame_qos_update (GstBaseTransform *trans, GstEvent *event,
    GstClockTime *earliest)
{
  GstQOSType type;
  gdouble proportion;
  GstClockTimeDiff diff;
  GstClockTime timestamp;

  gst_event_parse_qos (event, &type, &proportion, &diff, &timestamp);
  GST_OBJECT_LOCK (trans);
  /* As GstBaseTransform does: when late, aim past the lateness twice so
   * that skipping actually catches up. */
  if (diff > 0)
    *earliest = timestamp + 2 * diff;
  else
    *earliest = timestamp > (GstClockTime) -diff ? timestamp + diff : 0;
  GST_OBJECT_UNLOCK (trans);
}

GstClockTime
frame_qos_late (GstBaseTransform *trans, GstDebugCategory *cat,
    const GstClockTime *earliest, GstBuffer *buf, const gchar *not_doing)
{
  if (!gst_base_transform_is_qos_enabled (trans)
      || trans->segment.format != GST_FORMAT_TIME)
    return GST_CLOCK_TIME_NONE;
  const GstClockTime running_time =
      gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
          GST_BUFFER_PTS (buf));
  GST_OBJECT_LOCK (trans);
  const GstClockTime until = *earliest;
  GST_OBJECT_UNLOCK (trans);
  if (!GST_CLOCK_TIME_IS_VALID (running_time)
      || !GST_CLOCK_TIME_IS_VALID (until) || running_time > until)
    return GST_CLOCK_TIME_NONE;

  GST_CAT_DEBUG_OBJECT (cat, trans,
      "frame at %" GST_TIME_FORMAT " is late (earliest %" GST_TIME_FORMAT
      "): not %s",
      GST_TIME_ARGS (running_time), GST_TIME_ARGS (until), not_doing);
  return running_time;
}

void
frame_qos_post_skipped (GstBaseTransform *trans, GstBuffer *buf,
    GstClockTime running_time, guint64 processed, guint64 skipped)
{
  GstMessage *msg =
      gst_message_new_qos (GST_OBJECT_CAST (trans), FALSE, running_time,
          gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME,
              GST_BUFFER_PTS (buf)),
          GST_BUFFER_PTS (buf), GST_BUFFER_DURATION (buf));
  gst_message_set_qos_stats (msg, GST_FORMAT_BUFFERS, processed, skipped);
  gst_element_post_message (GST_ELEMENT_CAST (trans), msg);
}
