/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Search paths of our own for the index types whose search in Debian's FAISS
// 1.7.3 (a generic x86-64 build: every distance a scalar loop) is slow, with
// AVX2+FMA distances chosen at run time: an HNSW graph over flat vectors
// (IndexHNSWFlat: "HNSW32"), behind a transform ("PCA128,HNSW32") and under an
// exact re-ranking over the full vectors ("PCA128,HNSW32,RFlat").
//
// They walk FAISS's own graph with FAISS's own HNSW::search, so they return
// what IndexHNSW::search and IndexRefineFlat::search return, up to the
// rounding of a distance summed in another order. Any other index, or a CPU
// without AVX2 and FMA, or VISUALSEARCH_SEARCH_KERNELS=faiss, keeps FAISS's
// search. On a CPU with AVX-512F the AVX-512 distances are used when they
// measure faster than the AVX2 ones at start (search_kernel()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace faiss {
struct Index;
}  // namespace faiss

namespace vs {

struct SearchParams;

// Environment variable: "faiss" keeps FAISS's own search everywhere; "avx2"
// or "avx512" force those distances where the CPU has them (else the choice
// is made as without it, and says so); "auto" or unset: measured.
constexpr const char* kSearchKernelsEnv = "VISUALSEARCH_SEARCH_KERNELS";

using DistanceFunction = float (*)(const float*, const float*, size_t);

// One set of distances: "FAISS" (fvec_inner_product and fvec_L2sqr, scalar in
// Debian's build), "AVX2+FMA" or "AVX-512".
struct SearchKernel {
  const char* name;
  DistanceFunction inner_product;
  DistanceFunction l2sqr;
};

// The kernels this CPU runs (CPUID, with the OS saving the registers), FAISS's
// first.
std::vector<SearchKernel> search_kernels_on_this_cpu();

struct SearchKernelChoice {
  SearchKernel kernel;
  std::string why;  // for the log: the setting, what the CPU lacks, or the measurement
};

// The choice for a value of kSearchKernelsEnv (nullptr: unset). With AVX2+FMA
// and AVX-512F both present it times both (a few milliseconds) and takes
// AVX-512 only if it is at least 5% faster.
SearchKernelChoice choose_search_kernel(const char* setting);

// choose_search_kernel(getenv(kSearchKernelsEnv)), made once per process.
const SearchKernelChoice& search_kernel();

// The inner product and squared L2 distance of two float vectors of d dims
// of search_kernel().
DistanceFunction inner_product_function();
DistanceFunction l2sqr_function();

// The visited marks of an HNSW walk: one bit a vector (128 KB at a million,
// which stays in a core's L2 cache), cleared for each query. FAISS's
// VisitedTable takes a byte a vector (1 MB), and IndexHNSW::search allocates
// and clears one per call.
class VisitedBits {
 public:
  void reset(int64_t ntotal);
  bool get(int64_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
  void set(int64_t i) { words_[i >> 6] |= uint64_t(1) << (i & 63); }

 private:
  std::vector<uint64_t> words_;
};

// One VisitedBits kept between searches.
class VisitedCache {
 public:
  VisitedBits& get() { return bits_; }

 private:
  VisitedBits bits_;
};

// Searches n queries of `index` (no id map on top) with a path of its own
// when it knows the index type and the CPU allows, writing k distances and
// positions per query as FAISS's search would (-1 padding); returns false,
// writing nothing, otherwise. ef_search and refine_factor apply as in
// SearchParams. The caller serialises calls that share `visited`; for n > 1
// each thread uses a table of its own.
bool fast_search(const faiss::Index* index, int64_t n, const float* queries, int k,
                 const SearchParams& params, float* distances, int64_t* labels,
                 VisitedCache& visited);

// The refine stage of an IndexRefine, shared by our path and FAISS's
// (index_store.cpp): how many candidates the base passes on, k x the factor
// (refine_factor when above 0, else the index's k_factor), at least k...
int64_t refine_candidates(int k, float refine_factor, float k_factor);
// ...and the best k of them by their exact distances, kept as FAISS's
// IndexRefine keeps them (reorder_2_heaps), nearest first. base_distances
// holds the exact distances of base_labels (-1 past the end of the list).
void keep_refined(bool inner_product, int k, int64_t k_base, const int64_t* base_labels,
                  const float* base_distances, float* distances, int64_t* labels);

// Gives the HNSW graph of `index` (under an id map, a refine stage or a
// transform) flat storage whose distance computer uses the AVX2+FMA
// distances, so that FAISS's own HNSW build (add) and search use them too;
// the vectors are moved, not copied, and the file FAISS writes is the same.
// Does nothing without AVX2 and FMA, with VISUALSEARCH_SEARCH_KERNELS=faiss,
// or for other types.
void use_simd_storage(faiss::Index* index);

// Why fast_search would decline this index, or "" when it would not: for the
// debug log.
const char* fast_search_declines(const faiss::Index* index);

}  // namespace vs
