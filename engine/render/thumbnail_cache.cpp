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

ThumbnailCache::ThumbnailCache(size_t capacity, std::string dataset_dir,
                               std::shared_ptr<CatalogThumbnails> catalog, std::string files_root)
    : capacity_(capacity),
      dataset_dir_(std::move(dataset_dir)),
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
  std::string dataset;
  CifarSplit split;
  int64_t index;
  if (parse_cifar_source(source, &dataset, &split, &index))
    return read_cifar(source, dataset, split, index);

  // read_image opens only regular files (a FIFO or a device could block the
  // streaming thread forever) and checks the declared size before decoding.
  const std::string path =
      files_root_.empty() || source[0] == '/' ? source : files_root_ + "/" + source;
  RgbImage image;
  try {
    image = read_image(path, kMaxPixels);
  } catch (const Error& e) {
    warn_once(source, "Cannot show the gallery image: " + std::string(e.what()) +
                          "; its thumbnail is left blank.");
    return {};
  }
  return cv::Mat(image.height, image.width, CV_8UC3, image.pixels.data()).clone();
}

cv::Mat ThumbnailCache::read_cifar(const std::string& source, const std::string& dataset,
                                   CifarSplit split, int64_t index) {
  if (dataset_dir_.empty()) {
    warn_once("no-dataset", "The neighbours come from " + dataset +
                                " but no dataset directory is set, so their thumbnails are "
                                "left blank; set the 'dataset' property.");
    return {};
  }

  auto found = datasets_.find(split);
  if (found == datasets_.end()) {
    std::unique_ptr<CifarDataset> opened;
    try {
      CifarOptions options;
      options.split = split;
      opened = std::make_unique<CifarDataset>(CifarDataset::open(dataset_dir_, options));
    } catch (const std::exception& e) {
      warn_once("open", std::string("Cannot open the dataset for thumbnails: ") + e.what());
    }
    found = datasets_.emplace(split, std::move(opened)).first;
  }
  const CifarDataset* data = found->second.get();
  if (data == nullptr) return {};

  const int64_t record = data->name() == dataset ? data->find(split, index) : -1;
  if (record < 0) {
    warn_once("mismatch:" + data->name(),
              "The neighbour " + source + " is not in the " + data->name() + " dataset at " +
                  dataset_dir_ +
                  " (the index was built from another dataset?); its thumbnail "
                  "is left blank.");
    return {};
  }
  cv::Mat rgb(CifarDataset::kHeight, CifarDataset::kWidth, CV_8UC3);
  data->rgb(static_cast<size_t>(record), rgb.data);
  return rgb;
}

}  // namespace vs
