/* SPDX-License-Identifier: LGPL-2.1-or-later */
// A PyTorch checkpoint (torch.save zip archive) read without Python or
// torch::pickle_load: the official torchvision .pth files carry an
// OrderedDict with `_metadata`, which torch::pickle_load rejects.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vs {

enum class DType { Float32, Float64, Float16, BFloat16, Int64, Int32, Int16, Int8, UInt8, Bool };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

// One tensor of a state dict, as stored: a view (shape, strides, offset in
// elements) into a storage shared with other tensors of the same file.
struct RawTensor {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  int64_t storage_offset = 0;
  std::shared_ptr<const std::vector<uint8_t>> storage;
};

// Number of elements of t's view.
int64_t numel(const RawTensor& t);
// t's elements packed row-major (C order), whatever its strides and offset:
// numel(t) * dtype_size(t.dtype) bytes, in the file's (little-endian) order.
std::vector<uint8_t> contiguous_bytes(const RawTensor& t);

// Keys in file order (torchvision names, e.g. "layer1.0.conv1.weight").
using StateDict = std::vector<std::pair<std::string, RawTensor>>;

// How much of a file a caller is willing to read before it knows that the
// tensors are the ones it needs: a checkpoint is untrusted input, and a small
// file can declare (and deflate to) gigabytes.
struct CheckpointLimits {
  uint64_t max_directory_bytes = uint64_t(256) << 20;  // the zip's central directory
  uint64_t max_pickle_bytes = uint64_t(1) << 30;       // data.pkl, uncompressed
};

// A torch.save zip archive whose tensors are declared but not yet read.
// A file holding {"state_dict": ...} or {"model": ...} is unwrapped; entries
// that are not tensors (e.g. an epoch counter) are skipped. Every view is
// checked against the storage size the pickle declares, and that size against
// the record's size in the zip directory, so a RawTensor never points outside
// its bytes. Errors are vs::Error naming the file and what is wrong (missing,
// not a zip, legacy format, truncated, missing record, too large, ...).
class Checkpoint {
 public:
  // Reads the zip directory and data.pkl, nothing else.
  explicit Checkpoint(const std::string& path, const CheckpointLimits& limits = {});
  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  const std::string& path() const;
  // Every tensor with its dtype, shape, strides and offset; storage is null.
  const StateDict& tensors() const;
  // The named tensors with their bytes, in the order of keys. Before reading
  // anything, refuses when their storages' records hold more than max_bytes
  // together: a caller passes what the tensors it needs take.
  StateDict load(const std::vector<std::string>& keys, uint64_t max_bytes) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every tensor of the checkpoint at path, with the default limits.
StateDict load_checkpoint(const std::string& path);

}  // namespace vs
