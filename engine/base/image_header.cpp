// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/image_header.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace vs {

namespace {

uint32_t be16(const uint8_t* p) { return uint32_t(p[0]) << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return be16(p) << 16 | be16(p + 2); }
uint64_t be64(const uint8_t* p) { return uint64_t(be32(p)) << 32 | be32(p + 4); }
uint32_t le16(const uint8_t* p) { return uint32_t(p[1]) << 8 | p[0]; }
uint32_t le24(const uint8_t* p) { return uint32_t(p[2]) << 16 | le16(p); }
uint32_t le32(const uint8_t* p) { return le16(p + 2) << 16 | le16(p); }
uint64_t le64(const uint8_t* p) { return uint64_t(le32(p + 4)) << 32 | le32(p); }

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

bool is_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// A window on the image read on demand; every read says whether it got all
// it asked for, so a truncated header reads as "no size", never as garbage.
class Bytes {
 public:
  explicit Bytes(const ByteReader& read) : read_(read) {}

  bool get(uint64_t offset, size_t n, uint8_t* out) const { return read_(offset, out, n) == n; }
  size_t get_some(uint64_t offset, size_t n, uint8_t* out) const { return read_(offset, out, n); }

 private:
  const ByteReader& read_;
};

ImageHeader sized(ImageFormat format, uint64_t width, uint64_t height) {
  ImageHeader header;
  header.format = format;
  header.width = width;
  header.height = height;
  return header;
}

ImageHeader png_header(const Bytes& bytes) {
  uint8_t ihdr[16];  // length, "IHDR", width, height
  if (!bytes.get(8, sizeof ihdr, ihdr) || std::memcmp(ihdr + 4, "IHDR", 4) != 0) return {};
  return sized(ImageFormat::Png, be32(ihdr + 8), be32(ihdr + 12));
}

bool is_jpeg_sof(uint8_t marker) {
  // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC), which share the range.
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Markers that stand alone, without a length.
bool is_jpeg_standalone(uint8_t marker) {
  return marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8);
}

ImageHeader jpeg_header(const Bytes& bytes) {
  uint64_t offset = 2;  // past SOI
  uint8_t marker[2];
  while (bytes.get(offset, 2, marker)) {
    if (marker[0] != 0xFF) return {};
    if (marker[1] == 0xFF) {  // fill byte before a marker
      ++offset;
      continue;
    }
    if (is_jpeg_standalone(marker[1])) {
      offset += 2;
      continue;
    }
    // EOI or SOS before any frame header: there is no image size to find.
    if (marker[1] == 0xD9 || marker[1] == 0xDA) return {};
    uint8_t segment[7];  // length, precision, height, width
    if (!bytes.get(offset + 2, 2, segment)) return {};
    const uint32_t length = be16(segment);
    if (length < 2) return {};
    if (is_jpeg_sof(marker[1])) {
      if (length < 7 || !bytes.get(offset + 2, sizeof segment, segment)) return {};
      return sized(ImageFormat::Jpeg, be16(segment + 5), be16(segment + 3));
    }
    offset += 2 + length;
  }
  return {};
}

ImageHeader webp_header(const Bytes& bytes) {
  uint8_t chunk[18];  // the first chunk's fourcc and size, then its payload
  if (!bytes.get(12, sizeof chunk, chunk)) return {};
  const uint8_t* payload = chunk + 8;
  if (std::memcmp(chunk, "VP8 ", 4) == 0) {
    // A key frame: 3-byte frame tag, start code 9d 01 2a, 14-bit dimensions.
    if (payload[3] != 0x9D || payload[4] != 0x01 || payload[5] != 0x2A) return {};
    return sized(ImageFormat::WebP, le16(payload + 6) & 0x3FFF, le16(payload + 8) & 0x3FFF);
  }
  if (std::memcmp(chunk, "VP8L", 4) == 0) {
    if (payload[0] != 0x2F) return {};
    const uint32_t bits = le32(payload + 1);
    return sized(ImageFormat::WebP, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
  }
  if (std::memcmp(chunk, "VP8X", 4) == 0)  // flags (4 bytes), canvas size - 1 (24 bits each)
    return sized(ImageFormat::WebP, uint64_t(le24(payload + 4)) + 1,
                 uint64_t(le24(payload + 7)) + 1);
  return {};
}

ImageHeader tiff_header(const Bytes& bytes, bool little, bool big_tiff) {
  auto u16 = [&](const uint8_t* p) { return little ? le16(p) : be16(p); };
  auto u32 = [&](const uint8_t* p) { return little ? le32(p) : be32(p); };
  auto u64 = [&](const uint8_t* p) { return little ? le64(p) : be64(p); };
  uint8_t head[16];
  if (!bytes.get(0, big_tiff ? 16 : 8, head)) return {};
  const uint64_t ifd = big_tiff ? u64(head + 8) : u32(head + 4);
  const size_t count_bytes = big_tiff ? 8 : 2;
  const size_t entry_bytes = big_tiff ? 20 : 12;
  uint8_t count_field[8];
  if (!bytes.get(ifd, count_bytes, count_field)) return {};
  const uint64_t count = big_tiff ? u64(count_field) : u16(count_field);
  // Real IFDs hold a few dozen entries; a huge count is a corrupt file.
  if (count > 4096) return {};
  std::vector<uint8_t> entries(count * entry_bytes);
  if (!bytes.get(ifd + count_bytes, entries.size(), entries.data())) return {};
  uint64_t width = 0, height = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* entry = entries.data() + i * entry_bytes;
    const uint32_t tag = u16(entry), type = u16(entry + 2);
    const uint8_t* value = entry + (big_tiff ? 12 : 8);
    // SHORT values sit in the first bytes of the value field; LONG or LONG8 fill it.
    const uint64_t number = type == 3    ? u16(value)
                            : type == 4  ? u32(value)
                            : type == 16 ? u64(value)
                                         : 0;
    if (tag == 256) width = number;
    if (tag == 257) height = number;
  }
  return sized(ImageFormat::Tiff, width, height);
}

ImageHeader bmp_header(const Bytes& bytes) {
  uint8_t dib[12];  // header size, then width and height
  if (!bytes.get(14, sizeof dib, dib)) return {};
  if (le32(dib) == 12)  // OS/2 BITMAPCOREHEADER: 16-bit unsigned sizes
    return sized(ImageFormat::Bmp, le16(dib + 4), le16(dib + 6));
  if (le32(dib) < 40) return {};
  // Signed: a negative height means rows stored top-down.
  const int64_t width = int32_t(le32(dib + 4)), height = int32_t(le32(dib + 8));
  if (width <= 0) return {};
  return sized(ImageFormat::Bmp, uint64_t(width), uint64_t(height < 0 ? -height : height));
}

// A netpbm header is text; its numbers come before the first pixel byte, so a
// few hundred bytes hold them unless comments run long.
constexpr size_t kPnmHeaderBytes = 4096;

ImageHeader pnm_header(const Bytes& bytes) {
  uint8_t text[kPnmHeaderBytes];
  const size_t size = bytes.get_some(0, sizeof text, text);
  size_t pos = 2;
  // P7 (PAM): "WIDTH w" and "HEIGHT h" lines up to ENDHDR.
  if (text[1] == '7') {
    uint64_t width = 0, height = 0;
    while (pos < size) {
      size_t end = pos;
      while (end < size && text[end] != '\n') ++end;
      const std::string line(reinterpret_cast<const char*>(text + pos), end - pos);
      if (line.rfind("ENDHDR", 0) == 0) return sized(ImageFormat::Pnm, width, height);
      if (line.rfind("WIDTH ", 0) == 0) width = std::strtoull(line.c_str() + 6, nullptr, 10);
      if (line.rfind("HEIGHT ", 0) == 0) height = std::strtoull(line.c_str() + 7, nullptr, 10);
      pos = end + 1;
    }
    return {};
  }
  // P1..P6: whitespace and #-comments, then width and height in decimal.
  uint64_t numbers[2];
  for (uint64_t& number : numbers) {
    while (pos < size && (is_space(text[pos]) || text[pos] == '#')) {
      if (text[pos] == '#')
        while (pos < size && text[pos] != '\n') ++pos;
      else
        ++pos;
    }
    if (pos >= size || text[pos] < '0' || text[pos] > '9') return {};
    number = 0;
    while (pos < size && text[pos] >= '0' && text[pos] <= '9') {
      if (number > (uint64_t(1) << 40)) return {};
      number = number * 10 + (text[pos++] - '0');
    }
    // The number must end within the header we read.
    if (pos >= size) return {};
  }
  return sized(ImageFormat::Pnm, numbers[0], numbers[1]);
}

ImageHeader j2k_header(const Bytes& bytes, uint64_t offset) {
  uint8_t siz[24];  // SOC, SIZ marker, Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz
  if (!bytes.get(offset, sizeof siz, siz) || be16(siz + 2) != 0xFF51) return {};
  const uint32_t x = be32(siz + 8), y = be32(siz + 12), x0 = be32(siz + 16), y0 = be32(siz + 20);
  if (x0 >= x || y0 >= y) return {};
  return sized(ImageFormat::Jpeg2000, x - x0, y - y0);
}

// Walks the boxes in [offset, end) for one of type; returns its payload's
// offset and size, or false.
bool find_box(const Bytes& bytes, uint64_t offset, uint64_t end, const char* type,
              uint64_t* payload, uint64_t* payload_size) {
  uint8_t box[16];
  while (offset + 8 <= end && bytes.get(offset, 8, box)) {
    uint64_t length = be32(box), header = 8;
    if (length == 1) {  // a 64-bit length follows the type
      if (!bytes.get(offset + 8, 8, box + 8)) return false;
      length = be64(box + 8);
      header = 16;
    } else if (length == 0) {  // the box runs to the end
      length = end - offset;
    }
    if (length < header || length > end - offset) return false;
    if (std::memcmp(box + 4, type, 4) == 0) {
      *payload = offset + header;
      *payload_size = length - header;
      return true;
    }
    offset += length;
  }
  return false;
}

ImageHeader jp2_header(const Bytes& bytes) {
  uint64_t jp2h, jp2h_size, ihdr, ihdr_size;
  if (!find_box(bytes, 0, UINT64_MAX, "jp2h", &jp2h, &jp2h_size) ||
      !find_box(bytes, jp2h, jp2h + jp2h_size, "ihdr", &ihdr, &ihdr_size) || ihdr_size < 8)
    return {};
  uint8_t size[8];  // height, then width
  if (!bytes.get(ihdr, sizeof size, size)) return {};
  return sized(ImageFormat::Jpeg2000, be32(size + 4), be32(size));
}

const char kJp2Magic[] = "\x00\x00\x00\x0C\x6A\x50\x20\x20\x0D\x0A\x87\x0A";

}  // namespace

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Png: return "PNG";
    case ImageFormat::WebP: return "WebP";
    case ImageFormat::Tiff: return "TIFF";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Pnm: return "PNM";
    case ImageFormat::Jpeg2000: return "JPEG 2000";
    case ImageFormat::Unknown: break;
  }
  return "unknown";
}

ImageFormat image_format(const uint8_t* data, size_t size) {
  if (starts_with(data, size, "\xFF\xD8\xFF", 3)) return ImageFormat::Jpeg;
  if (starts_with(data, size, "\x89PNG\r\n\x1A\n", 8)) return ImageFormat::Png;
  if (size >= 12 && starts_with(data, size, "RIFF", 4) && std::memcmp(data + 8, "WEBP", 4) == 0)
    return ImageFormat::WebP;
  if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4) ||
      starts_with(data, size, "II+\0", 4) || starts_with(data, size, "MM\0+", 4))
    return ImageFormat::Tiff;
  // "BM" alone is too weak: also a known DIB header size at byte 14.
  if (size >= 18 && starts_with(data, size, "BM", 2)) {
    const uint32_t dib = le32(data + 14);
    if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 || dib == 124)
      return ImageFormat::Bmp;
  }
  if (size >= 3 && data[0] == 'P' && data[1] >= '1' && data[1] <= '7' && is_space(data[2]))
    return ImageFormat::Pnm;
  if (starts_with(data, size, kJp2Magic, 12) || starts_with(data, size, "\xFF\x4F\xFF\x51", 4))
    return ImageFormat::Jpeg2000;
  return ImageFormat::Unknown;
}

ImageHeader read_image_header(const ByteReader& read) {
  uint8_t magic[kImageMagicBytes];
  const size_t got = read(0, magic, sizeof magic);
  const ImageFormat format = image_format(magic, got);
  const Bytes bytes(read);
  ImageHeader header;
  switch (format) {
    case ImageFormat::Jpeg: header = jpeg_header(bytes); break;
    case ImageFormat::Png: header = png_header(bytes); break;
    case ImageFormat::WebP: header = webp_header(bytes); break;
    case ImageFormat::Tiff:
      header = tiff_header(bytes, magic[0] == 'I', magic[2] == '+' || magic[3] == '+');
      break;
    case ImageFormat::Bmp: header = bmp_header(bytes); break;
    case ImageFormat::Pnm: header = pnm_header(bytes); break;
    case ImageFormat::Jpeg2000:
      header = magic[0] == 0xFF ? j2k_header(bytes, 0) : jp2_header(bytes);
      break;
    case ImageFormat::Unknown: break;
  }
  // The format stands even when the header is unreadable: the file is then a
  // damaged image, not a non-image.
  header.format = format;
  return header;
}

ImageHeader read_image_header(const uint8_t* data, size_t size) {
  return read_image_header([data, size](uint64_t offset, uint8_t* out, size_t n) -> size_t {
    if (offset >= size) return 0;
    const size_t count = std::min<uint64_t>(n, size - offset);
    // An empty read may come with a null buffer (an empty vector's data()),
    // which memcpy must not be given even for zero bytes.
    if (count > 0) std::memcpy(out, data + offset, count);
    return count;
  });
}

bool jpeg_is_complete(const uint8_t* data, size_t size) {
  if (!starts_with(data, size, "\xFF\xD8", 2)) return false;
  size_t pos = 2;
  while (pos + 1 < size) {
    if (data[pos] != 0xFF) return false;
    const uint8_t marker = data[pos + 1];
    if (marker == 0xFF) {
      ++pos;
      continue;
    }
    if (marker == 0xD9) return true;
    if (is_jpeg_standalone(marker)) {
      pos += 2;
      continue;
    }
    if (pos + 3 >= size) return false;
    pos += 2 + be16(data + pos + 2);
    if (marker != 0xDA) continue;
    // Entropy-coded data runs to the next marker that is neither a stuffed
    // zero (FF 00) nor a restart marker (FF D0..D7).
    for (;;) {
      const void* ff = pos < size ? std::memchr(data + pos, 0xFF, size - pos) : nullptr;
      if (!ff) return false;
      pos = static_cast<const uint8_t*>(ff) - data;
      if (pos + 1 >= size) return false;
      const uint8_t next = data[pos + 1];
      if (next == 0x00 || (next >= 0xD0 && next <= 0xD7) || next == 0xFF) {
        pos += next == 0xFF ? 1 : 2;
        continue;
      }
      break;
    }
  }
  return false;
}

}  // namespace vs
