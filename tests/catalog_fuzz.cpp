// SPDX-License-Identifier: LGPL-2.1-or-later
// Seeded mutation fuzzing of catalog loading: a valid catalog (items with
// labels, names, sources and thumbnails, facts with the index binding and the
// embedder settings, files found unreadable) is
// written, then COUNT mutated copies (bytes flipped, ranges overwritten, the
// file cut short) are loaded through vs::Catalog::load and, when that
// succeeds, read back whole: every item, label counts, every thumbnail, the
// embedder settings.
// A damaged catalog may load or be refused with vs::Error; anything else (a
// crash, another exception, an item that breaks the catalog's own promises)
// fails.
//
//   catalog-fuzz SEED COUNT
//
// Works in a temporary directory, removed at the end unless a mutation fails
// (then its file is kept there as failing.db). stdout: "tried N refused R
// loaded L".
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "engine/index/catalog.h"
#include "engine/base/error.h"
#include "engine/base/utf8.h"

namespace {

std::vector<char>
read_file (const std::string &path)
{
  std::ifstream in (path, std::ios::binary);
  return std::vector<char> (std::istreambuf_iterator<char> (in), {});
}

void
write_file (const std::string &path, const std::vector<char> &bytes)
{
  std::ofstream (path, std::ios::binary | std::ios::trunc)
      .write (bytes.data (), bytes.size ());
}

// Reads everything a search or an overlay would; false when the loaded
// catalog breaks a promise of catalog.h.
bool
read_back (const vs::Catalog &catalog)
{
  if (!vs::is_valid_utf8 (catalog.facts ().embedder_config))
    return false;
  const auto &items = catalog.items ();
  for (size_t i = 0; i < items.size (); ++i) {
    const vs::CatalogItem &item = items[i];
    if ((i > 0 && item.id <= items[i - 1].id)
        || catalog.item (item.id) != &item)
      return false;
    if (!vs::is_valid_utf8 (item.label_name)
        || !vs::is_valid_utf8 (item.source))
      return false;
    if (item.file && item.file->path.size () > (1 << 20))
      return false;
    catalog.count_label (item.label);
    try {
      catalog.thumbnail (item.id);
    } catch (const vs::Error &) {
      // A damaged thumbnail is the reader's to report, item by item.
    }
  }
  for (const vs::RejectedFile &entry : catalog.rejected_files ())
    if (!vs::is_valid_utf8 (entry.reason)
        || entry.file.path.size () > (1 << 20))
      return false;
  return catalog.item (items.empty () ? 0 : items.back ().id + 1) == nullptr;
}

} // namespace

int
main (int argc, char **argv)
{
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " SEED COUNT\n";
    return 2;
  }
  char tmpl[] = "/tmp/catalog-fuzz-XXXXXX";
  if (!mkdtemp (tmpl)) {
    std::perror ("mkdtemp");
    return 2;
  }
  const std::string dir = tmpl;
  const std::string valid = dir + "/valid.db", mutated = dir + "/mutated.db";
  std::mt19937_64 rng (std::stoull (argv[1]));
  const int count = std::stoi (argv[2]);

  vs::IndexFacts facts;
  facts.model_id = "resnet18:random-seed42";
  facts.preprocessing_id =
      "rgb;resize=0;crop=32;mean=0.485,0.456,0.406;std=0.229,0.224,0.225";
  facts.dims = 512;
  facts.metric = "ip";
  facts.index_type = "Flat";
  facts.created = vs::utc_timestamp_now ();
  facts.embedder_config =
      "visualsearch-embedder-config, model=(string)/models/caf\xc3\xa9.pt, "
      "input-size=(int)224, "
      "resize=(int)256, mean=(string)\"0.485\\,0.456\\,0.406\";";
  std::vector<vs::CatalogItem> items;
  for (int i = 0; i < 60; ++i) {
    vs::CatalogItem item;
    item.id = i + i / 10; // holes, as an updated gallery has
    item.label = i % 7;
    item.label_name = i % 2 ? "caf\xc3\xa9 " + std::to_string (i % 7)
                            : "class " + std::to_string (i % 7);
    item.source = "gallery/" + std::to_string (i) + ".jpg";
    item.thumbnail.assign (40 + i, static_cast<uint8_t> (i));
    if (i % 3)
      item.file = vs::FileIdentity{item.source, 1000 + i,
          1700000000000000000 + i, i % 2 ? i * 0.5 : -1.0};
    items.push_back (item);
  }
  facts.count = static_cast<int64_t> (items.size ());
  std::vector<vs::RejectedFile> rejected;
  for (int i = 0; i < 5; ++i)
    rejected.push_back ({vs::FileIdentity{"bad/" + std::to_string (i) + ".txt",
                             10 + i, 1700000000000000000 + i, -1},
        "bad/" + std::to_string (i) + ".txt is neither an image nor a video"});
  vs::Catalog::write_atomically (valid, facts, items, rejected);
  const std::vector<char> original = read_file (valid);
  if (!read_back (vs::Catalog::load (valid))) {
    std::cerr << "FAIL the valid catalog does not read back\n";
    return 1;
  }

  int refused = 0, loaded = 0;
  for (int n = 0; n < count; ++n) {
    std::vector<char> bytes = original;
    switch (rng () % 4) {
      case 0: // a few bytes flipped anywhere
        for (int k = 1 + rng () % 8; k > 0; --k)
          bytes[rng () % bytes.size ()] ^= 1 << (rng () % 8);
        break;
      case 1: { // a range overwritten with noise
        const size_t at = rng () % bytes.size (), len = 1 + rng () % 64;
        for (size_t k = at; k < bytes.size () && k < at + len; ++k)
          bytes[k] = char (rng ());
        break;
      }
      case 2: // cut short
        bytes.resize (rng () % bytes.size ());
        break;
      default: { // a 32-bit field (lengths, page numbers, counts) set to an extreme
        const size_t at = rng () % (bytes.size () - 4);
        const uint32_t v = rng () % 2 ? 0xffffffffu : uint32_t (rng ());
        for (int k = 0; k < 4; ++k)
          bytes[at + k] = char (v >> (24 - 8 * k));
        break;
      }
    }
    write_file (mutated, bytes);
    try {
      const vs::Catalog catalog = vs::Catalog::load (mutated);
      if (!read_back (catalog)) {
        std::cerr << "FAIL mutation " << n
                  << ": a loaded catalog breaks its promises\n";
        write_file (dir + "/failing.db", bytes);
        return 1;
      }
      ++loaded;
    } catch (const vs::Error &) {
      ++refused;
    } catch (const std::exception &e) {
      std::cerr << "FAIL mutation " << n << ": " << e.what ()
                << " (not a vs::Error)\n";
      write_file (dir + "/failing.db", bytes);
      return 1;
    }
  }
  std::cout << "tried " << count << " refused " << refused << " loaded "
            << loaded << "\n";
  std::remove (valid.c_str ());
  std::remove (mutated.c_str ());
  ::rmdir (dir.c_str ());
  return 0;
}
