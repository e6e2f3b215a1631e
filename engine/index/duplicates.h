/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Near-duplicates in a gallery: each item's vector is range-searched against
// the index, items within the distance limit of one another are linked, and
// linked items form a group (so a chain of near copies, each close to the
// next, is one group), as photo managers group "similar photos".
#pragma once

#include <cstdint>
#include <vector>

#include "engine/index/index_store.h"

namespace vs {

// The limit for find_duplicate_groups in the metric's own terms: for ip
// (cosine on normalised embeddings) a cosine distance, 1 - similarity; for
// l2 the squared L2 distance that faisssearch reports. The same pictures are
// about 0.05 apart as ip and 0.1 as l2 (for unit vectors l2 = 2 (1 - cosine)).
double default_max_distance(Metric metric);

// Items at most this far apart (in the metric's terms) are exact copies: the
// same picture, embedded alike up to rounding.
double exact_copy_distance(Metric metric);

struct DuplicateGroup {
  std::vector<int64_t> ids;  // increasing
  // The largest distance between two linked items of the group, in the same
  // terms as max_distance.
  double spread = 0;
  // The group's sets of exact copies (two or more items each, ids
  // increasing), largest first, ties by smallest id.
  std::vector<std::vector<int64_t>> copies;

  // The ids with the exact copies first, set by set, then the rest in
  // increasing order: the order to show them in.
  std::vector<int64_t> copies_first() const;
};

// The groups of two or more items of index whose ids are listed (every item,
// e.g. a catalog's), linked when at most max_distance apart; the tightest
// (smallest spread) first, ties by the largest, then by smallest id. Throws vs::Error for a
// negative max_distance, or when the index cannot give back its vectors.
std::vector<DuplicateGroup> find_duplicate_groups(const IndexStore& index,
                                                  const std::vector<int64_t>& ids,
                                                  double max_distance);

}  // namespace vs
