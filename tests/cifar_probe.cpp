// SPDX-License-Identifier: LGPL-2.1-or-later
// Prints what CifarDataset reads, for test_cifar_dataset.py:
//   cifar_probe LOCATION train|test|all fine|coarse strict|lenient OUT.rgb
// prints "name", "size", "warning" and one "record" line per record (source,
// label, label name, find() of its source) and writes the RGB of every record
// to OUT.rgb. A vs::Error prints "ERROR: <message>" and exits 2.
//   cifar_probe cuts BATCH SCRATCH_DIR < SIZES
// for each size read from stdin, writes the batch file cut to that many bytes
// to SCRATCH_DIR under the batch's name and opens it not strict: prints "cut
// <bytes> <records kept>", or "cut <bytes> ERROR <message>", and "MISMATCH"
// when a kept record differs from the same record of the whole file.
//   cifar_probe fuzz DIR FILE SCRATCH_DIR COUNT SEED
// copies the dataset DIR to SCRATCH_DIR and COUNT times replaces FILE there
// with a mutated copy (bytes overwritten, cut short, bytes inserted or
// removed), then opens SCRATCH_DIR (split all) strict and not strict. Prints
// "fuzz <tried> <refused> <loaded>" (counting both opens); anything but a
// vs::Error or a consistent dataset ends the process.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/dataset/cifar_dataset.h"
#include "engine/base/error.h"
#include "engine/base/utf8.h"

namespace {

std::string
read_bytes (const std::string &path)
{
  std::ifstream in (path, std::ios::binary);
  return std::string ((std::istreambuf_iterator<char> (in)),
      std::istreambuf_iterator<char> ());
}

void
write_bytes (const std::string &path, const std::string &data, size_t size)
{
  std::ofstream out (path, std::ios::binary | std::ios::trunc);
  out.write (data.data (), std::streamsize (size));
}

std::vector<uint8_t>
all_rgb (const vs::CifarDataset &ds)
{
  std::vector<uint8_t> rgb (ds.size () * vs::CifarDataset::kImageBytes);
  for (size_t i = 0; i < ds.size (); ++i)
    ds.rgb (i, rgb.data () + i * vs::CifarDataset::kImageBytes);
  return rgb;
}

int
cmd_read (char **argv)
{
  const std::string split = argv[2];
  vs::CifarOptions options;
  options.split = split == "test" ? vs::CifarSplit::Test
      : split == "all"            ? vs::CifarSplit::All
                                  : vs::CifarSplit::Train;
  options.label_kind = std::string (argv[3]) == "coarse"
      ? vs::CifarLabelKind::Coarse
      : vs::CifarLabelKind::Fine;
  options.strict = std::string (argv[4]) == "strict";
  vs::CifarDataset ds = vs::CifarDataset::open (argv[1], options);
  std::printf ("name\t%s\nsize\t%zu\n", ds.name ().c_str (), ds.size ());
  for (const std::string &w : ds.warnings ())
    std::printf ("warning\t%s\n", w.c_str ());
  std::ofstream out (argv[5], std::ios::binary | std::ios::trunc);
  std::vector<uint8_t> rgb (vs::CifarDataset::kImageBytes);
  for (size_t i = 0; i < ds.size (); ++i) {
    std::string dataset;
    vs::CifarSplit s;
    int64_t index = -1;
    const std::string source = ds.source (i);
    bool parsed = vs::parse_cifar_source (source, &dataset, &s, &index);
    std::printf ("record\t%s\t%d\t%s\t%lld\n", source.c_str (), ds.label (i),
        ds.label_name (ds.label (i)).c_str (),
        parsed ? static_cast<long long> (ds.find (s, index)) : -2LL);
    ds.rgb (i, rgb.data ());
    out.write (reinterpret_cast<const char *> (rgb.data ()),
        std::streamsize (rgb.size ()));
  }
  return 0;
}

int
cmd_cuts (const std::string &batch, const std::string &scratch)
{
  vs::CifarOptions options;
  options.strict = false;
  const vs::CifarDataset whole = vs::CifarDataset::open (batch, options);
  const std::vector<uint8_t> whole_rgb = all_rgb (whole);
  const std::string data = read_bytes (batch);
  const std::string cut_path =
      scratch + "/" + std::filesystem::path (batch).filename ().string ();
  for (size_t n; std::scanf ("%zu", &n) == 1 && n <= data.size ();) {
    write_bytes (cut_path, data, n);
    try {
      const vs::CifarDataset ds = vs::CifarDataset::open (cut_path, options);
      bool same = ds.size () <= whole.size ();
      const std::vector<uint8_t> rgb = all_rgb (ds);
      for (size_t i = 0; same && i < ds.size (); ++i)
        same = ds.label (i) == whole.label (i);
      same = same && std::equal (rgb.begin (), rgb.end (), whole_rgb.begin ());
      std::printf ("cut\t%zu\t%zu%s\n", n, ds.size (),
          same ? "" : "\tMISMATCH");
    } catch (const vs::Error &e) {
      std::printf ("cut\t%zu\tERROR\t%s\n", n, e.what ());
    }
  }
  return 0;
}

std::string
mutate (const std::string &good, std::mt19937 &rng)
{
  std::string bad = good;
  switch (rng () % 4) {
    case 0: // overwrite 1-4 bytes
      for (size_t c = 1 + rng () % 4; c > 0 && !bad.empty (); --c)
        bad[rng () % bad.size ()] = char (rng ());
      break;
    case 1: // cut short
      bad.resize (good.empty () ? 0 : rng () % good.size ());
      break;
    case 2: // insert 1-16 bytes
      bad.insert (good.empty () ? 0 : rng () % good.size (),
          std::string (1 + rng () % 16, char (rng ())));
      break;
    default: // remove 1-16 bytes
      if (!bad.empty ())
        bad.erase (rng () % bad.size (), 1 + rng () % 16);
      break;
  }
  return bad;
}

// A dataset that opened must be whole: every record readable, every label in
// range with a name, every name valid UTF-8.
void
check_consistent (const vs::CifarDataset &ds)
{
  const size_t classes = ds.name () == "cifar10" ? 10 : 100;
  if (ds.label_names ().size () != classes)
    throw std::logic_error ("wrong number of label names");
  for (const std::string &name : ds.label_names ())
    if (!vs::is_valid_utf8 (name))
      throw std::logic_error ("a label name is not UTF-8");
  std::vector<uint8_t> rgb (vs::CifarDataset::kImageBytes);
  for (size_t i = 0; i < ds.size (); ++i) {
    if (ds.label (i) < 0 || size_t (ds.label (i)) >= classes)
      throw std::logic_error ("a label out of range");
    const bool test = std::string (ds.split_name (i)) == "test";
    if (ds.find (test ? vs::CifarSplit::Test : vs::CifarSplit::Train,
            ds.split_index (i))
        != int64_t (i))
      throw std::logic_error ("find() does not give a record back");
    ds.rgb (i, rgb.data ());
  }
}

int
cmd_fuzz (const std::string &dir, const std::string &file,
    const std::string &scratch, int count, unsigned seed)
{
  namespace fs = std::filesystem;
  fs::remove_all (scratch);
  fs::copy (dir, scratch);
  const std::string target = scratch + "/" + file;
  const std::string good = read_bytes (target);
  std::mt19937 rng (seed);
  size_t tried = 0, refused = 0, loaded = 0;
  for (int k = 0; k < count; ++k) {
    const std::string bad = mutate (good, rng);
    write_bytes (target, bad, bad.size ());
    for (const bool strict : {true, false}) {
      vs::CifarOptions options;
      options.split = vs::CifarSplit::All;
      options.strict = strict;
      ++tried;
      try {
        check_consistent (vs::CifarDataset::open (scratch, options));
        ++loaded;
      } catch (const vs::Error &) {
        ++refused;
      }
    }
  }
  std::printf ("fuzz\t%zu\t%zu\t%zu\n", tried, refused, loaded);
  return 0;
}

} // namespace

int
main (int argc, char **argv)
{
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "cuts" && argc == 4)
      return cmd_cuts (argv[2], argv[3]);
    if (cmd == "fuzz" && argc == 7)
      return cmd_fuzz (argv[2], argv[3], argv[4], std::stoi (argv[5]),
          unsigned (std::stoul (argv[6])));
    if (argc == 6)
      return cmd_read (argv);
  } catch (const vs::Error &e) {
    std::printf ("ERROR: %s\n", e.what ());
    return 2;
  }
  std::fprintf (stderr,
      "usage: %s LOCATION SPLIT KIND STRICT OUT | cuts BATCH SCRATCH_DIR | "
      "fuzz DIR FILE SCRATCH_DIR COUNT SEED\n",
      argv[0]);
  return 64;
}
