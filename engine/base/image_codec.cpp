// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/image_codec.h"

#include "engine/base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "engine/base/codec_module.h"
#include "engine/base/image_header.h"
#include "engine/base/module_loader.h"

namespace vs {

namespace {

const char kModuleName[] = "libvisualsearch-codecs.so";

void* codecs_symbol(const char* symbol) {
  static const bool checked = [] {
    const auto version = reinterpret_cast<VsCodecsAbiVersion>(module_symbol(
        kModuleName, kCodecsModuleEnv, VS_CODECS_MODULE_BUILD_PATH, "vs_codecs_abi_version"));
    if (version() != VS_CODECS_ABI_VERSION)
      throw Error(ErrorKind::Module,
                  std::string("the module ") + kModuleName +
                      " does not match this plugin (another build?): reinstall visualsearch");
    return true;
  }();
  (void)checked;
  return module_symbol(kModuleName, kCodecsModuleEnv, VS_CODECS_MODULE_BUILD_PATH, symbol);
}

uint8_t* grow(void* context, size_t size) {
  auto* buffer = static_cast<std::vector<uint8_t>*>(context);
  try {
    buffer->resize(size);
  } catch (const std::bad_alloc&) { return nullptr; }
  return buffer->data();
}

class File {
 public:
  explicit File(int fd) : fd_(fd) {}
  ~File() {
    if (fd_ >= 0) close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

std::string errno_text() { return std::strerror(errno); }

// Up to n bytes at offset; fewer only at the end of the file. Throws on an I/O error.
size_t read_at(int fd, uint64_t offset, uint8_t* out, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const ssize_t got = pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      throw ImageError(ImageError::Reason::Unreadable, "cannot read " + path + ": " + errno_text());
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

// Whether the declared size fits max_pixels; throws ImageError otherwise.
void check_header(const ImageHeader& header, const std::string& name, uint64_t max_pixels) {
  if (header.format == ImageFormat::Unknown)
    throw ImageError(ImageError::Reason::NotAnImage,
                     name +
                         " is not an image in a known format (JPEG, PNG, WebP, TIFF, BMP, "
                         "PNM or JPEG 2000)");
  const std::string format = image_format_name(header.format);
  if (!header.has_size())
    throw ImageError(ImageError::Reason::Corrupt, name + " is a damaged or truncated " + format +
                                                      " (its header declares no "
                                                      "valid size)");
  // Compared by division so that two 32-bit sizes cannot overflow the product.
  if (header.width > max_pixels / header.height)
    throw ImageError(ImageError::Reason::TooLarge,
                     name + " is too large: its " + format + " header declares " +
                         std::to_string(header.width) + "x" + std::to_string(header.height) +
                         " pixels, more than max-pixels (" + std::to_string(max_pixels) + ")");
}

}  // namespace

RgbImage decode_image(const uint8_t* data, size_t size, const std::string& name,
                      uint64_t max_pixels, int shorter_side) {
  if (size == 0) throw ImageError(ImageError::Reason::Empty, name + " is empty (0 bytes)");
  const ImageHeader header = read_image_header(data, size);
  check_header(header, name, max_pixels);
  if (header.format == ImageFormat::Jpeg && !jpeg_is_complete(data, size))
    throw ImageError(ImageError::Reason::Corrupt,
                     name + " is a truncated JPEG (it ends before its end-of-image marker)");

  // libjpeg scales by 1/2, 1/4 or 1/8 while it decodes; the rest of the way
  // is the module's area averaging.
  int reduce = 1;
  if (header.format == ImageFormat::Jpeg && shorter_side > 0)
    while (reduce < 8 && std::min(header.width, header.height) / (reduce * 2) >=
                             static_cast<uint64_t>(shorter_side))
      reduce *= 2;
  const auto decode = reinterpret_cast<VsCodecsDecode>(codecs_symbol("vs_codecs_decode"));
  RgbImage image;
  char error[512] = "";
  if (decode(data, size, reduce, shorter_side, &image.width, &image.height, grow, &image.pixels,
             error, sizeof error) != 0)
    throw ImageError(ImageError::Reason::Corrupt, name + " is a damaged or truncated " +
                                                      image_format_name(header.format) + " (" +
                                                      error + ")");
  return image;
}

void load_image_codecs() { codecs_symbol("vs_codecs_decode"); }

bool is_image_file(const std::string& path) {
  int fd;
  try {
    fd = open_regular_file(path, "image");
  } catch (const Error&) { return false; }
  if (fd < 0) return false;
  File file(fd);
  uint8_t magic[kImageMagicBytes];
  try {
    return image_format(magic, read_at(fd, 0, magic, sizeof magic, path)) != ImageFormat::Unknown;
  } catch (const Error&) { return false; }
}

RgbImage read_image(const std::string& path, uint64_t max_pixels, int shorter_side) {
  int fd;
  try {
    fd = open_regular_file(path, "image");
  } catch (const Error& e) { throw ImageError(ImageError::Reason::Unreadable, e.what()); }
  if (fd < 0)
    throw ImageError(ImageError::Reason::Unreadable, "cannot open " + path + ": " + errno_text());
  File file(fd);
  struct stat st;
  if (fstat(file.fd(), &st) != 0)
    throw ImageError(ImageError::Reason::Unreadable, "cannot read " + path + ": " + errno_text());
  if (st.st_size == 0) throw ImageError(ImageError::Reason::Empty, path + " is empty (0 bytes)");
  // The file is read whole below: no image within max_pixels takes more than
  // 8 bytes a pixel (16-bit RGBA TIFF) plus its metadata.
  const uint64_t max_bytes = max_pixels * 8 + (uint64_t(64) << 20);
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    throw ImageError(ImageError::Reason::TooLarge,
                     path + " is too large: " + std::to_string(st.st_size >> 20) +
                         " MiB, more than any image within max-pixels (" +
                         std::to_string(max_pixels) + ") takes");

  const ImageHeader header =
      read_image_header([fd, &path](uint64_t offset, uint8_t* out, size_t n) {
        return read_at(fd, offset, out, n, path);
      });
  check_header(header, path, max_pixels);

  // Only now, with the size known to be sane, is the whole file read.
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  bytes.resize(read_at(fd, 0, bytes.data(), bytes.size(), path));
  return decode_image(bytes.data(), bytes.size(), path, max_pixels, shorter_side);
}

std::vector<uint8_t> encode_jpeg(const RgbImage& image, int quality) {
  const auto encode = reinterpret_cast<VsCodecsEncodeJpeg>(codecs_symbol("vs_codecs_encode_jpeg"));
  std::vector<uint8_t> jpeg;
  char error[512] = "";
  if (encode(image.pixels.data(), image.width, image.height, quality, grow, &jpeg, error,
             sizeof error) != 0)
    throw Error("cannot encode a " + std::to_string(image.width) + "x" +
                std::to_string(image.height) + " JPEG thumbnail: " + error);
  return jpeg;
}

}  // namespace vs
