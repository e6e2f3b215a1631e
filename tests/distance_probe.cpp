// SPDX-License-Identifier: LGPL-2.1-or-later
// What a distance, and an HNSW query, cost in the FAISS this project links
// (Debian's generic build: a scalar inner product), beside an AVX2+FMA inner
// product chosen at run time (docs/SCALING.md).
//
//   distance-probe rows VECTORS.npy [ROWS]
//       Each pass computes 2,000,000 inner products of one row with rows
//       drawn at random from the first ROWS (default: all N) of a float32
//       (N, D) array such as bench_scale.py's base.npy: all N is how HNSW
//       walks a large gallery, a few thousand is the cost once the rows are
//       in cache. Prints the CPU microseconds a distance for
//       faiss::fvec_inner_product and for each SIMD kernel of the HNSW walk
//       this CPU runs (AVX2+FMA, AVX-512: engine/index/fast_search.h).
//   distance-probe hnsw INDEX QUERIES.npy EXACT.npy EF [EF...]
//       Searches an inner-product IndexHNSWFlat (bench_scale.py's
//       hnsw32.faiss) for each float32 query, one at a time on one thread,
//       at each efSearch, three ways: IndexHNSW::search (what faisssearch
//       calls), faiss::HNSW::search with FAISS's distance and one visited
//       table for all queries, and the same with the AVX2 distance. Prints
//       recall@10 against EXACT.npy (int64, the exact top 10 of each query)
//       and the CPU milliseconds a query.
//   distance-probe search INDEX QUERIES.f32 EXACT.i64 REAL FACTOR EF [EF...]
//       The engine's search alone, without GStreamer: vs::IndexStore::load
//       and search (our HNSW walk where it applies), one query at a time on
//       this thread, refine-factor FACTOR, at each ef-search, over raw
//       float32 queries and their exact top 10 (int64, bench_scale.py's
//       queries-ordered-*.f32 and exact-ordered-*.i64). Prints recall@10 and
//       CPU ms a query of the first REAL queries and of all.
#include <fcntl.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/HNSW.h>
#include <faiss/index_io.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>

#include "engine/index/fast_search.h"
#include "engine/index/index_store.h"

namespace {

double
cpu_seconds ()
{
  timespec t;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// A C-ordered 2-d .npy array of DTYPE ('<f4', '<i8'), mapped read-only.
struct Npy
{
  const char *data = nullptr;
  size_t rows = 0, cols = 0;
};

Npy
map_npy (const char *path, const char *dtype)
{
  const int fd = open (path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) != 0) {
    std::fprintf (stderr, "cannot open %s\n", path);
    std::exit (2);
  }
  const auto *file = static_cast<const char *> (mmap (nullptr, st.st_size,
      PROT_READ, MAP_SHARED, fd, 0));
  close (fd);
  if (file == MAP_FAILED || st.st_size < 12
      || std::memcmp (file, "\x93NUMPY", 6) != 0) {
    std::fprintf (stderr, "%s is not a .npy file\n", path);
    std::exit (2);
  }
  // The header length: 2 bytes at 8 in version 1, 4 bytes at 8 in 2 and 3.
  const bool v1 = file[6] == 1;
  const size_t header_len = v1
      ? (uint8_t (file[8]) | uint8_t (file[9]) << 8)
      : (uint8_t (file[8]) | uint8_t (file[9]) << 8 | uint8_t (file[10]) << 16
          | size_t (uint8_t (file[11])) << 24);
  const size_t start = v1 ? 10 : 12;
  const std::string header (file + start,
      std::min<size_t> (header_len, st.st_size - start));
  Npy npy;
  const size_t shape = header.find ("'shape': (");
  if (header.find (std::string ("'") + dtype + "'") == std::string::npos
      || header.find ("'fortran_order': False") == std::string::npos
      || shape == std::string::npos
      || std::sscanf (header.c_str () + shape, "'shape': (%zu, %zu)", &npy.rows,
             &npy.cols)
          != 2
      || npy.rows == 0 || npy.cols == 0
      || start + header_len
              + npy.rows * npy.cols * 4 * (dtype[2] == '8' ? 2 : 1)
          > size_t (st.st_size)) {
    std::fprintf (stderr, "%s is not a C-ordered %s (N, D) array\n", path,
        dtype);
    std::exit (2);
  }
  npy.data = file + start + header_len;
  return npy;
}

__attribute__ ((target ("avx2,fma"))) float
inner_product_avx2 (const float *x, const float *y, size_t d)
{
  // Four accumulators: one chain of dependent FMAs would wait on each other.
  __m256 a0 = _mm256_setzero_ps (), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    a0 = _mm256_fmadd_ps (_mm256_loadu_ps (x + i), _mm256_loadu_ps (y + i), a0);
    a1 = _mm256_fmadd_ps (_mm256_loadu_ps (x + i + 8),
        _mm256_loadu_ps (y + i + 8), a1);
    a2 = _mm256_fmadd_ps (_mm256_loadu_ps (x + i + 16),
        _mm256_loadu_ps (y + i + 16), a2);
    a3 = _mm256_fmadd_ps (_mm256_loadu_ps (x + i + 24),
        _mm256_loadu_ps (y + i + 24), a3);
  }
  const __m256 s =
      _mm256_add_ps (_mm256_add_ps (a0, a1), _mm256_add_ps (a2, a3));
  __m128 h =
      _mm_add_ps (_mm256_castps256_ps128 (s), _mm256_extractf128_ps (s, 1));
  h = _mm_hadd_ps (h, h);
  h = _mm_hadd_ps (h, h);
  float r = _mm_cvtss_f32 (h);
  for (; i < d; i++)
    r += x[i] * y[i];
  return r;
}

bool
has_avx2 ()
{
  return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
}

template <typename F>
double
microseconds_a_distance (F distance, const float *rows, size_t d,
    const std::vector<size_t> &picks)
{
  volatile float sink = 0;
  const double t0 = cpu_seconds ();
  for (size_t row : picks)
    sink = sink + distance (rows, rows + row * d, d);
  return (cpu_seconds () - t0) / picks.size () * 1e6;
}

int
rows (int argc, char **argv)
{
  const Npy npy = map_npy (argv[2], "<f4");
  const auto *rows = reinterpret_cast<const float *> (npy.data);
  const size_t d = npy.cols;
  const size_t span = argc > 3
      ? std::clamp<size_t> (std::atoll (argv[3]), 1, npy.rows)
      : npy.rows;
  std::mt19937_64 rng (1);
  std::vector<size_t> picks (2000000);
  for (size_t &row : picks)
    row = rng () % span;
  std::printf ("%zu x %zu, rows drawn from the first %zu\n", npy.rows, d, span);
  // The first pass maps the pages; the second is the one to read.
  for (int pass = 1; pass <= 2; pass++) {
    std::printf ("pass %d: faiss::fvec_inner_product %.3f us", pass,
        microseconds_a_distance (faiss::fvec_inner_product, rows, d, picks));
    // The walk's kernels (engine/index/fast_search.cpp) this CPU runs.
    for (const vs::SearchKernel &kernel : vs::search_kernels_on_this_cpu ())
      if (std::strcmp (kernel.name, "FAISS") != 0)
        std::printf (", %s %.3f us", kernel.name,
            microseconds_a_distance (kernel.inner_product, rows, d, picks));
    std::printf (" a distance (CPU time)\n");
  }
  return 0;
}

// HNSW keeps the smallest distances: an inner product is searched negated,
// as IndexHNSW does.
struct NegatedInnerProduct : faiss::DistanceComputer
{
  NegatedInnerProduct (const float *xb, size_t d, bool avx2)
      : xb (xb), d (d), avx2 (avx2)
  {
  }
  void set_query (const float *x) override
  {
    q = x;
  }
  float operator() (idx_t i) override
  {
    return -ip (q, xb + i * d);
  }
  float symmetric_dis (idx_t i, idx_t j) override
  {
    return -ip (xb + i * d, xb + j * d);
  }
  float ip (const float *x, const float *y) const
  {
    return avx2 ? inner_product_avx2 (x, y, d)
                : faiss::fvec_inner_product (x, y, d);
  }
  const float *xb, *q = nullptr;
  size_t d;
  bool avx2;
};

int
hnsw (int argc, char **argv)
{
  std::unique_ptr<faiss::Index> index (faiss::read_index (argv[2]));
  auto *hnsw_index = dynamic_cast<faiss::IndexHNSWFlat *> (index.get ());
  const auto *flat = hnsw_index
      ? dynamic_cast<const faiss::IndexFlat *> (hnsw_index->storage)
      : nullptr;
  if (!flat || index->metric_type != faiss::METRIC_INNER_PRODUCT) {
    std::fprintf (stderr, "%s is not an inner-product IndexHNSWFlat\n",
        argv[2]);
    return 2;
  }
  const Npy queries = map_npy (argv[3], "<f4");
  const Npy exact = map_npy (argv[4], "<i8");
  constexpr int k = 10;
  if (queries.cols != size_t (index->d) || exact.rows != queries.rows
      || exact.cols < size_t (k)) {
    std::fprintf (stderr, "the queries or exact neighbours do not fit\n");
    return 2;
  }
  omp_set_num_threads (1);
  const auto *xq = reinterpret_cast<const float *> (queries.data);
  const auto *truth = reinterpret_cast<const int64_t *> (exact.data);
  const size_t n = queries.rows, d = queries.cols;
  std::vector<float> distances (k);
  std::vector<faiss::Index::idx_t> labels (k);
  faiss::VisitedTable visited (index->ntotal);
  std::printf ("%s: %zd vectors, %zu queries, k = %d, one at a time\n", argv[2],
      size_t (index->ntotal), n, k);

  for (int a = 5; a < argc; a++) {
    faiss::SearchParametersHNSW params;
    params.efSearch = std::atoi (argv[a]);
    // FAISS 1.7.3 sizes the candidate queue from the graph's efSearch, as
    // IndexStore::search knows.
    hnsw_index->hnsw.efSearch = params.efSearch;
    std::printf ("efSearch %d:", params.efSearch);
    for (int way = 0; way < 3; way++) {
      if (way == 2 && !has_avx2 ())
        break;
      NegatedInnerProduct distance (flat->get_xb (), d, way == 2);
      size_t found = 0;
      const double t0 = cpu_seconds ();
      for (size_t i = 0; i < n; i++) {
        if (way == 0) {
          index->search (1, xq + i * d, k, distances.data (), labels.data (),
              &params);
        } else {
          distance.set_query (xq + i * d);
          faiss::maxheap_heapify (k, distances.data (), labels.data ());
          hnsw_index->hnsw.search (distance, k, labels.data (),
              distances.data (), visited, &params);
          visited.advance ();
        }
        const std::set<int64_t> exact_ids (truth + i * exact.cols,
            truth + i * exact.cols + k);
        for (auto id : labels)
          found += exact_ids.count (id);
      }
      const double ms = (cpu_seconds () - t0) / n * 1e3;
      static const char *const names[] = {"IndexHNSW::search",
          "HNSW::search, FAISS's distance", "HNSW::search, AVX2 distance"};
      std::printf ("%s %s recall@10 %.3f, %.3f CPU ms", way ? ";" : "",
          names[way], double (found) / (n * k), ms);
    }
    std::printf ("\n");
    std::fflush (stdout);
  }
  return 0;
}

} // namespace

template <typename T>
std::vector<T>
read_raw (const char *path)
{
  std::FILE *f = std::fopen (path, "rb");
  if (!f) {
    std::fprintf (stderr, "cannot open %s\n", path);
    std::exit (1);
  }
  std::vector<T> data;
  T value;
  while (std::fread (&value, sizeof value, 1, f) == 1)
    data.push_back (value);
  std::fclose (f);
  return data;
}

int
search (int argc, char **argv)
{
  const vs::IndexStore store = vs::IndexStore::load (argv[2]);
  const auto queries = read_raw<float> (argv[3]);
  const auto exact = read_raw<int64_t> (argv[4]);
  const size_t real = std::atoll (argv[5]);
  const size_t d = store.dims (), n = queries.size () / d, k = 10;
  if (exact.size () != n * k || real > n) {
    std::fprintf (stderr,
        "EXACT.i64 must hold 10 ids for each of the %zu "
        "queries, REAL at most that many\n",
        n);
    return 1;
  }
  std::printf ("%s: %s\n", argv[2], store.search_path ().c_str ());
  for (int a = 7; a < argc; a++) {
    vs::SearchParams params;
    params.ef_search = std::atoi (argv[a]);
    params.refine_factor = std::atof (argv[6]);
    double hits_real = 0, hits_all = 0, ms_real = 0, ms_all = 0;
    for (size_t q = 0; q < n; q++) {
      const double t0 = cpu_seconds ();
      const auto found = store.search (queries.data () + q * d, 1, k, params);
      const double ms = (cpu_seconds () - t0) * 1e3;
      const std::set<int64_t> truth (exact.begin () + q * k,
          exact.begin () + (q + 1) * k);
      double hits = 0;
      for (const vs::Hit &hit : found[0])
        hits += truth.count (hit.id);
      hits_all += hits / k;
      ms_all += ms;
      if (q < real) {
        hits_real += hits / k;
        ms_real += ms;
      }
    }
    std::printf ("ef-search %d: recall@10 real %.3f all %.3f, CPU ms a query "
                 "real %.3f all %.3f\n",
        params.ef_search, hits_real / real, hits_all / n, ms_real / real,
        ms_all / n);
  }
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc >= 3 && std::strcmp (argv[1], "rows") == 0)
    return rows (argc, argv);
  if (argc >= 6 && std::strcmp (argv[1], "hnsw") == 0)
    return hnsw (argc, argv);
  if (argc >= 8 && std::strcmp (argv[1], "search") == 0)
    return search (argc, argv);
  std::fprintf (stderr,
      "usage: distance-probe rows VECTORS.npy [ROWS]\n"
      "       distance-probe hnsw INDEX QUERIES.npy EXACT.npy EF [EF...]\n"
      "       distance-probe search INDEX QUERIES.f32 EXACT.i64 REAL FACTOR EF "
      "[EF...]\n");
  return 2;
}
