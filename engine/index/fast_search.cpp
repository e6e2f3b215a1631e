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
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <typeinfo>
#include <vector>

#include "engine/base/cpu_features.h"
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
#endif

bool use_simd() {
  static const bool simd = [] {
#ifdef VS_X86
    const CpuFeatures& cpu = cpu_features();
    return cpu.avx2 && cpu.fma;
#else
    return false;
#endif
  }();
  return simd;
}

bool kernels_forced_to_faiss() {
  const char* kernels = std::getenv(kSearchKernelsEnv);
  return kernels && std::strcmp(kernels, "faiss") == 0;
}

const float* flat_storage(const faiss::Index* index) {
  const auto* flat = dynamic_cast<const faiss::IndexFlat*>(index);
  return flat ? flat->get_xb() : nullptr;
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

DistanceFunction inner_product_function() {
#ifdef VS_X86
  if (use_simd()) return inner_product_avx2;
#endif
  return faiss::fvec_inner_product;
}

DistanceFunction l2sqr_function() {
#ifdef VS_X86
  if (use_simd()) return l2sqr_avx2;
#endif
  return faiss::fvec_L2sqr;
}

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
