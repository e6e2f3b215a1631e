// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/model/auto_precision_cache.h"

#include <glib.h>

#include <cerrno>
#include <cmath>
#include <memory>

#include "engine/base/cpu_features.h"

namespace vs {
namespace {

// Bumped when what a measurement means changes.
constexpr int kCacheVersion = 1;

struct KeyFileDeleter {
  void operator()(GKeyFile* f) const { g_key_file_free(f); }
};
using KeyFile = std::unique_ptr<GKeyFile, KeyFileDeleter>;

KeyFile load(const std::string& path) {
  KeyFile file(g_key_file_new());
  if (!g_key_file_load_from_file(file.get(), path.c_str(), G_KEY_FILE_NONE, nullptr))
    return KeyFile(g_key_file_new());
  return file;
}

bool read_double(GKeyFile* file, const char* group, const char* key, double* out) {
  GError* error = nullptr;
  const double v = g_key_file_get_double(file, group, key, &error);
  if (error) {
    g_error_free(error);
    return false;
  }
  *out = v;
  return std::isfinite(v);
}

}  // namespace

std::string auto_precision_key(const std::string& model_id, int input_size, int batch, int threads,
                               const std::string& kernels) {
  const CpuFeatures& cpu = cpu_features();
  // Group names may hold any character but [ ] and line breaks.
  std::string key = "v" + std::to_string(kCacheVersion) + " cpu=" + cpu.model +
                    " signature=" + std::to_string(cpu.signature) +
                    " avx512_bf16=" + std::to_string(cpu.avx512_bf16) +
                    " amx_bf16=" + std::to_string(cpu.amx_bf16) + " model=" + model_id +
                    " input=" + std::to_string(input_size) + " batch=" + std::to_string(batch) +
                    " threads=" + std::to_string(threads) + " kernels=" + kernels;
  for (char& c : key)
    if (c == '[' || c == ']' || c == '\n' || c == '\r') c = ' ';
  return key;
}

std::string auto_precision_cache_file() {
  return std::string(g_get_user_cache_dir()) + "/visualsearch/precision-auto.ini";
}

std::optional<AutoPrecisionMeasurement> read_auto_precision(const std::string& key) {
  KeyFile file = load(auto_precision_cache_file());
  const char* group = key.c_str();
  gchar* choice = g_key_file_get_string(file.get(), group, "choice", nullptr);
  gchar* why = g_key_file_get_string(file.get(), group, "why", nullptr);
  AutoPrecisionMeasurement m;
  const bool valid = choice && why &&
                     (g_strcmp0(choice, "bf16") == 0 || g_strcmp0(choice, "fp32") == 0) &&
                     read_double(file.get(), group, "fp32-ms", &m.fp32_ms) &&
                     read_double(file.get(), group, "bf16-ms", &m.bf16_ms) &&
                     read_double(file.get(), group, "cosine", &m.cosine);
  if (valid) {
    m.bf16 = g_strcmp0(choice, "bf16") == 0;
    m.why = why;
  }
  g_free(choice);
  g_free(why);
  if (!valid) return std::nullopt;
  return m;
}

bool write_auto_precision(const std::string& key, const AutoPrecisionMeasurement& m,
                          std::string* error) {
  const std::string path = auto_precision_cache_file();
  gchar* dir = g_path_get_dirname(path.c_str());
  const int made = g_mkdir_with_parents(dir, 0700);
  g_free(dir);
  if (made != 0) {
    *error = "cannot create the folder of " + path + ": " + g_strerror(errno);
    return false;
  }
  // Read again just before writing, so that other models' entries stay.
  KeyFile file = load(path);
  const char* group = key.c_str();
  g_key_file_set_string(file.get(), group, "choice", m.bf16 ? "bf16" : "fp32");
  g_key_file_set_double(file.get(), group, "fp32-ms", m.fp32_ms);
  g_key_file_set_double(file.get(), group, "bf16-ms", m.bf16_ms);
  g_key_file_set_double(file.get(), group, "cosine", m.cosine);
  g_key_file_set_string(file.get(), group, "why", m.why.c_str());
  GError* gerror = nullptr;
  // g_key_file_save_to_file writes a temporary file and renames it.
  if (!g_key_file_save_to_file(file.get(), path.c_str(), &gerror)) {
    *error = "cannot write " + path + ": " + gerror->message;
    g_error_free(gerror);
    return false;
  }
  return true;
}

}  // namespace vs
