// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/dataset/cifar_dataset.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include "engine/base/error.h"
#include "engine/base/pickle_reader.h"
#include "engine/base/utf8.h"

namespace vs {

namespace {

enum class Format { Python, Binary };

constexpr int64_t kOfficialBatchRecords = 10000;

struct BatchFile {
  std::string path;
  bool test = false;
};

struct Layout {
  std::string name;  // cifar10 | cifar100
  Format format = Format::Python;
  std::string dir;
  std::vector<BatchFile> files;
  int64_t first_index = 0;  // split index of the first record (single batch files)
};

// One batch as read: labels and the planar pixels of the same records.
struct Batch {
  std::vector<int> labels;
  std::string pixels;
};

bool is_regular(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CifarError(ErrorKind::Read, "Cannot read " + path + ": " + std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    throw CifarError(ErrorKind::Read, "Cannot read " + path + ": " + std::strerror(errno));
  return data;
}

const char* suffix(Format f) { return f == Format::Binary ? ".bin" : ""; }

int classes(const std::string& name, CifarLabelKind kind) {
  if (name == "cifar10") return 10;
  return kind == CifarLabelKind::Coarse ? 20 : 100;
}

// The directory's dataset, from the files that mark each format.
bool detect_directory(const std::string& dir, Layout* layout) {
  auto has = [&](const char* name) { return is_regular(join(dir, name)); };
  layout->dir = dir;
  if (has("data_batch_1") || has("test_batch") || has("batches.meta")) {
    layout->name = "cifar10";
    layout->format = Format::Python;
  } else if (has("data_batch_1.bin") || has("test_batch.bin") || has("batches.meta.txt")) {
    layout->name = "cifar10";
    layout->format = Format::Binary;
  } else if (has("meta") && (has("train") || has("test"))) {
    layout->name = "cifar100";
    layout->format = Format::Python;
  } else if (has("train.bin") || has("test.bin")) {
    layout->name = "cifar100";
    layout->format = Format::Binary;
  } else {
    return false;
  }
  return true;
}

void add_split_files(Layout* layout, CifarSplit split) {
  const std::string sfx = suffix(layout->format);
  std::vector<BatchFile> files;
  if (split != CifarSplit::Test) {
    if (layout->name == "cifar10")
      for (int b = 1; b <= 5; ++b)
        files.push_back({join(layout->dir, "data_batch_" + std::to_string(b) + sfx), false});
    else
      files.push_back({join(layout->dir, "train" + sfx), false});
  }
  if (split != CifarSplit::Train)
    files.push_back(
        {join(layout->dir, (layout->name == "cifar10" ? "test_batch" : "test") + sfx), true});
  for (const BatchFile& f : files)
    if (!is_regular(f.path))
      throw CifarError(ErrorKind::NotFound, "The " + layout->name + " dataset at " + layout->dir +
                                                " is incomplete: " + f.path +
                                                " is missing; re-download the dataset.");
  layout->files = std::move(files);
}

// A single batch file, recognised by its official name.
bool detect_file(const std::string& path, Layout* layout, int* batch_number) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  layout->dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  layout->format = Format::Python;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".bin") == 0) {
    layout->format = Format::Binary;
    base.resize(base.size() - 4);
  }
  *batch_number = 0;
  bool test = false;
  if (base.rfind("data_batch_", 0) == 0 && base.size() > 11 && base.size() <= 13 &&
      base.find_first_not_of("0123456789", 11) == std::string::npos) {
    layout->name = "cifar10";
    *batch_number = std::stoi(base.substr(11));
    if (*batch_number < 1) return false;
  } else if (base == "test_batch") {
    layout->name = "cifar10";
    test = true;
  } else if (base == "train" || base == "test") {
    layout->name = "cifar100";
    test = base == "test";
  } else {
    return false;
  }
  layout->files = {{path, test}};
  return true;
}

}  // namespace

// Reads the batches of a layout into a CifarDataset.
class CifarLoader {
 public:
  CifarLoader(const Layout& layout, const CifarOptions& options)
      : layout_(layout), options_(options) {}

  static CifarDataset open(const std::string& location, const CifarOptions& options);

  CifarDataset load() {
    CifarDataset ds;
    ds.name_ = layout_.name;
    ds.label_names_ = label_names(&ds.warnings_);
    int64_t next_index[2] = {layout_.first_index, layout_.first_index};
    for (const BatchFile& file : layout_.files) {
      Batch batch = read_batch(file.path, &ds.warnings_);
      int64_t& next = next_index[file.test ? 1 : 0];
      for (int label : batch.labels) {
        ds.labels_.push_back(label);
        ds.split_index_.push_back(next++);
        ds.is_test_.push_back(file.test ? 1 : 0);
      }
      ds.planar_.insert(ds.planar_.end(), batch.pixels.begin(), batch.pixels.end());
    }
    return ds;
  }

  // Records in a batch file, for numbering the batches that follow it.
  int64_t count(const std::string& path) {
    std::vector<std::string> ignored;
    return int64_t(read_batch(path, &ignored).labels.size());
  }

 private:
  bool is100() const { return layout_.name == "cifar100"; }

  // A problem that leaves some records readable: an error when strict, else
  // a warning that says what was kept.
  void damaged(const std::string& message, const std::string& kept,
               std::vector<std::string>* warnings) const {
    if (options_.strict) throw CifarError(ErrorKind::Corrupt, message + "; re-download it.");
    warnings->push_back(message + "; " + kept + ".");
  }

  Batch read_batch(const std::string& path, std::vector<std::string>* warnings) {
    return layout_.format == Format::Binary ? read_binary(path, warnings)
                                            : read_python(path, warnings);
  }

  void check_label(const std::string& path, size_t record, int label) const {
    if (label < 0 || label >= classes(layout_.name, options_.label_kind))
      throw CifarError(ErrorKind::Corrupt, path + ": record " + std::to_string(record) +
                                               " has label " + std::to_string(label) + ", which " +
                                               layout_.name +
                                               " does not have; the file is corrupt or not a " +
                                               layout_.name + " batch.");
  }

  Batch read_binary(const std::string& path, std::vector<std::string>* warnings) {
    const std::string data = read_file(path);
    const size_t label_bytes = is100() ? 2 : 1;
    const size_t record = label_bytes + CifarDataset::kImageBytes;
    size_t complete = data.size() / record;
    if (data.size() % record != 0 || data.empty())
      damaged(path + ": the file is truncated: " + std::to_string(complete) + " of " +
                  std::to_string(complete + 1) + " records complete",
              "kept the " + std::to_string(complete) + " complete records", warnings);
    Batch batch;
    batch.labels.reserve(complete);
    batch.pixels.reserve(complete * CifarDataset::kImageBytes);
    for (size_t r = 0; r < complete; ++r) {
      const char* rec = data.data() + r * record;
      // cifar-100: coarse label byte, then fine label byte.
      int label = uint8_t(is100() && options_.label_kind == CifarLabelKind::Fine ? rec[1] : rec[0]);
      check_label(path, r, label);
      batch.labels.push_back(label);
      batch.pixels.append(rec + label_bytes, CifarDataset::kImageBytes);
    }
    return batch;
  }

  const char* label_key() const {
    if (!is100()) return "labels";
    return options_.label_kind == CifarLabelKind::Fine ? "fine_labels" : "coarse_labels";
  }

  Batch read_python(const std::string& path, std::vector<std::string>* warnings) {
    const std::string data = read_file(path);
    PickleReader pickle(reinterpret_cast<const uint8_t*>(data.data()), data.size(), path);
    const char* label_key = this->label_key();
    Batch batch;
    try {
      const PickleValue& root = pickle.load();
      if (root.kind != PickleValue::Kind::Dict)
        pickle.reject(root,
                      std::string("a CIFAR python batch is a dict, this is a ") + root.kind_name());
      const PickleValue* labels = root.find(label_key);
      const PickleValue* images = root.find("data");
      if (!labels || !images)
        pickle.reject(root, std::string("the batch has no '") + (labels ? "data" : label_key) +
                                "' entry; it is not a " + layout_.name + " python batch");
      if (labels->kind != PickleValue::Kind::List)
        pickle.reject(*labels, std::string("'") + label_key + "' is not a list");
      for (const PickleValue* l : labels->items) {
        if (l->kind != PickleValue::Kind::Int || l->integer > 255)
          pickle.reject(*l, std::string("'") + label_key + "' holds something other than a label");
        check_label(path, batch.labels.size(), int(l->integer));
        batch.labels.push_back(int(l->integer));
      }
      int64_t rows = 0;
      const std::string& pixels = uint8_matrix(pickle, *images, &rows);
      size_t complete = std::min(batch.labels.size(), size_t(rows));
      if (batch.labels.size() != size_t(rows))
        damaged(path + ": the batch holds " + std::to_string(rows) + " images but " +
                    std::to_string(batch.labels.size()) + " labels",
                "kept the first " + std::to_string(complete) + " records", warnings);
      batch.labels.resize(complete);
      batch.pixels.assign(pixels, 0, complete * CifarDataset::kImageBytes);
    } catch (const CifarError&) {
      throw;  // already says what to do, whatever strict is
    } catch (const Error& e) {
      // The pickle reader's. A truncated batch may still hold complete records.
      int64_t expected = 0;
      if (salvage(pickle, path, &batch, &expected)) {
        const std::string kept = std::to_string(batch.labels.size());
        damaged(path + ": the file is truncated: " + kept + " of " + std::to_string(expected) +
                    " records complete",
                "kept the " + kept + " complete records", warnings);
        return batch;
      }
      if (options_.strict)
        throw CifarError(ErrorKind::Corrupt, std::string(e.what()) + ". Re-download the file.");
      warnings->push_back(std::string(e.what()) +
                          ". Skipped the whole batch: a damaged pickle "
                          "cannot be read in part.");
      return {};
    }
    return batch;
  }

  // What a truncated batch still holds. The reader's stack keeps the batch
  // dict's finished entries as key, value pairs (inside the dict once
  // SETITEMS ran) and the entry that was being read in parts: a list with
  // its last items loose after it, or an array as its pieces (shape, then
  // pixels cut short, or the state tuple before BUILD). Wherever the cut
  // falls, every record whose label and 3072 pixel bytes are there is kept.
  // False when the labels are not there.
  bool salvage(const PickleReader& pickle, const std::string& path, Batch* batch,
               int64_t* expected) const {
    const std::vector<const PickleValue*> stack = pickle.partial_stack();
    std::vector<const PickleValue*> labels;
    bool have_labels = false;
    std::string_view pixels;
    std::string decoded;  // pixels that a python 3 protocol 2 pickle stored as text
    int64_t rows = -1;
    auto is_key = [](const PickleValue* v, const char* key) {
      return v->is_text() && v->text == key;
    };
    for (size_t i = 0; i < stack.size(); ++i) {
      const PickleValue* v = stack[i];
      if (v->kind == PickleValue::Kind::Dict) {
        for (const auto& [key, value] : v->entries) {
          if (is_key(key, label_key()) && value->kind == PickleValue::Kind::List) {
            labels = value->items;
            have_labels = true;
          }
          if (is_key(key, "data")) complete_array(pickle, *value, &pixels, &rows);
        }
      } else if (is_key(v, label_key()) && i + 1 < stack.size() &&
                 stack[i + 1]->kind == PickleValue::Kind::List) {
        labels = stack[i + 1]->items;
        have_labels = true;
        for (size_t j = i + 2; j < stack.size() && stack[j]->kind == PickleValue::Kind::Int; ++j)
          labels.push_back(stack[j]);
      } else if (is_key(v, "data") && i + 1 < stack.size() &&
                 !complete_array(pickle, *stack[i + 1], &pixels, &rows)) {
        partial_array(stack, i + 1, &pixels, &decoded, &rows);
      }
    }
    if (!have_labels) return false;
    *batch = Batch();
    *expected = rows >= 0 ? rows : int64_t(labels.size());
    const size_t complete =
        std::min({labels.size(), size_t(*expected), pixels.size() / CifarDataset::kImageBytes});
    for (size_t r = 0; r < complete; ++r) {
      const PickleValue* l = labels[r];
      if (l->kind != PickleValue::Kind::Int || l->integer > 255) return false;
      check_label(path, r, int(l->integer));
      batch->labels.push_back(int(l->integer));
    }
    batch->pixels.assign(pixels.substr(0, complete * CifarDataset::kImageBytes));
    return true;
  }

  // False unless v is a numpy array the reader finished; then its bytes and
  // rows, unless the array is not a CIFAR one.
  bool complete_array(const PickleReader& pickle, const PickleValue& v, std::string_view* pixels,
                      int64_t* rows) const {
    if (!(v.is_call("numpy.core.multiarray", "_reconstruct") && v.state) &&
        !(v.is_call("numpy._core.multiarray", "_reconstruct") && v.state) &&
        !v.is_call("numpy.core.numeric", "_frombuffer") &&
        !v.is_call("numpy._core.numeric", "_frombuffer"))
      return false;
    try {
      *pixels = uint8_matrix(pickle, v, rows);
    } catch (const Error&) {
      *pixels = {};
      *rows = -1;
    }
    return true;
  }

  // The pieces of an array cut short, from stack[first] to the top: the
  // shape when it was read, and the longest bytes (the pixels, complete or
  // not), or the text _codecs.encode turns into them. Tuples of pieces (the
  // state before BUILD, arguments before REDUCE) are looked into.
  static void partial_array(const std::vector<const PickleValue*>& stack, size_t first,
                            std::string_view* pixels, std::string* decoded, int64_t* rows) {
    std::vector<const PickleValue*> pieces;
    for (size_t i = first; i < stack.size(); ++i) {
      const PickleValue* v = stack[i];
      if (v->kind == PickleValue::Kind::Tuple && !is_shape(*v))
        pieces.insert(pieces.end(), v->items.begin(), v->items.end());
      else
        pieces.push_back(v);
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
      const PickleValue* v = pieces[i];
      if (v->kind == PickleValue::Kind::Bytes && v->text.size() > pixels->size()) *pixels = v->text;
      if (v->kind == PickleValue::Kind::String && i > 0 &&
          pieces[i - 1]->is_global("_codecs", "encode")) {
        // Text cut short may end inside the two bytes of a code point.
        std::string_view text = v->text;
        if (!text.empty() && (uint8_t(text.back()) & 0xE0) == 0xC0) text.remove_suffix(1);
        std::string bytes;
        if (latin1_from_utf8(text, &bytes) && bytes.size() > pixels->size()) {
          *decoded = std::move(bytes);
          *pixels = *decoded;
        }
      }
      if (*rows < 0 && is_shape(*v)) *rows = v->items[0]->integer;
    }
  }

  // (rows, 3072) or (rows, 3, 32, 32).
  static bool is_shape(const PickleValue& v) {
    if (v.kind != PickleValue::Kind::Tuple || v.items.size() < 2 || v.items.size() > 4)
      return false;
    int64_t cols = 1;
    for (size_t i = 0; i < v.items.size(); ++i) {
      const PickleValue* d = v.items[i];
      if (d->kind != PickleValue::Kind::Int || d->integer < 0 || d->integer > (int64_t(1) << 32))
        return false;
      if (i > 0) cols *= d->integer;
    }
    return cols == CifarDataset::kImageBytes;
  }

  // The bytes of a numpy uint8 array of shape (rows, 3072) or (rows, 3, 32, 32),
  // pickled either by numpy's ndarray.__reduce__ (_reconstruct + BUILD) or,
  // from protocol 5, as _frombuffer(bytes, dtype, shape, order).
  const std::string& uint8_matrix(const PickleReader& pickle, const PickleValue& v,
                                  int64_t* rows) const {
    const PickleValue *shape = nullptr, *dtype = nullptr, *order = nullptr, *bytes = nullptr;
    bool fortran = false;
    if (v.is_call("numpy.core.multiarray", "_reconstruct") ||
        v.is_call("numpy._core.multiarray", "_reconstruct")) {
      const PickleValue* state = v.state;
      if (!state || state->kind != PickleValue::Kind::Tuple ||
          (state->items.size() != 5 && state->items.size() != 4))
        pickle.reject(v, "the 'data' array has no (version, shape, dtype, fortran, bytes) state");
      size_t k = state->items.size() - 4;
      shape = state->items[k];
      dtype = state->items[k + 1];
      order = state->items[k + 2];
      bytes = state->items[k + 3];
      fortran = order->kind == PickleValue::Kind::Bool ? order->boolean : order->integer != 0;
    } else if (v.is_call("numpy.core.numeric", "_frombuffer") ||
               v.is_call("numpy._core.numeric", "_frombuffer")) {
      bytes = v.arg(0);
      dtype = v.arg(1);
      shape = v.arg(2);
      order = v.arg(3);
      if (!bytes || !dtype || !shape || !order) pickle.reject(v, "the 'data' array is incomplete");
      fortran = order->is_text() && order->text == "F";
    } else {
      pickle.reject(v, std::string("'data' is a ") + v.kind_name() + ", not a numpy array");
    }
    if (!dtype->is_call("numpy", "dtype") || !dtype->arg(0) || !dtype->arg(0)->is_text() ||
        dtype->arg(0)->text != "u1")
      pickle.reject(*dtype, "the 'data' array is not of dtype uint8");
    if (fortran) pickle.reject(v, "the 'data' array is in Fortran order, which CIFAR never is");
    int64_t cols = 1;
    if (shape->kind != PickleValue::Kind::Tuple || shape->items.empty() || shape->items.size() > 4)
      pickle.reject(*shape, "the 'data' array's shape is not a tuple");
    for (size_t i = 0; i < shape->items.size(); ++i) {
      const PickleValue* d = shape->items[i];
      if (d->kind != PickleValue::Kind::Int || d->integer < 0 || d->integer > (int64_t(1) << 32))
        pickle.reject(*shape, "the 'data' array's shape is not made of sizes");
      if (i == 0)
        *rows = d->integer;
      else
        cols *= d->integer;
    }
    if (shape->items.size() < 2 || cols != CifarDataset::kImageBytes)
      pickle.reject(*shape, "the 'data' array's rows are not 3072 = 3x32x32 bytes images");
    if (!bytes->is_text() || bytes->text.size() != uint64_t(*rows) * CifarDataset::kImageBytes)
      pickle.reject(*bytes, "the 'data' array's bytes do not match its shape");
    return bytes->text;
  }

  std::vector<std::string> label_names(std::vector<std::string>* warnings) const {
    const bool fine = options_.label_kind == CifarLabelKind::Fine;
    std::vector<std::string> names;
    std::string path;
    if (layout_.format == Format::Binary) {
      path = join(layout_.dir, !is100() ? "batches.meta.txt"
                               : fine   ? "fine_label_names.txt"
                                        : "coarse_label_names.txt");
      if (is_regular(path)) {
        std::ifstream in(path);
        for (std::string line; std::getline(in, line);) {
          while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
          if (!line.empty()) names.push_back(valid_utf8(line));
        }
      }
    } else {
      path = join(layout_.dir, is100() ? "meta" : "batches.meta");
      if (is_regular(path)) {
        const std::string data = read_file(path);
        PickleReader pickle(reinterpret_cast<const uint8_t*>(data.data()), data.size(), path);
        const PickleValue& root = pickle.load();
        const char* key = !is100() ? "label_names"
                          : fine   ? "fine_label_names"
                                   : "coarse_label_names";
        const PickleValue* list = root.kind == PickleValue::Kind::Dict ? root.find(key) : nullptr;
        if (!list || list->kind != PickleValue::Kind::List)
          pickle.reject(root, std::string("the metadata has no '") + key + "' list");
        for (const PickleValue* n : list->items) {
          if (!n->is_text()) pickle.reject(*n, std::string("'") + key + "' holds a non-string");
          names.push_back(valid_utf8(n->text));
        }
      }
    }
    const size_t expected = size_t(classes(layout_.name, options_.label_kind));
    if (names.size() == expected) return names;
    if (!names.empty())
      throw CifarError(ErrorKind::Corrupt, path + ": lists " + std::to_string(names.size()) +
                                               " label names instead of " +
                                               std::to_string(expected) +
                                               "; the file is corrupt, re-download it.");
    warnings->push_back("No label names: " + path + " is missing, so labels are named by number.");
    for (size_t i = 0; i < expected; ++i) names.push_back(std::to_string(i));
    return names;
  }

  const Layout& layout_;
  const CifarOptions& options_;
};

CifarDataset CifarDataset::open(const std::string& location, const CifarOptions& options) {
  try {
    return CifarLoader::open(location, options);
  } catch (const CifarError&) { throw; } catch (const Error& e) {
    // The pickle reader's own errors, e.g. in the label names file.
    throw CifarError(ErrorKind::Corrupt, e.what());
  }
}

CifarDataset CifarLoader::open(const std::string& location, const CifarOptions& options) {
  Layout layout;
  if (is_directory(location)) {
    bool found = detect_directory(location, &layout);
    for (const char* sub :
         {"cifar-10-batches-py", "cifar-100-python", "cifar-10-batches-bin", "cifar-100-binary"}) {
      if (found) break;
      found = is_directory(join(location, sub)) && detect_directory(join(location, sub), &layout);
    }
    if (!found)
      throw CifarError(ErrorKind::NotFound,
                       location +
                           " holds no CIFAR dataset: expected the files of cifar-10-batches-py "
                           "(data_batch_1..5, test_batch), cifar-100-python (train, test, meta), "
                           "cifar-10-batches-bin (data_batch_1..5.bin, test_batch.bin) or "
                           "cifar-100-binary (train.bin, test.bin).");
    if (options.label_kind == CifarLabelKind::Coarse && layout.name != "cifar100")
      throw CifarError(ErrorKind::Settings,
                       location + ": coarse labels exist only in CIFAR-100; use fine labels.");
    add_split_files(&layout, options.split);
  } else if (is_regular(location)) {
    int batch_number = 0;
    if (!detect_file(location, &layout, &batch_number))
      throw CifarError(
          ErrorKind::NotFound,
          "Cannot tell which CIFAR file " + location +
              " is: expected data_batch_N or "
              "test_batch (CIFAR-10), train or test (CIFAR-100), with .bin for the binary "
              "format.");
    if (options.label_kind == CifarLabelKind::Coarse && layout.name != "cifar100")
      throw CifarError(ErrorKind::Settings,
                       location + ": coarse labels exist only in CIFAR-100; use fine labels.");
    for (int b = 1; b < batch_number; ++b) {
      std::string previous =
          join(layout.dir, "data_batch_" + std::to_string(b) + suffix(layout.format));
      layout.first_index += is_regular(previous) ? CifarLoader(layout, options).count(previous)
                                                 : kOfficialBatchRecords;
    }
  } else {
    throw CifarError(ErrorKind::NotFound,
                     "The CIFAR dataset location " + location +
                         " does not exist; set it to the "
                         "dataset directory (e.g. cifar-10-batches-py) or one batch file.");
  }
  return CifarLoader(layout, options).load();
}

void CifarDataset::rgb(size_t i, uint8_t* out) const {
  const uint8_t* src = planar_.data() + i * kImageBytes;
  constexpr int plane = kWidth * kHeight;
  for (int p = 0; p < plane; ++p) {
    out[3 * p + 0] = src[p];
    out[3 * p + 1] = src[plane + p];
    out[3 * p + 2] = src[2 * plane + p];
  }
}

const std::string& CifarDataset::label_name(int label) const {
  static const std::string unknown;
  return label >= 0 && size_t(label) < label_names_.size() ? label_names_[size_t(label)] : unknown;
}

std::string CifarDataset::source(size_t i) const {
  return name_ + "/" + split_name(i) + "/" + std::to_string(split_index_[i]);
}

int64_t CifarDataset::find(CifarSplit split, int64_t index) const {
  const uint8_t want_test = split == CifarSplit::Test ? 1 : 0;
  // Each split is one run of consecutive indices.
  for (size_t i = 0; i < size(); ++i) {
    if (is_test_[i] != want_test) continue;
    if (index < split_index_[i] || index - split_index_[i] >= int64_t(size() - i)) return -1;
    size_t at = i + size_t(index - split_index_[i]);
    return is_test_[at] == want_test && split_index_[at] == index ? int64_t(at) : -1;
  }
  return -1;
}

bool parse_cifar_source(const std::string& source, std::string* dataset, CifarSplit* split,
                        int64_t* index) {
  size_t a = source.find('/');
  size_t b = a == std::string::npos ? a : source.find('/', a + 1);
  if (b == std::string::npos) return false;
  std::string name = source.substr(0, a);
  std::string split_name = source.substr(a + 1, b - a - 1);
  std::string number = source.substr(b + 1);
  if ((name != "cifar10" && name != "cifar100") ||
      (split_name != "train" && split_name != "test") || number.empty() || number.size() > 9 ||
      number.find_first_not_of("0123456789") != std::string::npos)
    return false;
  *dataset = name;
  *split = split_name == "test" ? CifarSplit::Test : CifarSplit::Train;
  *index = std::stoll(number);
  return true;
}

bool CifarSources::read(const std::string& source, RgbImage* image, const Warn& warn) {
  std::string dataset;
  CifarSplit split;
  int64_t index;
  if (!parse_cifar_source(source, &dataset, &split, &index)) return false;
  if (dataset_dir_.empty()) {
    warn("no-dataset", "The neighbours come from " + dataset +
                           " but no dataset directory is set, so their thumbnails are "
                           "left blank; set the 'dataset' property.");
    return true;
  }

  auto found = datasets_.find(split);
  if (found == datasets_.end()) {
    std::unique_ptr<CifarDataset> opened;
    try {
      CifarOptions options;
      options.split = split;
      opened = std::make_unique<CifarDataset>(CifarDataset::open(dataset_dir_, options));
    } catch (const std::exception& e) {
      warn("open", std::string("Cannot open the dataset for thumbnails: ") + e.what());
    }
    found = datasets_.emplace(split, std::move(opened)).first;
  }
  const CifarDataset* data = found->second.get();
  if (data == nullptr) return true;

  const int64_t record = data->name() == dataset ? data->find(split, index) : -1;
  if (record < 0) {
    warn("mismatch:" + data->name(),
         "The neighbour " + source + " is not in the " + data->name() + " dataset at " +
             dataset_dir_ +
             " (the index was built from another dataset?); its thumbnail "
             "is left blank.");
    return true;
  }
  image->width = CifarDataset::kWidth;
  image->height = CifarDataset::kHeight;
  image->pixels.resize(size_t{CifarDataset::kWidth} * CifarDataset::kHeight * 3);
  data->rgb(static_cast<size_t>(record), image->pixels.data());
  return true;
}

}  // namespace vs
