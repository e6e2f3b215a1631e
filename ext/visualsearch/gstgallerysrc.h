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

#ifdef __cplusplus
#include <functional>
#include <string>
#include <vector>

#include "engine/dataset/image_folder.h"

/* For galleryindexer: skip (relative path, path to open) is asked for every
 * file of the walk before it is decoded, and a file it returns true for gives
 * no frame; walked_all is called when the walk reaches the end of the folder
 * (not when it is stopped early), with what the walk passed over. Either may
 * be empty. Set before start; the streaming thread calls them. */
void gst_gallery_src_set_file_filter (GstGallerySrc *src,
    std::function<bool (const std::string &, const std::string &)> skip,
    std::function<void (const std::vector<vs::SkippedEntry> &)> walked_all);
#endif

#endif
