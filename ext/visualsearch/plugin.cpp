// SPDX-License-Identifier: LGPL-2.1-or-later
/* visualsearch: content-based image retrieval in GStreamer pipelines. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#include "elements.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (cifarsrc, plugin);
  ret |= GST_ELEMENT_REGISTER (embedder, plugin);
  ret |= GST_ELEMENT_REGISTER (faissindexer, plugin);
  ret |= GST_ELEMENT_REGISTER (cifarindexer, plugin);
  ret |= GST_ELEMENT_REGISTER (faisssearch, plugin);
  ret |= GST_ELEMENT_REGISTER (searchoverlay, plugin);
  ret |= GST_ELEMENT_REGISTER (retrievaleval, plugin);
  ret |= GST_ELEMENT_REGISTER (gallerysrc, plugin);
  ret |= GST_ELEMENT_REGISTER (galleryindexer, plugin);
  ret |= GST_ELEMENT_REGISTER (metapublish, plugin);
  ret |= GST_ELEMENT_REGISTER (objectdetect, plugin);

  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, visualsearch,
    "Visual similarity search: ResNet embeddings and FAISS nearest neighbours",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
