// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/index_file.h"

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "engine/base/atomic_file.h"
#include "engine/base/error.h"
#include "engine/index/index_file_check.h"

namespace vs {

namespace {

using index_check::check_index_bytes;
using index_check::fourcc;
using index_check::idx_t;
using index_check::IndexLayout;
using index_check::is_flat;
using index_check::kRebuildAdvice;
using index_check::Node;
using index_check::Stored;

// A regular file mapped read-only (see open_regular_file). Throws vs::Error.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path)
      : fd_(open_regular_file_or_throw(path, "index", kMissingIndexAdvice)) {
    struct stat st;
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      throw Error(ErrorKind::Read,
                  "Cannot examine the index " + path + ": " + std::strerror(err) + ".");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return;  // mmap refuses length 0; the walk finds it truncated
    void* data = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
    if (data == MAP_FAILED) {
      const int err = errno;
      ::close(fd_);
      throw Error(ErrorKind::Read, "Cannot map the index file " + path +
                                       " into memory: " + std::strerror(err) + ".");
    }
    data_ = static_cast<const uint8_t*>(data);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  int fd() const { return fd_; }

  // Lets go of the pages wholly inside [begin, end): they leave this
  // process's memory and stay in the page cache, to be read again on use.
  void release(size_t begin, size_t end) const {
    static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    begin = (begin + page - 1) / page * page;
    end = std::min(end, size_) / page * page;
    if (end > begin) ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
  }

 private:
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Bytes are copied, digested and let go of in steps of this many, so that a
// load never holds much of the file beside what it built from it.
constexpr size_t kStep = size_t(16) << 20;

// The CRC-32 of a mapped file's bytes [begin, end), letting go of them as it
// goes.
uint32_t crc_of(const MappedFile& file, size_t begin, size_t end, uint32_t crc) {
  for (size_t at = begin; at < end; at += kStep) {
    const size_t n = std::min(kStep, end - at);
    crc = ::crc32_z(crc, file.data() + at, n);
    file.release(at, at + n);
  }
  return crc;
}

// FAISS's reader over a mapped file: the bytes it copies are digested and
// then let go of, so the file is held once, in FAISS's structures.
class MappedFileReader : public faiss::IOReader {
 public:
  // From byte `begin` on, continuing the CRC-32 `crc` of the bytes before it.
  MappedFileReader(const MappedFile& file, const std::string& path, size_t begin = 0,
                   uint32_t crc = 0)
      : file_(file), pos_(begin), released_(begin), crc_(crc) {
    name = path;
  }
  size_t position() const { return pos_; }

  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    if (size == 0) return 0;
    nitems = std::min(nitems, (file_.size() - pos_) / size);
    uint8_t* out = static_cast<uint8_t*>(ptr);
    for (size_t left = size * nitems; left > 0;) {
      const size_t n = std::min(kStep, left);
      std::memcpy(out, file_.data() + pos_, n);
      crc_ = ::crc32_z(crc_, out, n);
      file_.release(released_, pos_ + n);
      released_ = pos_ + n;
      pos_ += n;
      out += n;
      left -= n;
    }
    return nitems;
  }

  // The CRC-32 of the whole file, reading what FAISS left.
  uint32_t crc32() const { return crc_of(file_, pos_, file_.size(), crc_); }

 private:
  const MappedFile& file_;
  size_t pos_;
  size_t released_;
  uint32_t crc_;
};

// A flat index whose vectors stay in the mapped file. Its search is
// IndexFlat's (faiss/IndexFlat.cpp, 1.7.3), the same functions over the same
// vectors, so it returns what IndexFlat would; it cannot be changed.
class MappedFlat : public faiss::Index {
 public:
  MappedFlat(std::shared_ptr<const MappedFile> file, const float* vectors, const Node& node)
      : faiss::Index(node.d, faiss::MetricType(node.metric)),
        file_(std::move(file)),
        vectors_(vectors) {
    ntotal = node.ntotal;
  }

  void add(idx_t, const float*) override { read_only(); }
  void reset() override { read_only(); }
  size_t remove_ids(const faiss::IDSelector&) override { read_only(); }

  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params) const override {
    const faiss::IDSelector* sel = params ? params->sel : nullptr;
    FAISS_THROW_IF_NOT(k > 0);
    if (metric_type == faiss::METRIC_INNER_PRODUCT) {
      faiss::float_minheap_array_t res = {size_t(n), size_t(k), labels, distances};
      faiss::knn_inner_product(x, vectors_, d, n, ntotal, &res, sel);
    } else {
      faiss::float_maxheap_array_t res = {size_t(n), size_t(k), labels, distances};
      faiss::knn_L2sqr(x, vectors_, d, n, ntotal, &res, nullptr, sel);
    }
  }

  void reconstruct(idx_t key, float* recons) const override {
    FAISS_THROW_IF_NOT(key >= 0 && key < ntotal);
    std::memcpy(recons, vectors_ + key * d, sizeof(float) * d);
  }

  // IndexFlat's distances (FlatL2Dis, FlatIPDis: the inner product itself,
  // not negated), for a refine stage's exact re-ranking.
  faiss::DistanceComputer* get_distance_computer() const override {
    return new Distances(vectors_, d, metric_type == faiss::METRIC_INNER_PRODUCT);
  }

  const float* vectors() const { return vectors_; }

 private:
  [[noreturn]] static void read_only() {
    FAISS_THROW_MSG("the index is mapped from its file (mmap) and cannot be changed");
  }

  class Distances : public faiss::DistanceComputer {
   public:
    Distances(const float* xb, size_t d, bool inner_product)
        : xb_(xb), d_(d), inner_product_(inner_product) {}
    void set_query(const float* x) override { q_ = x; }
    float operator()(idx_t i) override {
      return inner_product_ ? faiss::fvec_inner_product(q_, xb_ + i * d_, d_)
                            : faiss::fvec_L2sqr(q_, xb_ + i * d_, d_);
    }
    float symmetric_dis(idx_t i, idx_t j) override {
      return inner_product_ ? faiss::fvec_inner_product(xb_ + i * d_, xb_ + j * d_, d_)
                            : faiss::fvec_L2sqr(xb_ + i * d_, xb_ + j * d_, d_);
    }

   private:
    const float* xb_;
    size_t d_;
    bool inner_product_;
    const float* q_ = nullptr;
  };

  std::shared_ptr<const MappedFile> file_;
  const float* vectors_;
};

// Map mode for Flat, bare or in an id map; nullptr for other types.
std::unique_ptr<faiss::Index> map_flat(const IndexLayout& layout,
                                       const std::shared_ptr<const MappedFile>& file) {
  const Node& root = layout.root;
  const bool id_map = root.type == fourcc("IxMp") || root.type == fourcc("IxM2");
  if (!is_flat(id_map ? layout.root_inner_type : root.type)) return nullptr;
  // The vectors are read in place; x86-64 loads floats at any address.
  auto flat = std::make_unique<MappedFlat>(
      file, reinterpret_cast<const float*>(layout.flat_vectors.data), root);
  if (!id_map) return flat;
  std::unique_ptr<faiss::IndexIDMap> map(root.type == fourcc("IxM2") ? new faiss::IndexIDMap2
                                                                     : new faiss::IndexIDMap);
  map->d = root.d;
  map->metric_type = faiss::MetricType(root.metric);
  map->is_trained = root.is_trained;
  map->ntotal = root.ntotal;
  const Stored<idx_t>& ids = layout.id_map_ids;
  map->id_map.resize(ids.size);
  if (ids.size) std::memcpy(map->id_map.data(), ids.data, ids.size * sizeof(idx_t));
  map->index = flat.release();
  map->own_fields = true;
  if (auto* map2 = dynamic_cast<faiss::IndexIDMap2*>(map.get())) map2->construct_rev_map();
  return map;
}

// Map mode for IVF types: FAISS maps the inverted lists itself, reading the
// rest through a stream of the same open file.
std::unique_ptr<faiss::Index> map_inverted_lists(const MappedFile& file, const std::string& path) {
  const int fd = ::dup(file.fd());
  std::FILE* stream = fd >= 0 ? ::fdopen(fd, "rb") : nullptr;
  if (!stream) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw Error(ErrorKind::Read,
                "Cannot read the index file " + path + ": " + std::strerror(err) + ".");
  }
  faiss::FileIOReader reader(stream);
  reader.need_close = true;
  reader.name = path;
  return std::unique_ptr<faiss::Index>(faiss::read_index(&reader, faiss::IO_FLAG_MMAP));
}

template <class Read>
std::unique_ptr<faiss::Index> faiss_read(const std::string& name, Read read) {
  try {
    return std::unique_ptr<faiss::Index>(read());
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorKind::Corrupt, "The FAISS index " + name +
                                        " is damaged: FAISS cannot read it (" + e.msg + ")." +
                                        kRebuildAdvice);
  }
}

// Map mode for a root IndexRefine over flat vectors, read without ever
// copying those vectors: FAISS reads only the base index (the transform, the
// graph and its own vectors) from its bytes, and the refine stage is built
// around the mapped vectors. A load so holds the base alone, where
// map_refine_stage held the whole file for a moment (2.8 GB at a million
// vectors of 512 dims). nullptr for other types; *crc32: the whole file's.
std::unique_ptr<faiss::Index> read_refine_mapped(const IndexLayout& layout,
                                                 const std::shared_ptr<const MappedFile>& file,
                                                 const std::string& path, uint32_t* crc32) {
  const Node& root = layout.root;
  const Node& refined = layout.refined;
  if (root.type != fourcc("IxRF") || !is_flat(refined.type) || !layout.flat_vectors.data ||
      layout.flat_vectors.size != static_cast<uint64_t>(refined.ntotal) * refined.d ||
      (refined.metric != faiss::METRIC_L2 && refined.metric != faiss::METRIC_INNER_PRODUCT) ||
      layout.refine_base_end <= layout.refine_base_begin ||
      layout.flat_vectors.data < file->data() + layout.refine_base_end)
    return nullptr;
  const uint32_t head = crc_of(*file, 0, layout.refine_base_begin, 0);
  MappedFileReader reader(*file, path, layout.refine_base_begin, head);
  std::unique_ptr<faiss::Index> base(faiss_read(path, [&] { return faiss::read_index(&reader); }));
  if (reader.position() != layout.refine_base_end)
    throw Error(ErrorKind::Corrupt,
                "The FAISS index " + path + " is damaged: FAISS read its base index to byte " +
                    std::to_string(reader.position()) + ", not to byte " +
                    std::to_string(layout.refine_base_end) + "." + kRebuildAdvice);
  *crc32 = reader.crc32();
  auto refine = std::make_unique<faiss::IndexRefineFlat>();
  refine->d = static_cast<int>(root.d);
  refine->ntotal = root.ntotal;
  refine->is_trained = root.is_trained;
  refine->metric_type = faiss::MetricType(root.metric);
  refine->k_factor = layout.refine_k_factor;
  refine->base_index = base.release();
  refine->own_fields = true;
  refine->refine_index =
      new MappedFlat(file, reinterpret_cast<const float*>(layout.flat_vectors.data), refined);
  refine->own_refine_index = true;
  return refine;
}

}  // namespace

std::unique_ptr<faiss::Index> read_index_bytes(std::vector<uint8_t> bytes,
                                               const std::string& name) {
  check_index_bytes(bytes.data(), bytes.size(), name);
  faiss::VectorIOReader reader;
  reader.name = name;
  reader.data = std::move(bytes);
  return faiss_read(name, [&] { return faiss::read_index(&reader); });
}

const float* mapped_flat_vectors(const faiss::Index* index) {
  const auto* flat = dynamic_cast<const MappedFlat*>(index);
  return flat ? flat->vectors() : nullptr;
}

IndexFile read_index_file(const std::string& path, IndexLoadMode mode) {
  auto file = std::make_shared<const MappedFile>(path);
  const IndexLayout layout =
      check_index_bytes(file->data(), file->size(), path,
                        [&file](size_t begin, size_t end) { file->release(begin, end); });
  // The walk touched headers, ids and links; FAISS reads them again in order.
  file->release(0, file->size());

  IndexFile out;
  out.bytes = static_cast<int64_t>(file->size());
  if (mode == IndexLoadMode::Map) {
    out.index = map_flat(layout, file);
    if (!out.index && layout.has_inverted_lists)
      out.index = faiss_read(path, [&] { return map_inverted_lists(*file, path).release(); });
    if (out.index) {
      out.mapped = true;
      out.crc32 = crc_of(*file, 0, file->size(), 0);
      return out;
    }
    out.index = read_refine_mapped(layout, file, path, &out.crc32);
    if (out.index) {
      out.mapped = true;
      return out;
    }
  }
  MappedFileReader reader(*file, path);
  out.index = faiss_read(path, [&] { return faiss::read_index(&reader); });
  out.crc32 = reader.crc32();
  return out;
}

}  // namespace vs
