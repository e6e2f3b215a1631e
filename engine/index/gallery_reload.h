/* SPDX-License-Identifier: LGPL-2.1-or-later */
// When to reload a gallery whose files were replaced, and the load itself in
// the background, so that a stream searching it never waits for the disk.
//
// An indexer renames the new index, then the new catalog, over the old ones.
// A replacement is loaded once both files have kept the same stamp for the
// settle time, so the pair written together is read together; a replacement
// that fails to load is tried once, not again until its files change.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/index/gallery.h"

namespace vs {

class GalleryReload {
 public:
  // The outcome of a finished background load: a gallery, or the error that
  // kept it from loading.
  struct Loaded {
    std::shared_ptr<const Gallery> gallery;
    std::string error;
  };

  enum class Step {
    Unchanged,  // the files are those last loaded (or one of them is missing)
    Settling,   // they changed and are waited on until they stop changing
    Started,    // they settled: a background load began
    Loading,    // a load started earlier is still under way
    Finished,   // a load finished: take its outcome with take()
  };

  // Reloads load as Gallery::load(index_path, mode).
  GalleryReload(std::string index_path, IndexLoadMode mode, std::chrono::milliseconds settle_time);
  // A load still running is left to finish, or hang on a dead mount, on its
  // own: it touches nothing of this object.
  ~GalleryReload();
  GalleryReload(const GalleryReload&) = delete;
  GalleryReload& operator=(const GalleryReload&) = delete;

  const std::string& index_path() const { return index_path_; }
  const std::string& catalog_path() const { return catalog_path_; }

  // Records the files as they are now as the ones loaded; call it just before
  // loading them in the foreground. Abandons a load under way.
  void mark_loaded();
  // Whether the index file existed at the last mark_loaded().
  bool index_existed() const { return loaded_index_.exists; }

  // Called between frames with a monotonic clock's time: looks at the files
  // and moves the reload on by at most one step.
  Step poll(std::chrono::steady_clock::time_point now);
  // The outcome of the load poll() reported Finished; once.
  Loaded take();

 private:
  struct Slot;

  std::string index_path_;
  std::string catalog_path_;
  IndexLoadMode mode_;
  std::chrono::milliseconds settle_time_;
  FileStamp loaded_index_;
  FileStamp loaded_catalog_;
  bool settling_ = false;
  FileStamp candidate_index_;
  FileStamp candidate_catalog_;
  std::chrono::steady_clock::time_point candidate_since_;
  std::shared_ptr<Slot> pending_;
  std::optional<Loaded> finished_;
};

}  // namespace vs
