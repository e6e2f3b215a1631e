// SPDX-License-Identifier: LGPL-2.1-or-later
// The fp32 ResNet through oneDNN's primitives against the same weights through
// ATen's ops, in one process (VISUALSEARCH_FP32_KERNELS is read when an engine
// is made): batches of 1 and 3, square and non-square inputs from 32 to 224.
//
//   fp32-kernels ARCH WEIGHTS.pth
//
// Exit status 0 if every image comes within cosine 0.99999, 1 if not, 77
// (skipped) if the build has no oneDNN path.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/model/embedding_engine.h"

static std::unique_ptr<vs::EmbeddingEngine>
make_engine (const char *arch, const char *weights, const char *kernels)
{
  setenv ("VISUALSEARCH_FP32_KERNELS", kernels, 1);
  vs::EmbeddingConfig config;
  config.model = arch;
  config.weights = weights;
  config.precision = vs::Precision::FP32;
  config.normalize = false;
  config.threads = 2;
  return std::make_unique<vs::EmbeddingEngine> (config);
}

static int compare (const char *arch, const char *weights);

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
  std::printf ("aten: %s\nonednn: %s\n", aten->kernels ().c_str (),
      onednn->kernels ().c_str ());
  if (onednn->kernels_degraded ()) {
    std::printf ("FAIL oneDNN fell back to ATen's ops\n");
    return 1;
  }
  if (onednn->kernels ().rfind ("oneDNN", 0) != 0) {
    std::printf ("SKIP this build has no oneDNN path (libdnnl-dev)\n");
    return 77;
  }

  struct Shape
  {
    int n, h, w;
  };
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
        aten->embed_preprocessed (x.data (), s.n, s.h, s.w);
    const std::vector<float> b =
        onednn->embed_preprocessed (x.data (), s.n, s.h, s.w);
    const size_t dims = aten->dims ();
    for (int i = 0; i < s.n; ++i) {
      double ab = 0, aa = 0, bb = 0;
      for (size_t d = i * dims; d < (i + 1) * dims; ++d) {
        ab += double (a[d]) * b[d];
        aa += double (a[d]) * a[d];
        bb += double (b[d]) * b[d];
      }
      const double cosine = ab / std::sqrt (aa * bb);
      const bool ok = cosine >= 0.99999;
      failures += !ok;
      std::printf ("%s %s n=%d %dx%d image %d: cosine %.7f\n",
          ok ? "ok  " : "FAIL", arch, s.n, s.w, s.h, i, cosine);
    }
  }
  if (onednn->kernels_degraded ()) {
    std::printf ("FAIL oneDNN fell back to ATen's ops: %s\n",
        onednn->kernels ().c_str ());
    return 1;
  }
  return failures ? 1 : 0;
}
