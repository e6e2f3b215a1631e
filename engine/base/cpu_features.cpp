// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/cpu_features.h"

#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace vs {

namespace {

#if defined(__x86_64__) || defined(__i386__)
bool cpuid(unsigned leaf, unsigned subleaf, unsigned r[4]) {
  return __get_cpuid_count(leaf, subleaf, &r[0], &r[1], &r[2], &r[3]) != 0;
}

// XCR0: which register states the operating system saves on a context switch.
// A CPU flag is of no use when the kernel does not enable its state.
unsigned long long xcr0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned r[4] = {0, 0, 0, 0};
  unsigned brand[12];
  if (cpuid(0x80000000u, 0, r) && r[0] >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) cpuid(0x80000002u + i, 0, &brand[i * 4]);
    std::string name(reinterpret_cast<const char*>(brand), sizeof brand);
    name = name.c_str();
    const size_t first = name.find_first_not_of(' '), last = name.find_last_not_of(' ');
    f.model = first == std::string::npos ? "" : name.substr(first, last - first + 1);
  }
  if (!cpuid(1, 0, r)) return f;
  f.signature = r[0];
  const bool osxsave = r[2] & (1u << 27);
  const unsigned long long xcr = osxsave ? xcr0() : 0;
  const bool ymm = (xcr & 0x6) == 0x6, zmm = (xcr & 0xe6) == 0xe6;
  f.fma = ymm && (r[2] & (1u << 12));
  const bool tile = (xcr & 0x60000ull) == 0x60000ull;
  if (!cpuid(7, 0, r)) return f;
  const unsigned ebx = r[1], edx = r[3], max_sub = r[0];
  f.avx2 = ymm && (ebx & (1u << 5));
  f.avx512f = zmm && (ebx & (1u << 16));
  f.avx512dq = f.avx512f && (ebx & (1u << 17));
  f.avx512bw = f.avx512f && (ebx & (1u << 30));
  f.avx512vl = f.avx512f && (ebx & (1u << 31));
  f.amx_bf16 = tile && (edx & (1u << 22));
  if (max_sub >= 1 && cpuid(7, 1, r)) f.avx512_bf16 = f.avx512f && (r[0] & (1u << 5));
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool native_bf16(std::string* why_not) {
  const CpuFeatures& f = cpu_features();
  const char* hide = std::getenv(kHideNativeBf16Env);
  std::string why;
  if (hide && *hide && std::strcmp(hide, "0") != 0)
    why = std::string(kHideNativeBf16Env) + " is set";
  else if (!f.avx512_bf16 && !f.amx_bf16)
    why = "this CPU (" + (f.model.empty() ? std::string("unknown model") : f.model) +
          ") has neither AVX512_BF16 nor AMX-BF16";
  else if (!(f.avx512bw && f.avx512vl && f.avx512dq))
    why = "this CPU lacks the AVX-512BW/VL/DQ that oneDNN's bf16 kernels need";
  if (why_not) *why_not = why;
  return why.empty();
}

}  // namespace vs
