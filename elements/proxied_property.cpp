#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "proxied_property.h"

GParamSpec *
proxy_param_spec (const gchar * name, const gchar * nick, const gchar * blurb,
    GObjectClass * child_class, const gchar * child_property)
{
  GParamSpec *child = g_object_class_find_property (child_class,
      child_property);
  g_assert (child != NULL);
  if (!blurb)
    blurb = g_param_spec_get_blurb (child);
  const GParamFlags flags = (GParamFlags) ((child->flags & (G_PARAM_READWRITE |
              GST_PARAM_MUTABLE_READY | GST_PARAM_MUTABLE_PLAYING |
              GST_PARAM_CONTROLLABLE)) | G_PARAM_STATIC_STRINGS);

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
