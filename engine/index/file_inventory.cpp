// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/file_inventory.h"

#include <sys/stat.h>

#include <cstdlib>

#include "engine/base/atomic_file.h"
#include "engine/base/utf8.h"

namespace vs {

FileInventory::FileInventory(const std::vector<CatalogItem>& items,
                             const std::vector<RejectedFile>& rejected) {
  for (const RejectedFile& entry : rejected) known_rejected_[entry.file.path] = entry;
  for (const CatalogItem& item : items) {
    if (!item.file) continue;
    std::vector<Group>& groups = known_[item.file->path];
    Group* group = nullptr;
    for (Group& g : groups)
      if (g.size == item.file->size && g.mtime_ns == item.file->mtime_ns) group = &g;
    if (!group) {
      groups.push_back(Group{item.file->size, item.file->mtime_ns, {}});
      group = &groups.back();
    }
    group->ids.push_back(item.id);
  }
}

std::shared_ptr<FileInventory> FileInventory::of_index(const std::string& location) {
  const std::string index = follow_links(location);
  const std::string catalog = catalog_path_for(index);
  struct stat st;
  if (::stat(index.c_str(), &st) != 0 && ::stat(catalog.c_str(), &st) != 0) return nullptr;
  const Catalog loaded = Catalog::load(catalog);
  return std::make_shared<FileInventory>(loaded.items(), loaded.rejected_files());
}

std::optional<FileIdentity> FileInventory::identify(const std::string& relative,
                                                    const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  FileIdentity identity;
  identity.path = relative;
  identity.size = st.st_size;
  identity.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return identity;
}

const FileInventory::Group* FileInventory::find_unchanged(const FileIdentity& identity) const {
  auto known = known_.find(identity.path);
  if (known == known_.end()) return nullptr;
  for (const Group& group : known->second)
    // size -1: the items of a video a stopped run did not finish.
    if (group.size >= 0 && group.size == identity.size && group.mtime_ns == identity.mtime_ns)
      return &group;
  return nullptr;
}

bool FileInventory::holds(const FileIdentity& identity) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return find_unchanged(identity) != nullptr;
}

bool FileInventory::holds_unchanged(const std::string& relative, const std::string& path) const {
  const std::optional<FileIdentity> identity = identify(relative, path);
  return identity && holds(*identity);
}

bool FileInventory::met(const FileIdentity& identity, bool skipped) {
  std::lock_guard<std::mutex> lock(mutex_);
  met_.insert(identity.path);
  if (skipped) {
    const Group* group = find_unchanged(identity);
    if (!group) return false;
    kept_ids_.insert(group->ids.begin(), group->ids.end());
    ++unchanged_;
    return true;
  }
  Pending& pending = pending_[valid_utf8(identity.path)];
  pending.identity = identity;
  // Known: the index holds items of the file, or read it before and found
  // none (read_without_items()).
  auto read_before = known_rejected_.find(identity.path);
  pending.known =
      known_.count(identity.path) > 0 ||
      (read_before != known_rejected_.end() && read_before->second.reason == kReadWithoutItems);
  return false;
}

bool FileInventory::unchanged(const std::string& relative, const std::string& path) {
  std::optional<FileIdentity> identity = identify(relative, path);
  const bool held = identity && holds(*identity);
  if (!identity) {
    identity.emplace();
    identity->path = relative;
  }
  return met(*identity, held);
}

std::optional<std::string> FileInventory::rejected_unchanged(const FileIdentity& identity) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = known_rejected_.find(identity.path);
  if (it == known_rejected_.end() || identity.size < 0 || it->second.file.size != identity.size ||
      it->second.file.mtime_ns != identity.mtime_ns)
    return std::nullopt;
  return it->second.reason;
}

void FileInventory::rejected(const FileIdentity& identity, const std::string& reason,
                             bool skipped) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (skipped) {
    met_.insert(identity.path);
    // Read before with no item: as unchanged as a file whose items are kept.
    if (reason == kReadWithoutItems)
      ++unchanged_;
    else
      ++rejected_unchanged_;
  }
  // A file that could not be stat'ed has no identity to compare later.
  if (identity.size < 0) return;
  RejectedFile& entry = found_rejected_[identity.path];
  entry.file = identity;
  entry.file.time = -1;
  entry.reason = reason;
}

std::vector<RejectedFile> FileInventory::rejected_files() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<std::string, RejectedFile> all;
  for (const auto& [path, entry] : found_rejected_) {
    auto pending = pending_.find(valid_utf8(path));
    if (pending == pending_.end() || !pending->second.produced) all.emplace(path, entry);
  }
  for (const auto& [path, entry] : known_rejected_)
    if (!all.count(path) &&
        ((!walked_all_ && !met_.count(path)) || (walked_all_ && kept_rejected_.count(path))))
      all.emplace(path, entry);
  std::vector<RejectedFile> list;
  for (auto& [path, entry] : all) list.push_back(std::move(entry));
  return list;
}

bool FileInventory::rejected_changed() const {
  const std::vector<RejectedFile> now = rejected_files();
  std::lock_guard<std::mutex> lock(mutex_);
  if (now.size() != known_rejected_.size()) return true;
  for (const RejectedFile& entry : now) {
    auto it = known_rejected_.find(entry.file.path);
    if (it == known_rejected_.end() || it->second.file.size != entry.file.size ||
        it->second.file.mtime_ns != entry.file.mtime_ns || it->second.reason != entry.reason)
      return true;
  }
  return false;
}

std::map<std::string, FileInventory::Pending>::iterator FileInventory::pending_of(
    const std::string& item_source, double* time) {
  *time = -1;
  auto it = pending_.find(item_source);
  // A region's box ends the fragment: "a.jpg#xywh=...", "b.mp4#t=1.000&xywh=...".
  std::string source = item_source;
  const size_t box = source.rfind("xywh=");
  if (it == pending_.end() && box != std::string::npos && box > 0 &&
      (source[box - 1] == '#' || source[box - 1] == '&')) {
    source.erase(box - 1);
    it = pending_.find(source);
  }
  if (it == pending_.end()) {
    const size_t mark = source.rfind("#t=");
    if (mark == std::string::npos) return pending_.end();
    it = pending_.find(source.substr(0, mark));
    if (it == pending_.end()) return pending_.end();
    *time = std::strtod(source.c_str() + mark + 3, nullptr);
  }
  return it;
}

std::optional<FileIdentity> FileInventory::identity_of(const std::string& item_source) {
  std::lock_guard<std::mutex> lock(mutex_);
  double time;
  auto it = pending_of(item_source, &time);
  if (it == pending_.end()) return std::nullopt;
  it->second.produced = true;
  FileIdentity identity = it->second.identity;
  identity.time = time;
  return identity;
}

void FileInventory::read_without_items(const std::string& source) {
  std::lock_guard<std::mutex> lock(mutex_);
  double time;
  auto it = pending_of(source, &time);
  if (it == pending_.end() || it->second.produced) return;
  it->second.read_empty = true;
  // A file that could not be stat'ed has no identity to compare later.
  if (it->second.identity.size < 0) return;
  RejectedFile& entry = found_rejected_[it->second.identity.path];
  entry.file = it->second.identity;
  entry.file.time = -1;
  entry.reason = kReadWithoutItems;
}

void FileInventory::walk_complete(const std::vector<WalkGap>& skipped) {
  std::lock_guard<std::mutex> lock(mutex_);
  walked_all_ = true;
  for (const WalkGap& entry : skipped) {
    if (!entry.unread) {
      met_.insert(entry.relative);
      ++passed_over_;
      continue;
    }
    ++unread_;
    auto keep = [this](const std::pair<const std::string, std::vector<Group>>& known) {
      met_.insert(known.first);
      for (const Group& group : known.second) kept_ids_.insert(group.ids.begin(), group.ids.end());
    };
    if (auto it = known_.find(entry.relative); it != known_.end()) keep(*it);
    const std::string prefix = entry.relative == "." ? "" : entry.relative + "/";
    for (auto it = known_.lower_bound(prefix);
         it != known_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      keep(*it);
    for (const auto& [path, rejected] : known_rejected_)
      if (path == entry.relative || path.compare(0, prefix.size(), prefix) == 0)
        kept_rejected_.insert(path);
  }
}

bool FileInventory::walked_all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return walked_all_;
}

std::vector<int64_t> FileInventory::stale_ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int64_t> stale;
  for (const auto& [path, groups] : known_)
    for (const Group& group : groups)
      for (int64_t id : group.ids)
        if (!kept_ids_.count(id)) stale.push_back(id);
  return stale;
}

FileInventory::Counts FileInventory::counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Counts counts;
  counts.unchanged = unchanged_;
  counts.bad = passed_over_ + rejected_unchanged_;
  counts.unread = unread_;
  for (const auto& [source, pending] : pending_) {
    if (!pending.produced && !pending.read_empty)
      ++counts.bad;
    else if (pending.known)
      ++counts.updated;
    else
      ++counts.added;
  }
  if (walked_all_)
    for (const auto& [path, groups] : known_)
      if (!met_.count(path)) ++counts.removed;
  return counts;
}

}  // namespace vs
