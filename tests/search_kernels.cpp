// SPDX-License-Identifier: LGPL-2.1-or-later
// The distance kernels of the HNSW walk (engine/index/fast_search.cpp), every
// one this CPU runs: each against a double-precision sum on every dims from 1
// to 130 and at 512 and 515, unaligned rows included; and the choice among
// them for each value of VISUALSEARCH_SEARCH_KERNELS. Prints the kernels and
// the choice without a setting (on a CPU with AVX-512, measured). The
// avx2class setup runs it again with VISUALSEARCH_SEARCH_KERNELS=avx2.
// Also the walk's candidate queue against FAISS's HNSW::MinimaxHeap, call
// for call, with each scan this CPU runs, and faiss_distances (FAISS's
// distances, eight summed side by side) against FAISS's functions, bit for
// bit.
#include <faiss/impl/HNSW.h>
#include <faiss/Index.h>
#include <faiss/utils/distances.h>

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

// Random pushes, pops and counts on vs::CandidateQueue and FAISS's
// MinimaxHeap side by side, with distances from a small set so that ties
// are frequent, queues of 1 to 70 slots, overfilled (a push past the end
// drops the farthest, popped or not) and emptied; every return value, the
// popped distance and size() must agree, and what the slots hold.
void
check_queue (bool avx512, const char *name)
{
  std::mt19937 rng (11);
  int mismatches = 0;
  long calls = 0;
  std::string first;
  for (int round = 0; round < 400 && !mismatches; ++round) {
    const int n = 1 + round % 70;
    faiss::HNSW::MinimaxHeap theirs (n);
    vs::CandidateQueue ours (n, avx512);
    const int levels = 1 + round % 13;
    std::uniform_int_distribution<int> op (0, 9), level (0, levels);
    for (int step = 0; step < 6 * n + 20; ++step, ++calls) {
      const int what = op (rng);
      std::string seen;
      if (what < 5) {
        const int32_t id = static_cast<int32_t> (rng () % 100000);
        const float d = 0.25f * level (rng);
        theirs.push (id, d);
        ours.push (id, d);
      } else if (what < 8) {
        if (theirs.size () <= 0)
          continue;
        float d1 = -1, d2 = -1;
        const int a = theirs.pop_min (&d1), b = ours.pop_min (&d2);
        if (a != b || (a >= 0 && d1 != d2))
          seen = "pop_min " + std::to_string (a) + "/" + std::to_string (d1)
              + " against " + std::to_string (b) + "/" + std::to_string (d2);
      } else {
        const float t = 0.25f * level (rng) + (what == 9 ? 0.125f : 0.f);
        const int a = theirs.count_below (t), b = ours.count_below (t);
        if (a != b)
          seen = "count_below " + std::to_string (a) + " against "
              + std::to_string (b);
      }
      if (seen.empty () && theirs.size () != ours.size ())
        seen = "size " + std::to_string (theirs.size ()) + " against "
            + std::to_string (ours.size ());
      if (seen.empty () && theirs.k != ours.used ())
        seen = "slots in use";
      for (int i = 0; seen.empty () && i < theirs.k; ++i)
        if (theirs.ids[i] != ours.id_at (i)
            || theirs.dis[i] != ours.distance_at (i))
          seen = "slot " + std::to_string (i);
      if (!seen.empty () && !mismatches++)
        first = "queue of " + std::to_string (n) + ", call "
            + std::to_string (step) + ": " + seen;
    }
  }
  check (!mismatches,
      std::string ("candidate queue with ") + name + " scans: "
          + std::to_string (calls) + " calls as FAISS's MinimaxHeap"
          + (mismatches ? " (" + first + ")" : ""));
}

// faiss_distances against FAISS's own functions, bit for bit, on random rows
// of every dims from 1 to 130 and 512, 515, any count of rows.
void
check_faiss_distances ()
{
  std::mt19937 rng (5);
  std::normal_distribution<float> normal;
  std::vector<float> base (40 * 515);
  for (auto &v : base)
    v = normal (rng) * (rng () % 4 == 0 ? 300.f : 1.f);
  std::vector<float> query (515);
  for (auto &v : query)
    v = normal (rng);
  int wrong = 0;
  std::string first;
  std::vector<size_t> dims;
  for (size_t d = 1; d <= 130; ++d)
    dims.push_back (d);
  dims.push_back (512);
  dims.push_back (515);
  for (size_t d : dims)
    for (int64_t n : {1, 7, 8, 9, 23})
      for (bool ip : {false, true}) {
        std::vector<int64_t> rows (n);
        for (auto &r : rows)
          r = rng () % 40;
        std::vector<float> got (n);
        vs::faiss_distances (ip, query.data (), base.data (), d, rows.data (),
            n, got.data ());
        for (int64_t j = 0; j < n; ++j) {
          const float *row = base.data () + rows[j] * d;
          const float want = ip
              ? faiss::fvec_inner_product (query.data (), row, d)
              : faiss::fvec_L2sqr (query.data (), row, d);
          if (std::memcmp (&want, &got[j], sizeof want) != 0 && !wrong++)
            first = "d=" + std::to_string (d) + (ip ? " ip " : " l2 ")
                + std::to_string (got[j]) + " vs " + std::to_string (want);
        }
      }
  check (!wrong,
      std::string ("faiss_distances (")
          + (vs::faiss_distances_side_by_side () ? "eight sums side by side"
                                                 : "FAISS's functions")
          + ") gives FAISS's distances bit for bit"
          + (wrong ? " (" + first + ")" : ""));
#if FAISS_VERSION_MAJOR == 1 && FAISS_VERSION_MINOR == 7 \
    && FAISS_VERSION_PATCH == 3
  check (vs::faiss_distances_side_by_side (),
      "FAISS 1.7.3 sums in order: the side-by-side sums are its own");
#endif
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

  check_faiss_distances ();
  if (cpu.avx2)
    check_queue (false, "AVX2");
  if (cpu.avx512f)
    check_queue (true, "AVX-512");

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
