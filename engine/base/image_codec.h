/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Still images in and out: decoding by content (JPEG, PNG, WebP, TIFF, BMP,
// PNM, JPEG 2000) with the EXIF orientation applied, and JPEG encoding. The
// codecs are OpenCV's, in libvisualsearch-codecs.so, which is opened on the
// first call (engine/base/module_loader.h), so a process that never touches an image
// file never loads them. The declared size is checked against a limit before
// anything is decoded, so a decompression bomb costs a header read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/error.h"

namespace vs {

constexpr const char* kCodecsModuleEnv = "VISUALSEARCH_CODECS_MODULE";
constexpr uint64_t kDefaultMaxPixels = 100'000'000;

// Packed RGB, rows of width * 3 bytes, top row first.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

// Why an image could not be read, so that a caller can try the file as
// something else (NotAnImage) or name the cause; what() is the sentence.
class ImageError : public Error {
 public:
  enum class Reason {
    Unreadable,  // cannot be opened or read, or is not a regular file
    Empty,       // zero bytes
    NotAnImage,  // no known image format's magic bytes
    TooLarge,    // the header declares more than max_pixels
    Corrupt,     // a known format, but truncated or damaged
  };
  ImageError(Reason reason, const std::string& message)
      : Error(kind_of(reason), message), reason_(reason) {}
  Reason reason() const { return reason_; }

 private:
  static ErrorKind kind_of(Reason reason) {
    switch (reason) {
      case Reason::Unreadable: return ErrorKind::Read;
      case Reason::NotAnImage: return ErrorKind::Format;
      case Reason::TooLarge: return ErrorKind::Settings;  // see max_pixels
      case Reason::Empty:
      case Reason::Corrupt: break;
    }
    return ErrorKind::Corrupt;
  }

  Reason reason_;
};

// Opens the codecs module now rather than on the first picture, so that a
// missing or foreign module fails where a caller can still refuse to start.
// Throws vs::Error naming the module and kCodecsModuleEnv.
void load_image_codecs();

// Whether the file at path starts with the magic bytes of a still format
// read_image() decodes. Reads only those bytes, and only from a regular file;
// false for anything it cannot read.
bool is_image_file(const std::string& path);

// The image in the file at path. Opens only a regular file (a FIFO or a
// device would block or never end). Throws ImageError; vs::Error when the
// codecs module cannot be opened. shorter_side: as decode_image().
RgbImage read_image(const std::string& path, uint64_t max_pixels = kDefaultMaxPixels,
                    int shorter_side = 0);

// The image encoded in data; name says what it is in messages. With
// shorter_side > 0, a picture whose shorter side is longer comes back shrunk
// to it (area averaging, aspect kept) and the full size is never copied out;
// a JPEG that large is decoded at 1/2, 1/4 or 1/8 of its size to begin with.
RgbImage decode_image(const uint8_t* data, size_t size, const std::string& name,
                      uint64_t max_pixels = kDefaultMaxPixels, int shorter_side = 0);

// A baseline JPEG of image at quality 1..100. Throws vs::Error.
std::vector<uint8_t> encode_jpeg(const RgbImage& image, int quality);

}  // namespace vs
