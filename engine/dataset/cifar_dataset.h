/* SPDX-License-Identifier: LGPL-2.1-or-later */
// CIFAR-10 / CIFAR-100 in both official formats (python pickle and binary),
// detected from the files present.
//
//   cifar-10-batches-py   data_batch_1..5, test_batch, batches.meta
//   cifar-100-python      train, test, meta
//   cifar-10-batches-bin  data_batch_1..5.bin, test_batch.bin, batches.meta.txt
//   cifar-100-binary      train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt
//
// The python batches may be python 2 pickles (the official files) or python 3
// ones; the data array is read through PickleReader, nothing is executed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/error.h"
#include "engine/base/image_sources.h"

namespace vs {

// What CifarDataset::open found wrong, with its kind: NotFound (the
// location, or a batch file the split needs, is missing), Read, Corrupt
// (truncated, wrong shape, bad label, not a CIFAR file) or Settings (options
// that do not fit the dataset, e.g. coarse labels on CIFAR-10). A type of its
// own so that the loader can tell it from the pickle reader's errors, which
// it rewords.
class CifarError : public Error {
 public:
  using Error::Error;
};

enum class CifarSplit { Train, Test, All };
enum class CifarLabelKind { Fine, Coarse };  // Coarse: CIFAR-100 only

struct CifarOptions {
  CifarSplit split = CifarSplit::Train;
  CifarLabelKind label_kind = CifarLabelKind::Fine;
  // strict: a truncated or corrupt file is an error. Not strict: keep every
  // complete record of a truncated file, and say how many were kept in
  // warnings(), wherever the cut falls. A python batch whose pickle is
  // damaged otherwise is dropped whole, with a warning. Records after a
  // damaged batch are numbered on from the records kept, so sources stay
  // consistent for the same files.
  bool strict = true;
};

class CifarDataset {
 public:
  static constexpr int kWidth = 32;
  static constexpr int kHeight = 32;
  static constexpr int kImageBytes = 3 * 32 * 32;

  // location: the dataset directory (cifar-10-batches-py, cifar-100-python,
  // cifar-10-batches-bin, cifar-100-binary, or a directory holding one of
  // them) or one batch file. Records come in split order: train (batches 1..5
  // concatenated) then test. A single batch file is its own split and ignores
  // options.split; the records of data_batch_N are numbered after those of
  // batches 1..N-1 when these sit beside it (else 10000 each, as in the
  // official files). Throws CifarError naming the file and what to do.
  static CifarDataset open(const std::string& location, const CifarOptions& options);

  const std::string& name() const { return name_; }  // "cifar10" or "cifar100"
  size_t size() const { return labels_.size(); }

  // Record i as packed RGB (32*32*3 bytes, row-major HWC) into out.
  void rgb(size_t i, uint8_t* out) const;
  int label(size_t i) const { return labels_[i]; }
  // The class name, valid UTF-8 whatever bytes the file holds (invalid
  // sequences become U+FFFD); the number itself when the dataset has no label
  // names.
  const std::string& label_name(int label) const;
  const std::vector<std::string>& label_names() const { return label_names_; }
  // e.g. "cifar10/train/1234": the record index within its own split.
  std::string source(size_t i) const;
  // Index of record i within its own split, and that split's name.
  int64_t split_index(size_t i) const { return split_index_[i]; }
  const char* split_name(size_t i) const { return is_test_[i] ? "test" : "train"; }
  // The position of the record that source(i) names as split/index, or -1
  // when this dataset does not hold it. split must be Train or Test.
  int64_t find(CifarSplit split, int64_t index) const;

  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  friend class CifarLoader;

  std::string name_;
  std::vector<uint8_t> planar_;  // records as stored: R plane, G plane, B plane
  std::vector<int> labels_;
  std::vector<int64_t> split_index_;
  std::vector<uint8_t> is_test_;
  std::vector<std::string> label_names_;
  std::vector<std::string> warnings_;
};

// Parses a source such as "cifar10/test/17". Returns false when it is not one.
bool parse_cifar_source(const std::string& source, std::string* dataset, CifarSplit* split,
                        int64_t* index);

// CIFAR records named by their sources ("cifar10/train/17"), read from the
// dataset at dataset_dir (empty: none), each split opened once on first use
// (a split is ~150 MB): how the thumbnail cache shows CIFAR neighbours.
class CifarSources : public SourceImages {
 public:
  explicit CifarSources(std::string dataset_dir) : dataset_dir_(std::move(dataset_dir)) {}
  bool read(const std::string& source, RgbImage* image, const Warn& warn) override;

 private:
  std::string dataset_dir_;
  // nullptr when the split failed to open.
  std::map<CifarSplit, std::unique_ptr<CifarDataset>> datasets_;
};

}  // namespace vs
