/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Builds a FAISS index and its catalog from a stream of embeddings: what
// faissindexer does, without GStreamer. Vectors go into the index as they
// arrive once it can take them (a Flat or HNSW index at once, a trainable one
// after training), so memory stays near one copy of the gallery.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/file_lock.h"
#include "engine/index/catalog.h"
#include "engine/index/file_inventory.h"
#include "engine/index/index_store.h"

namespace vs {

struct IndexBuildOptions {
  // The index file; the catalog is location + ".db". A symbolic link is
  // followed: the file it points to is replaced, and locked, not the link.
  std::string location;
  std::string index_type = "Flat";
  Metric metric = Metric::InnerProduct;
  // HNSW types: efConstruction (0: FAISS's 40). Refine types (",RFlat"): the
  // k_factor written into the file (0: FAISS's 1). See IndexStore::create.
  int ef_construction = 0;
  float refine_factor = 0;
  // Add to the index and catalog at location (created when there are none).
  bool append = false;
  // Trainable types: train on the first train_size vectors as soon as they
  // have arrived, then stream the rest into the index; 0 trains at the end
  // on all of them.
  int64_t train_size = 0;
  // Also write npy_embeddings_path() and npy_labels_path().
  bool export_npy = false;
  // An IDMap2 index whose items carry the identity of their files
  // (gallerysrc's walks): ids are kept when items are removed, and
  // inventory() hears which files the walk met, skipped or passed over.
  bool gallery = false;
  // With gallery: the folder the items' sources are relative to, recorded in
  // the catalog (IndexFacts::gallery_root) so readers find the originals.
  std::string gallery_root;
  // With gallery: update the existing index at location (created when
  // absent; it must be a gallery index): keep the items of unchanged files,
  // add the new ones, and when the walk was complete remove the items of
  // files changed or gone. Without: build anew.
  bool update = false;
  // Write the index and catalog every this often while vectors arrive (0:
  // only at the end), so that a killed run loses at most this much work.
  std::chrono::seconds checkpoint_interval{0};
  // How long to wait for another writer of location to finish.
  std::chrono::milliseconds lock_timeout = std::chrono::seconds(60);
};

// The lock file beside an index (location + ".lock") that writers hold while
// they read, modify and replace it: an appending writer from start to finish,
// any other while it writes. Readers do not take it.
std::string lock_path_for(const std::string& location);

// The NumPy export beside the index: <directory of location>/embeddings.npy
// (float32, count x dims, row i = index id i) and .../labels.npy (int64,
// count; -1 where a vector had no label).
std::string npy_embeddings_path(const std::string& location);
std::string npy_labels_path(const std::string& location);

class IndexBuilder {
 public:
  using Report = std::function<void(const std::string& message)>;
  using WaitOver = std::function<void(bool taken)>;

  // Checks that the directory of location is writable (creating the lock
  // file there). With append, takes the lock, then loads the existing index
  // and catalog and checks the metric. step() narrates the phases (waiting
  // for the lock, training, adding, writing); warn() hears of things that
  // work but deserve a person's attention. wait_over() ends each wait for the
  // lock that step() announced: taken, or given up (the call that waited
  // then throws), so that whoever shows the wait as a progress can end it.
  // Throws vs::Error.
  IndexBuilder(IndexBuildOptions options, Report step, Report warn, WaitOver wait_over = {});
  ~IndexBuilder();

  // One embedding and the identity of the frame it came from (item.id is
  // ignored: ids are positions in the index; item.thumbnail is kept until
  // finish() writes it, so it should be small). An appended index keeps the
  // thumbnails it had. Throws vs::Error when its
  // model, preprocessing or dims differ from the stream's first embedding or
  // from the index being appended to.
  void add(const float* values, int dims, const std::string& model_id,
           const std::string& preprocessing_id, const CatalogItem& item);

  // The settings of the embedder that makes this run's embeddings, recorded
  // in the catalog (IndexFacts::embedder_config). An appending run that
  // brings none keeps those the catalog has.
  void set_embedder_config(const std::string& config) { facts_.embedder_config = config; }

  int64_t added() const { return added_; }
  int64_t existing() const { return existing_; }
  // Items removed at finish() (gallery updates).
  int64_t removed() const { return removed_; }
  // The stream is a walk of the gallery folder root (gallerysrc announces it
  // before its first frame): a gallery build records root in the catalog
  // (IndexFacts::gallery_root), and a build anew becomes a gallery build as
  // long as no embedding has arrived yet. An append stays one. Throws
  // vs::Error.
  void set_gallery_root(const std::string& root);

  // The files the index holds (gallery builds); nullptr otherwise.
  const std::shared_ptr<FileInventory>& inventory() const { return inventory_; }

  // Trains if still needed, adds what is pending and, holding the lock,
  // removes temporaries of killed writers and replaces the index and catalog
  // (and the NumPy export) atomically; then releases the lock. Returns false,
  // writing nothing, when the run brought no embeddings to an existing index.
  // Throws vs::Error whose message says whether the index and catalog were
  // replaced.
  bool finish();

  const std::string& location() const { return options_.location; }
  const std::string& catalog_path() const { return catalog_path_; }

 private:
  void take_lock();
  int64_t pending_rows() const;
  void train_on_pending();
  void flush_pending();
  void export_npy() const;
  void load_existing();
  void write_files(bool final);
  void checkpoint_if_due();

  IndexBuildOptions options_;
  Report step_;
  Report warn_;
  WaitOver wait_over_;
  std::string catalog_path_;
  std::unique_ptr<FileLock> lock_;
  std::optional<IndexStore> index_;
  IndexFacts facts_;  // of the index being built; dims 0 until the first embedding
  bool have_existing_facts_ = false;
  std::vector<CatalogItem> items_;
  std::vector<float> pending_;        // arrived, not yet in the index
  std::vector<int64_t> pending_ids_;  // their ids, for an index with an id map
  int64_t next_id_ = 0;
  int64_t removed_ = 0;
  std::shared_ptr<FileInventory> inventory_;
  // The catalog whose thumbnails the next write carries over: the previous
  // one, or the last checkpoint (whose items no longer hold theirs in memory).
  std::string keep_thumbnails_from_;
  std::chrono::steady_clock::time_point last_write_;
  std::vector<float> all_vectors_;  // this run's vectors, kept for export_npy only
  int64_t existing_ = 0;
  int64_t added_ = 0;
};

}  // namespace vs
