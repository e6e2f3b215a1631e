/* SPDX-License-Identifier: LGPL-2.1-or-later */
// What the thumbnail cache (engine/render/) reads pictures through, so that
// it needs no other domain: the domains that know where pictures are fill
// these in (index's CatalogThumbnails, dataset's CifarSources) and the
// caller hands them over.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/base/image_codec.h"

namespace vs {

// The thumbnails an index stores for its items.
class StoredThumbnails {
 public:
  virtual ~StoredThumbnails() = default;
  // The JPEG bytes of item id; empty when it has none. Throws vs::Error.
  // Safe to call from several threads.
  virtual std::vector<uint8_t> get(int64_t id) const = 0;
  // The file they are read from, for messages.
  virtual const std::string& path() const = 0;
};

// Pictures named by a source of a kind other than a file path (a dataset
// record: "cifar10/train/17").
class SourceImages {
 public:
  // A problem for the user, with a key so that each cause is told once.
  using Warn = std::function<void(const std::string& key, const std::string& message)>;
  virtual ~SourceImages() = default;
  // False when source is not of this reader's kind (it is then a file).
  // Otherwise true, with *image the picture, or left empty when it cannot be
  // read, the reason told to warn.
  virtual bool read(const std::string& source, RgbImage* image, const Warn& warn) = 0;
};

}  // namespace vs
