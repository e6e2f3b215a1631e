#include "core/image_header.h"

#include <cctype>
#include <cstdlib>

namespace vs {

namespace {

// Every read is bounds-checked: the header comes from a file we do not trust.
class Bytes {
 public:
  explicit Bytes(std::string_view data) : data_(data) {}

  bool has(size_t at, size_t n) const { return at <= data_.size() && n <= data_.size() - at; }
  bool starts_with(std::string_view magic, size_t at = 0) const {
    return has(at, magic.size()) && data_.substr(at, magic.size()) == magic;
  }
  uint8_t u8(size_t at) const { return static_cast<uint8_t>(data_[at]); }
  uint32_t be(size_t at, size_t n) const {
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | u8(at + i);
    return v;
  }
  uint32_t le(size_t at, size_t n) const {
    uint32_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | u8(at + i);
    return v;
  }
  size_t size() const { return data_.size(); }

 private:
  std::string_view data_;
};

std::optional<ImageSize> sized(int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) return std::nullopt;
  return ImageSize{width, height};
}

std::optional<ImageSize> png(const Bytes& b) {
  if (!b.has(0, 24) || !b.starts_with("IHDR", 12)) return std::nullopt;
  return sized(b.be(16, 4), b.be(20, 4));
}

// Walks the marker segments up to the frame header (SOFn).
std::optional<ImageSize> jpeg(const Bytes& b) {
  size_t at = 2;
  while (b.has(at, 2)) {
    if (b.u8(at) != 0xff) return std::nullopt;
    const uint8_t marker = b.u8(at + 1);
    if (marker == 0xff) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {  // no payload
      at += 2;
      continue;
    }
    if (marker == 0xd9 || marker == 0xda || !b.has(at + 2, 2)) return std::nullopt;
    const bool frame = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 &&
                       marker != 0xcc;
    if (frame) {
      if (!b.has(at + 5, 4)) return std::nullopt;
      return sized(b.be(at + 7, 2), b.be(at + 5, 2));
    }
    at += 2 + b.be(at + 2, 2);
  }
  return std::nullopt;
}

std::optional<ImageSize> bmp(const Bytes& b) {
  if (!b.has(14, 4)) return std::nullopt;
  if (b.le(14, 4) == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
    if (!b.has(18, 4)) return std::nullopt;
    return sized(b.le(18, 2), b.le(20, 2));
  }
  if (!b.has(18, 8)) return std::nullopt;
  // The height is negative for top-down rows.
  const int64_t height = static_cast<int32_t>(b.le(22, 4));
  return sized(static_cast<int32_t>(b.le(18, 4)), std::llabs(height));
}

std::optional<ImageSize> webp(const Bytes& b) {
  if (b.starts_with("VP8 ", 12) && b.has(26, 4) && b.be(23, 3) == 0x9d012a)
    return sized(b.le(26, 2) & 0x3fff, b.le(28, 2) & 0x3fff);
  if (b.starts_with("VP8L", 12) && b.has(21, 4) && b.u8(20) == 0x2f) {
    const uint32_t bits = b.le(21, 4);
    return sized((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1);
  }
  if (b.starts_with("VP8X", 12) && b.has(24, 6))
    return sized(int64_t(b.le(24, 3)) + 1, int64_t(b.le(27, 3)) + 1);
  return std::nullopt;
}

// ImageWidth (256) and ImageLength (257) of the first image directory.
std::optional<ImageSize> tiff(const Bytes& b) {
  const bool big_endian = b.u8(0) == 'M';
  const auto read = [&](size_t at, size_t n) { return big_endian ? b.be(at, n) : b.le(at, n); };
  if (!b.has(4, 4)) return std::nullopt;
  const size_t dir = read(4, 4);
  if (!b.has(dir, 2)) return std::nullopt;
  const size_t entries = read(dir, 2);
  int64_t width = 0;
  int64_t height = 0;
  for (size_t e = 0; e < entries && b.has(dir + 2 + 12 * e, 12); ++e) {
    const size_t at = dir + 2 + 12 * e;
    const uint32_t tag = read(at, 2);
    const uint32_t type = read(at + 2, 2);
    if (tag != 256 && tag != 257) continue;
    const int64_t value = type == 3 ? read(at + 8, 2) : type == 4 ? read(at + 8, 4) : 0;
    (tag == 256 ? width : height) = value;
  }
  return sized(width, height);
}

// "P6 # comment\n 640 480 ..."
std::optional<ImageSize> pnm(const Bytes& b, std::string_view data) {
  size_t at = 2;
  int64_t sizes[2];
  for (int64_t& v : sizes) {
    while (at < b.size() && (std::isspace(b.u8(at)) || b.u8(at) == '#')) {
      if (b.u8(at) == '#')
        while (at < b.size() && b.u8(at) != '\n') ++at;
      else
        ++at;
    }
    const size_t start = at;
    v = 0;
    while (at < b.size() && std::isdigit(b.u8(at)) && at - start < 10) v = v * 10 + (data[at++] - '0');
    if (at == start || at == b.size() || std::isdigit(b.u8(at))) return std::nullopt;
  }
  return sized(sizes[0], sizes[1]);
}

}  // namespace

std::optional<ImageSize> image_size(std::string_view data) {
  const Bytes b(data);
  if (b.starts_with("\x89PNG\r\n\x1a\n")) return png(b);
  if (b.starts_with("\xff\xd8")) return jpeg(b);
  if (b.starts_with("BM")) return bmp(b);
  if (b.starts_with("RIFF") && b.starts_with("WEBP", 8)) return webp(b);
  if (b.starts_with(std::string_view("II*\0", 4)) || b.starts_with(std::string_view("MM\0*", 4)))
    return tiff(b);
  if (b.has(0, 2) && b.u8(0) == 'P' && b.u8(1) >= '1' && b.u8(1) <= '6') return pnm(b, data);
  if (b.starts_with("\x59\xa6\x6a\x95") && b.has(4, 8)) return sized(b.be(4, 4), b.be(8, 4));
  return std::nullopt;
}

}  // namespace vs
