/* Properties of an indexing bin (cifarindexer, galleryindexer) that stand for
 * a child's property. */
#ifndef __VISUALSEARCH_PROXIED_PROPERTY_H__
#define __VISUALSEARCH_PROXIED_PROPERTY_H__

#include <gst/gst.h>

/* A property named name with the type, range, default and flags of
 * child_property of child_class, so the two can never disagree; blurb NULL
 * takes the child's own. */
GParamSpec *proxy_param_spec (const gchar * name, const gchar * nick,
    const gchar * blurb, GObjectClass * child_class,
    const gchar * child_property);

#endif
