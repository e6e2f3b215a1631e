/* SPDX-License-Identifier: LGPL-2.1-or-later */
// What this CPU can run, read at run time with CPUID (never from compile-time
// flags), so one binary picks the right arithmetic on every x86-64 machine.
#pragma once

#include <string>

namespace vs {

struct CpuFeatures {
  std::string model;  // "AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+", ...
  // CPUID leaf 1's EAX: family, model and stepping, which tell apart CPUs
  // whose brand string is the same (a virtual machine's "AMD EPYC").
  unsigned signature = 0;
  bool avx2 = false;
  bool fma = false;  // FMA3, with the OS saving the ymm registers
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
};

// Read once per process.
const CpuFeatures& cpu_features();

// Environment variable that hides native bf16 from native_bf16(), so that the
// fp32 fallback can be exercised (and forced) on any CPU.
constexpr const char* kHideNativeBf16Env = "VISUALSEARCH_HIDE_NATIVE_BF16";

// True when bf16 runs natively: avx512_bf16 or AMX-BF16, plus the
// AVX-512BW/VL/DQ that oneDNN's bf16 weight reorder needs. Otherwise
// *why_not (when given) says what is missing, in a sentence.
bool native_bf16(std::string* why_not = nullptr);

}  // namespace vs
