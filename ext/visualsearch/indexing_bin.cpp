// SPDX-License-Identifier: LGPL-2.1-or-later
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "indexing_bin.h"

GParamSpec *
proxy_param_spec (const gchar *name, const gchar *nick, const gchar *blurb,
    GObjectClass *child_class, const gchar *child_property)
{
  GParamSpec *child =
      g_object_class_find_property (child_class, child_property);
  g_assert (child != NULL);
  if (!blurb)
    blurb = g_param_spec_get_blurb (child);
  const GParamFlags flags =
      (GParamFlags) ((child->flags
                         & (G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY
                             | GST_PARAM_MUTABLE_PLAYING
                             | GST_PARAM_CONTROLLABLE))
          | G_PARAM_STATIC_STRINGS);

  if (G_IS_PARAM_SPEC_STRING (child))
    return g_param_spec_string (name, nick, blurb,
        G_PARAM_SPEC_STRING (child)->default_value, flags);
  if (G_IS_PARAM_SPEC_BOOLEAN (child))
    return g_param_spec_boolean (name, nick, blurb,
        G_PARAM_SPEC_BOOLEAN (child)->default_value, flags);
  if (G_IS_PARAM_SPEC_UINT (child)) {
    GParamSpecUInt *u = G_PARAM_SPEC_UINT (child);
    return g_param_spec_uint (name, nick, blurb, u->minimum, u->maximum,
        u->default_value, flags);
  }
  if (G_IS_PARAM_SPEC_UINT64 (child)) {
    GParamSpecUInt64 *u = G_PARAM_SPEC_UINT64 (child);
    return g_param_spec_uint64 (name, nick, blurb, u->minimum, u->maximum,
        u->default_value, flags);
  }
  if (G_IS_PARAM_SPEC_DOUBLE (child)) {
    GParamSpecDouble *d = G_PARAM_SPEC_DOUBLE (child);
    return g_param_spec_double (name, nick, blurb, d->minimum, d->maximum,
        d->default_value, flags);
  }
  if (G_IS_PARAM_SPEC_ENUM (child)) {
    GParamSpecEnum *e = G_PARAM_SPEC_ENUM (child);
    return g_param_spec_enum (name, nick, blurb,
        G_TYPE_FROM_CLASS (e->enum_class), e->default_value, flags);
  }
  g_error ("cannot proxy %s::%s of type %s", G_OBJECT_CLASS_NAME (child_class),
      child_property, G_PARAM_SPEC_TYPE_NAME (child));
  return NULL;
}

static const gchar *const child_names[N_CHILDREN] = {"source", "embedder",
    "indexer"};

void
indexing_bin_add_children (GstBin *bin,
    const gchar *const factories[N_CHILDREN], GstElement *children[N_CHILDREN])
{
  for (int i = 0; i < N_CHILDREN; i++) {
    children[i] = gst_element_factory_make (factories[i], child_names[i]);
    if (children[i])
      gst_bin_add (bin, children[i]);
  }
  if (children[CHILD_SOURCE] && children[CHILD_EMBEDDER]
      && children[CHILD_INDEXER])
    gst_element_link_many (children[CHILD_SOURCE], children[CHILD_EMBEDDER],
        children[CHILD_INDEXER], NULL);
}

void
indexing_bin_install_properties (GObjectClass *klass,
    const ProxiedProperty *properties, guint n,
    const GType child_types[N_CHILDREN])
{
  for (guint id = 1; id < n; id++) {
    const ProxiedProperty &p = properties[id];
    /* The children live in this plugin: their classes are at hand, and kept
     * for the lifetime of the process like the bin's. */
    GObjectClass *child_class =
        G_OBJECT_CLASS (g_type_class_ref (child_types[p.child]));
    g_object_class_install_property (klass, id,
        proxy_param_spec (p.name, p.nick, p.blurb, child_class,
            p.child_property));
  }
}

void
indexing_bin_set_property (GstElement *const children[N_CHILDREN],
    const ProxiedProperty &property, const GValue *value)
{
  if (GstElement *child = children[property.child])
    g_object_set_property (G_OBJECT (child), property.child_property, value);
}

void
indexing_bin_get_property (GstElement *const children[N_CHILDREN],
    const ProxiedProperty &property, GValue *value, GParamSpec *pspec)
{
  if (GstElement *child = children[property.child])
    g_object_get_property (G_OBJECT (child), property.child_property, value);
  else
    g_param_value_set_default (pspec, value);
}

gboolean
indexing_bin_check_children (GstElement *bin,
    GstElement *const children[N_CHILDREN],
    const gchar *const factories[N_CHILDREN])
{
  for (int i = 0; i < N_CHILDREN; i++) {
    if (children[i] == NULL) {
      GST_ELEMENT_ERROR (bin, CORE, MISSING_PLUGIN,
          ("The %s element is missing, so %s cannot run.", factories[i],
              GST_OBJECT_NAME (gst_element_get_factory (bin))),
          ("Check that the visualsearch plugin was built with all its "
           "elements (gst-inspect-1.0 visualsearch)."));
      return FALSE;
    }
  }
  return TRUE;
}
