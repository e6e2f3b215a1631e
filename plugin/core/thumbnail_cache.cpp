#include "core/thumbnail_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/image_header.h"

namespace vs {

namespace {

// The bytes of a regular file of at most max_bytes. A FIFO or a device
// could block the streaming thread forever: open_regular_file refuses them
// without waiting. Throws vs::Error.
std::string read_regular_file(const std::string& path, int64_t max_bytes) {
  const int fd = open_regular_file(path, "gallery image");
  const std::unique_ptr<FILE, int (*)(FILE*)> file(fd < 0 ? nullptr : ::fdopen(fd, "rb"),
                                                   &std::fclose);
  if (!file) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw Error("Cannot open the gallery image " + path + ": " + std::strerror(err) + ".");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0)
    throw Error("Cannot examine the gallery image " + path + ": " + std::strerror(errno) + ".");
  if (st.st_size > max_bytes)
    throw Error("The gallery image " + path + " is larger than " +
                std::to_string(max_bytes >> 20) + " MiB.");
  std::string data(static_cast<size_t>(st.st_size), '\0');
  data.resize(std::fread(data.data(), 1, data.size(), file.get()));  // shorter if it shrank
  if (std::ferror(file.get()))
    throw Error("Cannot read the gallery image " + path + ": " + std::strerror(errno) + ".");
  return data;
}

}  // namespace

ThumbnailCache::ThumbnailCache(size_t capacity, std::string dataset_dir)
    : capacity_(capacity), dataset_dir_(std::move(dataset_dir)) {}

const cv::Mat& ThumbnailCache::get(const std::string& source, int size) {
  const std::string key = std::to_string(size) + ":" + source;
  auto found = entries_.find(key);
  if (found != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, found->second);
    return found->second->second;
  }

  cv::Mat image = read(source);
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

cv::Mat ThumbnailCache::read(const std::string& source) {
  if (source.empty()) return {};
  std::string dataset;
  CifarSplit split;
  int64_t index;
  if (parse_cifar_source(source, &dataset, &split, &index))
    return read_cifar(source, dataset, split, index);

  std::string data;
  try {
    data = read_regular_file(source, kMaxFileBytes);
  } catch (const Error& e) {
    warn_once(source, std::string(e.what()) + " Its thumbnail is left blank.");
    return {};
  }
  // Decoders allocate every pixel the header declares before reading on.
  const std::optional<ImageSize> size = image_size(data);
  if (!size) {
    warn_once(source, "Cannot read the gallery image " + source +
                          ": not a PNG, JPEG, BMP, WebP, TIFF, PNM or Sun raster image, or "
                          "its header is damaged; its thumbnail is left blank.");
    return {};
  }
  if (size->width * size->height > kMaxPixels) {
    warn_once(source, "The gallery image " + source + " is " + std::to_string(size->width) +
                          "x" + std::to_string(size->height) + " pixels, more than the " +
                          std::to_string(kMaxPixels / 1000000) +
                          " megapixels thumbnails are made from; its thumbnail is left blank.");
    return {};
  }
  const cv::Mat bgr = cv::imdecode(
      cv::Mat(1, static_cast<int>(data.size()), CV_8UC1, const_cast<char*>(data.data())),
      cv::IMREAD_COLOR);
  if (bgr.empty()) {
    warn_once(source, "Cannot decode the gallery image " + source +
                          "; its thumbnail is left blank.");
    return {};
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
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
                  dataset_dir_ + " (the index was built from another dataset?); its thumbnail "
                  "is left blank.");
    return {};
  }
  cv::Mat rgb(CifarDataset::kHeight, CifarDataset::kWidth, CV_8UC3);
  data->rgb(static_cast<size_t>(record), rgb.data);
  return rgb;
}

}  // namespace vs
