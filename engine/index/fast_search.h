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

// FAISS's own distances of `query` to n rows of `vectors` (d floats a row,
// rows[j] the row of out[j]), each equal to the last bit to what
// faiss::fvec_inner_product or faiss::fvec_L2sqr returns: Debian's 1.7.3
// sums one dimension after the other in single precision, a chain of
// additions each waiting on the last; here eight rows are summed side by
// side, each in that order, so eight chains run at once. When FAISS's
// functions give other bits (a build with SIMD distances), checked once per
// process on vectors whose sums depend on the order, FAISS's functions are
// called instead.
void faiss_distances(bool inner_product, const float* query, const float* vectors, size_t d,
                     const int64_t* rows, int64_t n, float* out);

// Whether faiss_distances sums side by side (true) or calls FAISS (false).
bool faiss_distances_side_by_side();

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

// The candidate queue of FAISS's HNSW walk: HNSW::MinimaxHeap of FAISS 1.7.3
// as Debian builds it (push, then pop_min and count_below as scalar scans
// over the whole queue, ef_search long, at every step of the walk), with
// the two scans done 16 (AVX-512F) or 8 (AVX2) lanes at a time. Every call
// returns what FAISS's returns, ties and FAISS's own quirks included: size()
// is FAISS's nvalid (a push that drops an already popped slot still counts
// it down), count_below counts popped slots too, and pop_min takes the
// highest slot of equal distances. tests/search_kernels.cpp runs both side
// by side.
class CandidateQueue {
 public:
  // n slots; avx512: scan with AVX-512F, else with AVX2 (the caller checks
  // that the CPU has it).
  CandidateQueue(int n, bool avx512);
  void push(int32_t id, float distance);
  int size() const { return nvalid_; }
  // The slot count in use, and what a slot holds (-1: popped).
  int used() const { return k_; }
  int32_t id_at(int i) const { return ids_[i]; }
  float distance_at(int i) const { return distances_[i]; }
  // The id of the nearest unpopped slot, marked popped, its distance in
  // *distance; -1 when none is left.
  int32_t pop_min(float* distance);
  // The id pop_min would return now, left in place; -1 when none is left.
  int32_t peek_min() const;
  // How many of the used slots, popped or not, are nearer than threshold.
  int count_below(float threshold) const;

 private:
  int min_slot() const;
  int n_;
  int k_ = 0;
  int nvalid_ = 0;
  bool avx512_;
  std::vector<int32_t> ids_;
  std::vector<float> distances_;
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

// Environment variable: "0" leaves the pages of a loaded index as they are.
constexpr const char* kHugePagesEnv = "VISUALSEARCH_HUGE_PAGES";

// The walk reads rows and neighbour lists from all over hundreds of
// megabytes (a few thousand a query): with 4 KB pages nearly every read also
// misses the TLB, and its page walk misses the caches too. For an index
// fast_search searches, asks Linux to back the graph's rows, links and
// offsets with 2 MB pages (MADV_HUGEPAGE, then MADV_COLLAPSE, which moves
// them once, now, where the kernel has it: Linux 6.1 and later). The
// re-ranking's rows (20 a query, 2 GB at a million) stay as they are: the
// move would cost seconds at start for little. Returns the bytes now on
// huge pages and, in *why, what was done or why not; never fails.
size_t use_huge_pages(const faiss::Index* index, std::string* why);

// Why fast_search would decline this index, or "" when it would not: for the
// debug log.
const char* fast_search_declines(const faiss::Index* index);

}  // namespace vs
