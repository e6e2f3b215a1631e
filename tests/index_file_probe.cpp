// SPDX-License-Identifier: LGPL-2.1-or-later
// Loads FAISS index files the way faisssearch does (vs::IndexStore::load),
// for test_index_file.py.
//
//   index-file-probe load FILE
//       loads FILE and, if it loads, searches a few queries. Prints
//       "loaded <vectors>"; a refusal prints its message to stderr, exit 1.
//   index-file-probe map FILE
//       loads FILE as faisssearch mmap=true does (IndexLoadMode::Map) and as
//       without it, and searches the same queries in both, one at a time and
//       in a batch (FAISS's BLAS path): the hits must be equal. Prints
//       "mapped yes|no loaded <vectors>"; a refusal prints its message to
//       stderr, exit 1; different hits exit 2.
//   index-file-probe peak FILE
//       loads FILE (IndexLoadMode::Copy) and prints "grew <KiB>": how much the
//       peak resident memory (VmHWM) rose while it loaded.
//   index-file-probe peak-map FILE
//       the same with IndexLoadMode::Map.
//   index-file-probe truncate FILE...
//       every proper prefix of every FILE, checked and read from memory
//       (vs::read_index_bytes): all must be refused. Prints "tried N refused R
//       loaded L".
//   index-file-probe fuzz SEED ROUNDS SCRATCH FILE...
//       ROUNDS mutations of each FILE (byte flips, planted integers,
//       truncations, insertions, deletions, from a generator seeded with SEED),
//       each written to SCRATCH, loaded and on success searched. Prints
//       "tried N refused R loaded L", and how many refusals came from FAISS's
//       own reader rather than the checks before it.
// Anything but a vs::Error escaping a load or search (a FAISS exception, a
// failed allocation) aborts the probe, and so does a crash: the test sees it.
#include <faiss/Index.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "engine/base/error.h"
#include "engine/index/index_file.h"
#include "engine/index/index_store.h"

namespace {

std::vector<uint8_t>
read_file (const std::string &path)
{
  std::ifstream in (path, std::ios::binary);
  return std::vector<uint8_t> ((std::istreambuf_iterator<char> (in)),
      std::istreambuf_iterator<char> ());
}

void
write_file (const std::string &path, const uint8_t *data, size_t size)
{
  std::ofstream out (path, std::ios::binary | std::ios::trunc);
  out.write (reinterpret_cast<const char *> (data), size);
  if (!out)
    throw std::runtime_error ("cannot write " + path);
}

struct Counts
{
  int64_t tried = 0, refused = 0, loaded = 0, refused_by_faiss = 0;

  void count (bool loaded_ok, const std::string &message)
  {
    tried++;
    if (loaded_ok) {
      loaded++;
      return;
    }
    refused++;
    if (message.find ("FAISS cannot read it") != std::string::npos)
      refused_by_faiss++;
  }
  void print () const
  {
    std::printf ("tried %lld refused %lld loaded %lld (refused by FAISS's "
                 "reader: %lld)\n",
        (long long) tried, (long long) refused, (long long) loaded,
        (long long) refused_by_faiss);
  }
};

// Loads and searches like faisssearch; false with the message on a refusal.
bool
load_and_search (const std::string &path, std::string *message,
    int64_t *vectors)
{
  try {
    const vs::IndexStore store = vs::IndexStore::load (path);
    std::mt19937 rng (1);
    std::normal_distribution<float> normal;
    const int queries = 3;
    std::vector<float> q (size_t (queries) * store.dims ());
    for (float &x : q)
      x = normal (rng);
    store.search (q.data (), queries, 5, vs::SearchParams{});
    *vectors = store.size ();
    return true;
  } catch (const vs::Error &e) {
    *message = e.what ();
    return false;
  }
}

// Queries of dims() floats, the same for every call.
std::vector<float>
queries (int n, int dims)
{
  std::mt19937 rng (2);
  std::normal_distribution<float> normal;
  std::vector<float> q (size_t (n) * dims);
  for (float &x : q)
    x = normal (rng);
  return q;
}

bool
same_hits (const std::vector<std::vector<vs::Hit> > &a,
    const std::vector<std::vector<vs::Hit> > &b)
{
  if (a.size () != b.size ())
    return false;
  for (size_t q = 0; q < a.size (); ++q) {
    if (a[q].size () != b[q].size ())
      return false;
    for (size_t j = 0; j < a[q].size (); ++j)
      if (a[q][j].id != b[q][j].id || a[q][j].distance != b[q][j].distance)
        return false;
  }
  return true;
}

int
map_and_compare (const std::string &path)
{
  try {
    const vs::IndexStore mapped =
        vs::IndexStore::load (path, vs::IndexLoadMode::Map);
    const vs::IndexStore copied = vs::IndexStore::load (path);
    if (mapped.file_digest () != copied.file_digest ()) {
      std::fprintf (stderr, "the digests differ\n");
      return 2;
    }
    for (int n : {1, 3, 40}) {
      const std::vector<float> q = queries (n, mapped.dims ());
      const int k = 7;
      if (!same_hits (mapped.search (q.data (), n, k, vs::SearchParams{}),
              copied.search (q.data (), n, k, vs::SearchParams{}))) {
        std::fprintf (stderr, "%d queries: the mapped index finds other hits\n",
            n);
        return 2;
      }
    }
    std::printf ("mapped %s loaded %lld\n", mapped.mapped () ? "yes" : "no",
        (long long) mapped.size ());
    return 0;
  } catch (const vs::Error &e) {
    std::fprintf (stderr, "%s\n", e.what ());
    return 1;
  }
}

long
peak_kib ()
{
  std::ifstream status ("/proc/self/status");
  std::string line;
  while (std::getline (status, line))
    if (line.rfind ("VmHWM:", 0) == 0)
      return std::stol (line.substr (6));
  return -1;
}

int
load_peak (const std::string &path, vs::IndexLoadMode mode)
{
  const long before = peak_kib ();
  const vs::IndexStore store = vs::IndexStore::load (path, mode);
  std::printf ("grew %ld\n", peak_kib () - before);
  return 0;
}

void
try_bytes (const std::string &scratch, const std::vector<uint8_t> &bytes,
    Counts &counts)
{
  write_file (scratch, bytes.data (), bytes.size ());
  std::string message;
  int64_t vectors = 0;
  const bool loaded = load_and_search (scratch, &message, &vectors);
  counts.count (loaded, message);
}

// One random change of the kinds a damaged disk, a bad copy or a hostile
// file make; planted integers hit the counts and sizes the format is full of.
std::vector<uint8_t>
mutate (const std::vector<uint8_t> &original, std::mt19937_64 &rng)
{
  std::vector<uint8_t> bytes = original;
  auto pick = [&rng] (size_t n) { return n == 0 ? 0 : size_t (rng () % n); };
  switch (rng () % 6) {
    case 0: { // a few bit flips
      const int flips = 1 + int (rng () % 4);
      for (int i = 0; i < flips && !bytes.empty (); ++i)
        bytes[pick (bytes.size ())] ^= 1u << (rng () % 8);
      break;
    }
    case 1: // a random byte
      if (!bytes.empty ())
        bytes[pick (bytes.size ())] = uint8_t (rng ());
      break;
    case 2: { // an interesting 4- or 8-byte integer
      static const uint64_t kValues[] = {0, 1, 2, 0xff, 0x7fffffff, 0x80000000,
          0xffffffff, uint64_t (1) << 32, uint64_t (1) << 40, ~uint64_t (0),
          uint64_t (-2), 9999, 1u << 20};
      const uint64_t value =
          kValues[rng () % (sizeof (kValues) / sizeof (kValues[0]))];
      const size_t width = rng () % 2 ? 8 : 4;
      if (bytes.size () >= width) {
        const size_t at = pick (bytes.size () - width + 1);
        for (size_t i = 0; i < width; ++i)
          bytes[at + i] = uint8_t (value >> (8 * i));
      }
      break;
    }
    case 3: // truncation
      bytes.resize (pick (bytes.size ()));
      break;
    case 4: { // insertion
      const size_t at = pick (bytes.size () + 1);
      const size_t n = 1 + rng () % 16;
      std::vector<uint8_t> extra (n);
      for (uint8_t &b : extra)
        b = uint8_t (rng ());
      bytes.insert (bytes.begin () + at, extra.begin (), extra.end ());
      break;
    }
    default: { // deletion
      if (bytes.empty ())
        break;
      const size_t at = pick (bytes.size ());
      const size_t n = std::min<size_t> (bytes.size () - at, 1 + rng () % 16);
      bytes.erase (bytes.begin () + at, bytes.begin () + at + n);
      break;
    }
  }
  return bytes;
}

int
usage ()
{
  std::fprintf (stderr,
      "usage: index-file-probe load FILE\n"
      "       index-file-probe truncate FILE...\n"
      "       index-file-probe fuzz SEED ROUNDS SCRATCH FILE...\n");
  return 2;
}

} // namespace

int
main (int argc, char **argv)
{
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "load" && argc == 3) {
    std::string message;
    int64_t vectors = 0;
    if (!load_and_search (argv[2], &message, &vectors)) {
      std::fprintf (stderr, "%s\n", message.c_str ());
      return 1;
    }
    std::printf ("loaded %lld\n", (long long) vectors);
    return 0;
  }
  if (mode == "map" && argc == 3)
    return map_and_compare (argv[2]);
  if (mode == "peak" && argc == 3)
    return load_peak (argv[2], vs::IndexLoadMode::Copy);
  if (mode == "peak-map" && argc == 3)
    return load_peak (argv[2], vs::IndexLoadMode::Map);
  if (mode == "truncate" && argc >= 3) {
    Counts counts;
    for (int f = 2; f < argc; ++f) {
      const std::vector<uint8_t> original = read_file (argv[f]);
      for (size_t size = 0; size < original.size (); ++size) {
        try {
          vs::read_index_bytes (std::vector<uint8_t> (original.begin (),
                                    original.begin () + size),
              argv[f]);
          counts.count (true, "");
        } catch (const vs::Error &e) {
          counts.count (false, e.what ());
        }
      }
    }
    counts.print ();
    return counts.loaded == 0 ? 0 : 1;
  }
  if (mode == "fuzz" && argc >= 6) {
    std::mt19937_64 rng (std::stoull (argv[2]));
    const int rounds = std::stoi (argv[3]);
    Counts counts;
    for (int f = 5; f < argc; ++f) {
      const std::vector<uint8_t> original = read_file (argv[f]);
      for (int r = 0; r < rounds; ++r)
        try_bytes (argv[4], mutate (original, rng), counts);
    }
    counts.print ();
    return 0;
  }
  return usage ();
}
