/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One way for every element to report a C++ exception: as an error or warning
 * message whose GStreamer domain and code follow the vs::Error's kind
 * (engine/base/error.h), so that applications can tell a missing file from a
 * damaged one or from contradicting settings without parsing the text. */
#ifndef __VISUALSEARCH_ELEMENT_ERROR_H__
#define __VISUALSEARCH_ELEMENT_ERROR_H__

#include <gst/gst.h>

#include <exception>

/* As GST_ELEMENT_ERROR (el, DOMAIN, CODE, text, debug) with the domain and
 * code taken from the exception e: text and debug are printf argument lists
 * in parentheses, or (NULL) for the default text of the code and no debug. */
#define VS_ELEMENT_ERROR(el, e, text, debug) \
  VS_ELEMENT_EXCEPTION (el, GST_MESSAGE_ERROR, e, text, debug)
#define VS_ELEMENT_WARNING(el, e, text, debug) \
  VS_ELEMENT_EXCEPTION (el, GST_MESSAGE_WARNING, e, text, debug)

#define VS_ELEMENT_EXCEPTION(el, type, e, text, debug) \
  G_STMT_START \
  { \
    gchar *__txt = _gst_element_error_printf text; \
    gchar *__dbg = _gst_element_error_printf debug; \
    vs_element_post_exception (GST_ELEMENT (el), type, e, __txt, __dbg, \
        __FILE__, GST_FUNCTION, __LINE__); \
  } \
  G_STMT_END

/* Posts e as a message of type (error or warning); takes text and debug.
 * The domain and code follow the kind of a vs::Error; any other exception
 * (FAISS, LibTorch, the standard library) is LIBRARY FAILED. */
void vs_element_post_exception (GstElement *element, GstMessageType type,
    const std::exception &e, gchar *text, gchar *debug, const gchar *file,
    const gchar *function, gint line);

#endif
