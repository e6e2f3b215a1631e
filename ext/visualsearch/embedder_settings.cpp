// SPDX-License-Identifier: LGPL-2.1-or-later
#include "embedder_settings.h"

#include <cstdio>
#include <memory>

static std::string
absolute (const std::string &path)
{
  gchar *canonical = g_canonicalize_filename (path.c_str (), NULL);
  std::string out = canonical;
  g_free (canonical);
  return out;
}

GstStructure *
embedder_settings_to_structure (const EmbedderSettings &s)
{
  const vs::EmbeddingConfig &c = s.config;
  GstStructure *st =
      gst_structure_new (VS_EMBEDDER_SETTINGS_EVENT, "model", G_TYPE_STRING,
          (s.torchscript () ? absolute (c.model) : c.model).c_str (), NULL);
  if (c.weights == "random")
    gst_structure_set (st, "weights", G_TYPE_STRING, "random", "seed",
        G_TYPE_UINT64, (guint64) c.seed, NULL);
  else if (!c.weights.empty ())
    gst_structure_set (st, "weights", G_TYPE_STRING,
        absolute (c.weights).c_str (), NULL);
  gst_structure_set (st, "input-size", G_TYPE_INT, c.input_size, "resize",
      G_TYPE_INT, c.resize, "mean", G_TYPE_STRING,
      format_triple (c.mean).c_str (), "std", G_TYPE_STRING,
      format_triple (c.std).c_str (), "normalize", G_TYPE_BOOLEAN,
      (gboolean) c.normalize, "model-id", G_TYPE_STRING, s.model_id.c_str (),
      "preprocessing-id", G_TYPE_STRING, s.preprocessing_id.c_str (), "dims",
      G_TYPE_INT, s.dims, NULL);
  if (c.precision == vs::Precision::INT8)
    gst_structure_set (st, "precision", G_TYPE_STRING,
        vs::precision_name (c.precision), "int8-activations", G_TYPE_STRING,
        c.int8_activations.c_str (), NULL);
  return st;
}

EmbedderSettings
embedder_settings_from_string (const std::string &text)
{
  std::unique_ptr<GstStructure, decltype (&gst_structure_free)>
      st (gst_structure_from_string (text.c_str (), NULL), gst_structure_free);
  if (!st || !gst_structure_has_name (st.get (), VS_EMBEDDER_SETTINGS_EVENT))
    throw vs::Error (vs::ErrorKind::Corrupt,
        "its embedder settings are not a " VS_EMBEDDER_SETTINGS_EVENT
        " structure: \""
            + text + "\"");

  EmbedderSettings s;
  vs::EmbeddingConfig &c = s.config;
  auto string_field = [&] (const char *name, std::string *out) {
    const gchar *value = gst_structure_get_string (st.get (), name);
    if (value == NULL)
      throw vs::Error (vs::ErrorKind::Corrupt,
          std::string ("its embedder settings lack the string ") + name);
    *out = value;
  };
  auto int_field = [&] (const char *name, int *out) {
    if (!gst_structure_get_int (st.get (), name, out))
      throw vs::Error (vs::ErrorKind::Corrupt,
          std::string ("its embedder settings lack the integer ") + name);
  };
  auto triple_field = [&] (const char *name, std::array<float, 3> *out) {
    std::string value;
    string_field (name, &value);
    if (!parse_triple (value.c_str (), out))
      throw vs::Error (vs::ErrorKind::Corrupt,
          std::string ("its embedder settings give ") + name + " as \"" + value
              + "\", not three numbers");
  };

  string_field ("model", &c.model);
  if (gst_structure_has_field (st.get (), "weights"))
    string_field ("weights", &c.weights);
  if (c.weights == "random") {
    guint64 seed;
    if (!gst_structure_get_uint64 (st.get (), "seed", &seed))
      throw vs::Error (vs::ErrorKind::Corrupt,
          "its embedder settings have weights=random but no seed");
    c.seed = seed;
  }
  int_field ("input-size", &c.input_size);
  int_field ("resize", &c.resize);
  triple_field ("mean", &c.mean);
  triple_field ("std", &c.std);
  gboolean normalize;
  if (!gst_structure_get_boolean (st.get (), "normalize", &normalize))
    throw vs::Error (vs::ErrorKind::Corrupt,
        "its embedder settings lack the boolean normalize");
  c.normalize = normalize;
  string_field ("model-id", &s.model_id);
  string_field ("preprocessing-id", &s.preprocessing_id);
  int_field ("dims", &s.dims);
  if (gst_structure_has_field (st.get (), "precision")) {
    std::string precision;
    string_field ("precision", &precision);
    if (precision != vs::precision_name (vs::Precision::INT8))
      throw vs::Error (vs::ErrorKind::Corrupt,
          "its embedder settings give precision as \"" + precision
              + "\"; only int8 is recorded");
    c.precision = vs::Precision::INT8;
    string_field ("int8-activations", &c.int8_activations);
  }
  return s;
}

bool
parse_triple (const gchar *text, std::array<float, 3> *out)
{
  if (text == NULL)
    return false;
  gchar **parts = g_strsplit (text, ",", -1);
  bool ok = g_strv_length (parts) == 3;
  for (guint i = 0; ok && i < 3; i++) {
    gchar *end = NULL;
    const gchar *s = g_strstrip (parts[i]);
    (*out)[i] = static_cast<float> (g_ascii_strtod (s, &end));
    ok = end != s && *end == '\0';
  }
  g_strfreev (parts);
  return ok;
}

std::string
format_triple (const std::array<float, 3> &values)
{
  std::string out;
  for (const float x : values) {
    gchar number[G_ASCII_DTOSTR_BUF_SIZE];
    /* 9 significant digits always read back as the same float. */
    for (int digits = 6; digits <= 9; digits++) {
      gchar format[8];
      std::snprintf (format, sizeof format, "%%.%dg", digits);
      g_ascii_formatd (number, sizeof number, format, x);
      if (static_cast<float> (g_ascii_strtod (number, NULL)) == x)
        break;
    }
    out += (out.empty () ? "" : ",") + std::string (number);
  }
  return out;
}
