// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/gallery_reload.h"

#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include "engine/index/catalog.h"

namespace vs {

// Shared by the loading thread and the owner, so that the owner can walk away
// from a load that never ends and still be destroyed.
struct GalleryReload::Slot {
  std::mutex lock;
  bool done = false;
  Loaded loaded;
};

GalleryReload::GalleryReload(std::string index_path, IndexLoadMode mode,
                             std::chrono::milliseconds settle_time)
    : index_path_(std::move(index_path)),
      catalog_path_(catalog_path_for(index_path_)),
      mode_(mode),
      settle_time_(settle_time) {}

GalleryReload::~GalleryReload() = default;

void GalleryReload::mark_loaded() {
  loaded_index_ = FileStamp::of(index_path_);
  loaded_catalog_ = FileStamp::of(catalog_path_);
  settling_ = false;
  pending_.reset();
  finished_.reset();
}

GalleryReload::Step GalleryReload::poll(std::chrono::steady_clock::time_point now) {
  if (finished_) return Step::Finished;
  if (pending_) {
    std::lock_guard<std::mutex> lock(pending_->lock);
    if (!pending_->done) return Step::Loading;
    finished_ = std::move(pending_->loaded);
  }
  if (finished_) {
    pending_.reset();
    return Step::Finished;
  }

  const FileStamp index = FileStamp::of(index_path_);
  const FileStamp catalog = FileStamp::of(catalog_path_);
  if ((index == loaded_index_ && catalog == loaded_catalog_) || !index.exists || !catalog.exists) {
    settling_ = false;
    return Step::Unchanged;
  }
  if (!settling_ || index != candidate_index_ || catalog != candidate_catalog_) {
    settling_ = true;
    candidate_index_ = index;
    candidate_catalog_ = catalog;
    candidate_since_ = now;
    return Step::Settling;
  }
  if (now - candidate_since_ < settle_time_) return Step::Settling;

  settling_ = false;
  // Recorded before the load so that a broken file is tried once, not on
  // every frame, until it changes again.
  loaded_index_ = index;
  loaded_catalog_ = catalog;
  pending_ = std::make_shared<Slot>();
  // Detached: the owner must not wait for a load stuck on the disk.
  std::thread([slot = pending_, path = index_path_, mode = mode_]() {
    Loaded loaded;
    try {
      loaded.gallery = std::make_shared<const Gallery>(Gallery::load(path, mode));
    } catch (const std::exception& e) { loaded.error = e.what(); }
    std::lock_guard<std::mutex> lock(slot->lock);
    slot->loaded = std::move(loaded);
    slot->done = true;
  }).detach();
  return Step::Started;
}

GalleryReload::Loaded GalleryReload::take() {
  Loaded loaded = finished_ ? std::move(*finished_) : Loaded{};
  finished_.reset();
  return loaded;
}

}  // namespace vs
