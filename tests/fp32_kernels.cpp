// SPDX-License-Identifier: LGPL-2.1-or-later
// The fp32 ResNet through oneDNN's primitives against the same weights through
// ATen's ops, in one process (VISUALSEARCH_FP32_KERNELS is read when an engine
// is made): batches of 1 and 3, square and non-square inputs from 32 to 224.
// Where the CPU has native bf16, the bf16 ResNet through oneDNN's primitives
// too, against ATen's fp32.
//
//   fp32-kernels ARCH WEIGHTS.pth
//
// Exit status 0 if every image comes within cosine 0.99999 (bf16: 0.999, the
// bound precision=auto holds bf16 to), 1 if not, 77 (skipped) if the build
// has no oneDNN path.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/base/cpu_features.h"
#include "engine/model/embedding_engine_testing.h"

static std::unique_ptr<vs::EmbeddingEngine>
make_engine (const char *arch, const char *weights, const char *kernels,
    vs::Precision precision = vs::Precision::FP32)
{
  setenv ("VISUALSEARCH_FP32_KERNELS", kernels, 1);
  vs::EmbeddingConfig config;
  config.model = arch;
  config.weights = weights;
  config.precision = precision;
  config.normalize = false;
  config.threads = 2;
  return std::make_unique<vs::EmbeddingEngine> (config);
}

static int compare (const char *arch, const char *weights);

struct Shape
{
  int n, h, w;
};

/* The number of images of `b` further than `bound` (cosine) from `a`'s. */
static int
compare_images (const char *arch, const char *what, const Shape &s, size_t dims,
    const std::vector<float> &a, const std::vector<float> &b, double bound)
{
  int failures = 0;
  for (int i = 0; i < s.n; ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t d = i * dims; d < (i + 1) * dims; ++d) {
      ab += double (a[d]) * b[d];
      aa += double (a[d]) * a[d];
      bb += double (b[d]) * b[d];
    }
    const double cosine = ab / std::sqrt (aa * bb);
    const bool ok = cosine >= bound;
    failures += !ok;
    std::printf ("%s %s %s n=%d %dx%d image %d: cosine %.7f\n",
        ok ? "ok  " : "FAIL", arch, what, s.n, s.w, s.h, i, cosine);
  }
  return failures;
}

int
main (int argc, char **argv)
{
  if (argc != 3) {
    std::fprintf (stderr, "usage: %s ARCH WEIGHTS.pth\n", argv[0]);
    return 2;
  }
  try {
    return compare (argv[1], argv[2]);
  } catch (const std::exception &e) {
    std::fprintf (stderr, "ERROR: %s\n", e.what ());
    return 1;
  }
}

static int
compare (const char *arch, const char *weights)
{
  auto aten = make_engine (arch, weights, "aten");
  auto onednn = make_engine (arch, weights, "onednn");
  std::string no_bf16;
  std::unique_ptr<vs::EmbeddingEngine> bf16;
  if (vs::native_bf16 (&no_bf16))
    bf16 = make_engine (arch, weights, "onednn", vs::Precision::BF16);
  std::printf ("aten: %s\nonednn: %s\nonednn bf16: %s\n",
      aten->kernels ().c_str (), onednn->kernels ().c_str (),
      bf16 ? bf16->kernels ().c_str () : ("not run: " + no_bf16).c_str ());
  if (bf16 && bf16->kernels ().rfind ("oneDNN primitives in bf16", 0) != 0) {
    std::printf ("FAIL bf16 does not run on oneDNN's primitives\n");
    return 1;
  }
  if (onednn->kernels_degraded ()) {
    std::printf ("FAIL oneDNN fell back to ATen's ops\n");
    return 1;
  }
  if (onednn->kernels ().rfind ("oneDNN", 0) != 0) {
    std::printf ("SKIP this build has no oneDNN path (libdnnl-dev)\n");
    return 77;
  }

  // The last shape comes back after larger ones: its primitives then run in
  // buffers that grew since they were made.
  const Shape shapes[] = {{1, 32, 32}, {3, 32, 32}, {1, 224, 224},
      {3, 224, 224}, {3, 224, 160}, {1, 61, 97}, {3, 32, 32}};
  std::mt19937 gen (20261126);
  std::normal_distribution<float> normal;
  int failures = 0;
  for (const Shape &s : shapes) {
    std::vector<float> x (static_cast<size_t> (s.n) * 3 * s.h * s.w);
    for (float &v : x)
      v = normal (gen);
    const std::vector<float> a =
        vs::EmbeddingEngineTesting::embed_preprocessed (*aten, x.data (), s.n,
            s.h, s.w);
    failures += compare_images (arch, "fp32", s, aten->dims (), a,
        vs::EmbeddingEngineTesting::embed_preprocessed (*onednn, x.data (), s.n,
            s.h, s.w),
        0.99999);
    if (bf16)
      failures += compare_images (arch, "bf16", s, aten->dims (), a,
          vs::EmbeddingEngineTesting::embed_preprocessed (*bf16, x.data (), s.n,
              s.h, s.w),
          0.999);
  }
  for (const vs::EmbeddingEngine *e : {onednn.get (), bf16.get ()})
    if (e && e->kernels_degraded ()) {
      std::printf ("FAIL oneDNN fell back to ATen's ops: %s\n",
          e->kernels ().c_str ());
      return 1;
    }
  return failures ? 1 : 0;
}
