/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Read-only access to a zip archive such as the one torch.save writes: the
// central directory (ZIP64 included), stored or deflated entries, CRC-checked.
// Entries are read on demand, so opening a large checkpoint costs only its
// directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vs {

class ZipArchive {
 public:
  struct Entry {
    std::string name;
    uint16_t method = 0;  // 0 stored, 8 deflated
    uint32_t crc32 = 0;
    uint64_t compressed_size = 0;
    uint64_t size = 0;
    uint64_t local_header_offset = 0;
  };

  // Throws vs::Error when the file cannot be opened, is not a zip archive,
  // its directory is truncated or corrupt, or the directory is larger than
  // max_directory_bytes (what the caller expects, so that a hostile file
  // cannot make it allocate more). The messages start with path.
  explicit ZipArchive(const std::string& path, uint64_t max_directory_bytes = uint64_t(256) << 20);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<Entry>& entries() const { return entries_; }
  // nullptr when there is no such entry.
  const Entry* find(const std::string& name) const;

  // The entry's uncompressed bytes; throws vs::Error if they lie beyond the
  // end of the file, fail to inflate or fail their CRC.
  std::vector<uint8_t> read(const Entry& entry) const;

  // True when head, the first n bytes of a file, look like a zip archive
  // ("PK\3\4" or an empty archive's "PK\5\6").
  static bool looks_like_zip(const uint8_t* head, size_t n);

 private:
  void read_at(uint64_t offset, void* out, size_t n, const char* what) const;
  void read_directory(uint64_t max_directory_bytes);

  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace vs
