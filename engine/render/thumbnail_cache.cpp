// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/render/thumbnail_cache.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>

#include "engine/base/error.h"
#include "engine/base/image_codec.h"

namespace vs {

std::vector<uint8_t> encode_thumbnail(const cv::Mat& rgb, int longer_side) {
  const double scale = static_cast<double>(longer_side) / std::max(rgb.cols, rgb.rows);
  const cv::Size size(std::max(1, static_cast<int>(std::lround(rgb.cols * scale))),
                      std::max(1, static_cast<int>(std::lround(rgb.rows * scale))));
  cv::Mat small;
  cv::resize(rgb, small, size, 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  RgbImage image;
  image.width = small.cols;
  image.height = small.rows;
  image.pixels.resize(static_cast<size_t>(small.cols) * small.rows * 3);
  cv::Mat packed(small.rows, small.cols, CV_8UC3, image.pixels.data());
  small.copyTo(packed);
  return encode_jpeg(image, kThumbnailQuality);
}

ThumbnailCache::ThumbnailCache(size_t capacity, std::shared_ptr<SourceImages> sources,
                               std::shared_ptr<StoredThumbnails> catalog, std::string files_root)
    : capacity_(capacity),
      sources_(std::move(sources)),
      catalog_(std::move(catalog)),
      files_root_(std::move(files_root)) {}

const cv::Mat& ThumbnailCache::get(int64_t id, const std::string& source, int size) {
  const std::string key =
      std::to_string(size) + ":" + (catalog_ ? std::to_string(id) : "") + ":" + source;
  auto found = entries_.find(key);
  if (found != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, found->second);
    return found->second->second;
  }

  cv::Mat image = read_catalog(id);
  if (image.empty()) image = read(source);
  cv::Mat thumb;
  // An unreadable source is cached too (empty), so it costs one attempt.
  if (!image.empty()) {
    // INTER_AREA shrinks photos cleanly; CIFAR's 32x32 grows with it smoothly.
    cv::resize(image, thumb, cv::Size(size, size), 0, 0,
               image.cols > size ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  lru_.emplace_front(key, std::move(thumb));
  entries_[key] = lru_.begin();
  if (lru_.size() > capacity_) {
    entries_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return lru_.front().second;
}

std::vector<std::string> ThumbnailCache::take_warnings() {
  std::vector<std::string> out;
  out.swap(warnings_);
  return out;
}

void ThumbnailCache::warn_once(const std::string& key, const std::string& message) {
  if (warned_.insert(key).second) warnings_.push_back(message);
}

cv::Mat ThumbnailCache::read_catalog(int64_t id) {
  if (!catalog_ || id < 0) return {};
  const std::string name =
      "the thumbnail of item " + std::to_string(id) + " in the catalog " + catalog_->path();
  RgbImage image;
  try {
    const std::vector<uint8_t> jpeg = catalog_->get(id);
    if (jpeg.empty()) return {};
    image = decode_image(jpeg.data(), jpeg.size(), name, kMaxCatalogThumbnailPixels);
  } catch (const Error& e) {
    warn_once("catalog:" + catalog_->path(),
              "Cannot show " + name + ": " + e.what() +
                  " Such items are read from their original files instead; rebuild the "
                  "index with faissindexer to repair the catalog.");
    return {};
  }
  return cv::Mat(image.height, image.width, CV_8UC3, image.pixels.data()).clone();
}

cv::Mat ThumbnailCache::read(const std::string& source) {
  if (source.empty()) return {};
  RgbImage image;
  if (sources_ &&
      sources_->read(source, &image, [this](const std::string& key, const std::string& message) {
        warn_once(key, message);
      }))
    return image.pixels.empty()
               ? cv::Mat()
               : cv::Mat(image.height, image.width, CV_8UC3, image.pixels.data()).clone();

  // read_image opens only regular files (a FIFO or a device could block the
  // streaming thread forever) and checks the declared size before decoding.
  const std::string path =
      files_root_.empty() || source[0] == '/' ? source : files_root_ + "/" + source;
  try {
    image = read_image(path, kMaxPixels);
  } catch (const Error& e) {
    warn_once(source, "Cannot show the gallery image: " + std::string(e.what()) +
                          "; its thumbnail is left blank.");
    return {};
  }
  return cv::Mat(image.height, image.width, CV_8UC3, image.pixels.data()).clone();
}

}  // namespace vs
