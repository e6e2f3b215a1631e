// IndexStore, Catalog and the atomic file set, without a pipeline.
#include <glib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "core/catalog.h"
#include "core/error.h"
#include "core/index_store.h"

namespace {

std::string tmp_dir;

std::string tmp_path(const char* name) { return tmp_dir + "/" + name; }

std::vector<float> random_vectors(int64_t n, int dims, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n * dims);
  for (float& x : v) x = normal(rng);
  return v;
}

// The message of the vs::Error that f throws; fails the test if none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const vs::Error& e) {
    return e.what();
  }
  g_assert_not_reached();
  return {};
}

void assert_contains(const std::string& text, const std::string& part) {
  if (text.find(part) == std::string::npos)
    g_error("expected \"%s\" in \"%s\"", part.c_str(), text.c_str());
}

void test_flat_add_search_reconstruct() {
  const int dims = 8;
  auto data = random_vectors(50, dims, 1);
  auto store = vs::IndexStore::create("Flat", dims, vs::Metric::L2);
  g_assert_false(store.needs_training());
  g_assert_cmpint(store.min_training_vectors(), ==, 0);
  store.add(data.data(), 50);
  g_assert_cmpint(store.size(), ==, 50);
  g_assert_cmpint(store.dims(), ==, dims);

  auto hits = store.search(data.data() + 7 * dims, 1, 3, {});
  g_assert_cmpuint(hits.size(), ==, 1);
  g_assert_cmpuint(hits[0].size(), ==, 3);
  g_assert_cmpint(hits[0][0].id, ==, 7);
  g_assert_cmpfloat(hits[0][0].distance, ==, 0.0f);
  g_assert_cmpfloat(hits[0][1].distance, >=, hits[0][0].distance);

  // k beyond the index size: FAISS's -1 padding is dropped.
  hits = store.search(data.data(), 1, 80, {});
  g_assert_cmpuint(hits[0].size(), ==, 50);

  auto back = store.reconstruct(11);
  for (int d = 0; d < dims; ++d) g_assert_cmpfloat(back[d], ==, data[11 * dims + d]);
  assert_contains(error_of([&] { store.reconstruct(50); }), "out of range");
}

void test_training_minimums() {
  struct Case {
    const char* type;
    int64_t minimum;
    int64_t recommended;
  } cases[] = {
      {"Flat", 0, 0},          {"HNSW16", 0, 0},           {"IVF16,Flat", 16, 16 * 39},
      {"PQ4", 256, 256 * 39},  {"IVF8,PQ4", 256, 256 * 39}, {"OPQ4,IVF8,PQ4", 256, 256 * 39},
      {"HNSW16,PQ4", 256, 256 * 39}, {"IVF8,SQ8", 8, 8 * 39},
  };
  for (const Case& c : cases) {
    auto store = vs::IndexStore::create(c.type, 16, vs::Metric::InnerProduct);
    g_assert_cmpint(store.min_training_vectors(), ==, c.minimum);
    g_assert_cmpint(store.recommended_training_vectors(), ==, c.recommended);
  }
}

void test_too_few_training_vectors() {
  auto data = random_vectors(10, 16, 2);
  auto store = vs::IndexStore::create("IVF16,Flat", 16, vs::Metric::L2);
  auto message = error_of([&] { store.train(data.data(), 10); });
  assert_contains(message, "at least 16 training vectors");
  assert_contains(message, "only 10");
  assert_contains(error_of([&] { store.add(data.data(), 10); }), "must be trained");
}

void test_unknown_type() {
  assert_contains(error_of([] { vs::IndexStore::create("NoSuchIndex42", 8, vs::Metric::L2); }),
                  "NoSuchIndex42");
  assert_contains(error_of([] { vs::metric_from_name("cosine"); }), "cosine");
  g_assert_true(vs::metric_from_name("ip") == vs::Metric::InnerProduct);
  g_assert_cmpstr(vs::metric_name(vs::Metric::L2), ==, "l2");
}

// IVF with nprobe = nlist scans every list, so it must agree with Flat; the
// parameters travel with each call, so threads with different nprobe values
// do not disturb each other.
void test_ivf_nprobe_save_load_concurrent() {
  const int dims = 16, n = 1000, nlist = 8;
  auto data = random_vectors(n, dims, 3);
  auto ivf = vs::IndexStore::create("IVF8,Flat", dims, vs::Metric::L2);
  g_assert_true(ivf.needs_training());
  ivf.train(data.data(), n);
  ivf.add(data.data(), n);
  auto back = ivf.reconstruct(123);
  for (int d = 0; d < dims; ++d) g_assert_cmpfloat(back[d], ==, data[123 * dims + d]);

  std::string path = tmp_path("ivf.faiss");
  ivf.save_atomically(path);
  auto loaded = vs::IndexStore::load(path);
  g_assert_cmpint(loaded.size(), ==, n);
  g_assert_true(loaded.metric() == vs::Metric::L2);

  auto flat = vs::IndexStore::create("Flat", dims, vs::Metric::L2);
  flat.add(data.data(), n);
  auto queries = random_vectors(20, dims, 4);
  auto exact = flat.search(queries.data(), 20, 5, {});

  vs::SearchParams all_lists;
  all_lists.nprobe = nlist;
  vs::SearchParams one_list;
  one_list.nprobe = 1;
  std::vector<std::vector<vs::Hit>> full, partial;
  std::thread a([&] {
    for (int i = 0; i < 20; ++i) full = loaded.search(queries.data(), 20, 5, all_lists);
  });
  std::thread b([&] {
    for (int i = 0; i < 20; ++i) partial = loaded.search(queries.data(), 20, 5, one_list);
  });
  a.join();
  b.join();
  int differing = 0;
  for (int q = 0; q < 20; ++q) {
    for (int j = 0; j < 5; ++j) {
      g_assert_cmpint(full[q][j].id, ==, exact[q][j].id);
      differing += partial[q].size() <= size_t(j) || partial[q][j].id != exact[q][j].id;
    }
  }
  // One list out of eight cannot find every true neighbour of 20 queries.
  g_assert_cmpint(differing, >, 0);
}

void test_hnsw_ef_search() {
  const int dims = 16, n = 500;
  auto data = random_vectors(n, dims, 5);
  auto store = vs::IndexStore::create("HNSW16", dims, vs::Metric::InnerProduct);
  store.add(data.data(), n);
  vs::SearchParams params;
  params.ef_search = 64;
  auto hits = store.search(data.data(), 1, 4, params);
  g_assert_cmpuint(hits[0].size(), ==, 4);
  // Parameters reach an inverted file behind a transform.
  auto pretransformed = vs::IndexStore::create("PCA8,IVF4,Flat", dims, vs::Metric::L2);
  auto more = random_vectors(400, dims, 6);
  pretransformed.train(more.data(), 400);
  pretransformed.add(more.data(), 400);
  params.nprobe = 4;
  g_assert_cmpuint(pretransformed.search(more.data(), 2, 3, params)[1].size(), ==, 3);
}

void test_load_missing_and_corrupt() {
  std::string missing = tmp_path("missing.faiss");
  assert_contains(error_of([&] { vs::IndexStore::load(missing); }), missing);
  std::string corrupt = tmp_path("corrupt.faiss");
  std::ofstream(corrupt) << "this is not a FAISS index";
  auto message = error_of([&] { vs::IndexStore::load(corrupt); });
  assert_contains(message, corrupt);
  assert_contains(message, "damaged");

  assert_contains(error_of([&] { vs::Catalog::load(missing + ".db"); }), missing + ".db");
  std::ofstream(corrupt + ".db") << "this is not an SQLite database, not at all, no.";
  assert_contains(error_of([&] { vs::Catalog::load(corrupt + ".db"); }), corrupt + ".db");
}

vs::IndexFacts sample_facts() {
  vs::IndexFacts facts;
  facts.model_id = "resnet18:abcd";
  facts.preprocessing_id = "rgb;size=32";
  facts.dims = 512;
  facts.metric = "ip";
  facts.index_type = "Flat";
  facts.count = 3;
  facts.created = vs::utc_timestamp_now();
  return facts;
}

void test_catalog_round_trip() {
  std::string path = vs::catalog_path_for(tmp_path("gallery.faiss"));
  g_assert_true(path == tmp_path("gallery.faiss.db"));
  std::vector<vs::CatalogItem> items = {
      {0, 3, "cat", "cifar10/train/0"}, {1, -1, "", ""}, {2, 3, "cat", "cifar10/train/2"}};
  vs::Catalog::write_atomically(path, sample_facts(), items);
  // Rewriting over an existing catalog replaces it whole.
  vs::Catalog::write_atomically(path, sample_facts(), items);

  auto catalog = vs::Catalog::load(path);
  g_assert_cmpstr(catalog.facts().model_id.c_str(), ==, "resnet18:abcd");
  g_assert_cmpstr(catalog.facts().preprocessing_id.c_str(), ==, "rgb;size=32");
  g_assert_cmpint(catalog.facts().dims, ==, 512);
  g_assert_cmpstr(catalog.facts().metric.c_str(), ==, "ip");
  g_assert_cmpint(catalog.facts().count, ==, 3);
  g_assert_cmpuint(catalog.facts().created.size(), ==, 20);
  g_assert_cmpuint(catalog.items().size(), ==, 3);
  g_assert_cmpstr(catalog.item(2)->source.c_str(), ==, "cifar10/train/2");
  g_assert_cmpint(catalog.item(1)->label, ==, -1);
  g_assert_null(catalog.item(3));
  g_assert_null(catalog.item(-1));
  g_assert_cmpint(catalog.count_label(3), ==, 2);
  g_assert_cmpint(catalog.count_label(7), ==, 0);

  auto inconsistent = sample_facts();
  inconsistent.count = 5;
  vs::Catalog::write_atomically(path, inconsistent, items);
  assert_contains(error_of([&] { vs::Catalog::load(path); }), "count of 5");
}

void test_same_embedding_space() {
  auto stored = sample_facts();
  auto query = stored;
  query.metric.clear();
  vs::check_same_embedding_space(stored, query, "x.db");
  query.model_id = "resnet50:ffff";
  query.dims = 2048;
  auto message = error_of([&] { vs::check_same_embedding_space(stored, query, "x.db"); });
  assert_contains(message, "resnet18:abcd");
  assert_contains(message, "resnet50:ffff");
  assert_contains(message, "x.db");
  auto other_metric = stored;
  other_metric.metric = "l2";
  assert_contains(error_of([&] { vs::check_same_embedding_space(stored, other_metric, "x.db"); }),
                  "different metric");
}

// A failure while writing the second file of a set leaves the first file's
// old content and no temporaries.
void test_file_set_failure_keeps_old_files() {
  std::string a = tmp_path("set-a"), b = tmp_path("set-b");
  std::ofstream(a) << "old a";
  auto write_text = [](const char* text) {
    return [text](const std::string& tmp) { std::ofstream(tmp) << text; };
  };
  auto message = error_of([&] {
    vs::replace_files_atomically({{a, write_text("new a")},
                                  {b, [](const std::string&) { throw vs::Error("disk full"); }}});
  });
  assert_contains(message, "disk full");
  std::string content;
  std::getline(std::ifstream(a), content);
  g_assert_cmpstr(content.c_str(), ==, "old a");
  GDir* dir = g_dir_open(tmp_dir.c_str(), 0, nullptr);
  while (const char* name = g_dir_read_name(dir)) g_assert_null(std::strstr(name, ".tmp."));
  g_dir_close(dir);

  vs::replace_files_atomically({{a, write_text("new a")}, {b, write_text("new b")}});
  std::getline(std::ifstream(b), content);
  g_assert_cmpstr(content.c_str(), ==, "new b");
}

}  // namespace

int main(int argc, char** argv) {
  g_test_init(&argc, &argv, nullptr);
  gchar* dir = g_dir_make_tmp("vs-index-store-XXXXXX", nullptr);
  tmp_dir = dir;
  g_free(dir);
  g_test_add_func("/index_store/flat", test_flat_add_search_reconstruct);
  g_test_add_func("/index_store/training_minimums", test_training_minimums);
  g_test_add_func("/index_store/too_few_training_vectors", test_too_few_training_vectors);
  g_test_add_func("/index_store/unknown_type", test_unknown_type);
  g_test_add_func("/index_store/ivf_nprobe_save_load_concurrent",
                  test_ivf_nprobe_save_load_concurrent);
  g_test_add_func("/index_store/hnsw_ef_search", test_hnsw_ef_search);
  g_test_add_func("/index_store/load_missing_and_corrupt", test_load_missing_and_corrupt);
  g_test_add_func("/catalog/round_trip", test_catalog_round_trip);
  g_test_add_func("/catalog/same_embedding_space", test_same_embedding_space);
  g_test_add_func("/atomic_file/set_failure_keeps_old_files",
                  test_file_set_failure_keeps_old_files);
  int rc = g_test_run();
  std::filesystem::remove_all(tmp_dir);
  return rc;
}
