// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/index_store.h"

#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPQFastScan.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <utility>

#include "engine/base/atomic_file.h"
#include "engine/base/error.h"
#include "engine/index/fast_search.h"
#include "engine/index/index_file.h"

namespace vs {

namespace {

using idx_t = faiss::Index::idx_t;

// FAISS's k-means warns below this many points per centroid.
constexpr int64_t kPointsPerCentroid = 39;

struct TrainingNeeds {
  int64_t minimum = 0;
  int64_t recommended = 0;

  void need_centroids(int64_t k) {
    minimum = std::max(minimum, k);
    recommended = std::max(recommended, k * kPointsPerCentroid);
  }
};

// k-means needs at least as many points as centroids: nlist for an inverted
// file, 2^nbits per sub-quantizer for PQ and OPQ. Walks the wrappers
// index_factory builds.
void add_training_needs(const faiss::Index* index, TrainingNeeds& needs) {
  if (const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index)) {
    add_training_needs(map->index, needs);
  } else if (const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
    for (const faiss::VectorTransform* vt : pre->chain) {
      if (const auto* opq = dynamic_cast<const faiss::OPQMatrix*>(vt))
        // OPQMatrix trains an 8-bit PQ of its own unless handed one.
        needs.need_centroids(opq->pq ? opq->pq->ksub : 256);
      else if (!vt->is_trained)
        needs.need_centroids(1);
    }
    add_training_needs(pre->index, needs);
  } else if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
    needs.need_centroids(ivf->nlist);
    if (const auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(index))
      needs.need_centroids(ivfpq->pq.ksub);
    else if (const auto* fast = dynamic_cast<const faiss::IndexIVFPQFastScan*>(index))
      needs.need_centroids(fast->pq.ksub);
  } else if (const auto* pq = dynamic_cast<const faiss::IndexPQ*>(index)) {
    needs.need_centroids(pq->pq.ksub);
  } else if (const auto* fast = dynamic_cast<const faiss::IndexPQFastScan*>(index)) {
    needs.need_centroids(fast->pq.ksub);
  } else if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(index)) {
    add_training_needs(hnsw->storage, needs);
  } else if (const auto* refine = dynamic_cast<const faiss::IndexRefine*>(index)) {
    add_training_needs(refine->base_index, needs);
    add_training_needs(refine->refine_index, needs);
  } else if (index && !index->is_trained) {
    needs.need_centroids(1);
  }
}

// Index::train, except that with inner product a PCA in a transform chain
// projects without subtracting the mean. FAISS's PCAMatrix centres the
// vectors (x - mean), and the inner products of what is left do not rank
// neighbours as those of the vectors did: <q - m, x - m> differs from <q, x>
// by <q + x, m>, which depends on x. On embeddings that crowd into a narrow
// cone, as a ResNet's do, that leaves recall@10 near 0.01 (docs/SCALING.md).
// The projection onto the same principal directions without the centring
// keeps <Aq, Ax> close to <q, x>. The file is FAISS's own (b = 0 in the
// transform), so Python faiss searches it the same way.
void train_index(faiss::Index* index, int64_t n, const float* x) {
  if (index->metric_type != faiss::METRIC_INNER_PRODUCT) {
    index->train(n, x);
    return;
  }
  if (auto* map = dynamic_cast<faiss::IndexIDMap*>(index)) {
    train_index(map->index, n, x);
    map->is_trained = map->index->is_trained;
  } else if (auto* refine = dynamic_cast<faiss::IndexRefine*>(index)) {
    train_index(refine->base_index, n, x);
    refine->refine_index->train(n, x);
    refine->is_trained = true;
  } else if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index)) {
    const float* current = x;
    std::unique_ptr<float[]> owned;
    for (faiss::VectorTransform* vt : pre->chain) {
      if (!vt->is_trained) vt->train(n, current);
      if (auto* pca = dynamic_cast<faiss::PCAMatrix*>(vt)) {
        std::fill(pca->mean.begin(), pca->mean.end(), 0.0f);
        pca->prepare_Ab();
      }
      std::unique_ptr<float[]> next(vt->apply(n, current));
      owned = std::move(next);
      current = owned.get();
    }
    train_index(pre->index, n, current);
    pre->is_trained = true;
  } else {
    index->train(n, x);
  }
}

TrainingNeeds training_needs(const faiss::Index* index) {
  TrainingNeeds needs;
  if (!index->is_trained) add_training_needs(index, needs);
  return needs;
}

// Per-call search parameters, so concurrent searches with different nprobe or
// efSearch never touch the shared index. The chain mirrors the index's
// wrappers; a type that takes no parameters gets none (nullptr).
class SearchParameterChain {
 public:
  SearchParameterChain(const faiss::Index* index, const SearchParams& params) {
    top_ = build(index, params);
  }
  const faiss::SearchParameters* get() const { return top_; }

 private:
  faiss::SearchParameters* build(const faiss::Index* index, const SearchParams& params) {
    if (const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
      faiss::SearchParameters* inner = build(pre->index, params);
      if (!inner) return nullptr;
      pre_.index_params = inner;
      return &pre_;
    }
    if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
      ivf_.nprobe = params.nprobe > 0 ? params.nprobe : ivf->nprobe;
      ivf_.max_codes = ivf->max_codes;
      ivf_.quantizer_params = build_hnsw(ivf->quantizer, params);
      return &ivf_;
    }
    return build_hnsw(index, params);
  }

  faiss::SearchParameters* build_hnsw(const faiss::Index* index, const SearchParams& params) {
    const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(index);
    if (!hnsw) return nullptr;
    hnsw_.efSearch = params.ef_search > 0 ? params.ef_search : hnsw->hnsw.efSearch;
    hnsw_.check_relative_distance = hnsw->hnsw.check_relative_distance;
    return &hnsw_;
  }

  faiss::SearchParametersPreTransform pre_;
  faiss::SearchParametersIVF ivf_;
  faiss::SearchParametersHNSW hnsw_;
  faiss::SearchParameters* top_ = nullptr;
};

// The HNSW graph of an index, whether it is the index itself, behind a
// pre-transform, or the coarse quantizer of an inverted file.
faiss::HNSW* find_hnsw(faiss::Index* index) {
  if (auto* map = dynamic_cast<faiss::IndexIDMap*>(index)) return find_hnsw(map->index);
  if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index)) return find_hnsw(pre->index);
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index)) return find_hnsw(ivf->quantizer);
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index)) return &hnsw->hnsw;
  if (auto* refine = dynamic_cast<faiss::IndexRefine*>(index)) return find_hnsw(refine->base_index);
  return nullptr;
}

// FAISS's search of an index with no id map on top, with the per-call
// parameters. FAISS 1.7.3's IndexRefine refuses them: its two stages are
// done here, as IndexRefine::search does them (the base's k x k_factor best,
// their exact distances from the refine index, the best k of those), so that
// nprobe, ef-search and refine-factor reach an index with a refine stage.
void faiss_search(const faiss::Index* index, int64_t n, const float* queries, int k,
                  const SearchParams& params, float* distances, idx_t* labels) {
  const auto* refine = dynamic_cast<const faiss::IndexRefine*>(index);
  if (!refine) {
    SearchParameterChain chain(index, params);
    index->search(n, queries, k, distances, labels, chain.get());
    return;
  }
  const int64_t k_base = refine_candidates(k, params.refine_factor, refine->k_factor);
  std::vector<float> base_distances(n * k_base);
  std::vector<idx_t> base_labels(n * k_base);
  faiss_search(refine->base_index, n, queries, static_cast<int>(k_base), params,
               base_distances.data(), base_labels.data());
  std::unique_ptr<faiss::DistanceComputer> exact(refine->refine_index->get_distance_computer());
  for (int64_t q = 0; q < n; ++q) {
    exact->set_query(queries + q * refine->d);
    const idx_t* candidates = base_labels.data() + q * k_base;
    float* exact_distances = base_distances.data() + q * k_base;
    for (int64_t j = 0; j < k_base && candidates[j] >= 0; ++j)
      exact_distances[j] = (*exact)(candidates[j]);
    keep_refined(refine->metric_type == faiss::METRIC_INNER_PRODUCT, k, k_base, candidates,
                 exact_distances, distances + q * k, labels + q * k);
  }
}

// Whether remove_ids renumbers the remaining vectors 0..n-1 in order, as
// IndexIDMap2::remove_ids assumes of the index it wraps. An inverted file
// keeps its ids, HNSW cannot remove at all.
bool compacts_on_removal(const faiss::Index* index) {
  if (const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index))
    return compacts_on_removal(pre->index);
  return dynamic_cast<const faiss::IndexFlatCodes*>(index) != nullptr;
}

// The most queries one FAISS search call takes while giving each exactly the
// hits it gets alone. A transform multiplies all the queries of a call at
// once; an IndexPQ's distance tables use BLAS for sub-vectors of 16
// dimensions or more (ProductQuantizer::compute_distance_tables); flat
// distances (Flat, an IVF's coarse quantizer) from
// faiss::distance_compute_blas_threshold queries on. The rounding of a
// matrix product differs from that of one query's.
int64_t exact_batch_size(const faiss::Index* index) {
  if (const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index))
    return exact_batch_size(map->index);
  if (dynamic_cast<const faiss::IndexPreTransform*>(index)) return 1;
  if (const auto* pq = dynamic_cast<const faiss::IndexPQ*>(index))
    if (pq->pq.dsub >= 16) return 1;
  return std::max(1, faiss::distance_compute_blas_threshold - 1);
}

// The stored vectors of a Flat index, copied or mapped; nullptr otherwise.
const float* flat_vectors(const faiss::Index* index) {
  if (const auto* flat = dynamic_cast<const faiss::IndexFlat*>(index)) return flat->get_xb();
  return mapped_flat_vectors(index);
}

// FAISS's search of a few queries over flat vectors (knn_inner_product and
// knn_L2sqr below faiss::distance_compute_blas_threshold queries and
// distance_compute_min_k_reservoir neighbours: the same distance function
// and heap, fed the vectors in the same order), with the vectors read in
// blocks that stay in cache while every query of the batch goes over them,
// instead of once per query from memory. The hits are exactly FAISS's.
template <class C, float (*distance)(const float*, const float*, size_t)>
void blocked_flat_search(const float* xb, int64_t nb, int64_t d, const float* x, int64_t n, int k,
                         float* D, idx_t* I) {
  for (int64_t q = 0; q < n; ++q) faiss::heap_heapify<C>(k, D + q * k, I + q * k);
  const int64_t block = std::max<int64_t>(1, (int64_t(256) << 10) / (d * sizeof(float)));
  // Each thread takes a share of the queries through every block: one
  // parallel region per batch, not one per block, whose barriers cost a lot
  // on a busy machine.
#pragma omp parallel if (n > 1)
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const int64_t q0 = n * thread / threads, q1 = n * (thread + 1) / threads;
    for (int64_t j0 = 0; j0 < nb; j0 += block) {
      const int64_t j1 = std::min(nb, j0 + block);
      for (int64_t q = q0; q < q1; ++q) {
        float* heap_dis = D + q * k;
        idx_t* heap_ids = I + q * k;
        for (int64_t j = j0; j < j1; ++j) {
          const float dis = distance(x + q * d, xb + j * d, d);
          if (C::cmp(heap_dis[0], dis)) faiss::heap_replace_top<C>(k, heap_dis, heap_ids, dis, j);
        }
      }
    }
  }
  for (int64_t q = 0; q < n; ++q) faiss::heap_reorder<C>(k, D + q * k, I + q * k);
}

// FAISS's labels and distances as hits: positions turned into the ids of an
// id map as IndexIDMap would, FAISS's -1 padding dropped.
std::vector<std::vector<Hit>> to_hits(const faiss::IndexIDMap* map, int64_t n, int k,
                                      std::vector<idx_t>& labels,
                                      const std::vector<float>& distances) {
  std::vector<std::vector<Hit>> results(n);
  if (map)
    for (idx_t& label : labels)
      if (label >= 0) label = map->id_map[label];
  for (int64_t q = 0; q < n; ++q) {
    for (int j = 0; j < k; ++j) {
      idx_t id = labels[q * k + j];
      if (id < 0) continue;
      results[q].push_back(Hit{id, distances[q * k + j]});
    }
  }
  return results;
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

void add_to_digest(IndexDigest& digest, const void* data, size_t bytes) {
  digest.crc32 = ::crc32_z(digest.crc32, static_cast<const Bytef*>(data), bytes);
  digest.bytes += static_cast<int64_t>(bytes);
}

// FAISS's own file reader and writer, plus the digest of every byte that
// passes, so neither side reads the file twice.
class DigestingWriter : public faiss::IOWriter {
 public:
  DigestingWriter(std::FILE* file, const std::string& path) : file_(file) { name = path; }

  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    const size_t n = std::fwrite(ptr, size, nitems, file_);
    add_to_digest(digest_, ptr, n * size);
    return n;
  }

  const IndexDigest& digest() const { return digest_; }

 private:
  std::FILE* file_;
  IndexDigest digest_;
};

}  // namespace

std::string IndexDigest::describe() const {
  char text[64];
  std::snprintf(text, sizeof text, "%" PRId64 " bytes, CRC-32 %08" PRIx32, bytes, crc32);
  return text;
}

const char* metric_name(Metric metric) { return metric == Metric::InnerProduct ? "ip" : "l2"; }

Metric metric_from_name(const std::string& name) {
  if (name == "ip") return Metric::InnerProduct;
  if (name == "l2") return Metric::L2;
  throw Error(ErrorKind::Settings,
              "Unknown metric \"" + name + "\": use \"ip\" (inner product) or \"l2\".");
}

IndexStore::IndexStore(std::unique_ptr<faiss::Index> index, std::string description)
    : index_(std::move(index)),
      description_(std::move(description)),
      hnsw_mutex_(std::make_unique<std::mutex>()) {}
IndexStore::~IndexStore() = default;
IndexStore::IndexStore(IndexStore&&) noexcept = default;
IndexStore& IndexStore::operator=(IndexStore&&) noexcept = default;

IndexStore IndexStore::create(const std::string& index_type, int dims, Metric metric,
                              int ef_construction, float refine_factor) {
  if (dims <= 0)
    throw Error(ErrorKind::Settings,
                "Cannot create a FAISS index with " + std::to_string(dims) + " dimensions.");
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::index_factory(
        dims, index_type.c_str(),
        metric == Metric::InnerProduct ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2));
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorKind::Settings,
                "FAISS does not understand the index type \"" + index_type + "\" for " +
                    std::to_string(dims) + "-dimensional vectors (" + e.msg +
                    "); use an index_factory string such as Flat, IVF256,Flat, IVF256,PQ16 "
                    "or HNSW32.");
  }
  // A direct map keeps reconstruct() working for inverted files (Python
  // faiss gets it too, it is stored in the file).
  if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get()))
    ivf->set_direct_map_type(faiss::DirectMap::Array);
  if (ef_construction > 0)
    if (faiss::HNSW* hnsw = find_hnsw(index.get())) hnsw->efConstruction = ef_construction;
  if (refine_factor > 0) {
    faiss::Index* top = index.get();
    if (auto* map = dynamic_cast<faiss::IndexIDMap*>(top)) top = map->index;
    if (auto* refine = dynamic_cast<faiss::IndexRefine*>(top)) refine->k_factor = refine_factor;
  }
  use_simd_storage(index.get());
  return IndexStore(std::move(index), index_type);
}

IndexStore IndexStore::load(const std::string& path, IndexLoadMode mode) {
  // Checked before FAISS reads the same bytes (index_file.h); the digest that
  // binds the catalog is of those bytes too.
  IndexFile file = read_index_file(path, mode);
  if (file.index->metric_type != faiss::METRIC_INNER_PRODUCT &&
      file.index->metric_type != faiss::METRIC_L2)
    throw Error(
        ErrorKind::Format,
        "The FAISS index " + path +
            " uses a metric other than inner product or L2, which visualsearch does not support.");
  use_simd_storage(file.index.get());
  std::string huge_pages;
  use_huge_pages(file.index.get(), &huge_pages);
  IndexStore store(std::move(file.index), path);
  store.file_digest_ = IndexDigest{file.bytes, file.crc32};
  store.mapped_ = file.mapped;
  store.huge_pages_ = huge_pages;
  return store;
}

std::string IndexStore::search_path() const {
  const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index_.get());
  const char* declined = fast_search_declines(map ? map->index : index_.get());
  if (!*declined)
    return std::string("searched by visualsearch's HNSW path with ") + search_kernel().kernel.name +
           " distances (" + search_kernel().why + ")" +
           (huge_pages_.empty() ? "" : "; " + huge_pages_);
  return std::string("searched by FAISS's own search (") + declined + ")";
}

int IndexStore::dims() const { return index_->d; }

int64_t IndexStore::size() const { return index_->ntotal; }

Metric IndexStore::metric() const {
  return index_->metric_type == faiss::METRIC_INNER_PRODUCT ? Metric::InnerProduct : Metric::L2;
}

bool IndexStore::needs_training() const { return !index_->is_trained; }

int64_t IndexStore::min_training_vectors() const { return training_needs(index_.get()).minimum; }

int64_t IndexStore::recommended_training_vectors() const {
  return training_needs(index_.get()).recommended;
}

void IndexStore::train(const float* vectors, int64_t n) {
  int64_t minimum = min_training_vectors();
  if (n < minimum)
    throw Error(ErrorKind::Settings,
                "The index type \"" + description_ + "\" needs at least " +
                    std::to_string(minimum) + " training vectors, but only " + std::to_string(n) +
                    " were given. Index more images, or choose a type with fewer lists or "
                    "centroids (e.g. a smaller IVF count, or Flat).");
  try {
    train_index(index_.get(), n, vectors);
  } catch (const faiss::FaissException& e) {
    throw Error("Training the \"" + description_ + "\" index on " + std::to_string(n) +
                " vectors failed: " + e.msg);
  }
}

void IndexStore::add(const float* vectors, int64_t n) {
  if (!index_->is_trained)
    throw Error("The \"" + description_ + "\" index must be trained before vectors are added.");
  try {
    index_->add(n, vectors);
  } catch (const faiss::FaissException& e) {
    throw Error("Adding " + std::to_string(n) + " vectors to the \"" + description_ +
                "\" index failed: " + e.msg);
  }
}

bool IndexStore::has_id_map() const {
  return dynamic_cast<const faiss::IndexIDMap2*>(index_.get()) != nullptr;
}

void IndexStore::add_with_ids(const float* vectors, int64_t n, const int64_t* ids) {
  if (!index_->is_trained)
    throw Error("The \"" + description_ + "\" index must be trained before vectors are added.");
  try {
    index_->add_with_ids(n, vectors, ids);
  } catch (const faiss::FaissException& e) {
    throw Error("Adding " + std::to_string(n) + " vectors to the \"" + description_ +
                "\" index failed: " + e.msg);
  }
}

void IndexStore::remove_ids(const std::vector<int64_t>& ids) {
  if (ids.empty()) return;
  auto* map = dynamic_cast<faiss::IndexIDMap2*>(index_.get());
  if (!map)
    throw Error(ErrorKind::Format,
                "The \"" + description_ +
                    "\" index has no id map, so vectors cannot be "
                    "removed from it; rebuild it (galleryindexer mode=rebuild).");
  const std::vector<idx_t> keys(ids.begin(), ids.end());
  faiss::IDSelectorBatch removed(keys.size(), keys.data());
  try {
    if (compacts_on_removal(map->index)) {
      map->remove_ids(removed);
      return;
    }
    std::vector<idx_t> kept_ids;
    std::vector<float> kept;
    for (idx_t key : map->id_map) {
      if (removed.is_member(key)) continue;
      kept_ids.push_back(key);
      kept.resize(kept.size() + map->d);
      map->reconstruct(key, kept.data() + kept.size() - map->d);
    }
    map->reset();  // keeps the training
    map->add_with_ids(static_cast<idx_t>(kept_ids.size()), kept.data(), kept_ids.data());
  } catch (const faiss::FaissException& e) {
    throw Error("Removing " + std::to_string(ids.size()) + " vectors from the \"" + description_ +
                "\" index failed: " + e.msg);
  }
}

std::vector<std::vector<Hit>> IndexStore::search(const float* queries, int64_t n, int k,
                                                 const SearchParams& params) const {
  if (n <= 0 || k <= 0 || index_->ntotal == 0) return std::vector<std::vector<Hit>>(n);
  std::vector<float> distances(n * k);
  std::vector<idx_t> labels(n * k);
  // FAISS 1.7.3's IndexIDMap refuses search parameters: search the index it
  // wraps and translate the positions to ids as IndexIDMap would.
  const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index_.get());
  const faiss::Index* searched = map ? map->index : index_.get();
  try {
    // FAISS 1.7.3 sizes HNSW's candidate queue from the graph's own efSearch,
    // not the per-call one, so a larger ef-search would only partly apply.
    // Set it on the graph for the call, under a lock every search of this
    // store takes while the index has a graph (which also guards visited_).
    faiss::HNSW* hnsw = find_hnsw(index_.get());
    if (!hnsw) {
      faiss_search(searched, n, queries, k, params, distances.data(), labels.data());
      return to_hits(map, n, k, labels, distances);
    }
    std::lock_guard<std::mutex> lock(*hnsw_mutex_);
    struct RestoreEf {
      faiss::HNSW* hnsw;
      int ef;
      ~RestoreEf() { hnsw->efSearch = ef; }
    } restore{hnsw, hnsw->efSearch};
    if (params.ef_search > 0) hnsw->efSearch = params.ef_search;
    if (!visited_) visited_ = std::make_unique<VisitedCache>();
    if (!fast_search(searched, n, queries, k, params, distances.data(), labels.data(), *visited_))
      faiss_search(searched, n, queries, k, params, distances.data(), labels.data());
  } catch (const faiss::FaissException& e) {
    throw Error("Searching the \"" + description_ + "\" index failed: " + e.msg);
  }
  return to_hits(map, n, k, labels, distances);
}

std::vector<std::vector<Hit>> IndexStore::search_batch(const float* queries, int64_t n, int k,
                                                       const SearchParams& params) const {
  const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index_.get());
  const faiss::Index* searched = map ? map->index : index_.get();
  const float* xb = flat_vectors(searched);
  if (!xb || k >= faiss::distance_compute_min_k_reservoir || n <= 1 || size() == 0) {
    std::vector<std::vector<Hit>> results;
    const int64_t step = exact_batch_size(index_.get());
    for (int64_t first = 0; first < n; first += step) {
      std::vector<std::vector<Hit>> part =
          search(queries + first * dims(), std::min(step, n - first), k, params);
      std::move(part.begin(), part.end(), std::back_inserter(results));
    }
    results.resize(n);
    return results;
  }
  std::vector<float> distances(n * k);
  std::vector<idx_t> labels(n * k);
  if (searched->metric_type == faiss::METRIC_INNER_PRODUCT)
    blocked_flat_search<faiss::CMin<float, idx_t>, faiss::fvec_inner_product>(
        xb, searched->ntotal, searched->d, queries, n, k, distances.data(), labels.data());
  else
    blocked_flat_search<faiss::CMax<float, idx_t>, faiss::fvec_L2sqr>(
        xb, searched->ntotal, searched->d, queries, n, k, distances.data(), labels.data());
  return to_hits(map, n, k, labels, distances);
}

std::vector<std::vector<Hit>> IndexStore::range_search(const float* queries, int64_t n,
                                                       float radius) const {
  std::vector<std::vector<Hit>> results(n);
  if (n <= 0 || index_->ntotal == 0) return results;
  const auto* map = dynamic_cast<const faiss::IndexIDMap*>(index_.get());
  const faiss::Index* searched = map ? map->index : index_.get();
  faiss::RangeSearchResult found(n);
  try {
    try {
      searched->range_search(n, queries, radius, &found);
    } catch (const faiss::FaissException&) {
      // Not implemented for this type: exact, over what it stores.
      std::vector<float> stored(static_cast<size_t>(searched->ntotal) * searched->d);
      searched->reconstruct_n(0, searched->ntotal, stored.data());
      faiss::IndexFlat flat(searched->d, searched->metric_type);
      flat.add(searched->ntotal, stored.data());
      flat.range_search(n, queries, radius, &found);
    }
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorKind::Failed,
                "Range-searching the \"" + description_ + "\" index failed: " + e.msg);
  }
  const bool similarity = index_->metric_type == faiss::METRIC_INNER_PRODUCT;
  for (int64_t q = 0; q < n; ++q) {
    for (size_t j = found.lims[q]; j < found.lims[q + 1]; ++j) {
      const idx_t position = found.labels[j];
      results[q].push_back(Hit{map ? map->id_map[position] : position, found.distances[j]});
    }
    std::sort(results[q].begin(), results[q].end(), [similarity](const Hit& a, const Hit& b) {
      return similarity ? a.distance > b.distance : a.distance < b.distance;
    });
  }
  return results;
}

std::vector<float> IndexStore::reconstruct(int64_t id) const {
  if (id < 0 || (!has_id_map() && id >= index_->ntotal))
    throw Error("Index id " + std::to_string(id) + " is out of range: the \"" + description_ +
                "\" index holds " + std::to_string(index_->ntotal) + " vectors.");
  std::vector<float> vector(index_->d);
  try {
    index_->reconstruct(id, vector.data());
  } catch (const faiss::FaissException& e) {
    throw Error("The \"" + description_ + "\" index cannot give back stored vectors: " + e.msg);
  }
  return vector;
}

IndexDigest IndexStore::write(const std::string& path) const {
  File file(std::fopen(path.c_str(), "wb"));
  if (!file)
    throw Error(ErrorKind::Write,
                "Cannot create the FAISS index " + path + ": " + std::strerror(errno) + ".");
  DigestingWriter writer(file.get(), path);
  try {
    faiss::write_index(index_.get(), &writer);
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorKind::Write, "Cannot write the FAISS index to " + path + ": " + e.msg);
  }
  // fclose flushes: a full disk may only show here.
  if (std::fclose(file.release()) != 0)
    throw Error(ErrorKind::Write,
                "Cannot write the FAISS index to " + path + ": " + std::strerror(errno) + ".");
  return writer.digest();
}

void IndexStore::save_atomically(const std::string& path) const {
  replace_file_atomically(path, [this](const std::string& tmp) { write(tmp); });
}

}  // namespace vs
