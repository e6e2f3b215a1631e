// SPDX-License-Identifier: LGPL-2.1-or-later
// What one 512-d inner product costs in the FAISS this project links, beside
// an AVX2+FMA loop, on rows of a gallery: the unit of an HNSW query's cost
// (docs/SCALING.md).
//
//   distance-probe VECTORS.npy [ROWS]
//
// VECTORS.npy is a float32 (N, D) array such as bench_scale.py's base.npy.
// Each pass computes 2,000,000 inner products of one row with rows drawn at
// random from the first ROWS (default: all N): all N is how HNSW walks a
// large gallery, a few thousand is the cost once the rows are in cache.
// Prints the CPU microseconds a distance for faiss::fvec_inner_product and,
// when the CPU has AVX2 and FMA, for the AVX2 loop.
#include <fcntl.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include <faiss/utils/distances.h>

namespace {

double
cpu_seconds ()
{
  timespec t;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
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

} // namespace

int
main (int argc, char **argv)
{
  if (argc < 2) {
    std::fprintf (stderr, "usage: distance-probe VECTORS.npy [ROWS]\n");
    return 2;
  }
  const int fd = open (argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) != 0) {
    std::fprintf (stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  const auto *file = static_cast<const char *> (mmap (nullptr, st.st_size,
      PROT_READ, MAP_SHARED, fd, 0));
  if (file == MAP_FAILED || st.st_size < 10
      || std::memcmp (file, "\x93NUMPY", 6) != 0) {
    std::fprintf (stderr, "%s is not a .npy file\n", argv[1]);
    return 2;
  }
  // The header length: 2 bytes at 8 in version 1, 4 bytes at 8 in 2 and 3.
  const size_t header_len = file[6] == 1
      ? (uint8_t (file[8]) | uint8_t (file[9]) << 8)
      : (uint8_t (file[8]) | uint8_t (file[9]) << 8 | uint8_t (file[10]) << 16
          | size_t (uint8_t (file[11])) << 24);
  const size_t offset = (file[6] == 1 ? 10 : 12) + header_len;
  const std::string header (file + (file[6] == 1 ? 10 : 12), header_len);
  size_t n = 0, d = 0;
  const size_t shape = header.find ("'shape': (");
  if (header.find ("'<f4'") == std::string::npos
      || header.find ("'fortran_order': False") == std::string::npos
      || shape == std::string::npos
      || std::sscanf (header.c_str () + shape, "'shape': (%zu, %zu)", &n, &d)
          != 2
      || n == 0 || d == 0 || offset + n * d * 4 > size_t (st.st_size)) {
    std::fprintf (stderr, "%s is not a C-ordered float32 (N, D) array\n",
        argv[1]);
    return 2;
  }
  const auto *rows = reinterpret_cast<const float *> (file + offset);
  const size_t span = argc > 2 ? std::min<size_t> (std::atoll (argv[2]), n) : n;

  std::mt19937_64 rng (1);
  std::vector<size_t> picks (2000000);
  for (size_t &row : picks)
    row = rng () % span;
  const bool avx2 =
      __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
  std::printf ("%zu x %zu, rows drawn from the first %zu\n", n, d, span);
  // The first pass maps the pages; the second is the one to read.
  for (int pass = 1; pass <= 2; pass++) {
    std::printf ("pass %d: faiss::fvec_inner_product %.3f us", pass,
        microseconds_a_distance (faiss::fvec_inner_product, rows, d, picks));
    if (avx2)
      std::printf (", AVX2+FMA %.3f us",
          microseconds_a_distance (inner_product_avx2, rows, d, picks));
    std::printf (" a distance (CPU time)\n");
  }
  return 0;
}
