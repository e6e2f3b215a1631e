#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "element_error.h"

#include "core/base/error.h"

static void
error_code_for_exception (const std::exception & e, GQuark * domain,
    gint * code)
{
  const vs::Error *error = dynamic_cast < const vs::Error * >(&e);
  switch (error ? error->kind () : vs::ErrorKind::Failed) {
    case vs::ErrorKind::NotFound:
      *domain = GST_RESOURCE_ERROR;
      *code = GST_RESOURCE_ERROR_NOT_FOUND;
      return;
    case vs::ErrorKind::Read:
      *domain = GST_RESOURCE_ERROR;
      *code = GST_RESOURCE_ERROR_OPEN_READ;
      return;
    case vs::ErrorKind::Write:
      *domain = GST_RESOURCE_ERROR;
      *code = GST_RESOURCE_ERROR_WRITE;
      return;
    case vs::ErrorKind::Busy:
      *domain = GST_RESOURCE_ERROR;
      *code = GST_RESOURCE_ERROR_BUSY;
      return;
    case vs::ErrorKind::Settings:
      *domain = GST_RESOURCE_ERROR;
      *code = GST_RESOURCE_ERROR_SETTINGS;
      return;
    case vs::ErrorKind::Corrupt:
      *domain = GST_STREAM_ERROR;
      *code = GST_STREAM_ERROR_DECODE;
      return;
    case vs::ErrorKind::Format:
      *domain = GST_STREAM_ERROR;
      *code = GST_STREAM_ERROR_FORMAT;
      return;
    case vs::ErrorKind::Mismatch:
      *domain = GST_STREAM_ERROR;
      *code = GST_STREAM_ERROR_WRONG_TYPE;
      return;
    case vs::ErrorKind::Module:
      *domain = GST_LIBRARY_ERROR;
      *code = GST_LIBRARY_ERROR_INIT;
      return;
    case vs::ErrorKind::Failed:
      break;
  }
  *domain = GST_LIBRARY_ERROR;
  *code = GST_LIBRARY_ERROR_FAILED;
}

void
vs_element_post_exception (GstElement * element, GstMessageType type,
    const std::exception & e, gchar * text, gchar * debug, const gchar * file,
    const gchar * function, gint line)
{
  GQuark domain;
  gint code;

  error_code_for_exception (e, &domain, &code);
  gst_element_message_full (element, type, domain, code, text, debug, file,
      function, line);
}
