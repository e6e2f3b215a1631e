/* SPDX-License-Identifier: LGPL-2.1-or-later */
// What precision=auto measured, kept in the user's cache directory so that
// the next start with the same CPU, model, input size, batch size and threads
// pays nothing: $XDG_CACHE_HOME/visualsearch/precision-auto.ini (GKeyFile,
// one group per such combination). Free of LibTorch.
#pragma once

#include <optional>
#include <string>

namespace vs {

struct AutoPrecisionMeasurement {
  bool bf16 = false;   // the choice: bf16, or fp32
  double fp32_ms = 0;  // best time of one calibration batch in fp32
  double bf16_ms = 0;  // ... in bf16; 0 when bf16 did not run
  double cosine = 0;   // bf16's smallest cosine to fp32 on the calibration images
  std::string why;     // the reason, a sentence that ends with the figures
};

// The combination a measurement holds for. The CPU part (brand string, CPUID
// signature, native bf16 flags) comes from engine/base/cpu_features.h;
// `kernels` names the code that ran (a new kernel invalidates the cache).
std::string auto_precision_key(const std::string& model_id, int input_size, int batch, int threads,
                               const std::string& kernels);

// The cache file's path.
std::string auto_precision_cache_file();

// The measurement recorded for `key`, if any; a missing, unreadable or
// malformed file or group reads as none.
std::optional<AutoPrecisionMeasurement> read_auto_precision(const std::string& key);

// Records a measurement, replacing the file atomically (a temporary file
// renamed over it). Returns false, with *error set, when the cache cannot be
// written: the choice still holds for this run.
bool write_auto_precision(const std::string& key, const AutoPrecisionMeasurement& m,
                          std::string* error);

}  // namespace vs
