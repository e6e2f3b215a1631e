// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/model/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "engine/base/error.h"
#include "engine/base/pickle_reader.h"
#include "engine/base/zip_archive.h"

namespace vs {

namespace {

struct StorageType {
  const char* name;
  DType dtype;
};

constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", DType::Float32}, {"DoubleStorage", DType::Float64},
    {"HalfStorage", DType::Float16},  {"BFloat16Storage", DType::BFloat16},
    {"LongStorage", DType::Int64},    {"IntStorage", DType::Int32},
    {"ShortStorage", DType::Int16},   {"CharStorage", DType::Int8},
    {"ByteStorage", DType::UInt8},    {"BoolStorage", DType::Bool},
};

// Far above any real tensor; keeps the bound checks below free of overflow.
constexpr int64_t kMaxExtent = int64_t(1) << 48;
constexpr size_t kMaxDims = 32;

bool is_dict_like(const PickleValue* v) {
  return v && (v->kind == PickleValue::Kind::Dict || v->is_call("collections", "OrderedDict"));
}

// A storage as the pickle declares it; its bytes are the zip record.
struct StorageDecl {
  DType dtype;
  int64_t numel;
  const ZipArchive::Entry* record;
};

// Interprets data.pkl: the tensors it declares, checked against the zip
// directory, without reading any tensor data.
class CheckpointReader {
 public:
  CheckpointReader(const ZipArchive& zip, const CheckpointLimits& limits, StateDict* tensors,
                   std::vector<std::string>* storage_of,
                   std::unordered_map<std::string, StorageDecl>* storages)
      : zip_(zip),
        limits_(limits),
        tensors_(tensors),
        storage_of_(storage_of),
        storages_(storages) {}

  void read() {
    const ZipArchive::Entry* pkl = nullptr;
    for (const auto& e : zip_.entries()) {
      // torch.save names the records "<archive>/data.pkl", "<archive>/data/<key>".
      size_t slash = e.name.find('/');
      if (slash != std::string::npos &&
          e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
        pkl = &e;
        prefix_ = e.name.substr(0, slash + 1);
        break;
      }
    }
    if (!pkl)
      throw Error(ErrorKind::Format,
                  zip_.path() +
                      ": the zip archive has no <name>/data.pkl record, so it was not "
                      "written by torch.save");
    if (const ZipArchive::Entry* order = zip_.find(prefix_ + "byteorder")) {
      if (order->size > 16)
        throw Error(ErrorKind::Corrupt, zip_.path() + ": its byteorder record is " +
                                            std::to_string(order->size) +
                                            " bytes long; the file is corrupt");
      std::vector<uint8_t> text = zip_.read(*order);
      if (std::string(text.begin(), text.end()) != "little")
        throw Error(ErrorKind::Format,
                    zip_.path() +
                        ": the tensors were saved big-endian, which is not supported; "
                        "re-save them on a little-endian machine");
    }
    if (pkl->size > limits_.max_pickle_bytes)
      throw Error(ErrorKind::Corrupt,
                  zip_.path() + ": its " + pkl->name + " takes " + std::to_string(pkl->size) +
                      " bytes, more than the " + std::to_string(limits_.max_pickle_bytes) +
                      " expected of this file; it is not the file expected, or it is corrupt");
    std::vector<uint8_t> program = zip_.read(*pkl);
    PickleReader pickle(program.data(), program.size(), zip_.path() + " (" + pkl->name + ")");
    pickle_ = &pickle;

    const PickleValue* dict = &pickle.load();
    for (int depth = 0; depth < 4 && is_dict_like(dict); ++depth) {
      const PickleValue* inner = dict->find("state_dict");
      if (!is_dict_like(inner)) inner = dict->find("model");
      if (!is_dict_like(inner)) break;
      dict = inner;
    }
    if (!is_dict_like(dict)) not_a_state_dict(pickle, *dict);

    std::unordered_map<std::string, size_t> position;
    for (const auto& [key, value] : dict->entries) {
      if (!key->is_text()) pickle.reject(*key, "a state dict key is not a string");
      RawTensor t;
      std::string storage_key;
      if (!tensor(*value, &t, &storage_key)) continue;
      auto [it, inserted] = position.emplace(key->text, tensors_->size());
      if (inserted) {
        tensors_->emplace_back(key->text, std::move(t));
        storage_of_->push_back(std::move(storage_key));
      } else {
        (*tensors_)[it->second].second = std::move(t);
        (*storage_of_)[it->second] = std::move(storage_key);
      }
    }
    pickle_ = nullptr;
  }

 private:
  [[noreturn]] void not_a_state_dict(const PickleReader& pickle, const PickleValue& v) const {
    if (zip_.find(prefix_ + "constants.pkl"))
      throw Error(ErrorKind::Format,
                  zip_.path() +
                      ": it is a TorchScript module (torch.jit.save), not a state dict; "
                      "load it as a TorchScript model instead");
    if (v.kind == PickleValue::Kind::Call && v.callable->kind == PickleValue::Kind::Global)
      pickle.reject(v, "the checkpoint holds a whole " + v.callable->text + "." + v.callable->name +
                           " object, not a state dict; save it with "
                           "torch.save(model.state_dict(), path)");
    pickle.reject(v, std::string("the checkpoint holds a ") + v.kind_name() +
                         ", not a state dict (a dict of tensors)");
  }

  // False when v is not a tensor at all; throws when it is a broken one.
  bool tensor(const PickleValue& v, RawTensor* t, std::string* storage_key,
              bool in_parameter = false) {
    if (v.is_call("torch._utils", "_rebuild_parameter") ||
        v.is_call("torch._utils", "_rebuild_parameter_with_state")) {
      const PickleValue* data = v.arg(0);
      // A parameter wraps a plain tensor; refusing nesting keeps hostile
      // input from recursing.
      if (in_parameter || !data || !tensor(*data, t, storage_key, true))
        pickle_->reject(v, "a parameter does not wrap a tensor");
      return true;
    }
    if (!v.is_call("torch._utils", "_rebuild_tensor_v2") &&
        !v.is_call("torch._utils", "_rebuild_tensor"))
      return false;
    const PickleValue* pid = v.arg(0);
    const PickleValue* offset = v.arg(1);
    const PickleValue* shape = v.arg(2);
    const PickleValue* strides = v.arg(3);
    if (!pid || pid->kind != PickleValue::Kind::PersistentId || !offset ||
        offset->kind != PickleValue::Kind::Int || !shape || !strides)
      pickle_->reject(v, "a tensor is not (storage, offset, size, stride)");
    const StorageDecl& s = storage(*pid, storage_key);
    t->dtype = s.dtype;
    t->storage_offset = offset->integer;
    t->shape = int_tuple(*shape, "size");
    t->strides = int_tuple(*strides, "stride");
    if (t->shape.size() != t->strides.size())
      pickle_->reject(v, "a tensor has " + std::to_string(t->shape.size()) + " sizes but " +
                             std::to_string(t->strides.size()) + " strides");
    check_view(v, *t, s.numel);
    return true;
  }

  std::vector<int64_t> int_tuple(const PickleValue& v, const char* what) {
    if (v.kind != PickleValue::Kind::Tuple || v.items.size() > kMaxDims)
      pickle_->reject(v, std::string("a tensor's ") + what + " is not a tuple of at most " +
                             std::to_string(kMaxDims) + " integers");
    std::vector<int64_t> out;
    for (const PickleValue* item : v.items) {
      if (item->kind != PickleValue::Kind::Int || item->integer < 0 || item->integer >= kMaxExtent)
        pickle_->reject(*item, std::string("a tensor's ") + what + " holds a bad value");
      out.push_back(item->integer);
    }
    return out;
  }

  void check_view(const PickleValue& v, const RawTensor& t, int64_t storage_numel) {
    if (t.storage_offset < 0 || t.storage_offset >= kMaxExtent)
      pickle_->reject(v, "a tensor has a bad storage offset");
    // Sizes and strides are below 2^48 and there are at most 32 of them, so
    // the largest index fits easily in 128 bits.
    __int128 last = t.storage_offset;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (t.shape[i] == 0) return;  // an empty view touches nothing
      last += __int128(t.shape[i] - 1) * t.strides[i];
    }
    if (last >= storage_numel)
      pickle_->reject(v, "a tensor reaches element " + std::to_string(int64_t(last)) +
                             " of a storage of " + std::to_string(storage_numel) +
                             "; the file is corrupt");
  }

  const StorageDecl& storage(const PickleValue& pid, std::string* storage_key) {
    const PickleValue* id = pid.items.empty() ? nullptr : pid.items[0];
    if (!id || id->kind != PickleValue::Kind::Tuple || id->items.size() < 5 ||
        !id->items[0]->is_text() || id->items[0]->text != "storage" ||
        id->items[1]->kind != PickleValue::Kind::Global || !id->items[2]->is_text() ||
        id->items[4]->kind != PickleValue::Kind::Int || id->items[4]->integer < 0)
      pickle_->reject(pid, "a storage reference is not ('storage', type, key, location, numel)");
    const PickleValue& type = *id->items[1];
    const std::string& key = id->items[2]->text;
    const int64_t numel = id->items[4]->integer;
    *storage_key = key;

    const StorageType* st = nullptr;
    for (const StorageType& candidate : kStorageTypes)
      if (type.text == "torch" && type.name == candidate.name) st = &candidate;
    if (!st)
      pickle_->reject(
          type, "tensors of storage type " + type.text + "." + type.name + " are not supported");

    auto it = storages_->find(key);
    if (it != storages_->end()) {
      if (it->second.dtype != st->dtype || it->second.numel != numel)
        pickle_->reject(pid, "storage " + key + " is declared twice, differently");
      return it->second;
    }
    const std::string record = prefix_ + "data/" + key;
    const ZipArchive::Entry* entry = zip_.find(record);
    if (!entry)
      throw Error(ErrorKind::Corrupt, zip_.path() + ": the archive has no record " + record +
                                          " for a tensor's data; the file is incomplete");
    // The directory's size is what reading the record allocates; torch.save
    // writes exactly the declared storage.
    const uint64_t needed = uint64_t(numel) * dtype_size(st->dtype);
    if (numel >= kMaxExtent || entry->size != needed)
      throw Error(ErrorKind::Corrupt, zip_.path() + ": record " + record + " holds " +
                                          std::to_string(entry->size) +
                                          " bytes, but its storage is declared as " +
                                          std::to_string(needed) + "; the file is corrupt");
    return storages_->emplace(key, StorageDecl{st->dtype, numel, entry}).first->second;
  }

  const ZipArchive& zip_;
  const CheckpointLimits& limits_;
  StateDict* tensors_;
  std::vector<std::string>* storage_of_;
  std::unordered_map<std::string, StorageDecl>* storages_;
  std::string prefix_;
  PickleReader* pickle_ = nullptr;
};

// torch.save before 1.6 wrote a bare pickle stream starting with protocol 2's
// PROTO opcode and the magic number 0x1950a86a20f9469cfc6c.
bool is_legacy_torch_save(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  uint8_t head[2] = {0, 0};
  size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  return n == 2 && head[0] == 0x80 && head[1] <= 5;
}

}  // namespace

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float64:
    case DType::Int64: return 8;
    case DType::Float32:
    case DType::Int32: return 4;
    case DType::Float16:
    case DType::BFloat16:
    case DType::Int16: return 2;
    case DType::Int8:
    case DType::UInt8:
    case DType::Bool: return 1;
  }
  return 1;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Int64: return "int64";
    case DType::Int32: return "int32";
    case DType::Int16: return "int16";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Bool: return "bool";
  }
  return "?";
}

int64_t numel(const RawTensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

std::vector<uint8_t> contiguous_bytes(const RawTensor& t) {
  const size_t elem = dtype_size(t.dtype);
  const int64_t n = numel(t);
  std::vector<uint8_t> out(size_t(n) * elem);
  if (n == 0) return out;
  const uint8_t* base = t.storage->data() + size_t(t.storage_offset) * elem;

  bool contiguous = true;
  int64_t expected = 1;
  for (size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] != 1 && t.strides[i] != expected) contiguous = false;
    expected *= t.shape[i];
  }
  if (contiguous) {
    std::memcpy(out.data(), base, out.size());
    return out;
  }
  // Odometer over the multi-index; the last dimension varies fastest.
  const size_t dims = t.shape.size();
  std::vector<int64_t> index(dims, 0);
  int64_t src = 0;
  for (int64_t k = 0; k < n; ++k) {
    std::memcpy(out.data() + size_t(k) * elem, base + size_t(src) * elem, elem);
    for (size_t d = dims; d-- > 0;) {
      src += t.strides[d];
      if (++index[d] < t.shape[d]) break;
      src -= t.strides[d] * t.shape[d];
      index[d] = 0;
    }
  }
  return out;
}

struct Checkpoint::Impl {
  Impl(const std::string& path, const CheckpointLimits& limits)
      : zip(path, limits.max_directory_bytes) {
    CheckpointReader(zip, limits, &tensors, &storage_of, &storages).read();
  }

  ZipArchive zip;
  StateDict tensors;                    // storage left null
  std::vector<std::string> storage_of;  // each tensor's storage key
  std::unordered_map<std::string, StorageDecl> storages;
};

namespace {

// Every error of a checkpoint says so first.
template <typename F>
auto with_context(F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(e.kind(), std::string("Cannot load checkpoint ") + e.what());
  }
}

}  // namespace

Checkpoint::Checkpoint(const std::string& path, const CheckpointLimits& limits) {
  with_context([&] {
    if (is_legacy_torch_save(path))
      throw Error(ErrorKind::Format,
                  path +
                      ": it is in the legacy (pre-1.6) torch.save format; re-save it with "
                      "torch.save(obj, path, _use_new_zipfile_serialization=True)");
    impl_ = std::make_unique<Impl>(path, limits);
  });
}

Checkpoint::~Checkpoint() = default;

const std::string& Checkpoint::path() const { return impl_->zip.path(); }

const StateDict& Checkpoint::tensors() const { return impl_->tensors; }

StateDict Checkpoint::load(const std::vector<std::string>& keys, uint64_t max_bytes) const {
  return with_context([&] {
    const Impl& d = *impl_;
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < d.tensors.size(); ++i) index.emplace(d.tensors[i].first, i);

    std::vector<size_t> wanted;
    std::unordered_map<std::string, std::shared_ptr<const std::vector<uint8_t>>> bytes;
    uint64_t total = 0;
    for (const std::string& key : keys) {
      auto it = index.find(key);
      if (it == index.end())
        throw Error(ErrorKind::Settings, path() + ": it holds no tensor '" + key + "'");
      wanted.push_back(it->second);
      const std::string& storage = d.storage_of[it->second];
      if (bytes.emplace(storage, nullptr).second) total += d.storages.at(storage).record->size;
    }
    if (total > max_bytes)
      throw Error(ErrorKind::Corrupt,
                  path() + ": the tensors needed take " + std::to_string(max_bytes) +
                      " bytes, but their storages hold " + std::to_string(total) +
                      "; the file is corrupt, or its tensors are views of larger ones (re-save "
                      "them with tensor.clone())");

    StateDict out;
    for (size_t i : wanted) {
      const std::string& storage = d.storage_of[i];
      auto& data = bytes.at(storage);
      if (!data)
        data = std::make_shared<const std::vector<uint8_t>>(
            d.zip.read(*d.storages.at(storage).record));
      out.push_back(d.tensors[i]);
      out.back().second.storage = data;
    }
    return out;
  });
}

StateDict load_checkpoint(const std::string& path) {
  Checkpoint checkpoint(path);
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : checkpoint.tensors()) keys.push_back(key);
  return checkpoint.load(keys, UINT64_MAX);
}

}  // namespace vs
