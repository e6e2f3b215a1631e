// SPDX-License-Identifier: LGPL-2.1-or-later
// IndexStore, Catalog and the atomic file set, without a pipeline.
#include <glib.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/atomic_file.h"
#include "engine/index/catalog.h"
#include "engine/index/file_inventory.h"
#include "engine/base/error.h"
#include "engine/index/gallery.h"
#include "engine/index/index_builder.h"
#include "engine/index/index_store.h"
#include "engine/base/utf8.h"

namespace {

std::string tmp_dir;

std::string
tmp_path (const char *name)
{
  return tmp_dir + "/" + name;
}

std::vector<float>
random_vectors (int64_t n, int dims, unsigned seed)
{
  std::mt19937 rng (seed);
  std::normal_distribution<float> normal;
  std::vector<float> v (n * dims);
  for (float &x : v)
    x = normal (rng);
  return v;
}

// The message of the vs::Error that f throws; fails the test if none.
template <typename F>
std::string
error_of (F &&f)
{
  try {
    f ();
  } catch (const vs::Error &e) {
    return e.what ();
  }
  g_assert_not_reached ();
  return {};
}

void
assert_contains (const std::string &text, const std::string &part)
{
  if (text.find (part) == std::string::npos)
    g_error ("expected \"%s\" in \"%s\"", part.c_str (), text.c_str ());
}

void
test_flat_add_search_reconstruct ()
{
  const int dims = 8;
  auto data = random_vectors (50, dims, 1);
  auto store = vs::IndexStore::create ("Flat", dims, vs::Metric::L2);
  g_assert_false (store.needs_training ());
  g_assert_cmpint (store.min_training_vectors (), ==, 0);
  store.add (data.data (), 50);
  g_assert_cmpint (store.size (), ==, 50);
  g_assert_cmpint (store.dims (), ==, dims);

  auto hits = store.search (data.data () + 7 * dims, 1, 3, {});
  g_assert_cmpuint (hits.size (), ==, 1);
  g_assert_cmpuint (hits[0].size (), ==, 3);
  g_assert_cmpint (hits[0][0].id, ==, 7);
  g_assert_cmpfloat (hits[0][0].distance, ==, 0.0f);
  g_assert_cmpfloat (hits[0][1].distance, >=, hits[0][0].distance);

  // k beyond the index size: FAISS's -1 padding is dropped.
  hits = store.search (data.data (), 1, 80, {});
  g_assert_cmpuint (hits[0].size (), ==, 50);

  auto back = store.reconstruct (11);
  for (int d = 0; d < dims; ++d)
    g_assert_cmpfloat (back[d], ==, data[11 * dims + d]);
  assert_contains (error_of ([&] { store.reconstruct (50); }), "out of range");
}

void
test_training_minimums ()
{
  struct Case
  {
    const char *type;
    int64_t minimum;
    int64_t recommended;
  } cases[] = {
      {"Flat", 0, 0},
      {"HNSW16", 0, 0},
      {"IVF16,Flat", 16, 16 * 39},
      {"PQ4", 256, 256 * 39},
      {"IVF8,PQ4", 256, 256 * 39},
      {"OPQ4,IVF8,PQ4", 256, 256 * 39},
      {"HNSW16,PQ4", 256, 256 * 39},
      {"IVF8,SQ8", 8, 8 * 39},
  };
  for (const Case &c : cases) {
    auto store = vs::IndexStore::create (c.type, 16, vs::Metric::InnerProduct);
    g_assert_cmpint (store.min_training_vectors (), ==, c.minimum);
    g_assert_cmpint (store.recommended_training_vectors (), ==, c.recommended);
  }
}

void
test_too_few_training_vectors ()
{
  auto data = random_vectors (10, 16, 2);
  auto store = vs::IndexStore::create ("IVF16,Flat", 16, vs::Metric::L2);
  auto message = error_of ([&] { store.train (data.data (), 10); });
  assert_contains (message, "at least 16 training vectors");
  assert_contains (message, "only 10");
  assert_contains (error_of ([&] { store.add (data.data (), 10); }),
      "must be trained");
}

void
test_unknown_type ()
{
  assert_contains (error_of ([] {
    vs::IndexStore::create ("NoSuchIndex42", 8, vs::Metric::L2);
  }),
      "NoSuchIndex42");
  assert_contains (error_of ([] { vs::metric_from_name ("cosine"); }),
      "cosine");
  g_assert_true (vs::metric_from_name ("ip") == vs::Metric::InnerProduct);
  g_assert_cmpstr (vs::metric_name (vs::Metric::L2), ==, "l2");
}

// IVF with nprobe = nlist scans every list, so it must agree with Flat; the
// parameters travel with each call, so threads with different nprobe values
// do not disturb each other.
void
test_ivf_nprobe_save_load_concurrent ()
{
  const int dims = 16, n = 1000, nlist = 8;
  auto data = random_vectors (n, dims, 3);
  auto ivf = vs::IndexStore::create ("IVF8,Flat", dims, vs::Metric::L2);
  g_assert_true (ivf.needs_training ());
  ivf.train (data.data (), n);
  ivf.add (data.data (), n);
  auto back = ivf.reconstruct (123);
  for (int d = 0; d < dims; ++d)
    g_assert_cmpfloat (back[d], ==, data[123 * dims + d]);

  std::string path = tmp_path ("ivf.faiss");
  ivf.save_atomically (path);
  auto loaded = vs::IndexStore::load (path);
  g_assert_cmpint (loaded.size (), ==, n);
  g_assert_true (loaded.metric () == vs::Metric::L2);

  auto flat = vs::IndexStore::create ("Flat", dims, vs::Metric::L2);
  flat.add (data.data (), n);
  auto queries = random_vectors (20, dims, 4);
  auto exact = flat.search (queries.data (), 20, 5, {});

  vs::SearchParams all_lists;
  all_lists.nprobe = nlist;
  vs::SearchParams one_list;
  one_list.nprobe = 1;
  std::vector<std::vector<vs::Hit> > full, partial;
  std::thread a ([&] {
    for (int i = 0; i < 20; ++i)
      full = loaded.search (queries.data (), 20, 5, all_lists);
  });
  std::thread b ([&] {
    for (int i = 0; i < 20; ++i)
      partial = loaded.search (queries.data (), 20, 5, one_list);
  });
  a.join ();
  b.join ();
  int differing = 0;
  for (int q = 0; q < 20; ++q) {
    for (int j = 0; j < 5; ++j) {
      g_assert_cmpint (full[q][j].id, ==, exact[q][j].id);
      differing += partial[q].size () <= size_t (j)
          || partial[q][j].id != exact[q][j].id;
    }
  }
  // One list out of eight cannot find every true neighbour of 20 queries.
  g_assert_cmpint (differing, >, 0);
}

void
test_hnsw_ef_search ()
{
  const int dims = 16, n = 500;
  auto data = random_vectors (n, dims, 5);
  auto store =
      vs::IndexStore::create ("HNSW16", dims, vs::Metric::InnerProduct);
  store.add (data.data (), n);
  vs::SearchParams params;
  params.ef_search = 64;
  auto hits = store.search (data.data (), 1, 4, params);
  g_assert_cmpuint (hits[0].size (), ==, 4);
  // Parameters reach an inverted file behind a transform.
  auto pretransformed =
      vs::IndexStore::create ("PCA8,IVF4,Flat", dims, vs::Metric::L2);
  auto more = random_vectors (400, dims, 6);
  pretransformed.train (more.data (), 400);
  pretransformed.add (more.data (), 400);
  params.nprobe = 4;
  g_assert_cmpuint (pretransformed.search (more.data (), 2, 3, params)[1]
                        .size (),
      ==, 3);
}

// An index with an id map keeps the ids of the vectors that stay, whatever
// the type: in place where the storage compacts, refilled where it cannot
// remove (HNSW) or keeps its own numbering (IVF); and it loads again.
void
test_id_map_removal ()
{
  const int dims = 8, n = 300;
  auto data = random_vectors (n, dims, 5);
  std::vector<int64_t> ids (n);
  for (int i = 0; i < n; ++i)
    ids[i] = 1000 + 3 * i;
  const std::vector<int64_t> removed = {1000, 1003, 1300, 1000 + 3 * (n - 1)};
  for (const char *type : {"IDMap2,Flat", "IDMap2,HNSW16", "IDMap2,IVF4,Flat",
           "IDMap2,SQ8", "IDMap2,PCA4,Flat"}) {
    auto store = vs::IndexStore::create (type, dims, vs::Metric::L2);
    g_assert_true (store.has_id_map ());
    if (store.needs_training ())
      store.train (data.data (), n);
    store.add_with_ids (data.data (), n, ids.data ());
    store.remove_ids (removed);
    g_assert_cmpint (store.size (), ==, n - 4);
    const std::string path = tmp_path ("idmap.faiss");
    store.save_atomically (path);
    auto loaded = vs::IndexStore::load (path);
    for (int i : {2, 5, 150, n - 2}) {
      auto hits = loaded.search (data.data () + i * dims, 1, 1, {});
      if (std::string (type).find ("PCA") == std::string::npos)
        g_assert_cmpint (hits[0][0].id, ==, ids[i]);
      if (std::string (type).find ("Flat") != std::string::npos
          && std::string (type).find ("PCA") == std::string::npos)
        g_assert_cmpfloat (loaded.reconstruct (ids[i])[3], ==,
            data[i * dims + 3]);
    }
    vs::SearchParams exhaustive;
    exhaustive.nprobe = 4;
    exhaustive.ef_search = n;
    auto all = loaded.search (data.data (), 1, n, exhaustive);
    for (const vs::Hit &hit : all[0])
      for (int64_t gone : removed)
        g_assert_cmpint (hit.id, !=, gone);
  }
  auto plain = vs::IndexStore::create ("Flat", dims, vs::Metric::L2);
  assert_contains (error_of ([&] { plain.remove_ids ({1}); }), "no id map");
}

void
test_load_missing_and_corrupt ()
{
  std::string missing = tmp_path ("missing.faiss");
  assert_contains (error_of ([&] { vs::IndexStore::load (missing); }), missing);
  std::string corrupt = tmp_path ("corrupt.faiss");
  std::ofstream (corrupt) << "this is not a FAISS index";
  auto message = error_of ([&] { vs::IndexStore::load (corrupt); });
  assert_contains (message, corrupt);
  assert_contains (message, "damaged");

  assert_contains (error_of ([&] { vs::Catalog::load (missing + ".db"); }),
      missing + ".db");
  std::ofstream (corrupt + ".db")
      << "this is not an SQLite database, not at all, no.";
  assert_contains (error_of ([&] { vs::Catalog::load (corrupt + ".db"); }),
      corrupt + ".db");
}

vs::IndexFacts
sample_facts ()
{
  vs::IndexFacts facts;
  facts.model_id = "resnet18:abcd";
  facts.preprocessing_id = "rgb;size=32";
  facts.dims = 512;
  facts.metric = "ip";
  facts.index_type = "Flat";
  facts.count = 3;
  facts.created = vs::utc_timestamp_now ();
  return facts;
}

void
test_catalog_round_trip ()
{
  std::string path = vs::catalog_path_for (tmp_path ("gallery.faiss"));
  g_assert_true (path == tmp_path ("gallery.faiss.db"));
  std::vector<vs::CatalogItem> items = {{0, 3, "cat", "cifar10/train/0"},
      {1, -1, "", ""}, {2, 3, "cat", "cifar10/train/2"}};
  vs::Catalog::write_atomically (path, sample_facts (), items);
  // Rewriting over an existing catalog replaces it whole.
  vs::Catalog::write_atomically (path, sample_facts (), items);

  auto catalog = vs::Catalog::load (path);
  g_assert_cmpstr (catalog.facts ().model_id.c_str (), ==, "resnet18:abcd");
  g_assert_cmpstr (catalog.facts ().preprocessing_id.c_str (), ==,
      "rgb;size=32");
  g_assert_cmpint (catalog.facts ().dims, ==, 512);
  g_assert_cmpstr (catalog.facts ().metric.c_str (), ==, "ip");
  g_assert_cmpint (catalog.facts ().count, ==, 3);
  g_assert_cmpuint (catalog.facts ().created.size (), ==, 20);
  g_assert_cmpuint (catalog.items ().size (), ==, 3);
  g_assert_cmpstr (catalog.item (2)->source.c_str (), ==, "cifar10/train/2");
  g_assert_cmpint (catalog.item (1)->label, ==, -1);
  g_assert_null (catalog.item (3));
  g_assert_null (catalog.item (-1));
  g_assert_cmpint (catalog.count_label (3), ==, 2);
  g_assert_cmpint (catalog.count_label (7), ==, 0);

  g_assert_null (catalog.thumbnails ().get ());

  auto inconsistent = sample_facts ();
  inconsistent.count = 5;
  vs::Catalog::write_atomically (path, inconsistent, items);
  assert_contains (error_of ([&] { vs::Catalog::load (path); }), "count of 5");
}

void
test_same_embedding_space ()
{
  auto stored = sample_facts ();
  auto query = stored;
  query.metric.clear ();
  vs::check_same_embedding_space (stored, query, "x.db");
  query.model_id = "resnet50:ffff";
  query.dims = 2048;
  auto message = error_of ([&] {
    vs::check_same_embedding_space (stored, query, "x.db");
  });
  assert_contains (message, "resnet18:abcd");
  assert_contains (message, "resnet50:ffff");
  assert_contains (message, "x.db");
  auto other_metric = stored;
  other_metric.metric = "l2";
  assert_contains (error_of ([&] {
    vs::check_same_embedding_space (stored, other_metric, "x.db");
  }),
      "different metric");
}

// A failure while writing the second file of a set leaves the first file's
// old content and no temporaries.
void
test_file_set_failure_keeps_old_files ()
{
  std::string a = tmp_path ("set-a"), b = tmp_path ("set-b");
  std::ofstream (a) << "old a";
  auto write_text = [] (const char *text) {
    return [text] (const std::string &tmp) { std::ofstream (tmp) << text; };
  };
  auto message = error_of ([&] {
    vs::replace_files_atomically ({{a, write_text ("new a")},
        {b, [] (const std::string &) { throw vs::Error ("disk full"); }}});
  });
  assert_contains (message, "disk full");
  std::string content;
  std::getline (std::ifstream (a), content);
  g_assert_cmpstr (content.c_str (), ==, "old a");
  GDir *dir = g_dir_open (tmp_dir.c_str (), 0, nullptr);
  while (const char *name = g_dir_read_name (dir))
    g_assert_null (std::strstr (name, ".tmp."));
  g_dir_close (dir);

  vs::replace_files_atomically ({{a, write_text ("new a")},
      {b, write_text ("new b")}});
  std::getline (std::ifstream (b), content);
  g_assert_cmpstr (content.c_str (), ==, "new b");
}

// Runs SQL on a catalog file, as a hand-made or older catalog would hold it.
void
sql (const std::string &path, const std::string &statements)
{
  sqlite3 *db = nullptr;
  g_assert_cmpint (sqlite3_open (path.c_str (), &db), ==, SQLITE_OK);
  char *message = nullptr;
  if (sqlite3_exec (db, statements.c_str (), nullptr, nullptr, &message)
      != SQLITE_OK)
    g_error ("%s: %s", statements.c_str (), message);
  sqlite3_close (db);
}

// A Flat gallery of n vectors written as faissindexer writes it.
std::vector<float>
write_pair (const std::string &index_path, int n, unsigned seed)
{
  const int dims = 8;
  auto data = random_vectors (n, dims, seed);
  auto store = vs::IndexStore::create ("Flat", dims, vs::Metric::L2);
  store.add (data.data (), n);
  auto facts = sample_facts ();
  facts.dims = dims;
  facts.metric = "l2";
  std::vector<vs::CatalogItem> items (n);
  for (int i = 0; i < n; ++i)
    items[i] = {i, i % 10, "class", "src/" + std::to_string (i)};
  vs::write_index_with_catalog (index_path, store, facts, items);
  return data;
}

// Two galleries of the same size, dims and metric: the catalog of one beside
// the index of the other (a writer killed between its two renames) is refused,
// rather than loaded to name every hit wrongly.
void
test_catalog_binds_its_index ()
{
  const std::string a = tmp_path ("bound-a.faiss"),
                    b = tmp_path ("bound-b.faiss");
  write_pair (a, 40, 11);
  write_pair (b, 40, 12);
  auto pair = vs::load_index_with_catalog (a);
  g_assert_true (pair.catalog.facts ().index_digest.has_value ());
  g_assert_true (*pair.catalog.facts ().index_digest
      == *pair.index.file_digest ());
  struct stat st;
  g_assert_cmpint (::stat (a.c_str (), &st), ==, 0);
  g_assert_cmpint (pair.index.file_digest ()->bytes, ==, st.st_size);

  std::filesystem::copy_file (vs::catalog_path_for (b),
      vs::catalog_path_for (a),
      std::filesystem::copy_options::overwrite_existing);
  auto message = error_of ([&] { vs::load_index_with_catalog (a); });
  assert_contains (message, a);
  assert_contains (message, vs::catalog_path_for (a));
  assert_contains (message, "not the one its catalog");
  assert_contains (error_of ([&] { vs::Gallery::load (a); }),
      "not the one its catalog");

  // Ids with holes belong to an id map: beside a plain index they would name
  // the wrong items.
  const std::string c = tmp_path ("bound-c.faiss");
  auto data = random_vectors (3, 8, 13);
  auto plain = vs::IndexStore::create ("Flat", 8, vs::Metric::L2);
  plain.add (data.data (), 3);
  auto facts = sample_facts ();
  facts.dims = 8;
  facts.metric = "l2";
  std::vector<vs::CatalogItem> holes (3);
  for (int i = 0; i < 3; ++i)
    holes[i] = {2 * i, 0, "class", "src"};
  vs::write_index_with_catalog (c, plain, facts, holes);
  assert_contains (error_of ([&] { vs::load_index_with_catalog (c); }),
      "ids of an id map");
}

// Thumbnails are read on demand from the file the catalog was loaded from,
// and an appender's new catalog copies the previous one's.
void
test_catalog_thumbnails ()
{
  const std::string path = tmp_path ("thumbs.faiss.db");
  const std::vector<uint8_t> first = {1, 2, 3}, second = {0xff, 0, 0xd8},
                             third = {7};
  std::vector<vs::CatalogItem> items = {{0, 1, "a", "x/0", first},
      {1, 1, "a", "x/1", second}, {2, 1, "a", "x/2"}};
  vs::Catalog::write_atomically (path, sample_facts (), items);
  auto catalog = vs::Catalog::load (path);
  g_assert_nonnull (catalog.thumbnails ().get ());
  g_assert_true (catalog.thumbnail (0) == first);
  g_assert_true (catalog.thumbnail (1) == second);
  g_assert_true (catalog.thumbnail (2).empty ());
  g_assert_true (catalog.thumbnail (99).empty ());
  g_assert_true (catalog.item (0)->thumbnail.empty ());

  // An appended catalog: ids 0..2 as before, 3 new.
  auto facts = sample_facts ();
  facts.count = 4;
  items[0].thumbnail.clear ();
  items[1].thumbnail.clear ();
  items.push_back ({3, 2, "b", "x/3", third});
  const std::string appended = tmp_path ("appended.faiss.db");
  vs::Catalog::write (appended, facts, items, path);
  // Renamed over the first: the catalog loaded from it still reads its own.
  std::filesystem::rename (appended, path);
  g_assert_true (catalog.thumbnail (0) == first);
  g_assert_true (catalog.thumbnail (3).empty ());
  auto grown = vs::Catalog::load (path);
  g_assert_true (grown.thumbnail (0) == first);
  g_assert_true (grown.thumbnail (1) == second);
  g_assert_true (grown.thumbnail (2).empty ());
  g_assert_true (grown.thumbnail (3) == third);
  g_assert_true (vs::CatalogThumbnails::open (path)->get (3) == third);
}

// Catalogs of schema 1 (no index digest) still load, unchecked; a newer
// schema than this build knows is refused.
void
test_older_and_newer_catalogs ()
{
  const std::string index = tmp_path ("old.faiss");
  write_pair (index, 3, 13);
  const std::string catalog = vs::catalog_path_for (index);
  std::remove (catalog.c_str ());
  sql (catalog,
      "PRAGMA user_version = 1;"
      "CREATE TABLE items (id INTEGER PRIMARY KEY, label INTEGER, label_name "
      "TEXT, source TEXT);"
      "CREATE TABLE index_facts (model_id TEXT, preprocessing_id TEXT, dims "
      "INTEGER, "
      "metric TEXT, index_type TEXT, count INTEGER, created TEXT);"
      "INSERT INTO index_facts VALUES ('m', 'p', 8, 'l2', 'Flat', 3, 'then');"
      "INSERT INTO items VALUES (0, 1, 'a', 's0'), (1, 2, 'b', 's1'), (2, "
      "NULL, NULL, NULL);");
  auto pair = vs::load_index_with_catalog (index);
  g_assert_false (pair.catalog.facts ().index_digest.has_value ());
  g_assert_cmpint (pair.catalog.item (2)->label, ==, -1);

  g_assert_null (pair.catalog.thumbnails ().get ());
  g_assert_true (pair.catalog.thumbnail (0).empty ());

  // Schema 4 is 3 plus index_facts.embedder_config: read all the same.
  sql (catalog,
      "PRAGMA user_version = 4;"
      "ALTER TABLE index_facts ADD COLUMN index_bytes INTEGER;"
      "ALTER TABLE index_facts ADD COLUMN index_crc32 INTEGER;"
      "ALTER TABLE index_facts ADD COLUMN embedder_config TEXT;"
      "CREATE TABLE thumbnails (id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL);");
  g_assert_cmpint (vs::Catalog::load (catalog).item (1)->label, ==, 2);
  g_assert_false (vs::Catalog::load (catalog).item (1)->file.has_value ());

  // Schema 5 adds the files table; without index_facts.gallery_root the
  // catalog loads with none.
  sql (catalog,
      "PRAGMA user_version = 5;"
      "CREATE TABLE files (id INTEGER PRIMARY KEY, path BLOB NOT NULL, "
      "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, time REAL);"
      "INSERT INTO files VALUES (1, 'b/x.jpg', 10, 20, NULL);");
  g_assert_true (vs::Catalog::load (catalog).item (1)->file->path == "b/x.jpg");
  g_assert_true (vs::Catalog::load_facts (catalog).gallery_root.empty ());

  sql (catalog, "PRAGMA user_version = 7;");
  auto message = error_of ([&] { vs::Catalog::load (catalog); });
  assert_contains (message, "schema version 7");
  assert_contains (message, catalog);
}

// The embedder's configuration goes into the catalog and comes back whole,
// through load() and through load_facts(), which reads no items; a catalog
// of schema 3 (no embedder_config column) loads with none, and so does one
// written without it.
void
test_catalog_embedder_config ()
{
  const std::string path = tmp_path ("config.faiss.db");
  const std::string config =
      "visualsearch-embedder-config, model=(string)/models/\\\"odd\\\".pt, "
      "input-size=(int)224, mean=(string)\"0.5,0.5,0.5\", "
      "name=(string)\"caf\xC3\xA9\";";
  auto facts = sample_facts ();
  facts.embedder_config = config;
  std::vector<vs::CatalogItem> items = {{0, 1, "a", "s0"}, {1, 2, "b", "s1"},
      {2, 1, "a", "s2"}};
  vs::Catalog::write_atomically (path, facts, items);
  g_assert_true (vs::Catalog::load (path).facts ().embedder_config == config);
  const vs::IndexFacts only_facts = vs::Catalog::load_facts (path);
  g_assert_true (only_facts.embedder_config == config);
  g_assert_cmpstr (only_facts.model_id.c_str (), ==, "resnet18:abcd");
  g_assert_cmpint (only_facts.count, ==, 3);
  g_assert_true (only_facts.index_digest == std::nullopt);

  facts.embedder_config.clear ();
  vs::Catalog::write_atomically (path, facts, items);
  g_assert_true (vs::Catalog::load_facts (path).embedder_config.empty ());
  g_assert_true (vs::Catalog::load_facts (path).gallery_root.empty ());

  // The gallery folder is kept byte for byte, whatever its encoding.
  facts.gallery_root = "/photos/caf\xE9 ";
  vs::Catalog::write_atomically (path, facts, items);
  g_assert_true (vs::Catalog::load (path).facts ().gallery_root
      == facts.gallery_root);

  // What visualsearch wrote before the column existed.
  const std::string old = tmp_path ("schema3.faiss.db");
  sql (old,
      "PRAGMA user_version = 3;"
      "CREATE TABLE thumbnails (id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL);"
      "CREATE TABLE items (id INTEGER PRIMARY KEY, label INTEGER, label_name "
      "TEXT, source TEXT);"
      "CREATE TABLE index_facts (model_id TEXT, preprocessing_id TEXT, dims "
      "INTEGER, "
      "metric TEXT, index_type TEXT, count INTEGER, created TEXT, index_bytes "
      "INTEGER, "
      "index_crc32 INTEGER);"
      "INSERT INTO index_facts VALUES ('m', 'p', 8, 'l2', 'Flat', 2, 'then', "
      "10, 20);"
      "INSERT INTO items VALUES (0, 1, 'a', 's0'), (1, 2, 'b', 's1');"
      "INSERT INTO thumbnails VALUES (1, X'ffd8');");
  auto loaded = vs::Catalog::load (old);
  g_assert_true (loaded.facts ().embedder_config.empty ());
  g_assert_cmpint (loaded.facts ().index_digest->bytes, ==, 10);
  g_assert_cmpuint (loaded.thumbnail (1).size (), ==, 2);
  const vs::IndexFacts old_facts = vs::Catalog::load_facts (old);
  g_assert_cmpstr (old_facts.model_id.c_str (), ==, "m");
}

// Items of an updated gallery: ids with holes, each with the file it came
// from; thumbnails of removed items are not carried over.
void
test_catalog_file_identities ()
{
  const std::string path = tmp_path ("files.faiss.db");
  vs::IndexFacts facts;
  facts.dims = 4;
  facts.metric = "ip";
  std::vector<vs::CatalogItem> items (3);
  const int64_t ids[] = {2, 5, 9};
  for (int i = 0; i < 3; ++i) {
    items[i].id = ids[i];
    items[i].source = "v/clip.mp4#t=" + std::to_string (i);
    items[i].thumbnail = {uint8_t (i), 1};
  }
  items[0].file = vs::FileIdentity{"a\xff.jpg", 123, 1700000000123456789, -1};
  items[2].file = vs::FileIdentity{"v/clip.mp4", 4567, 42, 2.5};
  facts.count = 3;
  vs::Catalog::write_atomically (path, facts, items);
  const vs::Catalog catalog = vs::Catalog::load (path);
  g_assert_cmpuint (catalog.items ().size (), ==, 3);
  g_assert_null (catalog.item (0));
  g_assert_null (catalog.item (3));
  g_assert_cmpstr (catalog.item (5)->source.c_str (), ==, "v/clip.mp4#t=1");
  g_assert_false (catalog.item (5)->file.has_value ());
  const vs::FileIdentity &still = *catalog.item (2)->file;
  g_assert_true (still.path == "a\xff.jpg"); // bytes as on disk, not repaired
  g_assert_cmpint (still.size, ==, 123);
  g_assert_cmpint (still.mtime_ns, ==, 1700000000123456789);
  g_assert_cmpfloat (still.time, ==, -1);
  g_assert_cmpfloat (catalog.item (9)->file->time, ==, 2.5);
  g_assert_true (catalog.thumbnail (9) == std::vector<uint8_t> ({2, 1}));

  // Item 5 removed, 11 added: 5's thumbnail stays behind.
  std::vector<vs::CatalogItem> kept = {catalog.items ()[0],
      catalog.items ()[2]};
  kept.push_back (items[1]);
  kept.back ().id = 11;
  kept.back ().thumbnail = {7};
  const std::string next = tmp_path ("files2.faiss.db");
  vs::Catalog::write (next, facts, kept, path);
  const vs::Catalog updated = vs::Catalog::load (next);
  g_assert_true (updated.thumbnail (5).empty ());
  g_assert_true (updated.thumbnail (2) == std::vector<uint8_t> ({0, 1}));
  g_assert_true (updated.thumbnail (11) == std::vector<uint8_t> ({7}));
  g_assert_cmpint (updated.item (11)->id, ==, 11);
}

// Files found unreadable round-trip through the catalog; a catalog without
// the table (older writers) has none; the inventory keeps those still there
// unchanged, drops those changed or gone, and keeps the unmet ones of a
// walk stopped early.
void
test_catalog_rejected_files ()
{
  const std::string path = tmp_path ("rejected.faiss.db");
  vs::IndexFacts facts;
  facts.dims = 4;
  facts.metric = "ip";
  std::vector<vs::CatalogItem> items (1);
  items[0].id = 0;
  items[0].file = vs::FileIdentity{"a.jpg", 10, 20, -1};
  facts.count = 1;
  std::vector<vs::RejectedFile> rejected =
      {{vs::FileIdentity{"notes\xff.txt", 23, 1700000000123456789, -1},
           "notes.txt is neither an image nor a video"},
          {vs::FileIdentity{"sub/cut.jpg", 870, 5, -1},
              "cut.jpg is truncated"}};
  vs::Catalog::write_atomically (path, facts, items, rejected);
  const vs::Catalog catalog = vs::Catalog::load (path);
  g_assert_cmpuint (catalog.rejected_files ().size (), ==, 2);
  const vs::RejectedFile &notes = catalog.rejected_files ()[0];
  g_assert_true (notes.file.path == "notes\xff.txt"); // bytes as on disk
  g_assert_cmpint (notes.file.size, ==, 23);
  g_assert_cmpint (notes.file.mtime_ns, ==, 1700000000123456789);
  g_assert_cmpstr (notes.reason.c_str (), ==,
      "notes.txt is neither an image nor a video");

  // Written without the table, as before it existed: none.
  sqlite3 *db = nullptr;
  g_assert_cmpint (sqlite3_open (path.c_str (), &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "DROP TABLE rejected_files", nullptr,
                       nullptr, nullptr),
      ==, SQLITE_OK);
  sqlite3_close (db);
  g_assert_true (vs::Catalog::load (path).rejected_files ().empty ());

  // An update: notes unchanged (passed over), cut.jpg changed and still bad,
  // a new bad file; then one whose walk completes without the notes.
  vs::FileInventory inventory (items, rejected);
  g_assert_true (inventory.rejected_unchanged (rejected[0].file).has_value ());
  vs::FileIdentity changed = rejected[1].file;
  changed.mtime_ns = 6;
  g_assert_false (inventory.rejected_unchanged (changed).has_value ());
  g_assert_false (inventory.rejected_changed ());
  inventory.rejected (rejected[0].file, rejected[0].reason, true);
  g_assert_false (inventory.rejected_changed ());
  inventory.met (changed, false);
  inventory.rejected (changed, "still truncated", false);
  g_assert_true (inventory.rejected_changed ());
  auto now = inventory.rejected_files ();
  g_assert_cmpuint (now.size (), ==, 2);
  g_assert_cmpint (now[1].file.mtime_ns, ==, 6);
  g_assert_cmpstr (now[1].reason.c_str (), ==, "still truncated");
  g_assert_cmpint (inventory.counts ().bad, ==, 2);

  // A stopped walk that met neither keeps both; a complete one drops both.
  vs::FileInventory stopped (items, rejected);
  g_assert_cmpuint (stopped.rejected_files ().size (), ==, 2);
  g_assert_false (stopped.rejected_changed ());
  stopped.walk_complete ({});
  g_assert_true (stopped.rejected_files ().empty ());
  g_assert_true (stopped.rejected_changed ());
  // Under a folder the walk could not read: kept.
  vs::FileInventory hidden (items, rejected);
  hidden.walk_complete ({vs::WalkGap{"sub", true}});
  now = hidden.rejected_files ();
  g_assert_cmpuint (now.size (), ==, 1);
  g_assert_true (now[0].file.path == "sub/cut.jpg");
  // Found good now (it gave an item): dropped.
  vs::FileInventory fixed (items, rejected);
  fixed.met (changed, false);
  fixed.rejected (changed, "a video cut short", false);
  g_assert_true (fixed.identity_of ("sub/cut.jpg").has_value ());
  fixed.walk_complete ({});
  g_assert_true (fixed.rejected_files ().empty ());
}

// A run of regions: a file read with no region is recorded as read (counted
// added, not bad), a later walk passes over it as unchanged, and once it
// changes it counts as updated; a file with a region is not recorded.
void
test_inventory_read_without_items ()
{
  vs::FileIdentity plain{"plain.png", 10, 5, -1}, face{"face.png", 20, 5, -1};
  vs::FileInventory first ({}, {});
  first.met (plain, false);
  first.met (face, false);
  g_assert_true (first.identity_of ("face.png#xywh=1,2,3,4").has_value ());
  first.read_without_items ("plain.png");
  first.read_without_items ("face.png");
  first.walk_complete ({});
  g_assert_cmpint (first.counts ().added, ==, 2);
  g_assert_cmpint (first.counts ().bad, ==, 0);
  const std::vector<vs::RejectedFile> read = first.rejected_files ();
  g_assert_cmpuint (read.size (), ==, 1);
  g_assert_true (read[0].file.path == "plain.png");
  g_assert_cmpstr (read[0].reason.c_str (), ==,
      vs::FileInventory::kReadWithoutItems);

  vs::FileInventory again ({}, read);
  const std::optional<std::string> reason = again.rejected_unchanged (plain);
  g_assert_true (reason.has_value ());
  again.rejected (plain, *reason, true);
  again.walk_complete ({});
  g_assert_cmpint (again.counts ().unchanged, ==, 1);
  g_assert_cmpint (again.counts ().bad, ==, 0);
  g_assert_false (again.rejected_changed ());

  vs::FileInventory changed ({}, read);
  vs::FileIdentity newer = plain;
  newer.mtime_ns = 6;
  g_assert_false (changed.rejected_unchanged (newer).has_value ());
  changed.met (newer, false);
  changed.read_without_items ("plain.png");
  changed.walk_complete ({});
  g_assert_cmpint (changed.counts ().updated, ==, 1);
  g_assert_cmpint (changed.rejected_files ()[0].file.mtime_ns, ==, 6);
}

// Labels past 32 bits come back whole (2^32 + 5, not 5); label names and
// sources come back as valid UTF-8.
void
test_catalog_labels_and_text ()
{
  const std::string path = tmp_path ("labels.faiss.db");
  auto facts = sample_facts ();
  std::vector<vs::CatalogItem> items = {{0, 3, "cat", "a"}, {1, 4, "dog", "b"},
      {2, 5, "ok", "c"}};
  vs::Catalog::write_atomically (path, facts, items);
  sql (path,
      "UPDATE items SET label_name = CAST(X'6361ff74' AS TEXT), "
      "source = CAST(X'e282' AS TEXT) WHERE id = 1;");
  auto catalog = vs::Catalog::load (path);
  g_assert_cmpstr (catalog.item (1)->label_name.c_str (), ==,
      "ca\xEF\xBF\xBDt");
  g_assert_true (vs::is_valid_utf8 (catalog.item (1)->source));
  // g_assert_cmpstr keeps the pointer past the statement: no temporaries.
  const std::string replaced = catalog.item (1)->source.substr (0, 3);
  g_assert_cmpstr (replaced.c_str (), ==, "\xEF\xBF\xBD");

  sql (path, "UPDATE items SET label = 4294967301 WHERE id = 2;");
  auto message = error_of ([&] { vs::Catalog::load (path); });
  assert_contains (message, path);
  assert_contains (message, "item 2");
  assert_contains (message, "4294967301");
}

// A FIFO at the index or catalog path is refused rather than blocking the
// reader for good.
void
test_fifo_is_refused ()
{
  const std::string fifo = tmp_path ("fifo.faiss");
  g_assert_cmpint (::mkfifo (fifo.c_str (), 0600), ==, 0);
  auto message = error_of ([&] { vs::IndexStore::load (fifo); });
  assert_contains (message, fifo);
  assert_contains (message, "FIFO");
  g_assert_cmpint (::mkfifo (vs::catalog_path_for (fifo).c_str (), 0600), ==,
      0);
  assert_contains (error_of ([&] {
    vs::Catalog::load (vs::catalog_path_for (fifo));
  }),
      "FIFO");
  assert_contains (error_of ([&] { vs::IndexStore::load (tmp_dir); }),
      "a directory");
}

// Two writers of one path in one process, both mid-write at once, each get a
// temporary of their own, so neither renames the other's file away.
void
test_concurrent_writers_get_own_temporaries ()
{
  const std::string path = tmp_path ("shared-target");
  std::mutex mutex;
  std::condition_variable changed;
  int writing = 0;
  std::string tmps[2];
  auto writer = [&] (int i) {
    vs::replace_file_atomically (path, [&, i] (const std::string &tmp) {
      tmps[i] = tmp;
      std::ofstream (tmp) << "writer " << i;
      std::unique_lock<std::mutex> lock (mutex);
      ++writing;
      changed.notify_all ();
      changed.wait (lock, [&] { return writing == 2; });
    });
  };
  std::thread a (writer, 0), b (writer, 1);
  a.join ();
  b.join ();
  g_assert_cmpstr (tmps[0].c_str (), !=, tmps[1].c_str ());
  std::string content;
  std::getline (std::ifstream (path), content);
  g_assert_true (content == "writer 0" || content == "writer 1");
}

pid_t
dead_pid ()
{
  pid_t child = ::fork ();
  if (child == 0)
    ::_exit (0);
  ::waitpid (child, nullptr, 0);
  return child;
}

// Temporaries of a killed writer go; a live writer's, and files that only
// look alike, stay.
void
test_remove_stale_temporaries ()
{
  const std::string path = tmp_path ("stale.faiss");
  const std::string dead = std::to_string (dead_pid ());
  const std::string alive = std::to_string (::getppid ());
  const std::vector<std::string> stale = {path + ".tmp." + dead + ".aB3xY9",
      path + ".tmp." + dead};
  const std::vector<std::string> kept = {path + ".tmp." + alive + ".aB3xY9",
      path + ".tmp.notes", path + ".tmp." + dead + ".x",
      path + ".db.tmp." + dead + ".aB3xY9", path + ".lock"};
  for (const auto &name : stale)
    std::ofstream (name) << "x";
  for (const auto &name : kept)
    std::ofstream (name) << "x";
  g_assert_cmpint (vs::remove_stale_temporaries (path), ==, 2);
  for (const auto &name : stale)
    g_assert_false (std::filesystem::exists (name));
  for (const auto &name : kept)
    g_assert_true (std::filesystem::exists (name));
}

vs::IndexBuildOptions
append_options (const std::string &location)
{
  vs::IndexBuildOptions options;
  options.location = location;
  options.metric = vs::Metric::L2;
  options.append = true;
  options.lock_timeout = std::chrono::milliseconds (300);
  return options;
}

void
add_rows (vs::IndexBuilder &builder, const std::vector<float> &data)
{
  for (size_t i = 0; i < data.size () / 8; ++i)
    builder.add (&data[i * 8], 8, "m", "p", vs::CatalogItem{-1, 1, "n", "s"});
}

// Two appending writers of one index keep both their vectors: the second
// waits for the lock (and says so), and gives up after the timeout.
// A checkpoint in the middle of a video, then the run dies: the next update
// keeps the finished still, embeds the video again and drops the cut one.
void
test_gallery_checkpoint_and_update ()
{
  const std::string dir = tmp_path ("tree");
  std::filesystem::create_directories (dir);
  std::ofstream (dir + "/a.jpg") << "still";
  std::ofstream (dir + "/v.mp4") << "video bytes";
  const std::string location = tmp_path ("gallery.faiss");
  vs::IndexBuildOptions options;
  options.location = location;
  options.gallery = options.update = true;
  options.checkpoint_interval = std::chrono::seconds (1);
  auto ignore = [] (const std::string &) {};
  const auto rows = random_vectors (8, 8, 21);
  auto add = [&] (vs::IndexBuilder &builder, int row,
                 const std::string &source) {
    vs::CatalogItem item;
    item.source = source;
    builder.add (rows.data () + row * 8, 8, "m", "p", item);
  };
  {
    vs::IndexBuilder builder (options, ignore, ignore);
    auto inventory = builder.inventory ();
    g_assert_false (inventory->unchanged ("a.jpg", dir + "/a.jpg"));
    add (builder, 0, "a.jpg");
    g_assert_false (inventory->unchanged ("v.mp4", dir + "/v.mp4"));
    add (builder, 1, "v.mp4#t=0.000");
    std::this_thread::sleep_for (std::chrono::milliseconds (1100));
    add (builder, 2, "v.mp4#t=1.000"); // the checkpoint; then the run dies
  }
  {
    const vs::Catalog catalog =
        vs::Catalog::load (vs::catalog_path_for (location));
    g_assert_cmpuint (catalog.items ().size (), ==, 3);
    g_assert_cmpint (catalog.item (0)->file->size, ==, 5);
    g_assert_cmpint (catalog.item (2)->file->size, ==, -1); // cut short
    g_assert_cmpfloat (catalog.item (2)->file->time, ==, 1.0);
  }
  vs::IndexBuilder builder (options, ignore, ignore);
  auto inventory = builder.inventory ();
  g_assert_true (inventory->unchanged ("a.jpg", dir + "/a.jpg"));
  g_assert_false (inventory->unchanged ("v.mp4", dir + "/v.mp4"));
  for (int i = 0; i < 3; ++i)
    add (builder, 3 + i, "v.mp4#t=" + std::to_string (i) + ".000");
  inventory->walk_complete ({});
  g_assert_true (builder.finish ());
  auto pair = vs::load_index_with_catalog (location);
  g_assert_cmpint (pair.index.size (), ==, 4);
  g_assert_cmpstr (pair.catalog.item (0)->source.c_str (), ==, "a.jpg");
  g_assert_null (pair.catalog.item (1));
  g_assert_null (pair.catalog.item (2));
  for (int64_t id = 3; id < 6; ++id)
    g_assert_cmpint (pair.catalog.item (id)->file->size, ==, 11);
  g_assert_true (pair.index.reconstruct (5)
      == std::vector<float> (rows.data () + 5 * 8, rows.data () + 6 * 8));
  const vs::FileInventory::Counts counts = inventory->counts ();
  g_assert_cmpint (counts.unchanged, ==, 1);
  g_assert_cmpint (counts.updated, ==, 1);
}

void
test_appenders_take_turns ()
{
  const std::string location = tmp_path ("append.faiss");
  std::vector<std::string> steps;
  auto note = [&steps] (const std::string &step) { steps.push_back (step); };
  auto ignore = [] (const std::string &) {};
  {
    vs::IndexBuilder first (append_options (location), note, ignore);
    add_rows (first, random_vectors (5, 8, 14));
    auto message = error_of ([&] {
      vs::IndexBuilder (append_options (location), note, ignore);
    });
    assert_contains (message, vs::lock_path_for (location));
    assert_contains (message, "Another writer");
    bool waited = false;
    for (const auto &step : steps)
      waited |= step.find ("waiting for another writer") == 0;
    g_assert_true (waited);
    g_assert_true (first.finish ());
  }
  vs::IndexBuilder second (append_options (location), ignore, ignore);
  g_assert_cmpint (second.existing (), ==, 5);
  add_rows (second, random_vectors (3, 8, 15));
  g_assert_true (second.finish ());
  g_assert_cmpint (vs::load_index_with_catalog (location).index.size (), ==, 8);
}

// A missing output directory is an error at start, not at EOS after the work.
void
test_builder_checks_directory_at_start ()
{
  vs::IndexBuildOptions options;
  options.location = tmp_dir + "/no-such-dir/x.faiss";
  auto ignore = [] (const std::string &) {};
  auto message = error_of ([&] { vs::IndexBuilder (options, ignore, ignore); });
  assert_contains (message, tmp_dir + "/no-such-dir");
  assert_contains (message, "does not exist");
  std::ofstream (tmp_path ("plain-file")) << "x";
  options.location = tmp_path ("plain-file") + "/x.faiss";
  assert_contains (error_of ([&] {
    vs::IndexBuilder (options, ignore, ignore);
  }),
      "not a directory");
}

// When the NumPy export fails after the index and catalog were replaced, the
// message says the index was written, not that the previous files are intact.
void
test_export_failure_says_index_was_written ()
{
  const std::string dir = tmp_path ("npy");
  std::filesystem::create_directories (dir
      + "/embeddings.npy"); // rename over it fails
  vs::IndexBuildOptions options;
  options.location = dir + "/g.faiss";
  options.metric = vs::Metric::L2;
  options.export_npy = true;
  auto ignore = [] (const std::string &) {};
  vs::IndexBuilder builder (options, ignore, ignore);
  add_rows (builder, random_vectors (4, 8, 16));
  auto message = error_of ([&] { builder.finish (); });
  assert_contains (message, "were replaced and hold the new 4 vectors");
  assert_contains (message, "embeddings.npy");
  g_assert_cmpint (vs::load_index_with_catalog (options.location).index.size (),
      ==, 4);
}

} // namespace

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, nullptr);
  gchar *dir = g_dir_make_tmp ("vs-index-store-XXXXXX", nullptr);
  tmp_dir = dir;
  g_free (dir);
  g_test_add_func ("/index_store/flat", test_flat_add_search_reconstruct);
  g_test_add_func ("/index_store/inventory_read_without_items",
      test_inventory_read_without_items);
  g_test_add_func ("/index_store/catalog_rejected_files",
      test_catalog_rejected_files);
  g_test_add_func ("/index_store/training_minimums", test_training_minimums);
  g_test_add_func ("/index_store/too_few_training_vectors",
      test_too_few_training_vectors);
  g_test_add_func ("/index_store/unknown_type", test_unknown_type);
  g_test_add_func ("/index_store/ivf_nprobe_save_load_concurrent",
      test_ivf_nprobe_save_load_concurrent);
  g_test_add_func ("/index_store/hnsw_ef_search", test_hnsw_ef_search);
  g_test_add_func ("/index_store/load_missing_and_corrupt",
      test_load_missing_and_corrupt);
  g_test_add_func ("/index_store/id_map_removal", test_id_map_removal);
  g_test_add_func ("/catalog/round_trip", test_catalog_round_trip);
  g_test_add_func ("/catalog/same_embedding_space", test_same_embedding_space);
  g_test_add_func ("/atomic_file/set_failure_keeps_old_files",
      test_file_set_failure_keeps_old_files);
  g_test_add_func ("/catalog/binds_its_index", test_catalog_binds_its_index);
  g_test_add_func ("/catalog/older_and_newer", test_older_and_newer_catalogs);
  g_test_add_func ("/catalog/labels_and_text", test_catalog_labels_and_text);
  g_test_add_func ("/catalog/embedder_config", test_catalog_embedder_config);
  g_test_add_func ("/catalog/file_identities", test_catalog_file_identities);
  g_test_add_func ("/index_store/fifo_is_refused", test_fifo_is_refused);
  g_test_add_func ("/atomic_file/concurrent_writers_get_own_temporaries",
      test_concurrent_writers_get_own_temporaries);
  g_test_add_func ("/atomic_file/remove_stale_temporaries",
      test_remove_stale_temporaries);
  g_test_add_func ("/index_builder/appenders_take_turns",
      test_appenders_take_turns);
  g_test_add_func ("/index_builder/gallery_checkpoint_and_update",
      test_gallery_checkpoint_and_update);
  g_test_add_func ("/catalog/thumbnails", test_catalog_thumbnails);
  g_test_add_func ("/index_builder/checks_directory_at_start",
      test_builder_checks_directory_at_start);
  g_test_add_func ("/index_builder/export_failure_says_index_was_written",
      test_export_failure_says_index_was_written);
  int rc = g_test_run ();
  std::filesystem::remove_all (tmp_dir);
  return rc;
}
