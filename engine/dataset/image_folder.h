/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Any folder as a gallery: the files under it in a stable order (sorted by
// name, depth first, as torchvision's ImageFolder sorts), each with a label
// from its first-level folder (the Caltech-101 layout), from a CSV of
// path,label rows (as product datasets ship their labels), or none.
//
// The walk follows symbolic links but enters each directory once (tracked by
// device and inode), so a link loop cannot make it run forever; a link back to
// a folder on the current path is reported as a loop, a second link to a
// folder walked already is passed over. Entries whose names start with '.'
// (.git, .DS_Store, ._photo.jpg) are never part of a gallery.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/folder_walk.h"

namespace vs {

enum class LabelSource { Folder, None, Csv };

// Which side of an evaluation split the walk keeps.
enum class FolderSplit { All, Gallery, Queries };

struct ImageFolderOptions {
  bool recursive = true;  // false: only the files directly in the root
  LabelSource labels = LabelSource::Folder;
  std::string csv_path;  // LabelSource::Csv: the CSV with path and label columns
  // A split stratified by label, by file (a video's frames stay on one side):
  // of each label's n files, round(query_fraction * n) but at least 1 and at
  // most n - 1 are queries (none when n is 1), the ones first in the order of
  // a hash of split_seed and their relative path. The same folder and seed
  // always split the same way, and adding a file moves no other one across.
  FolderSplit split = FolderSplit::All;
  double query_fraction = 0.2;
  uint32_t split_seed = 0;
};

// "folder", "none" or "csv:FILE" (a label-from property) into options; throws
// vs::Error saying what is accepted.
void parse_label_from(const std::string& text, ImageFolderOptions* options);

struct FolderFile {
  std::string path;      // to open: root + "/" + relative
  std::string relative;  // '/'-separated from the root, bytes as on disk
  int label = -1;        // -1: none (a file directly in the root, or not in the CSV)
};

class ImageFolder {
 public:
  // Walks root. Throws vs::Error when root is not a readable directory, or
  // the labels CSV cannot be read or has no path or label column.
  static ImageFolder scan(const std::string& root, const ImageFolderOptions& options);

  const std::vector<FolderFile>& files() const { return files_; }
  // Label names by label number: the sorted folder names, or the sorted
  // distinct labels of the CSV.
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Symbolic link loops, broken links, FIFOs, sockets, devices, folders that
  // cannot be opened: in walk order.
  const std::vector<SkippedEntry>& skipped() const { return skipped_; }

 private:
  std::vector<FolderFile> files_;
  std::vector<std::string> label_names_;
  std::vector<SkippedEntry> skipped_;
};

// The rows of a CSV (RFC 4180: quoted fields may hold commas, quotes as "",
// and line breaks; CRLF or LF; a UTF-8 byte order mark is ignored).
std::vector<std::vector<std::string>> parse_csv(const std::string& text);

}  // namespace vs
