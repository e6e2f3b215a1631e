/* SPDX-License-Identifier: LGPL-2.1-or-later */
// What an index holds of a gallery folder, matched against a new walk of it.
// gallerysrc reads one from the index it feeds (of_index) and asks, before
// decoding each file, whether the index holds it unchanged (same size and
// modification time); the indexer keeps one under its writer lock, hears of
// every file the walk met (met) and gives each new item the identity of its
// file, and once the walk is complete removes the items of files changed or
// gone. It also knows the files found unreadable (RejectedFile), so that a
// walk passes over those unchanged without probing them again, and the
// indexer records what this walk found. Plain file records only: the walk
// itself is the caller's.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/index/catalog.h"

namespace vs {

// An entry of the tree that the walk passed over.
struct WalkGap {
  std::string relative;  // '/'-separated from the root, bytes as on disk
  // It could not be read (a folder that cannot be opened or listed): what is
  // under it is unknown, not gone. Otherwise it is no file to read (a FIFO, a
  // broken link, a loop).
  bool unread = false;
};

class FileInventory {
 public:
  // items: the index's catalog (items without a file identity are ignored);
  // rejected: the files its catalog records as unreadable.
  explicit FileInventory(const std::vector<CatalogItem>& items,
                         const std::vector<RejectedFile>& rejected = {});

  // The inventory of the index at location, read from its catalog (symbolic
  // links followed, as writers do); nullptr when there is neither an index
  // nor a catalog there. Throws vs::Error when the catalog cannot be read.
  static std::shared_ptr<FileInventory> of_index(const std::string& location);

  // The identity of the file at path (stat), under the name relative; nullopt
  // when it cannot be stat'ed.
  static std::optional<FileIdentity> identify(const std::string& relative, const std::string& path);

  // Whether the index holds the items of this very file (same relative
  // path, size and mtime). Safe from any thread.
  bool holds(const FileIdentity& identity) const;

  // The walk met a file, with its identity as stat'ed before decoding (size
  // -1 and mtime 0 when it could not be stat'ed). skipped: the walk passed
  // over it as unchanged; its items are kept, and true is returned, when the
  // index holds it (false: it does not, and nothing is kept). Otherwise the
  // file's identity is noted for the items it is about to produce. Safe from
  // any thread.
  bool met(const FileIdentity& identity, bool skipped);

  // identify() and met() in one, for a walk in the same process: true, and
  // the items kept, when the index holds the file unchanged.
  bool unchanged(const std::string& relative, const std::string& path);
  // The same answer without recording anything: whether a walk would skip
  // the file. Safe from any thread.
  bool holds_unchanged(const std::string& relative, const std::string& path) const;

  // Why the file was found unreadable, when the index records it so with this
  // very identity (same relative path, size and mtime); nullopt otherwise.
  // Safe from any thread.
  std::optional<std::string> rejected_unchanged(const FileIdentity& identity) const;

  // The walk found the file unreadable for reason (one sentence). skipped:
  // it passed over it without probing it, as rejected_unchanged() said,
  // after no met(); otherwise after met(identity, false). A file that gave
  // items before failing (a video cut short) is not recorded. Safe from any
  // thread.
  void rejected(const FileIdentity& identity, const std::string& reason, bool skipped);

  // The files to record as unreadable: those this walk found so (by
  // rejected()), plus those of the index it did not reach (a walk stopped
  // early) or could not read (WalkGap::unread). Files changed or gone drop
  // out. By path.
  std::vector<RejectedFile> rejected_files() const;
  // Whether rejected_files() differs from what the index records, so that
  // the catalog must be written even when no item changed.
  bool rejected_changed() const;

  // The file a new item with this GstVisualSearchSampleMeta source came from (a relative
  // path, plus "#t=SECONDS" for a video frame, whose time is filled in, and
  // "#xywh=..." or "&xywh=..." for a region, which is left out), as
  // noted by met(); nullopt when the walk did not announce it.
  std::optional<FileIdentity> identity_of(const std::string& source);

  // A frame with this source was read but gave no item (an index of regions:
  // a picture without a region). When its file, as noted by met(), gave no
  // item at all by the end of the run, the file is recorded among
  // rejected_files() with the reason kReadWithoutItems, so that a later walk
  // passes over it while it stays unchanged (rejected_unchanged()) instead of
  // reading it again, and counts it as unchanged; this run counts it as added
  // (or updated), not as bad. Call after the run's last item.
  static constexpr const char* kReadWithoutItems =
      "no region to index (read; read again once it changes)";
  void read_without_items(const std::string& source);

  // The walk reached the end of the folder: only then are the files it did
  // not meet known to be gone. skipped: what the walk passed over; the items
  // under an entry it could not read (WalkGap::unread) are kept, since their
  // files may well still be there.
  void walk_complete(const std::vector<WalkGap>& skipped);
  bool walked_all() const;

  // Ids of the index's items to remove at the end of a complete walk: those
  // of files changed, incomplete (a run stopped in the middle of a video) or
  // gone.
  std::vector<int64_t> stale_ids() const;

  // Files, counted at the end of a run.
  struct Counts {
    int64_t added = 0;      // new files that gave items
    int64_t updated = 0;    // changed files that gave items
    int64_t removed = 0;    // files gone (counted only after a complete walk)
    int64_t unchanged = 0;  // skipped before decoding
    int64_t bad = 0;        // files that gave no item, or that the walk passed over
    int64_t unread = 0;     // entries the walk could not read (their items are kept)
  };
  Counts counts() const;

 private:
  struct Group {
    int64_t size;
    int64_t mtime_ns;
    std::vector<int64_t> ids;
  };
  // The group of known_ that holds identity unchanged; nullptr if none.
  const Group* find_unchanged(const FileIdentity& identity) const;

  mutable std::mutex mutex_;
  std::map<std::string, std::vector<Group>> known_;  // by relative path
  std::set<int64_t> kept_ids_;
  // Files of this walk to embed, by valid_utf8(relative) (sources are valid
  // UTF-8), and whether they gave an item.
  struct Pending {
    FileIdentity identity;
    bool known = false;
    bool produced = false;
    bool read_empty = false;  // read, with no item (read_without_items())
  };
  std::map<std::string, Pending> pending_;
  // The pending file of a source (fragments as identity_of() takes them) and
  // the frame's time (-1 for none); pending_.end() if the walk did not
  // announce it. Under mutex_.
  std::map<std::string, Pending>::iterator pending_of(const std::string& source, double* time);
  int64_t unchanged_ = 0;
  int64_t passed_over_ = 0;  // entries the walk skipped that are no readable file
  int64_t unread_ = 0;
  std::set<std::string> met_;                           // relative paths the walk met
  std::map<std::string, RejectedFile> known_rejected_;  // the index's, by path
  std::map<std::string, RejectedFile> found_rejected_;  // this walk's, by path
  std::set<std::string> kept_rejected_;                 // known ones under entries not read
  int64_t rejected_unchanged_ = 0;                      // passed over as rejected_unchanged()
  bool walked_all_ = false;
};

}  // namespace vs
