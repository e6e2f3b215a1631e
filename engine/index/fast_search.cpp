// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/fast_search.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/HNSW.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VS_X86 1
#endif

#include <algorithm>
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
#endif

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

// HNSW keeps the smallest distances, so an inner product is searched negated,
// as FAISS's storage_distance_computer does.
class FlatDistance : public faiss::DistanceComputer {
 public:
  FlatDistance(const float* xb, size_t d, bool inner_product)
      : xb_(xb),
        d_(d),
        sign_(inner_product ? -1.0f : 1.0f),
        distance_(inner_product ? inner_product_function() : l2sqr_function()),
        faiss_distance_(inner_product ? faiss::fvec_inner_product : faiss::fvec_L2sqr) {}

  void set_query(const float* x) override { q_ = x; }
  float operator()(idx_t i) override { return sign_ * distance_(q_, xb_ + i * d_, d_); }
  // The distance as FAISS's own computer gives it, to the last bit.
  float faiss_distance(idx_t i) const { return sign_ * faiss_distance_(q_, xb_ + i * d_, d_); }
  // Asks for row i ahead of its distance: a graph walk reads rows from all
  // over memory, and the rows of one node's neighbours can be fetched at once.
  void prefetch(idx_t i) const {
#ifdef VS_X86
    const char* row = reinterpret_cast<const char*>(xb_ + i * d_);
    for (size_t byte = 0; byte < d_ * sizeof(float); byte += 64)
      _mm_prefetch(row + byte, _MM_HINT_T0);
#else
    (void)i;
#endif
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    return sign_ * distance_(xb_ + j * d_, xb_ + i * d_, d_);
  }

 private:
  const float* xb_;
  size_t d_;
  float sign_;
  DistanceFunction distance_;
  DistanceFunction faiss_distance_;
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

  faiss::HNSW::MinimaxHeap candidates(std::max(ef_search, k));
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
    keep(candidates.ids[i], candidates.dis[i]);
    visited.set(candidates.ids[i]);
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
      fresh.push_back(v1);
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
  for (Reached& r : results) r.distance = qdis.faiss_distance(r.id);
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
// distances of the base's candidates over the full vectors, computed with
// FAISS's own function (a few dozen a query: their order must be FAISS's to
// the last bit), the best k kept as FAISS keeps them.
void refine(const Plan& plan, const float* query, int k, int64_t k_base, idx_t* base_labels,
            float* base_distances, float* distances, idx_t* labels) {
  const faiss::IndexRefine& index = *plan.refine;
  const bool ip = index.metric_type == faiss::METRIC_INNER_PRODUCT;
  const DistanceFunction distance = ip ? faiss::fvec_inner_product : faiss::fvec_L2sqr;
  const size_t d = index.d;
  for (int64_t j = 0; j < k_base && base_labels[j] >= 0; ++j)
    base_distances[j] = distance(query, plan.refine_vectors + base_labels[j] * d, d);
  keep_refined(ip, k, k_base, base_labels, base_distances, distances, labels);
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
    projected = plan.transform->apply_chain(n, queries);
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
