// SPDX-License-Identifier: LGPL-2.1-or-later
// The walk of a FAISS index file over its bytes, pinned to FAISS 1.7.3's
// reader (faiss/impl/index_read.cpp): see index_file.h.
#include "engine/index/index_file_check.h"

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexRefine.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/ScalarQuantizer.h>
#include <faiss/invlists/DirectMap.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/base/error.h"

namespace vs {
namespace index_check {

namespace {

// index_factory nests at most four deep (IDMap > PreTransform > IVF > HNSW
// quantizer); FAISS's reader recurses without limit.
constexpr int kMaxDepth = 8;
constexpr int64_t kMaxDims = 1 << 20;
// HNSW sizes its candidate queues from the stored efSearch and upper_beam.
constexpr int kMaxQueue = 1 << 16;
constexpr uint64_t kMaxPqBits = 16;
// See index_file.h: with up to 8 bits per PQ code a derived table is at most
// ksub = 256 times the centroids or coarse centroids it is computed from.
constexpr uint64_t kDerivedPerFileByte = 256;
constexpr float kMaxRefineFactor = 1024;
// Rows named in the message about vectors that cannot be compared.
constexpr size_t kBadRowsNamed = 5;

const char kSupported[] =
    "Flat, IVF<n>,Flat, IVF<n>,PQ<m>[np], IVF<n>,SQ<b>, PQ<m>, SQ<b> and HNSW<m> "
    "(over Flat, PQ or SQ storage), behind PCA, OPQ, RR, L2norm or centering "
    "transforms, refined with RFlat, wrapped in IndexIDMap or IndexIDMap2";

// A fault in the file; read_index_bytes adds the file name and the advice.
class Damaged : public std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A well-formed part of a type the checks do not cover.
class Unsupported : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string printable(uint32_t tag) {
  std::string s = "\"";
  for (int i = 0; i < 4; ++i) {
    const char c = char(tag >> (8 * i));
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s + "\"";
}

// FAISS's class for the type tags read_index knows, for messages.
std::string type_name(uint32_t tag) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {fourcc("IxFI"), "IndexFlatIP"},
      {fourcc("IxF2"), "IndexFlatL2"},
      {fourcc("IxFl"), "IndexFlat"},
      {fourcc("IxHE"), "IndexLSH"},
      {fourcc("IxHe"), "IndexLSH"},
      {fourcc("IxPQ"), "IndexPQ (legacy)"},
      {fourcc("IxPo"), "IndexPQ (legacy)"},
      {fourcc("IxPq"), "IndexPQ"},
      {fourcc("IxRQ"), "IndexResidualQuantizer"},
      {fourcc("IxRq"), "IndexResidualQuantizer"},
      {fourcc("IxLS"), "IndexLocalSearchQuantizer"},
      {fourcc("IxPR"), "IndexProductResidualQuantizer"},
      {fourcc("IxPL"), "IndexProductLocalSearchQuantizer"},
      {fourcc("ImRQ"), "ResidualCoarseQuantizer"},
      {fourcc("IvFl"), "IndexIVFFlat (legacy)"},
      {fourcc("IvFL"), "IndexIVFFlat (legacy)"},
      {fourcc("IwFd"), "IndexIVFFlatDedup"},
      {fourcc("IwFl"), "IndexIVFFlat"},
      {fourcc("IxSQ"), "IndexScalarQuantizer"},
      {fourcc("IxLa"), "IndexLattice"},
      {fourcc("IvSQ"), "IndexIVFScalarQuantizer (legacy)"},
      {fourcc("IwSQ"), "IndexIVFScalarQuantizer"},
      {fourcc("IwSq"), "IndexIVFScalarQuantizer"},
      {fourcc("IwLS"), "IndexIVFLocalSearchQuantizer"},
      {fourcc("IwRQ"), "IndexIVFResidualQuantizer"},
      {fourcc("IwSh"), "IndexIVFSpectralHash"},
      {fourcc("IvPQ"), "IndexIVFPQ (legacy)"},
      {fourcc("IvQR"), "IndexIVFPQR (legacy)"},
      {fourcc("IwPQ"), "IndexIVFPQ"},
      {fourcc("IwQR"), "IndexIVFPQR"},
      {fourcc("IxPT"), "IndexPreTransform"},
      {fourcc("Imiq"), "MultiIndexQuantizer"},
      {fourcc("IxRF"), "IndexRefine"},
      {fourcc("IxMp"), "IndexIDMap"},
      {fourcc("IxM2"), "IndexIDMap2"},
      {fourcc("Ix2L"), "Index2Layer"},
      {fourcc("IHNf"), "IndexHNSWFlat"},
      {fourcc("IHNp"), "IndexHNSWPQ"},
      {fourcc("IHNs"), "IndexHNSWSQ"},
      {fourcc("IHN2"), "IndexHNSW2Level"},
      {fourcc("INSf"), "IndexNSGFlat"},
      {fourcc("INSp"), "IndexNSGPQ"},
      {fourcc("INSs"), "IndexNSGSQ"},
      {fourcc("INNf"), "IndexNNDescentFlat"},
      {fourcc("IPfs"), "IndexPQFastScan"},
      {fourcc("IwPf"), "IndexIVFPQFastScan"},
      {fourcc("IRMf"), "IndexRowwiseMinMax"},
      {fourcc("IRMh"), "IndexRowwiseMinMaxFP16"},
      {fourcc("ILfs"), "IndexLocalSearchQuantizerFastScan"},
      {fourcc("IRfs"), "IndexResidualQuantizerFastScan"},
      {fourcc("PCAm"), "PCAMatrix"},
      {fourcc("PcAm"), "PCAMatrix"},
      {fourcc("Pcam"), "PCAMatrix"},
      {fourcc("rrot"), "RandomRotationMatrix"},
      {fourcc("LTra"), "LinearTransform (OPQ)"},
      {fourcc("Viqm"), "ITQMatrix"},
      {fourcc("Viqt"), "ITQTransform"},
      {fourcc("RmDT"), "RemapDimensionsTransform"},
      {fourcc("VNrm"), "NormalizationTransform"},
      {fourcc("VCnt"), "CenteringTransform"},
      {fourcc("ilar"), "ArrayInvertedLists"},
      {fourcc("ilod"), "OnDiskInvertedLists"},
      {fourcc("il00"), "no inverted lists"},
  };
  for (const auto& [known, name] : kNames) {
    if (known == tag) return std::string(name) + " (" + printable(tag) + ")";
  }
  return {};
}

std::string metric_label(int32_t metric) {
  if (metric == faiss::METRIC_INNER_PRODUCT) return "inner product";
  if (metric == faiss::METRIC_L2) return "L2";
  return "FAISS " + std::to_string(metric);
}

uint64_t times(uint64_t a, uint64_t b) {
  uint64_t product;
  if (__builtin_mul_overflow(a, b, &product))
    throw Damaged("declared sizes " + std::to_string(a) + " x " + std::to_string(b) + " overflow");
  return product;
}

uint64_t plus(uint64_t a, uint64_t b) {
  uint64_t sum;
  if (__builtin_add_overflow(a, b, &sum))
    throw Damaged("declared sizes " + std::to_string(a) + " + " + std::to_string(b) + " overflow");
  return sum;
}

struct Sq {
  uint64_t d, code_size;
};

struct Transform {
  int64_t d_in, d_out;
  bool is_trained;
};

// A direct map's hash table, as write_direct_map() stores it.
struct MapEntry {
  idx_t id, lo;
};

struct InvertedLists {
  std::vector<Stored<idx_t>> ids;  // one per list
};

// Walks the bytes the way faiss::read_index will read them (faiss 1.7.3
// impl/index_read.cpp), field types taken from FAISS's own declarations.
class IndexFileWalk {
 public:
  IndexFileWalk(const uint8_t* data, size_t size, const Done& done)
      : data_(data), size_(size), done_(done) {}

  void run() {
    root_ = index(0);
    if (pos_ != size_)
      throw Damaged("the index ends at byte " + std::to_string(pos_) + " but the file has " +
                    std::to_string(size_ - pos_) + " more bytes after it");
    if (bad_rows_ > 0) {
      std::string named;
      for (const std::string& row : bad_rows_named_) named += (named.empty() ? "" : ", ") + row;
      if (bad_rows_ > bad_rows_named_.size())
        named += " and " + std::to_string(bad_rows_ - bad_rows_named_.size()) + " more";
      throw Damaged(std::to_string(bad_rows_) + " of its stored vectors " +
                    (bad_rows_ == 1 ? "holds" : "hold") +
                    " values that are not finite, or so large that their squared length "
                    "overflows a float, so distances to them are NaN, infinite or first for "
                    "every query: " +
                    named);
    }
  }

  // What IndexLoadMode::Map needs, once run() has passed.
  const Node& root() const { return root_; }
  // The last flat index's vectors, and the last id map's ids: those of the
  // root's when it is Flat or an id map over Flat.
  const Stored<float>& flat_vectors() const { return flat_vectors_; }
  const Stored<idx_t>& id_map_ids() const { return id_map_ids_; }
  uint32_t root_inner_type() const { return root_inner_type_; }
  void refine_layout(IndexLayout& layout) const {
    layout.refine_base_begin = refine_base_begin_;
    layout.refine_base_end = refine_base_end_;
    layout.refined = refined_;
    layout.refine_k_factor = refine_k_factor_;
  }
  bool has_inverted_lists() const { return has_inverted_lists_; }

 private:
  uint64_t remaining() const { return size_ - pos_; }

  template <class T>
  T read(const char* what) {
    if (remaining() < sizeof(T))
      throw Damaged("the file ends at byte " + std::to_string(size_) + ", inside the " + what +
                    " that starts at byte " + std::to_string(pos_) + " (it is truncated)");
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  // bool and enum fields hold values the C++ types cannot take from raw bytes.
  bool read_bool(const char* what) {
    const uint8_t value = read<uint8_t>(what);
    if (value > 1)
      throw Damaged("the " + std::string(what) + " at byte " + std::to_string(pos_ - 1) + " is " +
                    std::to_string(value) + ", not 0 or 1");
    return value == 1;
  }

  template <class Enum>
  int32_t read_enum(const char* what) {
    static_assert(sizeof(Enum) == sizeof(int32_t), "FAISS enums are stored as 4 bytes");
    return read<int32_t>(what);
  }

  void skip(uint64_t bytes, const char* what) {
    if (bytes > remaining())
      throw Damaged("the " + std::string(what) + " at byte " + std::to_string(pos_) + " needs " +
                    std::to_string(bytes) + " bytes but only " + std::to_string(remaining()) +
                    " remain in the file");
    pos_ += bytes;
  }

  // READVECTOR: a size_t count, then the elements, which FAISS allocates
  // before reading them.
  template <class T>
  Stored<T> read_vector(const char* what) {
    const size_t at = pos_;
    const uint64_t n = read<uint64_t>(what);
    if (n > remaining() / sizeof(T))
      throw Damaged("the " + std::string(what) + " at byte " + std::to_string(at) + " declares " +
                    std::to_string(n) + " entries of " + std::to_string(sizeof(T)) +
                    " bytes but only " + std::to_string(remaining()) + " bytes remain in the file");
    Stored<T> stored{data_ + pos_, n};
    pos_ += n * sizeof(T);
    return stored;
  }

  void derived_table(uint64_t bytes, const char* what) {
    if (bytes / kDerivedPerFileByte > size_)
      throw Unsupported("loading it would build a " + std::string(what) + " of " +
                        std::to_string(bytes >> 20) + " MB from a file of " +
                        std::to_string(size_) + " bytes (PQ codes of more than 8 bits)");
  }

  Node header(uint32_t type) {
    Node node{type, 0, 0, false, 0, Pq{}};
    node.d = read<decltype(faiss::Index::d)>("dimension");
    node.ntotal = read<decltype(faiss::Index::ntotal)>("vector count");
    read<idx_t>("header");
    read<idx_t>("header");
    node.is_trained = read_bool("trained flag");
    node.metric = read_enum<faiss::MetricType>("metric");
    const std::string what = type_name(type);
    if (node.d < 1 || node.d > kMaxDims)
      throw Damaged(what + " declares " + std::to_string(node.d) + " dimensions");
    if (node.ntotal < 0)
      throw Damaged(what + " declares " + std::to_string(node.ntotal) + " vectors");
    switch (node.metric) {
      case faiss::METRIC_INNER_PRODUCT:
      case faiss::METRIC_L2: break;
      case faiss::METRIC_L1:
      case faiss::METRIC_Linf:
      case faiss::METRIC_Lp:
      case faiss::METRIC_Canberra:
      case faiss::METRIC_BrayCurtis:
      case faiss::METRIC_JensenShannon:
        read<decltype(faiss::Index::metric_arg)>("metric argument");
        break;
      default:
        throw Damaged(what + " declares metric " + std::to_string(node.metric) +
                      ", which FAISS does not know");
    }
    if (!node.is_trained && node.ntotal > 0)
      throw Damaged(what + " holds " + std::to_string(node.ntotal) +
                    " vectors but says it is untrained");
    return node;
  }

  Node index(int depth) {
    if (depth > kMaxDepth)
      throw Damaged("indexes are nested more than " + std::to_string(kMaxDepth) + " deep");
    const size_t at = pos_;
    const uint32_t type = read<uint32_t>("index type");
    switch (type) {
      case fourcc("IxF2"):
      case fourcc("IxFI"):
      case fourcc("IxFl"): return flat(type);
      case fourcc("IxPq"): return pq_index(type);
      case fourcc("IxSQ"): return sq_index(type);
      case fourcc("IwFl"):
      case fourcc("IwPQ"):
      case fourcc("IwSQ"):
      case fourcc("IwSq"): return ivf(type, depth);
      case fourcc("IHNf"):
      case fourcc("IHNp"):
      case fourcc("IHNs"): return hnsw(type, depth);
      case fourcc("IxPT"): return pretransform(type, depth);
      case fourcc("IxMp"):
      case fourcc("IxM2"): return id_map(type, depth);
      case fourcc("IxRF"): return refine(type, depth);
    }
    throw_unknown(type, at, "index");
  }

  // A type FAISS knows is merely unsupported; any other tag is damage, or
  // the file is not a FAISS index at all.
  [[noreturn]] static void throw_unknown(uint32_t type, size_t at, const char* kind) {
    const std::string name = type_name(type);
    if (name.empty())
      throw Damaged("the " + std::string(kind) + " type at byte " + std::to_string(at) + " is " +
                    printable(type) + ", which FAISS does not know" +
                    (at == 0 ? " (is this a FAISS index file?)" : ""));
    throw Unsupported("it holds " + name + " at byte " + std::to_string(at));
  }

  Node flat(uint32_t type) {
    const Node node = header(type);
    // READXBVECTOR: the count is of 4-byte floats.
    const uint64_t floats = read<uint64_t>("vector data length");
    const uint64_t expected = times(node.ntotal, node.d);
    if (floats != expected)
      throw Damaged("the flat index holds " + std::to_string(node.ntotal) + " vectors of " +
                    std::to_string(node.d) + " dimensions, " + std::to_string(expected) +
                    " floats, but its data declares " + std::to_string(floats) + " floats");
    flat_vectors_ = Stored<float>{data_ + pos_, floats};
    skip(times(floats, sizeof(float)), "flat vector data");
    scan_rows(flat_vectors_.data, node.ntotal, node.d,
              [](uint64_t row) { return "vector " + std::to_string(row); });
    return node;
  }

  Pq product_quantizer() {
    Pq pq;
    pq.d = read<decltype(faiss::ProductQuantizer::d)>("PQ dimension");
    pq.M = read<decltype(faiss::ProductQuantizer::M)>("PQ sub-quantizer count");
    pq.nbits = read<decltype(faiss::ProductQuantizer::nbits)>("PQ bits per code");
    if (pq.M == 0 || pq.d == 0 || pq.d % pq.M != 0)
      throw Damaged("the product quantizer splits " + std::to_string(pq.d) + " dimensions into " +
                    std::to_string(pq.M) + " sub-vectors");
    if (pq.nbits < 1 || pq.nbits > kMaxPqBits)
      throw Damaged("the product quantizer declares " + std::to_string(pq.nbits) +
                    " bits per code");
    pq.ksub = uint64_t(1) << pq.nbits;
    pq.code_size = (pq.nbits * pq.M + 7) / 8;
    // set_derived_values() allocates d * ksub floats before the vector is read.
    const Stored<float> centroids = read_vector<float>("PQ centroids");
    if (centroids.size != times(pq.d, pq.ksub))
      throw Damaged("the product quantizer needs " + std::to_string(pq.d * pq.ksub) +
                    " centroid values but stores " + std::to_string(centroids.size));
    return pq;
  }

  Sq scalar_quantizer(bool trained) {
    const int32_t qtype = read_enum<faiss::ScalarQuantizer::QuantizerType>("SQ type");
    const int32_t rangestat = read_enum<faiss::ScalarQuantizer::RangeStat>("SQ range");
    read<decltype(faiss::ScalarQuantizer::rangestat_arg)>("SQ range argument");
    Sq sq;
    sq.d = read<decltype(faiss::ScalarQuantizer::d)>("SQ dimension");
    sq.code_size = read<decltype(faiss::ScalarQuantizer::code_size)>("SQ code size");
    const Stored<float> stored = read_vector<float>("SQ trained ranges");
    if (qtype < faiss::ScalarQuantizer::QT_8bit || qtype > faiss::ScalarQuantizer::QT_6bit)
      throw Damaged("the scalar quantizer declares type " + std::to_string(qtype));
    if (rangestat < faiss::ScalarQuantizer::RS_minmax ||
        rangestat > faiss::ScalarQuantizer::RS_optim)
      throw Damaged("the scalar quantizer declares range statistic " + std::to_string(rangestat));
    if (sq.d < 1 || sq.d > uint64_t(kMaxDims))
      throw Damaged("the scalar quantizer declares " + std::to_string(sq.d) + " dimensions");
    const faiss::ScalarQuantizer derived(sq.d, faiss::ScalarQuantizer::QuantizerType(qtype));
    if (sq.code_size != derived.code_size)
      throw Damaged("the scalar quantizer stores codes of " + std::to_string(sq.code_size) +
                    " bytes but its type makes them " + std::to_string(derived.code_size));
    // The encoders index the ranges per dimension or take one shared range.
    uint64_t ranges = 0;
    switch (qtype) {
      case faiss::ScalarQuantizer::QT_8bit:
      case faiss::ScalarQuantizer::QT_4bit:
      case faiss::ScalarQuantizer::QT_6bit: ranges = 2 * sq.d; break;
      case faiss::ScalarQuantizer::QT_8bit_uniform:
      case faiss::ScalarQuantizer::QT_4bit_uniform: ranges = 2; break;
    }
    if (trained && stored.size != ranges)
      throw Damaged("the scalar quantizer needs " + std::to_string(ranges) +
                    " trained range values but stores " + std::to_string(stored.size));
    return sq;
  }

  // The codes of an IndexPQ or IndexScalarQuantizer, one per vector.
  void codes(const Node& node, uint64_t quantizer_d, uint64_t code_size, const char* kind) {
    if (quantizer_d != uint64_t(node.d))
      throw Damaged("the " + std::string(kind) + " index has " + std::to_string(node.d) +
                    " dimensions but its quantizer " + std::to_string(quantizer_d));
    const Stored<uint8_t> stored = read_vector<uint8_t>("codes");
    if (stored.size != times(node.ntotal, code_size))
      throw Damaged("the " + std::string(kind) + " index holds " + std::to_string(node.ntotal) +
                    " codes of " + std::to_string(code_size) + " bytes but stores " +
                    std::to_string(stored.size) + " bytes");
  }

  Node pq_index(uint32_t type) {
    Node node = header(type);
    const Pq pq = product_quantizer();
    node.pq = pq;
    codes(node, pq.d, pq.code_size, "PQ");
    const int32_t search_type = read_enum<faiss::IndexPQ::Search_type_t>("PQ search type");
    read_bool("PQ sign encoding flag");
    read<decltype(faiss::IndexPQ::polysemous_ht)>("PQ polysemous threshold");
    if (search_type != faiss::IndexPQ::ST_PQ)
      throw Unsupported("its IndexPQ uses search type " + std::to_string(search_type) +
                        " (only the plain PQ search, ST_PQ, is supported)");
    return node;
  }

  Node sq_index(uint32_t type) {
    const Node node = header(type);
    const Sq sq = scalar_quantizer(node.is_trained);
    codes(node, sq.d, sq.code_size, "SQ");
    return node;
  }

  Node ivf(uint32_t type, int depth) {
    const Node node = header(type);
    const uint64_t nlist = read<decltype(faiss::IndexIVF::nlist)>("IVF list count");
    const uint64_t nprobe = read<decltype(faiss::IndexIVF::nprobe)>("IVF nprobe");
    const Node quantizer = index(depth + 1);
    if (!is_flat(quantizer.type) && quantizer.type != fourcc("IHNf"))
      throw Unsupported("its inverted file has a coarse quantizer of type " +
                        type_name(quantizer.type) + " (Flat or HNSW Flat are supported)");
    if (quantizer.d != node.d)
      throw Damaged("the inverted file has " + std::to_string(node.d) +
                    " dimensions but its coarse quantizer " + std::to_string(quantizer.d));
    if (nlist == 0 || uint64_t(quantizer.ntotal) != nlist)
      throw Damaged("the inverted file has " + std::to_string(nlist) +
                    " lists but its coarse quantizer holds " + std::to_string(quantizer.ntotal) +
                    " centroids");
    if (nprobe == 0) throw Damaged("the inverted file probes 0 lists per search");

    const uint8_t map_type = read<uint8_t>("direct map type");
    const Stored<idx_t> map_array = read_vector<idx_t>("direct map");
    Stored<MapEntry> map_pairs;
    if (map_type == faiss::DirectMap::Hashtable)
      map_pairs = read_vector<MapEntry>("direct map table");
    else if (map_type != faiss::DirectMap::NoMap && map_type != faiss::DirectMap::Array)
      throw Damaged("the inverted file declares direct map type " + std::to_string(map_type));

    uint64_t code_size = times(node.d, sizeof(float));
    if (type == fourcc("IwPQ")) {
      const bool by_residual = read_bool("IVFPQ residual flag");
      code_size = read<decltype(faiss::IndexIVF::code_size)>("IVFPQ code size");
      const Pq pq = product_quantizer();
      if (pq.d != uint64_t(node.d) || code_size != pq.code_size)
        throw Damaged("the IVFPQ index has " + std::to_string(node.d) +
                      " dimensions and codes of " + std::to_string(code_size) +
                      " bytes but its product quantizer " + std::to_string(pq.d) + " and " +
                      std::to_string(pq.code_size));
      // read_ivfpq() precomputes this table for an L2 coarse quantizer,
      // unless it would exceed FAISS's 2 GB limit.
      const uint64_t table = times(times(times(nlist, pq.M), pq.ksub), sizeof(float));
      if (node.is_trained && by_residual && quantizer.metric != faiss::METRIC_INNER_PRODUCT &&
          table <= faiss::precomputed_table_max_bytes)
        derived_table(table, "IVFPQ precomputed table");
    } else if (type == fourcc("IwSQ") || type == fourcc("IwSq")) {
      const Sq sq = scalar_quantizer(node.is_trained);
      code_size = read<decltype(faiss::IndexIVF::code_size)>("IVFSQ code size");
      if (type == fourcc("IwSq")) read_bool("IVFSQ residual flag");
      if (sq.d != uint64_t(node.d) || code_size != sq.code_size)
        throw Damaged("the IVFSQ index has " + std::to_string(node.d) +
                      " dimensions and codes of " + std::to_string(code_size) +
                      " bytes but its scalar quantizer " + std::to_string(sq.d) + " and " +
                      std::to_string(sq.code_size));
    }
    const InvertedLists lists =
        inverted_lists(nlist, code_size, node.ntotal, type == fourcc("IwFl") ? node.d : 0);
    check_direct_map(map_type, map_array, map_pairs, lists, node.ntotal);
    return node;
  }

  // float_dims: the codes are vectors of that many floats (IVF Flat); 0: they
  // are not.
  InvertedLists inverted_lists(uint64_t nlist, uint64_t code_size, int64_t ntotal,
                               uint64_t float_dims) {
    const size_t at = pos_;
    const uint32_t type = read<uint32_t>("inverted lists type");
    if (type != fourcc("ilar")) throw_unknown(type, at, "inverted lists");
    has_inverted_lists_ = true;
    const uint64_t lists_nlist = read<size_t>("inverted lists count");
    const uint64_t lists_code_size = read<size_t>("inverted lists code size");
    if (lists_nlist != nlist || lists_code_size != code_size)
      throw Damaged("the inverted lists declare " + std::to_string(lists_nlist) + " lists of " +
                    std::to_string(lists_code_size) + "-byte codes but the index has " +
                    std::to_string(nlist) + " lists of " + std::to_string(code_size) +
                    "-byte codes");
    // nlist equals the coarse quantizer's centroid count, so it is bounded by
    // the file already.
    std::vector<uint64_t> sizes(nlist, 0);
    const uint32_t list_type = read<uint32_t>("inverted list sizes type");
    if (list_type == fourcc("full")) {
      const Stored<size_t> stored = read_vector<size_t>("inverted list sizes");
      if (stored.size != nlist)
        throw Damaged("the inverted lists store " + std::to_string(stored.size) +
                      " list sizes for " + std::to_string(nlist) + " lists");
      for (uint64_t i = 0; i < nlist; ++i) sizes[i] = stored[i];
    } else if (list_type == fourcc("sprs")) {
      const Stored<size_t> stored = read_vector<size_t>("inverted list sizes");
      if (stored.size % 2 != 0)
        throw Damaged("the sparse inverted list sizes hold an odd number of values");
      for (uint64_t j = 0; j < stored.size; j += 2) {
        if (stored[j] >= nlist)
          throw Damaged("the inverted list sizes name list " + std::to_string(stored[j]) + " of " +
                        std::to_string(nlist));
        sizes[stored[j]] = stored[j + 1];
      }
    } else {
      throw Damaged("the inverted list sizes are stored as " + printable(list_type));
    }
    // FAISS allocates every list before reading any of them.
    uint64_t total = 0;
    for (uint64_t n : sizes) total = plus(total, n);
    if (total != uint64_t(ntotal))
      throw Damaged("the inverted lists hold " + std::to_string(total) +
                    " entries but the index holds " + std::to_string(ntotal) + " vectors");
    const uint64_t bytes = times(total, plus(code_size, sizeof(idx_t)));
    if (bytes > remaining())
      throw Damaged("the inverted lists need " + std::to_string(bytes) + " bytes but only " +
                    std::to_string(remaining()) + " remain in the file");

    InvertedLists lists;
    lists.ids.resize(nlist);
    std::vector<bool> seen(ntotal, false);
    for (uint64_t i = 0; i < nlist; ++i) {
      if (sizes[i] == 0) continue;
      const uint8_t* codes = data_ + pos_;
      skip(sizes[i] * code_size, "inverted list codes");
      lists.ids[i] = Stored<idx_t>{data_ + pos_, sizes[i]};
      skip(sizes[i] * sizeof(idx_t), "inverted list ids");
      if (float_dims > 0)
        scan_rows(codes, sizes[i], float_dims,
                  [&, i](uint64_t j) { return "id " + std::to_string(lists.ids[i][j]); });
      for (uint64_t j = 0; j < sizes[i]; ++j) {
        const idx_t id = lists.ids[i][j];
        if (id < 0 || id >= ntotal)
          throw Damaged("entry " + std::to_string(j) + " of inverted list " + std::to_string(i) +
                        " has id " + std::to_string(id) + " but the index holds " +
                        std::to_string(ntotal) + " vectors");
        if (seen[id])
          throw Damaged("id " + std::to_string(id) + " appears twice in the inverted lists");
        seen[id] = true;
      }
    }
    return lists;
  }

  // reconstruct() follows the direct map to (list, offset) without checking.
  static void check_direct_map(uint8_t type, const Stored<idx_t>& array,
                               const Stored<MapEntry>& pairs, const InvertedLists& lists,
                               int64_t ntotal) {
    auto check = [&](idx_t id, idx_t lo) {
      const uint64_t list = faiss::lo_listno(lo);
      const uint64_t offset = faiss::lo_offset(lo);
      if (lo < 0 || list >= lists.ids.size() || offset >= lists.ids[list].size ||
          lists.ids[list][offset] != id)
        throw Damaged("the direct map sends id " + std::to_string(id) + " to entry " +
                      std::to_string(offset) + " of list " + std::to_string(list) +
                      ", which does not hold it");
    };
    const uint64_t expected_array = type == faiss::DirectMap::Array ? ntotal : 0;
    const uint64_t expected_pairs = type == faiss::DirectMap::Hashtable ? ntotal : 0;
    if (array.size != expected_array || pairs.size != expected_pairs)
      throw Damaged("the direct map holds " + std::to_string(array.size + pairs.size) +
                    " entries for " + std::to_string(ntotal) + " vectors");
    for (uint64_t id = 0; id < array.size; ++id) check(id, array[id]);
    for (uint64_t i = 0; i < pairs.size; ++i) check(pairs[i].id, pairs[i].lo);
  }

  Node hnsw(uint32_t type, int depth) {
    const Node node = header(type);
    using faiss::HNSW;
    const auto probas =
        read_vector<decltype(HNSW::assign_probas)::value_type>("HNSW level probabilities");
    const auto cum = read_vector<decltype(HNSW::cum_nneighbor_per_level)::value_type>(
        "HNSW neighbours per level");
    const auto levels = read_vector<decltype(HNSW::levels)::value_type>("HNSW levels");
    const auto offsets = read_vector<decltype(HNSW::offsets)::value_type>("HNSW offsets");
    const auto links = read_vector<decltype(HNSW::neighbors)::value_type>("HNSW links");
    const int64_t entry_point = read<decltype(HNSW::entry_point)>("HNSW entry point");
    const int64_t max_level = read<decltype(HNSW::max_level)>("HNSW max level");
    const int64_t ef_construction = read<decltype(HNSW::efConstruction)>("HNSW efConstruction");
    const int64_t ef_search = read<decltype(HNSW::efSearch)>("HNSW efSearch");
    const int64_t upper_beam = read<decltype(HNSW::upper_beam)>("HNSW upper beam");

    const Node storage = index(depth + 1);
    const bool storage_fits = type == fourcc("IHNf")   ? is_flat(storage.type)
                              : type == fourcc("IHNp") ? storage.type == fourcc("IxPq")
                                                       : storage.type == fourcc("IxSQ");
    if (!storage_fits)
      throw Damaged(type_name(type) + " keeps its vectors in " + type_name(storage.type));
    if (storage.d != node.d || storage.ntotal != node.ntotal)
      throw Damaged("the HNSW index holds " + std::to_string(node.ntotal) + " vectors of " +
                    std::to_string(node.d) + " dimensions but its storage " +
                    std::to_string(storage.ntotal) + " of " + std::to_string(storage.d));
    // FAISS measures with the storage's metric but orders by the graph's;
    // the same ids would come back with distances of either sign.
    if (storage.metric != node.metric)
      throw Damaged("the HNSW graph uses the " + metric_label(node.metric) +
                    " metric but its storage the " + metric_label(storage.metric) +
                    " metric, so its distances cannot be trusted");
    if (type == fourcc("IHNp")) {
      // read_index() builds the PQ's symmetric distance table.
      const Pq& pq = storage.pq;
      derived_table(times(times(pq.ksub, pq.ksub), times(pq.M, sizeof(float))),
                    "HNSW-PQ distance table");
    }
    for (const auto& [name, value] : {std::pair<const char*, int64_t>{"efSearch", ef_search},
                                      {"efConstruction", ef_construction},
                                      {"upper beam", upper_beam}}) {
      if (value < 1 || value > kMaxQueue)
        throw Damaged("the HNSW graph's " + std::string(name) + " is " + std::to_string(value) +
                      " (1 to " + std::to_string(kMaxQueue) + " is plausible)");
    }
    check_hnsw_graph(probas.size, cum, levels, offsets, links, entry_point, max_level, node.ntotal);
    return node;
  }

  static void check_hnsw_graph(uint64_t n_probas, const Stored<int>& cum, const Stored<int>& levels,
                               const Stored<size_t>& offsets, const Stored<int>& links,
                               int64_t entry_point, int64_t max_level, int64_t ntotal) {
    // add() draws a node's level from the probabilities and needs a count of
    // neighbours for it.
    if (cum.size < 2 || cum.size != n_probas + 1 || cum[0] != 0)
      throw Damaged("the HNSW graph declares " + std::to_string(cum.size) +
                    " neighbour counts for " + std::to_string(n_probas) + " levels");
    for (uint64_t l = 1; l < cum.size; ++l) {
      if (cum[l] < cum[l - 1])
        throw Damaged("the HNSW graph's neighbour counts decrease at level " + std::to_string(l));
    }
    if (levels.size != uint64_t(ntotal))
      throw Damaged("the HNSW graph has levels for " + std::to_string(levels.size) +
                    " nodes but the index holds " + std::to_string(ntotal) + " vectors");
    if (offsets.size != uint64_t(ntotal) + 1 || offsets[0] != 0)
      throw Damaged("the HNSW graph has " + std::to_string(offsets.size) + " link offsets for " +
                    std::to_string(ntotal) + " nodes");
    int64_t top = 0;
    for (int64_t i = 0; i < ntotal; ++i) {
      const int level_count = levels[i];
      if (level_count < 1 || uint64_t(level_count) >= cum.size)
        throw Damaged("HNSW node " + std::to_string(i) + " declares " +
                      std::to_string(level_count) + " levels but the graph has " +
                      std::to_string(cum.size - 1));
      top = std::max<int64_t>(top, level_count);
      if (offsets[i + 1] < offsets[i] || offsets[i + 1] - offsets[i] != uint64_t(cum[level_count]))
        throw Damaged("HNSW node " + std::to_string(i) + " has " +
                      std::to_string(offsets[i + 1] - offsets[i]) + " link slots but its " +
                      std::to_string(level_count) + " levels need " +
                      std::to_string(cum[level_count]));
    }
    if (offsets[ntotal] != links.size)
      throw Damaged("the HNSW graph's offsets cover " + std::to_string(offsets[ntotal]) +
                    " links but it stores " + std::to_string(links.size));
    for (int64_t i = 0; i < ntotal; ++i) {
      const int level_count = levels[i];
      for (int l = 0; l < level_count; ++l) {
        for (uint64_t j = offsets[i] + cum[l]; j < offsets[i] + cum[l + 1]; ++j) {
          const int64_t v = links[j];
          if (v == -1) continue;  // FAISS's empty slot
          if (v < -1 || v >= ntotal)
            throw Damaged("HNSW link " + std::to_string(j - offsets[i]) + " of node " +
                          std::to_string(i) + " points to " + std::to_string(v) +
                          " but the index holds " + std::to_string(ntotal) + " vectors");
          // The search reads v's links at this level.
          if (levels[v] <= l)
            throw Damaged("HNSW link " + std::to_string(j - offsets[i]) + " of node " +
                          std::to_string(i) + " points at level " + std::to_string(l) +
                          " to node " + std::to_string(v) + ", which has " +
                          std::to_string(levels[v]) + " levels");
        }
      }
    }
    if (ntotal == 0) {
      if (entry_point != -1 || max_level != -1)
        throw Damaged("the empty HNSW graph has entry point " + std::to_string(entry_point) +
                      " and max level " + std::to_string(max_level));
      return;
    }
    if (entry_point < 0 || entry_point >= ntotal)
      throw Damaged("the HNSW entry point is " + std::to_string(entry_point) +
                    " but the index holds " + std::to_string(ntotal) + " vectors");
    if (max_level != top - 1 || levels[entry_point] != top)
      throw Damaged("the HNSW max level is " + std::to_string(max_level) +
                    " but the highest node reaches level " + std::to_string(top - 1) +
                    " and the entry point level " + std::to_string(levels[entry_point] - 1));
  }

  Transform vector_transform() {
    const size_t at = pos_;
    const uint32_t type = read<uint32_t>("transform type");
    bool linear = false, centering = false, normalization = false;
    Stored<float> mean;
    if (type == fourcc("PCAm") || type == fourcc("PcAm") || type == fourcc("Pcam")) {
      read<decltype(faiss::PCAMatrix::eigen_power)>("PCA eigen power");
      if (type == fourcc("Pcam")) read<decltype(faiss::PCAMatrix::epsilon)>("PCA epsilon");
      read_bool("PCA random rotation flag");
      if (type != fourcc("PCAm"))
        read<decltype(faiss::PCAMatrix::balanced_bins)>("PCA balanced bins");
      read_vector<float>("PCA mean");
      read_vector<float>("PCA eigenvalues");
      read_vector<float>("PCA matrix");
      linear = true;
    } else if (type == fourcc("rrot") || type == fourcc("LTra")) {
      linear = true;
    } else if (type == fourcc("VNrm")) {
      read<decltype(faiss::NormalizationTransform::norm)>("normalization norm");
      normalization = true;
    } else if (type == fourcc("VCnt")) {
      mean = read_vector<float>("centering mean");
      centering = true;
    } else {
      throw_unknown(type, at, "transform");
    }
    bool have_bias = false;
    Stored<float> A, b;
    if (linear) {
      have_bias = read_bool("transform bias flag");
      A = read_vector<float>("transform matrix");
      b = read_vector<float>("transform bias");
    }
    Transform t;
    t.d_in = read<decltype(faiss::VectorTransform::d_in)>("transform input dimension");
    t.d_out = read<decltype(faiss::VectorTransform::d_out)>("transform output dimension");
    t.is_trained = read_bool("transform trained flag");
    const std::string what = type_name(type);
    if (t.d_in < 1 || t.d_in > kMaxDims || t.d_out < 1 || t.d_out > kMaxDims)
      throw Damaged(what + " maps " + std::to_string(t.d_in) + " to " + std::to_string(t.d_out) +
                    " dimensions");
    if ((centering || normalization) && t.d_in != t.d_out)
      throw Damaged(what + " maps " + std::to_string(t.d_in) + " to " + std::to_string(t.d_out) +
                    " dimensions");
    if (linear && t.is_trained &&
        (A.size != times(t.d_in, t.d_out) || (have_bias && b.size != uint64_t(t.d_out))))
      throw Damaged(what + " maps " + std::to_string(t.d_in) + " to " + std::to_string(t.d_out) +
                    " dimensions but stores a matrix of " + std::to_string(A.size) +
                    " and a bias of " + std::to_string(b.size) + " values");
    if (centering && t.is_trained && mean.size != uint64_t(t.d_in))
      throw Damaged(what + " has " + std::to_string(t.d_in) + " dimensions but a mean of " +
                    std::to_string(mean.size));
    return t;
  }

  Node pretransform(uint32_t type, int depth) {
    const Node node = header(type);
    const int64_t count = read<int>("transform count");
    if (count < 0)
      throw Damaged("the pre-transform declares " + std::to_string(count) + " transforms");
    int64_t dims = node.d;
    for (int64_t i = 0; i < count; ++i) {
      const Transform t = vector_transform();
      if (t.d_in != dims)
        throw Damaged("transform " + std::to_string(i) + " takes " + std::to_string(t.d_in) +
                      " dimensions but is given " + std::to_string(dims));
      if (node.is_trained && !t.is_trained)
        throw Damaged("transform " + std::to_string(i) +
                      " is untrained in an index that says it is trained");
      dims = t.d_out;
    }
    const Node inner = index(depth + 1);
    if (inner.d != dims || inner.ntotal != node.ntotal)
      throw Damaged("the transforms give " + std::to_string(dims) +
                    " dimensions and the "
                    "index holds " +
                    std::to_string(node.ntotal) +
                    " vectors, but the index "
                    "behind them has " +
                    std::to_string(inner.d) + " dimensions and " + std::to_string(inner.ntotal) +
                    " vectors");
    if (node.is_trained && !inner.is_trained)
      throw Damaged("the index behind the transforms is untrained");
    return node;
  }

  Node id_map(uint32_t type, int depth) {
    const Node node = header(type);
    const Node inner = index(depth + 1);
    const Stored<idx_t> ids = read_vector<idx_t>("id map");
    id_map_ids_ = ids;
    if (depth == 0) root_inner_type_ = inner.type;
    if (inner.d != node.d || inner.ntotal != node.ntotal || ids.size != uint64_t(node.ntotal))
      throw Damaged(type_name(type) + " holds " + std::to_string(node.ntotal) + " vectors of " +
                    std::to_string(node.d) + " dimensions and " + std::to_string(ids.size) +
                    " ids, but the index inside it " + std::to_string(inner.ntotal) + " of " +
                    std::to_string(inner.d));
    if (type == fourcc("IxM2")) {
      // The reverse map would silently keep only one of two equal ids.
      std::unordered_set<idx_t> unique;
      unique.reserve(ids.size);
      for (uint64_t i = 0; i < ids.size; ++i) {
        if (!unique.insert(ids[i]).second)
          throw Damaged("id " + std::to_string(ids[i]) + " appears twice in the IndexIDMap2");
      }
    }
    return node;
  }

  Node refine(uint32_t type, int depth) {
    const Node node = header(type);
    const size_t base_begin = pos_;
    const Node base = index(depth + 1);
    const size_t base_end = pos_;
    const Node refined = index(depth + 1);
    const float k_factor = read<decltype(faiss::IndexRefine::k_factor)>("refine k factor");
    if (depth == 0) {
      refine_base_begin_ = base_begin;
      refine_base_end_ = base_end;
      refined_ = refined;
      refine_k_factor_ = k_factor;
    }
    if (base.d != node.d || refined.d != node.d || base.ntotal != node.ntotal ||
        refined.ntotal != node.ntotal)
      throw Damaged("the refined index holds " + std::to_string(node.ntotal) +
                    " vectors but its base " + std::to_string(base.ntotal) +
                    " and its refinement " + std::to_string(refined.ntotal));
    // A search asks the base for k * k_factor neighbours.
    if (!(k_factor >= 1 && k_factor <= kMaxRefineFactor))
      throw Damaged("the refine k factor is " + std::to_string(k_factor));
    return node;
  }

  // Counts the rows of floats at data that no distance can be computed with
  // (see run()), naming the first few by name(row). The walk never reads the
  // vectors otherwise; this costs one more pass over them, as the digest
  // does.
  template <class Name>
  void scan_rows(const uint8_t* data, uint64_t rows, uint64_t d, Name name) {
    // Rows scanned are handed to done_ in steps of about 16 MB.
    const uint64_t step =
        std::max<uint64_t>(1, (uint64_t(16) << 20) / std::max<uint64_t>(1, d * 4));
    for (uint64_t row = 0; row < rows; ++row) {
      if (done_ && row > 0 && row % step == 0)
        done_(static_cast<size_t>(data - data_) + (row - step) * d * sizeof(float),
              static_cast<size_t>(data - data_) + row * d * sizeof(float));
      double squares = 0;
      for (uint64_t j = 0; j < d; ++j) {
        float x;
        std::memcpy(&x, data + (row * d + j) * sizeof(float), sizeof(float));
        squares += double(x) * x;
      }
      // NaN fails the comparison too.
      if (squares <= std::numeric_limits<float>::max()) continue;
      if (bad_rows_named_.size() < kBadRowsNamed) bad_rows_named_.push_back(name(row));
      ++bad_rows_;
    }
  }

  const uint8_t* data_;
  size_t size_;
  const Done& done_;
  size_t pos_ = 0;
  uint64_t bad_rows_ = 0;
  std::vector<std::string> bad_rows_named_;
  Node root_{};
  Stored<float> flat_vectors_;
  Stored<idx_t> id_map_ids_;
  uint32_t root_inner_type_ = 0;
  bool has_inverted_lists_ = false;
  uint64_t refine_base_begin_ = 0, refine_base_end_ = 0;
  Node refined_{};
  float refine_k_factor_ = 0;
};

}  // namespace

// The walk of data, turning its findings into vs::Errors naming the file.
IndexLayout check_index_bytes(const uint8_t* data, size_t size, const std::string& name,
                              const Done& done) {
  IndexFileWalk walk(data, size, done);
  try {
    walk.run();
  } catch (const Damaged& e) {
    throw Error(ErrorKind::Corrupt,
                "The FAISS index " + name + " is damaged: " + e.what() + "." + kRebuildAdvice);
  } catch (const Unsupported& e) {
    throw Error(ErrorKind::Format, "The FAISS index " + name + " cannot be checked: " + e.what() +
                                       ". visualsearch loads only index types it can check: " +
                                       kSupported + "." + kRebuildAdvice);
  }
  IndexLayout layout;
  layout.root = walk.root();
  layout.flat_vectors = walk.flat_vectors();
  layout.id_map_ids = walk.id_map_ids();
  layout.root_inner_type = walk.root_inner_type();
  layout.has_inverted_lists = walk.has_inverted_lists();
  walk.refine_layout(layout);
  return layout;
}

}  // namespace index_check
}  // namespace vs
