// SPDX-License-Identifier: LGPL-2.1-or-later
#include "gallery_events.h"

GstQuery *
vs_gallery_query_new (void)
{
  return gst_query_new_custom (GST_QUERY_CUSTOM,
      gst_structure_new_empty (VS_GALLERY_QUERY));
}

static gboolean
is_gallery_query (GstQuery *query)
{
  const GstStructure *s = gst_query_get_structure (query);
  return GST_QUERY_TYPE (query) == GST_QUERY_CUSTOM && s
      && gst_structure_has_name (s, VS_GALLERY_QUERY);
}

gboolean
vs_gallery_query_parse (GstQuery *query, gboolean *update)
{
  if (!is_gallery_query (query))
    return FALSE;
  gst_structure_get_boolean (gst_query_get_structure (query), "update", update);
  return TRUE;
}

gboolean
vs_gallery_query_answer (GstQuery *query, gboolean update)
{
  if (!is_gallery_query (query))
    return FALSE;
  gst_structure_set (gst_query_writable_structure (query), "update",
      G_TYPE_BOOLEAN, update, NULL);
  return TRUE;
}

GstEvent *
vs_gallery_file_event_new (const std::string &root,
    const vs::FileIdentity &identity, gboolean skipped, const gchar *rejected)
{
  GstStructure *s =
      gst_structure_new (VS_GALLERY_FILE_EVENT, "root", G_TYPE_STRING,
          root.c_str (), "path", G_TYPE_STRING, identity.path.c_str (), "size",
          G_TYPE_INT64, (gint64) identity.size, "mtime-ns", G_TYPE_INT64,
          (gint64) identity.mtime_ns, "skipped", G_TYPE_BOOLEAN, skipped, NULL);
  if (rejected)
    gst_structure_set (s, "rejected", G_TYPE_STRING, rejected, NULL);
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_OOB, s);
}

gboolean
vs_gallery_file_event_parse (GstEvent *event, std::string *root,
    vs::FileIdentity *identity, gboolean *skipped, std::string *rejected)
{
  if (GST_EVENT_TYPE (event) != GST_EVENT_CUSTOM_DOWNSTREAM_OOB
      || !gst_event_has_name (event, VS_GALLERY_FILE_EVENT))
    return FALSE;
  const GstStructure *s = gst_event_get_structure (event);
  const gchar *root_value = gst_structure_get_string (s, "root");
  const gchar *path = gst_structure_get_string (s, "path");
  gint64 size = -1, mtime_ns = 0;
  if (!root_value || !path || !gst_structure_get_int64 (s, "size", &size)
      || !gst_structure_get_int64 (s, "mtime-ns", &mtime_ns)
      || !gst_structure_get_boolean (s, "skipped", skipped))
    return FALSE;
  const gchar *reason = gst_structure_get_string (s, "rejected");
  *rejected = reason ? reason : "";
  *root = root_value;
  *identity = vs::FileIdentity ();
  identity->path = path;
  identity->size = size;
  identity->mtime_ns = mtime_ns;
  return TRUE;
}

static void
append_string (GValue *array, const std::string &text)
{
  GValue value = G_VALUE_INIT;
  g_value_init (&value, G_TYPE_STRING);
  g_value_set_string (&value, text.c_str ());
  gst_value_array_append_and_take_value (array, &value);
}

GstEvent *
vs_gallery_walked_event_new (const std::vector<vs::WalkGap> &gaps)
{
  GValue passed_over = G_VALUE_INIT, unread = G_VALUE_INIT;
  gst_value_array_init (&passed_over, 0);
  gst_value_array_init (&unread, 0);
  for (const vs::WalkGap &gap : gaps)
    append_string (gap.unread ? &unread : &passed_over, gap.relative);
  GstStructure *s = gst_structure_new_empty (VS_GALLERY_WALKED_EVENT);
  gst_structure_take_value (s, "passed-over", &passed_over);
  gst_structure_take_value (s, "unread", &unread);
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_OOB, s);
}

static void
read_strings (const GstStructure *s, const gchar *field, bool unread,
    std::vector<vs::WalkGap> *gaps)
{
  const GValue *array = gst_structure_get_value (s, field);
  if (!array || !GST_VALUE_HOLDS_ARRAY (array))
    return;
  for (guint i = 0; i < gst_value_array_get_size (array); i++) {
    const GValue *value = gst_value_array_get_value (array, i);
    if (G_VALUE_HOLDS_STRING (value) && g_value_get_string (value))
      gaps->push_back (vs::WalkGap{g_value_get_string (value), unread});
  }
}

gboolean
vs_gallery_walked_event_parse (GstEvent *event, std::vector<vs::WalkGap> *gaps)
{
  if (GST_EVENT_TYPE (event) != GST_EVENT_CUSTOM_DOWNSTREAM_OOB
      || !gst_event_has_name (event, VS_GALLERY_WALKED_EVENT))
    return FALSE;
  const GstStructure *s = gst_event_get_structure (event);
  gaps->clear ();
  read_strings (s, "passed-over", false, gaps);
  read_strings (s, "unread", true, gaps);
  return TRUE;
}
