#include "core/index_builder.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/gallery.h"
#include "core/npy.h"

namespace vs {

namespace {

// Vectors of an index that needs no (more) training go in by this many: few
// FAISS calls, little memory held back.
constexpr int64_t kAddChunk = 4096;

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

std::string npy_embeddings_path(const std::string& location) {
  return directory_of(location) + "/embeddings.npy";
}

std::string npy_labels_path(const std::string& location) {
  return directory_of(location) + "/labels.npy";
}

std::string lock_path_for(const std::string& location) { return location + ".lock"; }

IndexBuilder::IndexBuilder(IndexBuildOptions options, Report step, Report warn)
    : options_(std::move(options)),
      step_(std::move(step)),
      warn_(std::move(warn)),
      catalog_path_(catalog_path_for(options_.location)) {
  if (options_.location.empty())
    throw Error("No index file given: set location to the path of the index to write.");
  lock_ = std::make_unique<FileLock>(lock_path_for(options_.location));
  facts_.index_type = options_.index_type;
  facts_.metric = metric_name(options_.metric);
  if (!options_.append) return;

  // Held until finish(): another appender reading the index meanwhile would
  // write it back without this run's vectors, or this run without its.
  take_lock();
  if (!file_exists(options_.location)) return;
  IndexWithCatalog existing = load_index_with_catalog(options_.location);
  const IndexFacts& stored = existing.catalog.facts();
  if (!stored.index_digest)
    step_("the catalog " + catalog_path_ + " predates the record of its index (schema " +
          "version 1), so their match was not checked; it is rewritten with one");
  IndexFacts wanted;
  wanted.metric = facts_.metric;
  check_same_embedding_space(stored, wanted, catalog_path_);
  facts_ = stored;
  have_existing_facts_ = true;
  items_ = existing.catalog.items();
  existing_ = existing.index.size();
  index_ = std::move(existing.index);
}

void IndexBuilder::take_lock() {
  lock_->lock(options_.lock_timeout, [this] {
    step_("waiting for another writer of " + options_.location + " to finish (lock file " +
          lock_->path() + "; giving up after " +
          std::to_string(options_.lock_timeout.count() / 1000) + " s)");
  });
}

IndexBuilder::~IndexBuilder() = default;

int64_t IndexBuilder::pending_rows() const {
  return facts_.dims > 0 ? static_cast<int64_t>(pending_.size()) / facts_.dims : 0;
}

void IndexBuilder::add(const float* values, int dims, const std::string& model_id,
                       const std::string& preprocessing_id, const CatalogItem& item) {
  IndexFacts incoming;
  incoming.model_id = model_id;
  incoming.preprocessing_id = preprocessing_id;
  incoming.dims = dims;
  if (dims <= 0) throw Error("An embedding with no values cannot be indexed.");
  if (added_ > 0) {
    if (model_id != facts_.model_id || preprocessing_id != facts_.preprocessing_id ||
        dims != facts_.dims)
      throw Error("Embedding " + std::to_string(added_ + 1) + " comes from model " + model_id +
                  " (preprocessing " + preprocessing_id + ", " + std::to_string(dims) +
                  " dims), but the stream started with model " + facts_.model_id +
                  " (preprocessing " + facts_.preprocessing_id + ", " +
                  std::to_string(facts_.dims) +
                  " dims). One index holds the embeddings of one model and preprocessing.");
  } else if (have_existing_facts_) {
    check_same_embedding_space(facts_, incoming, catalog_path_);
  } else {
    facts_.model_id = model_id;
    facts_.preprocessing_id = preprocessing_id;
    facts_.dims = dims;
    index_ = IndexStore::create(options_.index_type, dims, options_.metric);
  }

  pending_.insert(pending_.end(), values, values + dims);
  if (options_.export_npy) all_vectors_.insert(all_vectors_.end(), values, values + dims);
  CatalogItem entry = item;
  entry.id = existing_ + added_;
  items_.push_back(std::move(entry));
  ++added_;

  if (index_->needs_training()) {
    if (options_.train_size > 0 && pending_rows() >= options_.train_size) {
      train_on_pending();
      flush_pending();
    }
  } else if (pending_rows() >= kAddChunk) {
    flush_pending();
  }
}

void IndexBuilder::train_on_pending() {
  const int64_t n = pending_rows();
  const int64_t recommended = index_->recommended_training_vectors();
  if (n < recommended)
    warn_("Training the " + facts_.index_type + " index on only " + std::to_string(n) +
          " vectors; at least " + std::to_string(recommended) +
          " give good clusters. Index more images, raise train-size, or use fewer lists.");
  step_("training the " + facts_.index_type + " index on " + std::to_string(n) + " vectors");
  index_->train(pending_.data(), n);
}

void IndexBuilder::flush_pending() {
  index_->add(pending_.data(), pending_rows());
  // After a large training set, give the memory back; chunks reuse it.
  if (pending_.capacity() > static_cast<size_t>(2 * kAddChunk * facts_.dims))
    std::vector<float>().swap(pending_);
  else
    pending_.clear();
}

bool IndexBuilder::finish() {
  if (added_ == 0) {
    if (have_existing_facts_) {
      warn_("No embeddings arrived; " + options_.location + " is left unchanged.");
      return false;
    }
    throw Error("No buffer carried an embedding, so there is nothing to write to " +
                options_.location + ". Put an embedder upstream of the indexer.");
  }
  try {
    if (index_->needs_training()) train_on_pending();
    step_("adding " + std::to_string(pending_rows()) + " vectors; the index will hold " +
          std::to_string(existing_ + added_));
    flush_pending();
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " Nothing was written: any previous index and " +
                "catalog at " + options_.location + " are unchanged.");
  }

  take_lock();
  const int stale =
      remove_stale_temporaries(options_.location) + remove_stale_temporaries(catalog_path_);
  if (stale > 0)
    step_("removed " + std::to_string(stale) + " temporary files of " + options_.location +
          " left by writers that were killed");
  facts_.created = utc_timestamp_now();
  step_("writing " + options_.location + " and " + catalog_path_);
  // The previous catalog is still in place while the new one is written.
  write_index_with_catalog(options_.location, *index_, facts_, items_,
                           have_existing_facts_ ? catalog_path_ : "");
  facts_.count = index_->size();
  if (options_.export_npy) {
    try {
      export_npy();
    } catch (const Error& e) {
      throw Error("The index " + options_.location + " and its catalog " + catalog_path_ +
                  " were replaced and hold the new " + std::to_string(facts_.count) +
                  " vectors, but the NumPy export failed: " + e.what());
    }
  }
  lock_.reset();
  return true;
}

// Rows appended to an earlier index come back from that index: exact for
// Flat, IVF...,Flat and HNSW, approximate for compressed (PQ, SQ) types.
void IndexBuilder::export_npy() const {
  const std::string embeddings = npy_embeddings_path(options_.location);
  step_("writing " + embeddings + " and " + npy_labels_path(options_.location));
  std::vector<float> matrix;
  matrix.reserve(static_cast<size_t>(facts_.count) * facts_.dims);
  for (int64_t id = 0; id < existing_; ++id) {
    std::vector<float> row = index_->reconstruct(id);
    matrix.insert(matrix.end(), row.begin(), row.end());
  }
  matrix.insert(matrix.end(), all_vectors_.begin(), all_vectors_.end());
  std::vector<int64_t> labels;
  labels.reserve(items_.size());
  for (const CatalogItem& item : items_) labels.push_back(item.label);
  write_npy_atomically(embeddings, matrix.data(), facts_.count, facts_.dims);
  write_npy_atomically(npy_labels_path(options_.location), labels);
}

}  // namespace vs
