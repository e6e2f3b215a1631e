/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Gallery images read back from the catalog's thumbnails, or else through a
// neighbour's source ("cifar10/train/17", read by the caller's SourceImages,
// or an image file path), and kept as
// square thumbnails, least recently used first out, so an overlay can draw the
// same hits frame after frame without touching the disk.
#pragma once

#include <opencv2/core.hpp>

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/base/image_sources.h"

namespace vs {

// Catalog thumbnails: faissindexer's default longer side, and the JPEG
// quality (small files, no visible blocks at overlay sizes).
constexpr int kDefaultThumbnailSize = 128;
constexpr int kThumbnailQuality = 85;

// A JPEG of rgb (CV_8UC3, RGB) whose longer side is longer_side, aspect kept;
// larger images are shrunk by area averaging, smaller ones enlarged. Throws
// vs::Error.
std::vector<uint8_t> encode_thumbnail(const cv::Mat& rgb, int longer_side);

class ThumbnailCache {
 public:
  // Image files are read only when they are regular files (never a FIFO or
  // a device, which could block), and decoded only when their header declares
  // at most kMaxPixels: decoding a 49 MP PNG took 350 MB and 3.9 s on two busy
  // cores, a 900 MP one 5.5 GB and 16 s. Others get a blank thumbnail and one
  // warning.
  static constexpr uint64_t kMaxPixels = 50'000'000;

  // A catalog thumbnail declaring more is damaged: faissindexer writes at
  // most 1024 pixels on the longer side.
  static constexpr uint64_t kMaxCatalogThumbnailPixels = 1024 * 1024;

  // capacity: thumbnails kept; sources: what reads the sources that are no
  // file paths (dataset records: CifarSources; nullptr: none); catalog: the
  // thumbnails of the index the neighbours come from (CatalogThumbnails;
  // nullptr: none); files_root: the folder relative file sources are read
  // from (the catalog's gallery_root; empty: the current directory).
  ThumbnailCache(size_t capacity, std::shared_ptr<SourceImages> sources,
                 std::shared_ptr<StoredThumbnails> catalog = nullptr, std::string files_root = "");

  // The size x size RGB thumbnail (CV_8UC3) of index item id: the catalog's
  // when it has one, else read through source; an empty Mat when neither
  // can be read; the reason goes to take_warnings(), once per cause.
  const cv::Mat& get(int64_t id, const std::string& source, int size);

  // Problems met since the last call, as sentences for the user.
  std::vector<std::string> take_warnings();

 private:
  cv::Mat read(const std::string& source);
  cv::Mat read_catalog(int64_t id);
  void warn_once(const std::string& key, const std::string& message);

  using Entry = std::pair<std::string, cv::Mat>;  // key: size + source

  size_t capacity_;
  std::shared_ptr<SourceImages> sources_;
  std::shared_ptr<StoredThumbnails> catalog_;
  std::string files_root_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> entries_;
  std::vector<std::string> warnings_;
  std::unordered_set<std::string> warned_;
};

}  // namespace vs
