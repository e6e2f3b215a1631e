// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/index_builder.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <utility>

#include "engine/base/atomic_file.h"
#include "engine/base/error.h"
#include "engine/index/gallery.h"
#include "engine/index/npy.h"

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

IndexBuilder::IndexBuilder(IndexBuildOptions options, Report step, Report warn, WaitOver wait_over)
    : options_(std::move(options)),
      step_(std::move(step)),
      warn_(std::move(warn)),
      wait_over_(std::move(wait_over)) {
  // The lock, the temporaries and the catalog belong beside the index file
  // itself, whichever name of it the writer was given.
  options_.location = follow_links(options_.location);
  catalog_path_ = catalog_path_for(options_.location);
  if (options_.location.empty())
    throw Error(ErrorKind::Settings,
                "No index file given: set location to the path of the index to write.");
  lock_ = std::make_unique<FileLock>(lock_path_for(options_.location));
  facts_.index_type = options_.index_type;
  facts_.metric = metric_name(options_.metric);
  last_write_ = std::chrono::steady_clock::now();
  if (options_.gallery) {
    // A checkpoint may not be overwritten by another writer meanwhile.
    take_lock();
    if (options_.update && file_exists(options_.location)) load_existing();
    if (!inventory_) inventory_ = std::make_shared<FileInventory>(items_);
    // The folder may have moved since: its sources are relative to where it
    // is now (set_gallery_root() when the stream announces it).
    if (!options_.gallery_root.empty()) facts_.gallery_root = options_.gallery_root;
    return;
  }
  if (!options_.append) return;

  // Held until finish(): another appender reading the index meanwhile would
  // write it back without this run's vectors, or this run without its.
  take_lock();
  if (file_exists(options_.location)) load_existing();
}

void IndexBuilder::load_existing() {
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
  next_id_ = items_.empty() ? 0 : items_.back().id + 1;
  keep_thumbnails_from_ = catalog_path_;
  if (options_.gallery) {
    if (!existing.index.has_id_map())
      throw Error(ErrorKind::Format,
                  "The index " + options_.location +
                      " was not built as a gallery (by galleryindexer, or by gallerysrc index= "
                      "feeding faissindexer): it has no id map, so its items cannot be updated "
                      "one by one. Build it anew with mode=rebuild (galleryindexer, or "
                      "gallerysrc index= with faissindexer), or choose another index file.");
    inventory_ = std::make_shared<FileInventory>(items_, existing.catalog.rejected_files());
  }
  index_ = std::move(existing.index);
}

void IndexBuilder::set_gallery_root(const std::string& root) {
  if (!options_.gallery) {
    if (options_.append) return;
    if (index_ || added_ > 0)
      throw Error(ErrorKind::Format,
                  "The gallery " + root + " was announced after embeddings had arrived for " +
                      options_.location + ": its items cannot carry their files.");
    options_.gallery = true;
    // A checkpoint may not be overwritten by another writer meanwhile.
    take_lock();
    inventory_ = std::make_shared<FileInventory>(items_);
  }
  options_.gallery_root = root;
  facts_.gallery_root = root;
}

void IndexBuilder::take_lock() {
  bool waited = false;
  try {
    lock_->lock(options_.lock_timeout, [this, &waited] {
      waited = true;
      step_("waiting for another writer of " + options_.location + " to finish (lock file " +
            lock_->path() + "; giving up after " +
            std::to_string(options_.lock_timeout.count() / 1000) + " s)");
    });
  } catch (...) {
    if (waited && wait_over_) wait_over_(false);
    throw;
  }
  if (waited && wait_over_) wait_over_(true);
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
  if (dims <= 0) throw Error(ErrorKind::Format, "An embedding with no values cannot be indexed.");
  if (added_ > 0) {
    if (model_id != facts_.model_id || preprocessing_id != facts_.preprocessing_id ||
        dims != facts_.dims)
      throw Error(ErrorKind::Mismatch,
                  "Embedding " + std::to_string(added_ + 1) + " comes from model " + model_id +
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
    index_ =
        IndexStore::create(options_.gallery ? "IDMap2," + options_.index_type : options_.index_type,
                           dims, options_.metric, options_.ef_construction, options_.refine_factor);
  }

  pending_.insert(pending_.end(), values, values + dims);
  if (options_.export_npy) all_vectors_.insert(all_vectors_.end(), values, values + dims);
  CatalogItem entry = item;
  if (index_->has_id_map()) {
    entry.id = next_id_++;
    pending_ids_.push_back(entry.id);
    if (inventory_) entry.file = inventory_->identity_of(entry.source);
  } else {
    entry.id = existing_ + added_;
  }
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
  checkpoint_if_due();
}

// An untrained index cannot be written: a trainable type from scratch gets
// its first checkpoint once trained (train-size).
void IndexBuilder::checkpoint_if_due() {
  if (options_.checkpoint_interval.count() <= 0 || index_->needs_training() ||
      std::chrono::steady_clock::now() - last_write_ < options_.checkpoint_interval)
    return;
  flush_pending();
  step_("checkpoint: writing the " + std::to_string(existing_ + added_) + " items so far to " +
        options_.location);
  write_files(false);
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
  if (index_->has_id_map())
    index_->add_with_ids(pending_.data(), pending_rows(), pending_ids_.data());
  else
    index_->add(pending_.data(), pending_rows());
  pending_ids_.clear();
  // After a large training set, give the memory back; chunks reuse it.
  if (pending_.capacity() > static_cast<size_t>(2 * kAddChunk * facts_.dims))
    std::vector<float>().swap(pending_);
  else
    pending_.clear();
}

bool IndexBuilder::finish() {
  std::vector<int64_t> stale;
  if (inventory_ && inventory_->walked_all()) stale = inventory_->stale_ids();
  // Files found unreadable, or no longer, are recorded even when no item
  // changed, so that the next update does not probe them again.
  const bool rejected_changed = inventory_ && index_ && inventory_->rejected_changed();
  if (added_ == 0 && stale.empty() && !rejected_changed) {
    if (have_existing_facts_) {
      if (!options_.gallery)
        warn_("No embeddings arrived; " + options_.location + " is left unchanged.");
      return false;
    }
    throw Error(ErrorKind::Format,
                "No buffer carried an embedding, so there is nothing to write to " +
                    options_.location + ". Put an embedder upstream of the indexer.");
  }
  if (added_ == 0 && stale.empty()) {
    step_("recording the files of the gallery that gave no item (unreadable, or without a region)");
  } else {
    try {
      if (index_->needs_training()) train_on_pending();
      step_("adding " + std::to_string(pending_rows()) + " vectors; the index will hold " +
            std::to_string(existing_ + added_ - static_cast<int64_t>(stale.size())));
      flush_pending();
      if (!stale.empty()) {
        step_("removing the " + std::to_string(stale.size()) + " items of files changed or gone");
        index_->remove_ids(stale);
        const std::set<int64_t> gone(stale.begin(), stale.end());
        items_.erase(std::remove_if(items_.begin(), items_.end(),
                                    [&](const CatalogItem& item) { return gone.count(item.id); }),
                     items_.end());
        removed_ = static_cast<int64_t>(stale.size());
      }
    } catch (const Error& e) {
      throw Error(e.kind(), std::string(e.what()) +
                                " Nothing was written: any previous index and " + "catalog at " +
                                options_.location + " are unchanged.");
    }
  }
  write_files(true);
  if (options_.export_npy) {
    try {
      export_npy();
    } catch (const Error& e) {
      throw Error(ErrorKind::Write, "The index " + options_.location + " and its catalog " +
                                        catalog_path_ + " were replaced and hold the new " +
                                        std::to_string(facts_.count) +
                                        " vectors, but the NumPy export failed: " + e.what());
    }
  }
  lock_.reset();
  return true;
}

void IndexBuilder::write_files(bool final) {
  take_lock();
  const int stale =
      remove_stale_temporaries(options_.location) + remove_stale_temporaries(catalog_path_);
  if (stale > 0)
    step_("removed " + std::to_string(stale) + " temporary files of " + options_.location +
          " left by writers that were killed");
  facts_.created = utc_timestamp_now();
  if (final) step_("writing " + options_.location + " and " + catalog_path_);
  // A video cut short (a checkpoint in its middle, a stopped walk) must not
  // look complete to the next update: its items get no valid identity.
  std::vector<CatalogItem> unfinished;
  const std::vector<CatalogItem>* items = &items_;
  if (inventory_ && !(final && inventory_->walked_all()) && !items_.empty() && items_.back().file &&
      items_.back().file->time >= 0) {
    unfinished = items_;
    const std::string video = items_.back().file->path;
    for (auto it = unfinished.rbegin();
         it != unfinished.rend() && it->file && it->file->time >= 0 && it->file->path == video;
         ++it)
      it->file->size = -1;
    items = &unfinished;
  }
  // The previous catalog is still in place while the new one is written.
  write_index_with_catalog(options_.location, *index_, facts_, *items, keep_thumbnails_from_,
                           inventory_ ? inventory_->rejected_files() : std::vector<RejectedFile>());
  facts_.count = index_->size();
  // Those thumbnails are in the catalog now; the next write copies them.
  for (CatalogItem& item : items_) std::vector<uint8_t>().swap(item.thumbnail);
  keep_thumbnails_from_ = catalog_path_;
  last_write_ = std::chrono::steady_clock::now();
}

// Rows appended to an earlier index come back from that index: exact for
// Flat, IVF...,Flat and HNSW, approximate for compressed (PQ, SQ) types.
void IndexBuilder::export_npy() const {
  const std::string embeddings = npy_embeddings_path(options_.location);
  step_("writing " + embeddings + " and " + npy_labels_path(options_.location));
  std::vector<float> matrix;
  matrix.reserve(static_cast<size_t>(facts_.count) * facts_.dims);
  if (index_->has_id_map()) {
    for (const CatalogItem& item : items_) {
      std::vector<float> row = index_->reconstruct(item.id);
      matrix.insert(matrix.end(), row.begin(), row.end());
    }
  }
  for (int64_t id = 0; !index_->has_id_map() && id < existing_; ++id) {
    std::vector<float> row = index_->reconstruct(id);
    matrix.insert(matrix.end(), row.begin(), row.end());
  }
  if (!index_->has_id_map()) matrix.insert(matrix.end(), all_vectors_.begin(), all_vectors_.end());
  std::vector<int64_t> labels;
  labels.reserve(items_.size());
  for (const CatalogItem& item : items_) labels.push_back(item.label);
  write_npy_atomically(embeddings, matrix.data(), facts_.count, facts_.dims);
  write_npy_atomically(npy_labels_path(options_.location), labels);
}

}  // namespace vs
