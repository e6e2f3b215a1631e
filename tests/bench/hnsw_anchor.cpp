// SPDX-License-Identifier: LGPL-2.1-or-later
// The hnswlib anchor of docs/SCALING.md: hnswlib (Debian's libhnswlib-dev, the
// reference HNSW, header-only), compiled here with -march=native so that its
// distances are the AVX/AVX-512 ones, on the vectors bench_scale.py searches.
// Never installed, not part of the plugin; built only when the header is
// found.
//
//   hnsw-anchor BASE.f32 QUERIES.f32 EXACT.i64 DIMS K M EF_CONSTRUCTION GRAPH EF,EF,...
//               [FULL_BASE.f32 FULL_QUERIES.f32 FULL_DIMS FACTOR]
//
// BASE.f32 and QUERIES.f32 are little-endian float32 rows of DIMS, EXACT.i64
// the exact K nearest of each query (int64 row numbers). GRAPH is the index
// file: built (all cores) and saved when missing, else loaded. Then, for each
// ef, every query is searched once, in file order, one at a time on this one
// thread; one line each:
//   ef E recall R... cpu_ms C... (the recall@K and CPU ms a query of every query)
// and the per-query recall and CPU ns on lines "q I RECALL NS" after each,
// so that bench_scale.py can split them by query kind. With the last four,
// BASE and QUERIES are projections (e.g. PCA128) of FULL_BASE and
// FULL_QUERIES: the graph's K x FACTOR best are re-ranked by their exact l2
// distance over the full vectors (hnswlib's own SIMD distance), as
// PCA128,HNSW32,RFlat does; the time includes the re-ranking.
#include <hnswlib/hnswlib.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

template <typename T>
std::vector<T>
read_all (const std::string &path)
{
  std::ifstream in (path, std::ios::binary | std::ios::ate);
  if (!in)
    throw std::runtime_error ("cannot open " + path);
  const std::streamsize bytes = in.tellg ();
  if (bytes % static_cast<std::streamsize> (sizeof (T)) != 0)
    throw std::runtime_error (path + ": size is not a whole number of values");
  std::vector<T> data (static_cast<size_t> (bytes) / sizeof (T));
  in.seekg (0);
  if (!in.read (reinterpret_cast<char *> (data.data ()), bytes))
    throw std::runtime_error ("cannot read " + path);
  return data;
}

double
thread_cpu_ns ()
{
  timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double
process_cpu_s ()
{
  rusage usage;
  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec
      + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

size_t
parse_size (const char *text, const char *what)
{
  char *end = nullptr;
  const long long value = std::strtoll (text, &end, 10);
  if (!*text || *end || value <= 0)
    throw std::runtime_error (std::string (what)
        + " must be a positive integer, got '" + text + "'");
  return static_cast<size_t> (value);
}

} // namespace

int
main (int argc, char **argv)
{
  if (argc != 10 && argc != 14) {
    std::fprintf (stderr,
        "usage: %s BASE.f32 QUERIES.f32 EXACT.i64 DIMS K M EF_CONSTRUCTION "
        "GRAPH EF,EF,... [FULL_BASE.f32 FULL_QUERIES.f32 FULL_DIMS FACTOR]\n",
        argv[0]);
    return 2;
  }
  try {
    const size_t dims = parse_size (argv[4], "DIMS"),
                 k = parse_size (argv[5], "K");
    const size_t m = parse_size (argv[6], "M"),
                 ef_construction = parse_size (argv[7], "EF_CONSTRUCTION");
    const std::string graph_path = argv[8];
    std::vector<size_t> efs;
    std::stringstream list (argv[9]);
    for (std::string item; std::getline (list, item, ',');)
      efs.push_back (parse_size (item.c_str (), "EF"));

    const std::vector<float> queries = read_all<float> (argv[2]);
    const std::vector<int64_t> exact = read_all<int64_t> (argv[3]);
    if (queries.size () % dims)
      throw std::runtime_error ("QUERIES.f32 is not rows of DIMS floats");
    const size_t nq = queries.size () / dims;
    if (exact.size () != nq * k)
      throw std::runtime_error ("EXACT.i64 holds "
          + std::to_string (exact.size ())
          + " ids, expected queries x K = " + std::to_string (nq * k));

    // L2 on unit vectors ranks as the inner product does; it is the metric of
    // the PCA128,HNSW32,RFlat graph bench_scale.py measures beside this.
    hnswlib::L2Space space (dims);
    std::unique_ptr<hnswlib::HierarchicalNSW<float> > graph;
    std::ifstream probe (graph_path);
    if (probe.good ()) {
      probe.close ();
      graph = std::make_unique<hnswlib::HierarchicalNSW<float> > (&space,
          graph_path);
      std::printf ("graph %s loaded: %zu vectors\n", graph_path.c_str (),
          static_cast<size_t> (graph->cur_element_count));
    } else {
      const std::vector<float> base = read_all<float> (argv[1]);
      if (base.size () % dims)
        throw std::runtime_error ("BASE.f32 is not rows of DIMS floats");
      const size_t n = base.size () / dims;
      graph = std::make_unique<hnswlib::HierarchicalNSW<float> > (&space, n, m,
          ef_construction, 100);
      const auto t0 = std::chrono::steady_clock::now ();
      const double c0 = process_cpu_s ();
      const unsigned threads =
          std::max (1u, std::thread::hardware_concurrency ());
      std::atomic<size_t> next{0};
      std::vector<std::thread> workers;
      for (unsigned t = 0; t < threads; ++t)
        workers.emplace_back ([&] {
          for (size_t i; (i = next.fetch_add (1)) < n;)
            graph->addPoint (base.data () + i * dims, i);
        });
      for (auto &w : workers)
        w.join ();
      const double seconds =
          std::chrono::duration<double> (std::chrono::steady_clock::now () - t0)
              .count ();
      const std::string tmp = graph_path + ".tmp";
      graph->saveIndex (tmp);
      if (std::rename (tmp.c_str (), graph_path.c_str ()) != 0)
        throw std::runtime_error ("cannot rename " + tmp + " to " + graph_path);
      std::printf ("graph built: %zu vectors, M %zu, efConstruction %zu, %.1f "
                   "s wall, %.1f s CPU, "
                   "%u threads\n",
          n, m, ef_construction, seconds, process_cpu_s () - c0, threads);
    }
#if defined(USE_AVX512)
    std::printf ("distances: hnswlib's AVX-512\n");
#elif defined(USE_AVX)
    std::printf ("distances: hnswlib's AVX\n");
#else
    std::printf ("distances: hnswlib's SSE or scalar\n");
#endif

    // The re-ranking stage, when asked for.
    std::vector<float> full_base, full_queries;
    size_t full_dims = 0, factor = 1;
    std::unique_ptr<hnswlib::L2Space> full_space;
    if (argc == 14) {
      full_base = read_all<float> (argv[10]);
      full_queries = read_all<float> (argv[11]);
      full_dims = parse_size (argv[12], "FULL_DIMS");
      factor = parse_size (argv[13], "FACTOR");
      if (full_queries.size () != nq * full_dims
          || full_base.size () % full_dims
          || full_base.size () / full_dims != graph->cur_element_count)
        throw std::runtime_error ("FULL_BASE/FULL_QUERIES do not match "
                                  "BASE/QUERIES in rows");
      full_space = std::make_unique<hnswlib::L2Space> (full_dims);
      std::printf ("re-ranking the %zu x %zu best over %zu dims\n", k, factor,
          full_dims);
    }

    for (size_t ef : efs) {
      graph->setEf (std::max (ef, k * factor));
      std::vector<double> recalls (nq), nanoseconds (nq);
      for (size_t q = 0; q < nq; ++q) {
        const double c0 = thread_cpu_ns ();
        auto found = graph->searchKnn (queries.data () + q * dims, k * factor);
        std::vector<std::pair<float, int64_t> > best;
        for (; !found.empty (); found.pop ())
          best.emplace_back (found.top ().first,
              static_cast<int64_t> (found.top ().second));
        if (full_space) {
          const auto distance = full_space->get_dist_func ();
          const void *param = full_space->get_dist_func_param ();
          for (auto &hit : best)
            hit.first = distance (full_queries.data () + q * full_dims,
                full_base.data () + hit.second * full_dims, param);
          std::sort (best.begin (), best.end ());
          if (best.size () > k)
            best.resize (k);
        }
        nanoseconds[q] = thread_cpu_ns () - c0;
        std::set<int64_t> truth (exact.begin () + q * k,
            exact.begin () + (q + 1) * k);
        size_t hits = 0;
        for (const auto &hit : best)
          hits += truth.count (hit.second);
        recalls[q] = static_cast<double> (hits) / k;
      }
      double recall = 0, ns = 0;
      for (size_t q = 0; q < nq; ++q)
        recall += recalls[q], ns += nanoseconds[q];
      std::printf ("ef %zu recall %.4f cpu_ms %.4f\n", ef, recall / nq,
          ns / nq / 1e6);
      for (size_t q = 0; q < nq; ++q)
        std::printf ("q %zu %.2f %.0f\n", q, recalls[q], nanoseconds[q]);
    }
  } catch (const std::exception &e) {
    std::fprintf (stderr, "hnsw-anchor: %s\n", e.what ());
    return 1;
  }
  return 0;
}
