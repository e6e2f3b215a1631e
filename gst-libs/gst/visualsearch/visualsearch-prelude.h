/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every header of the visualsearch metadata library needs first: the
 * GST_VISUALSEARCH_API export marker, as gst-plugins-bad's
 * analytics-meta-prelude.h. */
#ifndef __GST_VISUALSEARCH_PRELUDE_H__
#define __GST_VISUALSEARCH_PRELUDE_H__

#include <gst/gst.h>

/* The library is built with hidden visibility: only what is marked
 * GST_VISUALSEARCH_API is part of the ABI. */
#ifndef GST_VISUALSEARCH_API
#ifdef BUILDING_GST_VISUALSEARCH
#define GST_VISUALSEARCH_API GST_API_EXPORT
#else
#define GST_VISUALSEARCH_API GST_API_IMPORT
#endif
#endif

#endif /* __GST_VISUALSEARCH_PRELUDE_H__ */
