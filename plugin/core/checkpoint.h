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

// Loads the state dict of a torch.save zip archive. A file holding
// {"state_dict": ...} or {"model": ...} is unwrapped; entries that are not
// tensors (e.g. an epoch counter) are skipped. Every view is checked against
// its storage, so a RawTensor never points outside its bytes. Throws vs::Error
// naming the file and what is wrong (missing, not a zip, legacy format,
// truncated, missing record, ...).
StateDict load_checkpoint(const std::string& path);

}  // namespace vs
