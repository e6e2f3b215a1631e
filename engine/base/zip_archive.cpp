// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/zip_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/base/error.h"

namespace vs {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kMaxComment = 0xFFFF;

uint64_t le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

}  // namespace

ZipArchive::ZipArchive(const std::string& path, uint64_t max_directory_bytes) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(ErrorKind::Read, path + ": cannot open it: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(ErrorKind::Format, path + ": not a regular file");
  }
  file_size_ = uint64_t(st.st_size);
  try {
    read_directory(max_directory_bytes);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

ZipArchive::~ZipArchive() {
  if (fd_ >= 0) ::close(fd_);
}

bool ZipArchive::looks_like_zip(const uint8_t* head, size_t n) {
  return n >= 4 && (le(head, 4) == kLocalHeaderSig || le(head, 4) == kEndSig);
}

void ZipArchive::read_at(uint64_t offset, void* out, size_t n, const char* what) const {
  if (offset > file_size_ || n > file_size_ - offset)
    throw Error(ErrorKind::Corrupt, path_ + ": the " + what + " lies beyond the end of the file (" +
                                        std::to_string(file_size_) +
                                        " bytes); the file is truncated");
  auto* dst = static_cast<uint8_t*>(out);
  while (n > 0) {
    ssize_t got = ::pread(fd_, dst, n, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      throw Error(ErrorKind::Read, path_ + ": cannot read the " + what + ": " +
                                       (got < 0 ? std::strerror(errno) : "unexpected end of file"));
    dst += got;
    offset += uint64_t(got);
    n -= size_t(got);
  }
}

void ZipArchive::read_directory(uint64_t max_directory_bytes) {
  // The end record sits in the last 22 bytes plus an optional comment.
  size_t tail_size = size_t(std::min<uint64_t>(file_size_, kEndSize + kMaxComment));
  std::vector<uint8_t> tail(tail_size);
  read_at(file_size_ - tail_size, tail.data(), tail_size, "end of the file");
  size_t end_pos = std::string::npos;
  for (size_t i = tail_size >= kEndSize ? tail_size - kEndSize + 1 : 0; i-- > 0;) {
    if (le(&tail[i], 4) == kEndSig) {
      end_pos = i;
      break;
    }
  }
  if (end_pos == std::string::npos) {
    uint8_t head[4] = {0, 0, 0, 0};
    size_t head_n = size_t(std::min<uint64_t>(file_size_, 4));
    read_at(0, head, head_n, "start of the file");
    if (looks_like_zip(head, head_n))
      throw Error(ErrorKind::Corrupt,
                  path_ + ": the zip archive has no central directory; the file is truncated");
    throw Error(ErrorKind::Format, path_ + ": not a zip archive");
  }
  const uint8_t* end = &tail[end_pos];
  uint64_t count = le(end + 10, 2);
  uint64_t dir_size = le(end + 12, 4);
  uint64_t dir_offset = le(end + 16, 4);
  uint64_t end_offset = file_size_ - tail_size + end_pos;

  if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
    if (end_offset < kZip64LocatorSize)
      throw Error(ErrorKind::Corrupt,
                  path_ + ": the ZIP64 directory locator is missing; the file is corrupt");
    uint8_t locator[kZip64LocatorSize];
    read_at(end_offset - kZip64LocatorSize, locator, sizeof locator, "ZIP64 locator");
    if (le(locator, 4) != kZip64LocatorSig)
      throw Error(ErrorKind::Corrupt,
                  path_ + ": the ZIP64 directory locator is missing; the file is corrupt");
    uint8_t end64[kZip64EndSize];
    read_at(le(locator + 8, 8), end64, sizeof end64, "ZIP64 end record");
    if (le(end64, 4) != kZip64EndSig)
      throw Error(ErrorKind::Corrupt,
                  path_ + ": the ZIP64 end record is damaged; the file is corrupt");
    count = le(end64 + 32, 8);
    dir_size = le(end64 + 40, 8);
    dir_offset = le(end64 + 48, 8);
  }
  if (count > dir_size / kCentralHeaderSize)
    throw Error(ErrorKind::Corrupt, path_ + ": the zip directory is implausible (" +
                                        std::to_string(count) + " entries in " +
                                        std::to_string(dir_size) + " bytes); the file is corrupt");
  if (dir_offset > file_size_ || dir_size > file_size_ - dir_offset)
    throw Error(ErrorKind::Corrupt,
                path_ + ": the zip directory lies beyond the end of the file (" +
                    std::to_string(file_size_) + " bytes); the file is truncated");
  if (dir_size > max_directory_bytes)
    throw Error(ErrorKind::Corrupt,
                path_ + ": the zip directory takes " + std::to_string(dir_size) +
                    " bytes, more than the " + std::to_string(max_directory_bytes) +
                    " expected of this file; it is not the file expected, or it is corrupt");
  std::vector<uint8_t> dir(static_cast<size_t>(dir_size));
  read_at(dir_offset, dir.data(), dir.size(), "zip directory");

  size_t pos = 0;
  entries_.reserve(size_t(count));
  for (uint64_t i = 0; i < count; ++i) {
    if (dir.size() - pos < kCentralHeaderSize || le(&dir[pos], 4) != kCentralHeaderSig)
      throw Error(ErrorKind::Corrupt, path_ + ": zip directory entry " + std::to_string(i) +
                                          " is damaged; the file is corrupt");
    const uint8_t* h = &dir[pos];
    Entry e;
    e.method = uint16_t(le(h + 10, 2));
    e.crc32 = uint32_t(le(h + 16, 4));
    e.compressed_size = le(h + 20, 4);
    e.size = le(h + 24, 4);
    size_t name_len = size_t(le(h + 28, 2));
    size_t extra_len = size_t(le(h + 30, 2));
    size_t comment_len = size_t(le(h + 32, 2));
    e.local_header_offset = le(h + 42, 4);
    if (dir.size() - pos - kCentralHeaderSize < name_len + extra_len + comment_len)
      throw Error(ErrorKind::Corrupt, path_ + ": zip directory entry " + std::to_string(i) +
                                          " runs past the directory; the file is corrupt");
    e.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);

    // ZIP64 extra field: 64-bit values for exactly the fields saturated above.
    const uint8_t* extra = h + kCentralHeaderSize + name_len;
    for (size_t x = 0; x + 4 <= extra_len;) {
      size_t id = size_t(le(extra + x, 2));
      size_t len = size_t(le(extra + x + 2, 2));
      if (x + 4 + len > extra_len) break;
      if (id == 0x0001) {
        const uint8_t* f = extra + x + 4;
        size_t left = len;
        auto widen = [&](uint64_t* field) {
          if (*field != 0xFFFFFFFF) return;
          if (left < 8)
            throw Error(ErrorKind::Corrupt, path_ + ": the ZIP64 field of " + e.name +
                                                " is short; the file is corrupt");
          *field = le(f, 8);
          f += 8;
          left -= 8;
        };
        widen(&e.size);
        widen(&e.compressed_size);
        widen(&e.local_header_offset);
      }
      x += 4 + len;
    }
    entries_.push_back(std::move(e));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

const ZipArchive::Entry* ZipArchive::find(const std::string& name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::vector<uint8_t> ZipArchive::read(const Entry& entry) const {
  uint8_t local[kLocalHeaderSize];
  read_at(entry.local_header_offset, local, sizeof local, ("header of " + entry.name).c_str());
  if (le(local, 4) != kLocalHeaderSig)
    throw Error(ErrorKind::Corrupt,
                path_ + ": the header of " + entry.name + " is damaged; the file is corrupt");
  uint64_t data_offset =
      entry.local_header_offset + kLocalHeaderSize + le(local + 26, 2) + le(local + 28, 2);
  if (entry.method != 0 && entry.method != 8)
    throw Error(ErrorKind::Format, path_ + ": " + entry.name + " uses zip compression method " +
                                       std::to_string(entry.method) +
                                       "; only stored and deflated entries are supported");
  if (entry.compressed_size > file_size_ ||
      (entry.method == 0 && entry.size != entry.compressed_size))
    throw Error(ErrorKind::Corrupt,
                path_ + ": the sizes of " + entry.name + " are inconsistent; the file is corrupt");
  // A deflated stream expands at most ~1032:1; beyond that the size is a lie.
  if (entry.method == 8 && entry.size / 1032 > entry.compressed_size + 1)
    throw Error(ErrorKind::Corrupt,
                path_ + ": the sizes of " + entry.name + " are inconsistent; the file is corrupt");

  std::vector<uint8_t> out(size_t(entry.size));
  const std::string what = "data of " + entry.name;
  if (entry.method == 0) {
    read_at(data_offset, out.data(), out.size(), what.c_str());
  } else {
    std::vector<uint8_t> packed(size_t(entry.compressed_size));
    read_at(data_offset, packed.data(), packed.size(), what.c_str());
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
      throw Error(path_ + ": cannot start inflating " + entry.name);
    zs.next_in = packed.data();
    zs.avail_in = uInt(packed.size());
    zs.next_out = out.data();
    zs.avail_out = uInt(out.size());
    int rc = inflate(&zs, Z_FINISH);
    uint64_t produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || produced != out.size())
      throw Error(ErrorKind::Corrupt,
                  path_ + ": " + entry.name +
                      " does not inflate to its recorded size; the file is corrupt");
  }
  uint32_t crc = 0;
  for (size_t done = 0; done < out.size();) {
    uInt chunk = uInt(std::min<size_t>(out.size() - done, 1u << 30));
    crc = uint32_t(::crc32(crc, out.data() + done, chunk));
    done += chunk;
  }
  if (crc != entry.crc32)
    throw Error(ErrorKind::Corrupt,
                path_ + ": " + entry.name + " fails its CRC check; the file is corrupt");
  return out;
}

}  // namespace vs
