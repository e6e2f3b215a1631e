// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/fast_search.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/HNSW.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <sys/mman.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VS_X86 1
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <typeinfo>
#include <vector>

#include "engine/base/cpu_features.h"
#include "engine/index/index_file.h"
#include "engine/index/index_store.h"

namespace vs {

namespace {

using idx_t = faiss::Index::idx_t;

#ifdef VS_X86
__attribute__((target("avx2,fma"))) inline float horizontal_sum_avx2(__m256 s) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// Four accumulators: a single chain of FMAs would wait on itself (4 cycles
// each), which is what FAISS's scalar loop does for every dimension.
__attribute__((target("avx2,fma"))) float inner_product_avx2(const float* x, const float* y,
                                                             size_t d) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
  }
  for (; i + 8 <= d; i += 8)
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
  float r = horizontal_sum_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < d; ++i) r += x[i] * y[i];
  return r;
}

__attribute__((target("avx2,fma"))) float l2sqr_avx2(const float* x, const float* y, size_t d) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8));
    const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16));
    const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24));
    a0 = _mm256_fmadd_ps(d0, d0, a0);
    a1 = _mm256_fmadd_ps(d1, d1, a1);
    a2 = _mm256_fmadd_ps(d2, d2, a2);
    a3 = _mm256_fmadd_ps(d3, d3, a3);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
    a0 = _mm256_fmadd_ps(d0, d0, a0);
  }
  float r = horizontal_sum_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < d; ++i) {
    const float t = x[i] - y[i];
    r += t * t;
  }
  return r;
}

// The sum of a zmm's 16 floats, through AVX2. GCC 12's _mm512_reduce_add_ps
// and _mm512_castps512_ps256 extract with an uninitialised register (and warn
// of it); the masked extracts take zeros instead.
__attribute__((target("avx512f"))) inline float horizontal_sum_avx512(__m512 s) {
  const __m512d pd = _mm512_castps_pd(s);
  const __m256 low = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, pd, 0));
  const __m256 high = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, pd, 1));
  return horizontal_sum_avx2(_mm256_add_ps(low, high));
}

// AVX-512F: 16 floats a register, four accumulators, and the last d % 16
// dimensions through a masked load instead of a scalar loop.
__attribute__((target("avx512f"))) float inner_product_avx512(const float* x, const float* y,
                                                              size_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
  }
  for (; i + 16 <= d; i += 16)
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
  if (i < d) {
    const __mmask16 m = static_cast<__mmask16>((1u << (d - i)) - 1);
    a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a1);
  }
  return horizontal_sum_avx512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx512f"))) float l2sqr_avx512(const float* x, const float* y, size_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16));
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32));
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48));
    a0 = _mm512_fmadd_ps(d0, d0, a0);
    a1 = _mm512_fmadd_ps(d1, d1, a1);
    a2 = _mm512_fmadd_ps(d2, d2, a2);
    a3 = _mm512_fmadd_ps(d3, d3, a3);
  }
  for (; i + 16 <= d; i += 16) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i));
    a0 = _mm512_fmadd_ps(d0, d0, a0);
  }
  if (i < d) {
    const __mmask16 m = static_cast<__mmask16>((1u << (d - i)) - 1);
    const __m512 d0 =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
    a1 = _mm512_fmadd_ps(d0, d0, a1);
  }
  return horizontal_sum_avx512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// CandidateQueue's scans. pop_min: over the used slots not popped (id -1),
// the smallest distance, and of equal ones the highest slot, as FAISS's scan
// from the top with a strict < finds it. Each lane keeps its smallest with
// <=, so the last (highest) slot of a tie; then the lanes are merged.
// The lanes' minima merged: the smallest distance, and of equal ones the
// highest slot; -1 when no lane found an unpopped slot.
inline int merge_lanes(const float* best, const int32_t* slot, int lanes) {
  int chosen = -1;
  float chosen_distance = 0;
  for (int lane = 0; lane < lanes; ++lane) {
    if (slot[lane] < 0) continue;
    if (chosen < 0 || best[lane] < chosen_distance ||
        (best[lane] == chosen_distance && slot[lane] > chosen)) {
      chosen = slot[lane];
      chosen_distance = best[lane];
    }
  }
  return chosen;
}

__attribute__((target("avx512f"))) int min_slot_avx512(const int32_t* ids, const float* dis,
                                                       int k) {
  const __m512i popped = _mm512_set1_epi32(-1);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i slot = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 best = _mm512_set1_ps(HUGE_VALF);
  __m512i best_slot = popped;
  for (int i = 0; i < k; i += 16) {
    const __mmask16 in = k - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - i)) - 1);
    const __m512i id = _mm512_maskz_loadu_epi32(in, ids + i);
    const __m512 d = _mm512_maskz_loadu_ps(in, dis + i);
    const __mmask16 valid = _mm512_mask_cmpneq_epi32_mask(in, id, popped);
    const __mmask16 better = _mm512_mask_cmp_ps_mask(valid, d, best, _CMP_LE_OQ);
    best = _mm512_mask_mov_ps(best, better, d);
    best_slot = _mm512_mask_mov_epi32(best_slot, better, slot);
    slot = _mm512_add_epi32(slot, step);
  }
  alignas(64) float lane_best[16];
  alignas(64) int32_t lane_slot[16];
  _mm512_store_ps(lane_best, best);
  _mm512_store_si512(lane_slot, best_slot);
  return merge_lanes(lane_best, lane_slot, 16);
}

__attribute__((target("avx512f"))) int count_below_avx512(const float* dis, int k,
                                                          float threshold) {
  const __m512 t = _mm512_set1_ps(threshold);
  int count = 0;
  for (int i = 0; i < k; i += 16) {
    const __mmask16 in = k - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (k - i)) - 1);
    count += __builtin_popcount(
        _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, dis + i), t, _CMP_LT_OQ));
  }
  return count;
}

// The same with 8 lanes; the last lanes past k are masked by their slot.
__attribute__((target("avx2"))) int min_slot_avx2(const int32_t* ids, const float* dis, int k) {
  const __m256i popped = _mm256_set1_epi32(-1);
  const __m256i step = _mm256_set1_epi32(8);
  const __m256i limit = _mm256_set1_epi32(k);
  __m256i slot = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 best = _mm256_set1_ps(HUGE_VALF);
  __m256i best_slot = popped;
  for (int i = 0; i < k; i += 8) {
    const __m256i in = _mm256_cmpgt_epi32(limit, slot);
    const __m256i id = _mm256_maskload_epi32(ids + i, in);
    const __m256 d = _mm256_maskload_ps(dis + i, in);
    const __m256i valid = _mm256_andnot_si256(_mm256_cmpeq_epi32(id, popped), in);
    const __m256 better =
        _mm256_and_ps(_mm256_castsi256_ps(valid), _mm256_cmp_ps(d, best, _CMP_LE_OQ));
    best = _mm256_blendv_ps(best, d, better);
    best_slot = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(best_slot), _mm256_castsi256_ps(slot), better));
    slot = _mm256_add_epi32(slot, step);
  }
  alignas(32) float lane_best[8];
  alignas(32) int32_t lane_slot[8];
  _mm256_store_ps(lane_best, best);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lane_slot), best_slot);
  return merge_lanes(lane_best, lane_slot, 8);
}

__attribute__((target("avx2"))) int count_below_avx2(const float* dis, int k, float threshold) {
  const __m256 t = _mm256_set1_ps(threshold);
  const __m256i limit = _mm256_set1_epi32(k);
  const __m256i step = _mm256_set1_epi32(8);
  __m256i slot = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int count = 0;
  for (int i = 0; i < k; i += 8) {
    const __m256i in = _mm256_cmpgt_epi32(limit, slot);
    const __m256 below = _mm256_cmp_ps(_mm256_maskload_ps(dis + i, in), t, _CMP_LT_OQ);
    count += __builtin_popcount(_mm256_movemask_ps(_mm256_and_ps(below, _mm256_castsi256_ps(in))));
    slot = _mm256_add_epi32(slot, step);
  }
  return count;
}
#endif

// Eight of FAISS's sums at once, in FAISS's order (see faiss_distances);
// rows past n repeat the first and are dropped. No FMA may fuse a product
// into its sum: FAISS rounds both.
template <bool kInnerProduct>
__attribute__((optimize("fp-contract=off"))) void eight_sums(const float* q, const float* const* r,
                                                             size_t d, int n, float* out) {
  float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  const float *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3], *r4 = r[4], *r5 = r[5], *r6 = r[6],
              *r7 = r[7];
  for (size_t i = 0; i < d; ++i) {
    const float x = q[i];
    if (kInnerProduct) {
      a0 += x * r0[i];
      a1 += x * r1[i];
      a2 += x * r2[i];
      a3 += x * r3[i];
      a4 += x * r4[i];
      a5 += x * r5[i];
      a6 += x * r6[i];
      a7 += x * r7[i];
    } else {
      const float t0 = x - r0[i], t1 = x - r1[i], t2 = x - r2[i], t3 = x - r3[i];
      const float t4 = x - r4[i], t5 = x - r5[i], t6 = x - r6[i], t7 = x - r7[i];
      a0 += t0 * t0;
      a1 += t1 * t1;
      a2 += t2 * t2;
      a3 += t3 * t3;
      a4 += t4 * t4;
      a5 += t5 * t5;
      a6 += t6 * t6;
      a7 += t7 * t7;
    }
  }
  const float sums[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
  for (int j = 0; j < n; ++j) out[j] = sums[j];
}

void side_by_side(bool inner_product, const float* query, const float* vectors, size_t d,
                  const int64_t* rows, int64_t n, float* out) {
  for (int64_t j = 0; j < n; j += 8) {
    const int m = static_cast<int>(std::min<int64_t>(8, n - j));
    const float* r[8];
    for (int l = 0; l < 8; ++l) r[l] = vectors + rows[j + (l < m ? l : 0)] * d;
    if (inner_product)
      eight_sums<true>(query, r, d, m, out + j);
    else
      eight_sums<false>(query, r, d, m, out + j);
  }
}

// Whether side_by_side gives FAISS's bits, on rows of mixed magnitudes (so
// that another order of the sum would round differently) at dims from 1 to
// 130 and at 512 and 515.
bool side_by_side_is_faiss() {
  std::vector<float> v(16 * 520);
  uint32_t state = 12345;
  for (float& x : v) {
    state = state * 1664525u + 1013904223u;
    const float unit = static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
    x = unit * ((state & 3) == 0 ? 1000.0f : 1.0f);
  }
  std::vector<size_t> dims;
  for (size_t d = 1; d <= 130; ++d) dims.push_back(d);
  dims.push_back(512);
  dims.push_back(515);
  const int64_t rows[11] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  for (size_t d : dims)
    for (bool ip : {false, true}) {
      float got[11];
      side_by_side(ip, v.data(), v.data(), d, rows, 11, got);
      for (int j = 0; j < 11; ++j) {
        const float want = ip ? faiss::fvec_inner_product(v.data(), v.data() + rows[j] * d, d)
                              : faiss::fvec_L2sqr(v.data(), v.data() + rows[j] * d, d);
        if (std::memcmp(&want, &got[j], sizeof want) != 0) return false;
      }
    }
  return true;
}

const SearchKernel kFaissKernel{"FAISS", faiss::fvec_inner_product, faiss::fvec_L2sqr};
#ifdef VS_X86
const SearchKernel kAvx2Kernel{"AVX2+FMA", inner_product_avx2, l2sqr_avx2};
const SearchKernel kAvx512Kernel{"AVX-512", inner_product_avx512, l2sqr_avx512};
#endif

// Nanoseconds one distance of `kernel` takes, the fastest of `rounds` rounds,
// over rows that stay in the L2 cache, at the graph's (128) and the
// re-ranking's (512) dims: the arithmetic, which is what the kernels change.
// The fastest round is the one the machine's other work disturbed least.
double nanoseconds_per_distance(const SearchKernel& kernel, const std::vector<float>& rows,
                                int rounds) {
  double best = 1e30;
  volatile float sink = 0;
  for (int round = 0; round < rounds; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    float sum = 0;
    size_t count = 0;
    for (int pass = 0; pass < 4; ++pass)
      for (size_t d : {size_t(128), size_t(512)})
        for (size_t r = 0; r + 2 * d <= rows.size(); r += d, ++count)
          sum += kernel.inner_product(rows.data(), rows.data() + r + d, d) +
                 kernel.l2sqr(rows.data(), rows.data() + r + d, d);
    const auto t1 = std::chrono::steady_clock::now();
    sink = sink + sum;
    best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / (2 * count));
  }
  return best;
}

}  // namespace

std::vector<SearchKernel> search_kernels_on_this_cpu() {
  std::vector<SearchKernel> kernels{kFaissKernel};
#ifdef VS_X86
  const CpuFeatures& cpu = cpu_features();
  if (cpu.avx2 && cpu.fma) kernels.push_back(kAvx2Kernel);
  if (cpu.avx512f) kernels.push_back(kAvx512Kernel);
#endif
  return kernels;
}

SearchKernelChoice choose_search_kernel(const char* setting) {
  const std::vector<SearchKernel> kernels = search_kernels_on_this_cpu();
  auto find = [&](const char* name) -> const SearchKernel* {
    for (const SearchKernel& k : kernels)
      if (std::strcmp(k.name, name) == 0) return &k;
    return nullptr;
  };
  const std::string value = setting ? setting : "";
  std::string note;
  if (value == "faiss") return {kFaissKernel, std::string(kSearchKernelsEnv) + "=faiss"};
  if (value == "avx2" || value == "avx512") {
    const SearchKernel* forced = find(value == "avx2" ? "AVX2+FMA" : "AVX-512");
    if (forced) return {*forced, std::string(kSearchKernelsEnv) + "=" + value};
    note = std::string(kSearchKernelsEnv) + "=" + value + " asks for what this CPU lacks; ";
  } else if (!value.empty() && value != "auto") {
    note =
        std::string(kSearchKernelsEnv) + "=" + value + " is not one of auto, avx512, avx2, faiss; ";
  }
  const SearchKernel* avx2 = find("AVX2+FMA");
  const SearchKernel* avx512 = find("AVX-512");
  if (!avx2) return {kFaissKernel, note + "this CPU has no AVX2 and FMA"};
  if (!avx512) return {*avx2, note + "this CPU has AVX2 and FMA, no AVX-512"};
  // Both run here: AVX-512 only where it measures faster (some CPUs lower
  // their clock for it, or split its registers in two halves).
  std::vector<float> rows(64 * 1024);
  for (size_t i = 0; i < rows.size(); ++i)
    rows[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000;
  // A first round of each warms the caches and the vector units; then the two
  // alternate, so that a burst of other work does not fall on one only.
  nanoseconds_per_distance(*avx2, rows, 1);
  nanoseconds_per_distance(*avx512, rows, 1);
  double ns2 = 1e30, ns512 = 1e30;
  for (int pass = 0; pass < 5; ++pass) {
    ns2 = std::min(ns2, nanoseconds_per_distance(*avx2, rows, 3));
    ns512 = std::min(ns512, nanoseconds_per_distance(*avx512, rows, 3));
  }
  char measured[160];
  std::snprintf(measured, sizeof measured,
                "measured: AVX-512 %.1f ns, AVX2+FMA %.1f ns a distance (128 and 512 dims)", ns512,
                ns2);
  if (ns512 < 0.95 * ns2) return {*avx512, note + measured};
  return {*avx2, note + measured};
}

const SearchKernelChoice& search_kernel() {
  static const SearchKernelChoice choice = choose_search_kernel(std::getenv(kSearchKernelsEnv));
  return choice;
}

namespace {

bool use_simd() { return search_kernel().kernel.inner_product != faiss::fvec_inner_product; }

// The candidate queue scans with AVX-512 where the distances do.
bool use_avx512() { return std::strcmp(search_kernel().kernel.name, "AVX-512") == 0; }

bool kernels_forced_to_faiss() {
  const char* kernels = std::getenv(kSearchKernelsEnv);
  return kernels && std::strcmp(kernels, "faiss") == 0;
}

// The vectors of a flat index, copied (IndexFlat) or searched in place from
// the file (mmap=true: index_file.cpp's MappedFlat).
const float* flat_storage(const faiss::Index* index) {
  const auto* flat = dynamic_cast<const faiss::IndexFlat*>(index);
  return flat ? flat->get_xb() : mapped_flat_vectors(index);
}

// Asks for a row of d floats ahead of its distance: a graph walk or a
// re-ranking reads rows from all over memory, and the rows it will read
// next can be fetched at once instead of one after the other.
inline void prefetch_bytes(const void* p, size_t n) {
#ifdef VS_X86
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t(63);
  const uintptr_t last = reinterpret_cast<uintptr_t>(p) + (n ? n - 1 : 0);
  for (uintptr_t line = first; line <= last; line += 64)
    _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
#else
  (void)p;
  (void)n;
#endif
}

inline void prefetch_row(const float* row, size_t d) { prefetch_bytes(row, d * sizeof(float)); }

// HNSW keeps the smallest distances, so an inner product is searched negated,
// as FAISS's storage_distance_computer does.
class FlatDistance : public faiss::DistanceComputer {
 public:
  FlatDistance(const float* xb, size_t d, bool inner_product)
      : xb_(xb),
        d_(d),
        sign_(inner_product ? -1.0f : 1.0f),
        distance_(inner_product ? inner_product_function() : l2sqr_function()) {}

  void set_query(const float* x) override { q_ = x; }
  float operator()(idx_t i) override { return sign_ * distance_(q_, xb_ + i * d_, d_); }
  // The distances of rows as FAISS's own computer gives them, to the last bit.
  void faiss_distances(const idx_t* rows, int64_t n, float* out) const {
    vs::faiss_distances(sign_ < 0, q_, xb_, d_, rows, n, out);
    for (int64_t j = 0; j < n; ++j) out[j] *= sign_;
  }
  // Asks for row i ahead of its distance: a graph walk reads rows from all
  // over memory, and the rows of one node's neighbours can be fetched at once.
  void prefetch(idx_t i) const { prefetch_row(xb_ + i * d_, d_); }
  float symmetric_dis(idx_t i, idx_t j) override {
    return sign_ * distance_(xb_ + j * d_, xb_ + i * d_, d_);
  }

 private:
  const float* xb_;
  size_t d_;
  float sign_;
  DistanceFunction distance_;
  const float* q_ = nullptr;
};

// FAISS's flat storage with our distances: what HNSW's build computes by the
// million. Only its distance computer differs from IndexFlat's.
class SimdFlatComputer : public faiss::FlatCodesDistanceComputer {
 public:
  SimdFlatComputer(const faiss::IndexFlat& flat)
      : faiss::FlatCodesDistanceComputer(flat.codes.data(), flat.code_size),
        xb_(flat.get_xb()),
        d_(flat.d),
        distance_(flat.metric_type == faiss::METRIC_INNER_PRODUCT ? inner_product_function()
                                                                  : l2sqr_function()) {}

  void set_query(const float* x) override { q_ = x; }
  float distance_to_code(const uint8_t* code) override {
    return distance_(q_, reinterpret_cast<const float*>(code), d_);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    return distance_(xb_ + j * d_, xb_ + i * d_, d_);
  }

 private:
  const float* xb_;
  size_t d_;
  DistanceFunction distance_;
  const float* q_ = nullptr;
};

class SimdFlat : public faiss::IndexFlat {
 public:
  SimdFlat(idx_t d, faiss::MetricType metric) : faiss::IndexFlat(d, metric) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
    return new SimdFlatComputer(*this);
  }
};

// The parts of an index fast_search knows: [IndexRefine over flat vectors]
// over [IndexPreTransform] over IndexHNSW with flat storage.
struct Plan {
  const faiss::IndexRefine* refine = nullptr;
  const float* refine_vectors = nullptr;
  const faiss::IndexPreTransform* transform = nullptr;
  const faiss::IndexHNSW* hnsw = nullptr;
  const float* vectors = nullptr;
  const char* declined = nullptr;
};

Plan plan_for(const faiss::Index* index) {
  Plan plan;
  if (const auto* refine = dynamic_cast<const faiss::IndexRefine*>(index)) {
    plan.refine = refine;
    plan.refine_vectors = flat_storage(refine->refine_index);
    if (!plan.refine_vectors) {
      plan.declined = "the refine stage is not over flat vectors";
      return plan;
    }
    index = refine->base_index;
  }
  if (const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
    plan.transform = pre;
    index = pre->index;
  }
  plan.hnsw = dynamic_cast<const faiss::IndexHNSW*>(index);
  if (!plan.hnsw) {
    plan.declined = "not an HNSW graph";
    return plan;
  }
  plan.vectors = flat_storage(plan.hnsw->storage);
  if (!plan.vectors) {
    plan.declined = "the HNSW graph is not over flat vectors (HNSW..._SQ, _PQ)";
    return plan;
  }
  if (plan.hnsw->metric_type != faiss::METRIC_INNER_PRODUCT &&
      plan.hnsw->metric_type != faiss::METRIC_L2) {
    plan.declined = "a metric other than inner product or L2";
    return plan;
  }
  if (plan.hnsw->reconstruct_from_neighbors) {
    plan.declined = "the graph reconstructs vectors from neighbours";
    return plan;
  }
  if (plan.refine && plan.refine->metric_type != plan.hnsw->metric_type) {
    plan.declined = "the refine stage and the graph use different metrics";
    return plan;
  }
  if (!use_simd()) plan.declined = "this CPU has no AVX2 and FMA";
  if (kernels_forced_to_faiss()) plan.declined = "VISUALSEARCH_SEARCH_KERNELS=faiss";
  return plan;
}

using storage_idx_t = faiss::HNSW::storage_idx_t;

// FAISS's greedy_update_nearest: on an upper level, move to the nearest
// neighbour until none is nearer.
void greedy_update_nearest(const faiss::HNSW& hnsw, FlatDistance& qdis, int level,
                           storage_idx_t& nearest, float& d_nearest) {
  for (;;) {
    const storage_idx_t previous = nearest;
    size_t begin, end;
    hnsw.neighbor_range(nearest, level, &begin, &end);
    for (size_t i = begin; i < end; ++i) {
      const storage_idx_t v = hnsw.neighbors[i];
      if (v < 0) break;
      const float dis = qdis(v);
      if (dis < d_nearest) {
        nearest = v;
        d_nearest = dis;
      }
    }
    if (nearest == previous) return;
  }
}

// A node the walk kept as a result: its distance, and when it was reached.
struct Reached {
  float distance;
  int64_t order;
  storage_idx_t id;
  bool operator<(const Reached& other) const {  // for a max-heap: the worst on top
    return distance != other.distance ? distance < other.distance : order < other.order;
  }
};

// Result slots beyond k that the walk keeps: its distances are summed in
// another order than FAISS's, so two neighbours whose distances differ by a
// rounding may swap; the k best are chosen again from k + kSpareResults with
// FAISS's own distance, and come out as FAISS's would. The result heap never
// steers the walk, so its size changes nothing else.
constexpr int kSpareResults = 8;

// HNSW::search of FAISS 1.7.3 with upper_beam 1 and a bounded queue (what
// IndexHNSW writes and reads), step for step: the greedy descent, then
// search_from_candidates on level 0 with the same queue, visiting order and
// stopping rule, so it walks where FAISS walks. Two changes: the unvisited
// neighbours of a node are gathered and their rows prefetched before their
// distances are computed in the same order, where FAISS waits for each row
// in turn; and the results are chosen as kSpareResults says. D and I get
// the k best in increasing order of HNSW's distance (inner products negated).
void walk_graph(const faiss::HNSW& hnsw, FlatDistance& qdis, int k, float* D, idx_t* I,
                VisitedBits& visited, int ef_search, bool check_relative_distance,
                std::vector<storage_idx_t>& fresh, std::vector<Reached>& results) {
  std::fill(D, D + k, HUGE_VALF);
  std::fill(I, I + k, -1);
  if (hnsw.entry_point == -1) return;
  visited.reset(static_cast<int64_t>(hnsw.levels.size()));
  storage_idx_t nearest = hnsw.entry_point;
  float d_nearest = qdis(nearest);
  for (int level = hnsw.max_level; level >= 1; --level)
    greedy_update_nearest(hnsw, qdis, level, nearest, d_nearest);

  CandidateQueue candidates(std::max(ef_search, k), use_avx512());
  candidates.push(nearest, d_nearest);
  const size_t kept = static_cast<size_t>(k) + kSpareResults;
  results.clear();
  int64_t order = 0;
  auto keep = [&](storage_idx_t v, float d) {
    const Reached reached{d, order++, v};
    if (results.size() < kept) {
      results.push_back(reached);
      std::push_heap(results.begin(), results.end());
    } else if (reached < results.front()) {
      std::pop_heap(results.begin(), results.end());
      results.back() = reached;
      std::push_heap(results.begin(), results.end());
    }
  };
  for (int i = 0; i < candidates.size(); ++i) {
    keep(candidates.id_at(i), candidates.distance_at(i));
    visited.set(candidates.id_at(i));
  }
  int steps = 0;
  while (candidates.size() > 0) {
    float d0 = 0;
    const int v0 = candidates.pop_min(&d0);
    // FAISS's stopping rule: ef_search candidates already nearer than d0.
    if (check_relative_distance && candidates.count_below(d0) >= ef_search) break;
    size_t begin, end;
    hnsw.neighbor_range(v0, 0, &begin, &end);
    fresh.clear();
    for (size_t j = begin; j < end; ++j) {
      const storage_idx_t v1 = hnsw.neighbors[j];
      if (v1 < 0) break;
      if (visited.get(v1)) continue;
      visited.set(v1);
      qdis.prefetch(v1);
      // Where its links start, for when it is expanded (below).
      prefetch_bytes(&hnsw.offsets[v1], sizeof(size_t));
      fresh.push_back(v1);
    }
    // The node the next step most likely expands, the nearest candidate now
    // (unless a fresh one comes nearer): its links are asked for while the
    // fresh distances are computed, instead of waited for at the next step.
    const storage_idx_t next = candidates.peek_min();
    if (next >= 0) {
      size_t next_begin, next_end;
      hnsw.neighbor_range(next, 0, &next_begin, &next_end);
      prefetch_bytes(hnsw.neighbors.data() + next_begin,
                     (next_end - next_begin) * sizeof(storage_idx_t));
    }
    for (const storage_idx_t v1 : fresh) {
      const float d = qdis(v1);
      keep(v1, d);
      candidates.push(v1, d);
    }
    ++steps;
    if (!check_relative_distance && steps > ef_search) break;
  }

  // FAISS's heap keeps the first reached of equal distances.
  idx_t rows[64];
  float exact[64];
  for (size_t first = 0; first < results.size(); first += 64) {
    const size_t n = std::min<size_t>(64, results.size() - first);
    for (size_t j = 0; j < n; ++j) rows[j] = results[first + j].id;
    qdis.faiss_distances(rows, static_cast<int64_t>(n), exact);
    for (size_t j = 0; j < n; ++j) results[first + j].distance = exact[j];
  }
  std::sort(results.begin(), results.end());
  const size_t n = std::min(results.size(), static_cast<size_t>(k));
  for (size_t j = 0; j < n; ++j) {
    D[j] = results[j].distance;
    I[j] = results[j].id;
  }
}

// One query through the graph, as IndexHNSW::search does it: the best k in
// increasing order of HNSW's distance (an inner product negated back).
void graph_search(const Plan& plan, const float* query, int k, const SearchParams& params,
                  float* distances, idx_t* labels, VisitedBits& visited,
                  std::vector<storage_idx_t>& fresh, std::vector<Reached>& results) {
  const faiss::IndexHNSW& index = *plan.hnsw;
  const bool ip = index.metric_type == faiss::METRIC_INNER_PRODUCT;
  FlatDistance distance(plan.vectors, index.d, ip);
  distance.set_query(query);
  const int ef_search = params.ef_search > 0 ? params.ef_search : index.hnsw.efSearch;
  if (index.hnsw.upper_beam == 1 && index.hnsw.search_bounded_queue) {
    walk_graph(index.hnsw, distance, k, distances, labels, visited, ef_search,
               index.hnsw.check_relative_distance, fresh, results);
  } else {
    faiss::maxheap_heapify(k, distances, labels);
    faiss::SearchParametersHNSW hnsw_params;
    hnsw_params.efSearch = ef_search;
    hnsw_params.check_relative_distance = index.hnsw.check_relative_distance;
    faiss::VisitedTable table(static_cast<int>(index.ntotal));
    index.hnsw.search(distance, k, labels, distances, table, &hnsw_params);
    faiss::maxheap_reorder(k, distances, labels);
  }
  if (ip)
    for (int j = 0; j < k; ++j) distances[j] = -distances[j];
}

// IndexRefine's second stage as IndexRefineFlat::search does it: the exact
// distances of the base's candidates over the full vectors, FAISS's own to
// the last bit (their order must be FAISS's), their rows asked for at once,
// and the best k kept as FAISS keeps them.
void refine(const Plan& plan, const float* query, int k, int64_t k_base, idx_t* base_labels,
            float* base_distances, float* distances, idx_t* labels) {
  const faiss::IndexRefine& index = *plan.refine;
  const bool ip = index.metric_type == faiss::METRIC_INNER_PRODUCT;
  const size_t d = index.d;
  int64_t n = 0;
  while (n < k_base && base_labels[n] >= 0)
    prefetch_row(plan.refine_vectors + base_labels[n++] * d, d);
  faiss_distances(ip, query, plan.refine_vectors, d, base_labels, n, base_distances);
  keep_refined(ip, k, k_base, base_labels, base_distances, distances, labels);
}

// The queries through the index's transform: a single linear one (PCA, OPQ's
// rotation, a random rotation) as one dot product of our distances a row,
// y = A x + b, where FAISS calls BLAS's sgemm, which for one query spends
// more time packing A (256 KB for PCA128 of 512 dims) than multiplying (20
// us a query against 4); others through FAISS's apply_chain. The two round
// differently, as sgemm rounds a batch differently from one query: the
// walk's distances already differ from FAISS's by rounding (walk_graph). Each
// query's projection is the same in any batch. The caller frees the result
// when it is not `queries`.
const float* project(const faiss::IndexPreTransform& pre, int64_t n, const float* queries) {
  const auto* linear =
      pre.chain.size() == 1 ? dynamic_cast<const faiss::LinearTransform*>(pre.chain[0]) : nullptr;
  if (!linear || !linear->is_trained ||
      linear->A.size() != static_cast<size_t>(linear->d_out) * linear->d_in ||
      (linear->have_bias && linear->b.size() != static_cast<size_t>(linear->d_out)))
    return pre.apply_chain(n, queries);
  const size_t d_in = linear->d_in, d_out = linear->d_out;
  const DistanceFunction dot = inner_product_function();
  float* out = new float[n * d_out];
  for (int64_t q = 0; q < n; ++q) {
    const float* x = queries + q * d_in;
    float* y = out + q * d_out;
    for (size_t j = 0; j < d_out; ++j)
      y[j] = dot(linear->A.data() + j * d_in, x, d_in) + (linear->have_bias ? linear->b[j] : 0.0f);
  }
  return out;
}

void search_one(const Plan& plan, const float* query, const float* projected, int k, int64_t k_base,
                const SearchParams& params, float* distances, idx_t* labels,
                std::vector<float>& base_distances, std::vector<idx_t>& base_labels,
                VisitedBits& visited) {
  std::vector<storage_idx_t> fresh;
  fresh.reserve(plan.hnsw->hnsw.nb_neighbors(0));
  std::vector<Reached> results;
  if (!plan.refine) {
    graph_search(plan, projected, k, params, distances, labels, visited, fresh, results);
    return;
  }
  base_distances.resize(k_base);
  base_labels.resize(k_base);
  graph_search(plan, projected, static_cast<int>(k_base), params, base_distances.data(),
               base_labels.data(), visited, fresh, results);
  refine(plan, query, k, k_base, base_labels.data(), base_distances.data(), distances, labels);
}

}  // namespace

DistanceFunction inner_product_function() { return search_kernel().kernel.inner_product; }

DistanceFunction l2sqr_function() { return search_kernel().kernel.l2sqr; }

int64_t refine_candidates(int k, float refine_factor, float k_factor) {
  const float factor = refine_factor > 0 ? refine_factor : k_factor;
  return std::max<int64_t>(k, static_cast<int64_t>(k * factor));
}

void keep_refined(bool inner_product, int k, int64_t k_base, const int64_t* base_labels,
                  const float* base_distances, float* distances, int64_t* labels) {
  auto keep = [&](auto order) {
    using C = decltype(order);
    faiss::heap_heapify<C>(k, distances, labels, base_distances, base_labels, k);
    if (k_base != k)
      faiss::heap_addn<C>(k, distances, labels, base_distances + k, base_labels + k, k_base - k);
    faiss::heap_reorder<C>(k, distances, labels);
  };
  if (inner_product)
    keep(faiss::CMin<float, idx_t>());
  else
    keep(faiss::CMax<float, idx_t>());
}

bool faiss_distances_side_by_side() {
  static const bool same = side_by_side_is_faiss();
  return same;
}

void faiss_distances(bool inner_product, const float* query, const float* vectors, size_t d,
                     const int64_t* rows, int64_t n, float* out) {
  if (faiss_distances_side_by_side())
    return side_by_side(inner_product, query, vectors, d, rows, n, out);
  const DistanceFunction f = inner_product ? faiss::fvec_inner_product : faiss::fvec_L2sqr;
  for (int64_t j = 0; j < n; ++j) out[j] = f(query, vectors + rows[j] * d, d);
}

CandidateQueue::CandidateQueue(int n, bool avx512)
    : n_(n), avx512_(avx512), ids_(static_cast<size_t>(n)), distances_(static_cast<size_t>(n)) {}

void CandidateQueue::push(int32_t id, float distance) {
  using HC = faiss::CMax<float, int32_t>;
  if (k_ == n_) {
    if (distance >= distances_[0]) return;
    // FAISS 1.7.3 counts the dropped slot out even when it was popped.
    faiss::heap_pop<HC>(k_--, distances_.data(), ids_.data());
    --nvalid_;
  }
  faiss::heap_push<HC>(++k_, distances_.data(), ids_.data(), distance, id);
  ++nvalid_;
}

int CandidateQueue::min_slot() const {
#ifdef VS_X86
  return avx512_ ? min_slot_avx512(ids_.data(), distances_.data(), k_)
                 : min_slot_avx2(ids_.data(), distances_.data(), k_);
#else
  int slot = -1;
  for (int i = k_ - 1; i >= 0; --i)
    if (ids_[i] != -1 && (slot < 0 || distances_[i] < distances_[slot])) slot = i;
  return slot;
#endif
}

int32_t CandidateQueue::peek_min() const {
  const int slot = min_slot();
  return slot < 0 ? -1 : ids_[slot];
}

int32_t CandidateQueue::pop_min(float* distance) {
  const int slot = min_slot();
  if (slot < 0) return -1;
  if (distance) *distance = distances_[slot];
  const int32_t id = ids_[slot];
  ids_[slot] = -1;
  --nvalid_;
  return id;
}

int CandidateQueue::count_below(float threshold) const {
#ifdef VS_X86
  return avx512_ ? count_below_avx512(distances_.data(), k_, threshold)
                 : count_below_avx2(distances_.data(), k_, threshold);
#else
  int count = 0;
  for (int i = 0; i < k_; ++i) count += distances_[i] < threshold;
  return count;
#endif
}

void VisitedBits::reset(int64_t ntotal) {
  const size_t words = static_cast<size_t>((ntotal + 63) >> 6);
  if (words_.size() != words)
    words_.assign(words, 0);
  else
    std::memset(words_.data(), 0, words * sizeof(uint64_t));
}

void use_simd_storage(faiss::Index* index) {
  if (!use_simd() || kernels_forced_to_faiss()) return;
  if (auto* map = dynamic_cast<faiss::IndexIDMap*>(index)) return use_simd_storage(map->index);
  if (auto* refine = dynamic_cast<faiss::IndexRefine*>(index))
    return use_simd_storage(refine->base_index);
  if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index))
    return use_simd_storage(pre->index);
  auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index);
  if (!hnsw || !hnsw->storage || !hnsw->own_fields) return;
  const faiss::Index& old = *hnsw->storage;
  // Exactly FAISS's flat types, whose distances are the plain ones.
  if (typeid(old) != typeid(faiss::IndexFlat) && typeid(old) != typeid(faiss::IndexFlatL2) &&
      typeid(old) != typeid(faiss::IndexFlatIP))
    return;
  auto* flat = static_cast<faiss::IndexFlat*>(hnsw->storage);
  if (flat->metric_type != faiss::METRIC_INNER_PRODUCT && flat->metric_type != faiss::METRIC_L2)
    return;
  auto simd = std::make_unique<SimdFlat>(flat->d, flat->metric_type);
  simd->codes.swap(flat->codes);
  simd->ntotal = flat->ntotal;
  simd->is_trained = flat->is_trained;
  simd->verbose = flat->verbose;
  delete hnsw->storage;
  hnsw->storage = simd.release();
}

namespace {

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

// The 2 MB pages wholly inside [p, p + n), advised and collapsed; the bytes
// collapsed, 0 when the kernel would not (errno in *error).
size_t collapse(const void* p, size_t n, int* error) {
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) & ~(kHuge - 1);
  if (end <= begin) return 0;
  void* at = reinterpret_cast<void*>(begin);
  if (::madvise(at, end - begin, MADV_HUGEPAGE) != 0 ||
      ::madvise(at, end - begin, MADV_COLLAPSE) != 0) {
    *error = errno;
    return 0;
  }
  return end - begin;
}

}  // namespace

size_t use_huge_pages(const faiss::Index* index, std::string* why) {
  const char* setting = std::getenv(kHugePagesEnv);
  if (setting && std::strcmp(setting, "0") == 0) {
    *why = std::string(kHugePagesEnv) + "=0";
    return 0;
  }
  if (const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index)) index = map->index;
  const Plan plan = plan_for(index);
  if (plan.declined) {
    *why = "not searched by visualsearch's HNSW path";
    return 0;
  }
  const faiss::HNSW& hnsw = plan.hnsw->hnsw;
  const size_t n = static_cast<size_t>(plan.hnsw->ntotal);
  struct Part {
    const void* data;
    size_t bytes;
  };
  std::vector<Part> parts{{plan.vectors, n * plan.hnsw->d * sizeof(float)},
                          {hnsw.neighbors.data(), hnsw.neighbors.size() * sizeof(storage_idx_t)},
                          {hnsw.offsets.data(), hnsw.offsets.size() * sizeof(size_t)}};
  size_t total = 0, collapsed = 0;
  int error = 0;
  for (const Part& part : parts) {
    total += part.bytes;
    collapsed += collapse(part.data, part.bytes, &error);
  }
  char text[200];
  if (error)
    std::snprintf(text, sizeof text,
                  "%zu of %zu MiB on 2 MB pages; the kernel refused the rest: %s", collapsed >> 20,
                  total >> 20, std::strerror(error));
  else
    std::snprintf(text, sizeof text, "%zu of %zu MiB on 2 MB pages", collapsed >> 20, total >> 20);
  *why = text;
  return collapsed;
}

const char* fast_search_declines(const faiss::Index* index) {
  const Plan plan = plan_for(index);
  return plan.declined ? plan.declined : "";
}

bool fast_search(const faiss::Index* index, int64_t n, const float* queries, int k,
                 const SearchParams& params, float* distances, int64_t* labels,
                 VisitedCache& visited) {
  const Plan plan = plan_for(index);
  if (plan.declined || n <= 0 || k <= 0) return false;
  const int64_t ntotal = plan.hnsw->ntotal;
  // FAISS's k_base: k times the factor, truncated.
  const int64_t k_base =
      plan.refine ? refine_candidates(k, params.refine_factor, plan.refine->k_factor) : k;
  if (ntotal == 0) {
    std::fill(distances, distances + n * k,
              index->metric_type == faiss::METRIC_INNER_PRODUCT ? -HUGE_VALF : HUGE_VALF);
    std::fill(labels, labels + n * k, -1);
    return true;
  }
  const float* projected = queries;
  std::unique_ptr<const float[]> owned;
  if (plan.transform) {
    projected = project(*plan.transform, n, queries);
    if (projected != queries) owned.reset(projected);
  }
  const int64_t d_in = index->d, d_graph = plan.hnsw->d;
  if (n == 1) {
    std::vector<float> base_distances;
    std::vector<idx_t> base_labels;
    search_one(plan, queries, projected, k, k_base, params, distances, labels, base_distances,
               base_labels, visited.get());
    return true;
  }
#pragma omp parallel
  {
    VisitedBits table;
    std::vector<float> base_distances;
    std::vector<idx_t> base_labels;
#pragma omp for schedule(dynamic)
    for (int64_t q = 0; q < n; ++q)
      search_one(plan, queries + q * d_in, projected + q * d_graph, k, k_base, params,
                 distances + q * k, labels + q * k, base_distances, base_labels, table);
  }
  return true;
}

}  // namespace vs
