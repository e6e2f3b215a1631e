// SPDX-License-Identifier: LGPL-2.1-or-later
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "element_error.h"

#include "engine/base/error.h"

namespace {

struct ErrorCode
{
  GQuark domain;
  gint code;
};

ErrorCode
error_code_for_exception (const std::exception &e)
{
  const vs::Error *error = dynamic_cast<const vs::Error *> (&e);
  switch (error ? error->kind () : vs::ErrorKind::Failed) {
    case vs::ErrorKind::NotFound:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND};
    case vs::ErrorKind::Read:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ};
    case vs::ErrorKind::Write:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_WRITE};
    case vs::ErrorKind::Busy:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_BUSY};
    case vs::ErrorKind::Settings:
      return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS};
    case vs::ErrorKind::Corrupt:
      return {GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE};
    case vs::ErrorKind::Format:
      return {GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT};
    case vs::ErrorKind::Mismatch:
      return {GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE};
    case vs::ErrorKind::Module:
      return {GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT};
    case vs::ErrorKind::Failed:
      break;
  }
  return {GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_FAILED};
}

} // namespace

void
vs_element_post_exception (GstElement *element, GstMessageType type,
    const std::exception &e, gchar *text, gchar *debug, const gchar *file,
    const gchar *function, gint line)
{
  const ErrorCode c = error_code_for_exception (e);

  gst_element_message_full (element, type, c.domain, c.code, text, debug, file,
      function, line);
}
