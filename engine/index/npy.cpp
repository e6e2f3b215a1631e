// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/base/atomic_file.h"
#include "engine/base/error.h"

namespace vs {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the .npy headers written here declare little-endian data");

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

// The header dict padded with spaces so that magic + header is a multiple
// of 64 bytes, as numpy writes it.
std::string npy_header(const char* descr, const std::string& shape) {
  std::string dict =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
  size_t total = preamble + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string header("\x93NUMPY\x01\x00", 8);
  header.push_back(static_cast<char>(dict.size() & 0xff));
  header.push_back(static_cast<char>(dict.size() >> 8));
  return header + dict;
}

void write_npy(const std::string& path, const std::string& header, const void* data, size_t bytes) {
  replace_file_atomically(path, [&](const std::string& tmp) {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(tmp.c_str(), "wb"));
    if (!file) throw Error(ErrorKind::Write, "Cannot create " + tmp + ": " + std::strerror(errno));
    if (std::fwrite(header.data(), 1, header.size(), file.get()) != header.size() ||
        (bytes > 0 && std::fwrite(data, 1, bytes, file.get()) != bytes) ||
        std::fclose(file.release()) != 0)
      throw Error(ErrorKind::Write, "Cannot write " + path + ": " + std::strerror(errno));
  });
}

}  // namespace

void write_npy_atomically(const std::string& path, const float* values, int64_t rows,
                          int64_t cols) {
  write_npy(path, npy_header("<f4", "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")"),
            values, static_cast<size_t>(rows * cols) * sizeof(float));
}

void write_npy_atomically(const std::string& path, const std::vector<int64_t>& values) {
  write_npy(path, npy_header("<i8", "(" + std::to_string(values.size()) + ",)"), values.data(),
            values.size() * sizeof(int64_t));
}

}  // namespace vs
