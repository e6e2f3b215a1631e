/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Element registration entry points, one per element of the plugin. */
#ifndef __VISUALSEARCH_ELEMENTS_H__
#define __VISUALSEARCH_ELEMENTS_H__

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (cifarsrc);
GST_ELEMENT_REGISTER_DECLARE (embedder);
GST_ELEMENT_REGISTER_DECLARE (faissindexer);
GST_ELEMENT_REGISTER_DECLARE (cifarindexer);
GST_ELEMENT_REGISTER_DECLARE (faisssearch);
GST_ELEMENT_REGISTER_DECLARE (searchoverlay);
GST_ELEMENT_REGISTER_DECLARE (retrievaleval);
GST_ELEMENT_REGISTER_DECLARE (gallerysrc);
GST_ELEMENT_REGISTER_DECLARE (galleryindexer);
GST_ELEMENT_REGISTER_DECLARE (metapublish);
GST_ELEMENT_REGISTER_DECLARE (objectdetect);

G_END_DECLS

#endif
