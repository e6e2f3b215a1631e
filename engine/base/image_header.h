/* SPDX-License-Identifier: LGPL-2.1-or-later */
// What an image file is and how large it says it is, read from its first
// bytes and header alone: the format by its magic bytes (never the file name),
// the dimensions from the header, so that a decompression bomb is refused
// before a decoder allocates anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace vs {

enum class ImageFormat { Unknown, Jpeg, Png, WebP, Tiff, Bmp, Pnm, Jpeg2000 };

// "JPEG", "PNG", ...; "unknown" for Unknown.
const char* image_format_name(ImageFormat format);

// Enough leading bytes for image_format() to recognise every format.
constexpr size_t kImageMagicBytes = 18;

// The format whose magic bytes data starts with; Unknown for anything else
// (and for fewer bytes than the magic needs).
ImageFormat image_format(const uint8_t* data, size_t size);

struct ImageHeader {
  ImageFormat format = ImageFormat::Unknown;
  // As the header declares them (before any EXIF rotation); 0 when the header
  // is truncated or malformed, or declares a zero dimension.
  uint64_t width = 0;
  uint64_t height = 0;

  bool has_size() const { return width > 0 && height > 0; }
};

// Reads up to n bytes at offset into out and returns how many it read (fewer
// only at the end of the data).
using ByteReader = std::function<size_t(uint64_t offset, uint8_t* out, size_t n)>;

// The header of the image that read() gives access to. Reads only what the
// header needs: JPEG markers are skipped by their lengths, a TIFF's first IFD
// is read where its offset points.
ImageHeader read_image_header(const ByteReader& read);
ImageHeader read_image_header(const uint8_t* data, size_t size);

// Whether a JPEG runs to its end-of-image marker. libjpeg decodes a truncated
// file without failing (it pads the missing rows with grey), so the only way to
// tell a cut-off photo from a whole one is to walk its markers and entropy-coded
// data to EOI. Data after EOI (a motion photo's video) is allowed.
bool jpeg_is_complete(const uint8_t* data, size_t size);

}  // namespace vs
