// SPDX-License-Identifier: LGPL-2.1-or-later
// libvisualsearch-codecs.so: OpenCV's imgcodecs behind the C interface of
// engine/base/codec_module.h. imgcodecs links GDAL and about a hundred libraries on
// Debian, so only this module links it, and the plugin opens it on the first
// image it decodes or encodes.
#include "engine/base/codec_module.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#define VS_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

int fail(char* error, size_t error_size, const char* message) {
  std::snprintf(error, error_size, "%s", message);
  return -1;
}

// Copies an 8-bit 3-channel Mat into a buffer from alloc, BGR turned to RGB.
bool export_rgb(const cv::Mat& bgr, VsCodecsAlloc alloc, void* context) {
  uint8_t* out = alloc(context, bgr.total() * 3);
  if (!out) return false;
  cv::Mat rgb(bgr.rows, bgr.cols, CV_8UC3, out);
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return true;
}

}  // namespace

VS_EXPORT int vs_codecs_abi_version(void) { return VS_CODECS_ABI_VERSION; }

VS_EXPORT int vs_codecs_decode(const uint8_t* data, size_t size, int reduce, int shorter_side,
                               int* width, int* height, VsCodecsAlloc alloc, void* context,
                               char* error, size_t error_size) {
  try {
    const cv::Mat encoded(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    // IMREAD_COLOR: 8-bit BGR whatever the file holds (grey, alpha, 16-bit),
    // rotated as its EXIF orientation says. The reduced modes are libjpeg's
    // scaled decoding: the full-size picture never exists.
    int flags = cv::IMREAD_COLOR;
    if (reduce == 2) flags = cv::IMREAD_REDUCED_COLOR_2;
    if (reduce == 4) flags = cv::IMREAD_REDUCED_COLOR_4;
    if (reduce == 8) flags = cv::IMREAD_REDUCED_COLOR_8;
    cv::Mat bgr = cv::imdecode(encoded, flags);
    if (bgr.empty()) return fail(error, error_size, "the decoder rejected the image data");
    if (shorter_side > 0 && std::min(bgr.rows, bgr.cols) > shorter_side) {
      const double scale = double(shorter_side) / std::min(bgr.rows, bgr.cols);
      cv::Mat small;
      cv::resize(bgr, small,
                 cv::Size(std::max(1, int(bgr.cols * scale + 0.5)),
                          std::max(1, int(bgr.rows * scale + 0.5))),
                 0, 0, cv::INTER_AREA);
      bgr = small;
    }
    if (!export_rgb(bgr, alloc, context)) return fail(error, error_size, "out of memory");
    *width = bgr.cols;
    *height = bgr.rows;
    return 0;
  } catch (const std::exception& e) { return fail(error, error_size, e.what()); }
}

VS_EXPORT int vs_codecs_encode_jpeg(const uint8_t* rgb, int width, int height, int quality,
                                    VsCodecsAlloc alloc, void* context, char* error,
                                    size_t error_size) {
  try {
    const cv::Mat view(height, width, CV_8UC3, const_cast<uint8_t*>(rgb));
    cv::Mat bgr;
    cv::cvtColor(view, bgr, cv::COLOR_RGB2BGR);
    std::vector<uint8_t> encoded;
    if (!cv::imencode(".jpg", bgr, encoded, {cv::IMWRITE_JPEG_QUALITY, quality}))
      return fail(error, error_size, "the JPEG encoder failed");
    uint8_t* out = alloc(context, encoded.size());
    if (!out) return fail(error, error_size, "out of memory");
    std::memcpy(out, encoded.data(), encoded.size());
    return 0;
  } catch (const std::exception& e) { return fail(error, error_size, e.what()); }
}
