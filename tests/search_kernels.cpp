// SPDX-License-Identifier: LGPL-2.1-or-later
// The distance kernels of the HNSW walk (engine/index/fast_search.cpp), every
// one this CPU runs: each against a double-precision sum on every dims from 1
// to 130 and at 512 and 515, unaligned rows included; and the choice among
// them for each value of VISUALSEARCH_SEARCH_KERNELS. Prints the kernels and
// the choice without a setting (on a CPU with AVX-512, measured). The
// avx2class setup runs it again with VISUALSEARCH_SEARCH_KERNELS=avx2.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/base/cpu_features.h"
#include "engine/index/fast_search.h"

namespace {

int failures = 0;

void
check (bool ok, const std::string &what)
{
  std::printf ("%s %s\n", ok ? "ok  " : "FAIL", what.c_str ());
  if (!ok)
    ++failures;
}

bool
has (const std::vector<vs::SearchKernel> &kernels, const char *name)
{
  for (const auto &k : kernels)
    if (std::strcmp (k.name, name) == 0)
      return true;
  return false;
}

} // namespace

int
main ()
{
  const vs::CpuFeatures &cpu = vs::cpu_features ();
  const auto kernels = vs::search_kernels_on_this_cpu ();
  std::string names;
  for (const auto &k : kernels)
    names += std::string (" ") + k.name;
  std::printf ("CPU %s; kernels:%s\n", cpu.model.c_str (), names.c_str ());
  check (has (kernels, "FAISS"), "FAISS's distances are always there");
  check (has (kernels, "AVX2+FMA") == (cpu.avx2 && cpu.fma),
      "AVX2+FMA exactly when CPUID says so");
  check (has (kernels, "AVX-512") == cpu.avx512f,
      "AVX-512 exactly when CPUID says so");

  std::mt19937 rng (3);
  std::normal_distribution<float> normal;
  std::vector<float> x (520 + 1), y (520 + 1);
  for (auto &v : x)
    v = normal (rng);
  for (auto &v : y)
    v = normal (rng);
  std::vector<size_t> dims;
  for (size_t d = 1; d <= 130; ++d)
    dims.push_back (d);
  dims.push_back (512);
  dims.push_back (515);
  for (const auto &k : kernels) {
    int wrong = 0;
    std::string first;
    for (size_t d : dims)
      for (size_t shift : {0, 1}) {
        const float *a = x.data () + shift;
        const float *b = y.data () + (1 - shift);
        double ip = 0, l2 = 0, scale = 0;
        for (size_t i = 0; i < d; ++i) {
          ip += double (a[i]) * b[i];
          l2 += (double (a[i]) - b[i]) * (double (a[i]) - b[i]);
          scale += std::fabs (double (a[i]) * b[i]);
        }
        const double got_ip = k.inner_product (a, b, d),
                     got_l2 = k.l2sqr (a, b, d);
        // float sums of d terms: error within d ulps of the sum of magnitudes.
        const double tol = 1e-6 * (d + 1) * (scale + 1);
        if (std::fabs (got_ip - ip) > tol
            || std::fabs (got_l2 - l2) > 1e-6 * (d + 1) * (l2 + 1)) {
          if (!wrong++)
            first = "d=" + std::to_string (d) + " ip " + std::to_string (got_ip)
                + " vs " + std::to_string (ip) + ", l2 "
                + std::to_string (got_l2) + " vs " + std::to_string (l2);
        }
      }
    check (!wrong,
        std::string (k.name)
            + ": inner product and L2 equal a double sum, d 1-130, "
            + "512, 515, unaligned" + (wrong ? " (" + first + ")" : ""));
  }

  auto chosen = [] (const char *setting) {
    return vs::choose_search_kernel (setting);
  };
  const auto faiss = chosen ("faiss");
  check (std::strcmp (faiss.kernel.name, "FAISS") == 0,
      "faiss: FAISS's distances");
  const auto automatic = chosen (nullptr);
  std::printf ("     unset: %s (%s)\n", automatic.kernel.name,
      automatic.why.c_str ());
  if (cpu.avx2 && cpu.fma) {
    check (std::strcmp (chosen ("avx2").kernel.name, "AVX2+FMA") == 0,
        "avx2: AVX2+FMA");
    if (cpu.avx512f)
      check (automatic.why.find ("measured") != std::string::npos
              && std::strcmp (automatic.kernel.name, "FAISS") != 0,
          "unset, with AVX-512: chosen by measurement between AVX-512 and "
          "AVX2+FMA");
    else
      check (std::strcmp (automatic.kernel.name, "AVX2+FMA") == 0,
          "unset, no AVX-512: AVX2+FMA");
  } else {
    check (std::strcmp (automatic.kernel.name, "FAISS") == 0,
        "unset, no AVX2+FMA: FAISS");
  }
  const auto avx512 = chosen ("avx512");
  if (cpu.avx512f) {
    check (std::strcmp (avx512.kernel.name, "AVX-512") == 0, "avx512: AVX-512");
  } else {
    check (std::strcmp (avx512.kernel.name, "AVX-512") != 0
            && avx512.why.find ("lacks") != std::string::npos,
        "avx512 without AVX-512: another kernel, saying why");
  }
  const auto bogus = chosen ("avx1024");
  check (bogus.why.find ("avx1024 is not one of auto, avx512, avx2, faiss")
          != std::string::npos,
      "an unknown setting is named in the reason: " + bogus.why);

  // What this process uses, as the element would (the avx2class setup sets avx2).
  const auto &used = vs::search_kernel ();
  std::printf ("     this process: %s (%s)\n", used.kernel.name,
      used.why.c_str ());
  const char *env = std::getenv (vs::kSearchKernelsEnv);
  if (env && std::strcmp (env, "avx2") == 0 && cpu.avx2 && cpu.fma)
    check (std::strcmp (used.kernel.name, "AVX2+FMA") == 0,
        "VISUALSEARCH_SEARCH_KERNELS=avx2 is used");
  check (vs::inner_product_function () == used.kernel.inner_product
          && vs::l2sqr_function () == used.kernel.l2sqr,
      "the walk's distance functions are the chosen kernel's");
  std::printf ("%d failed\n", failures);
  return failures ? 1 : 0;
}
