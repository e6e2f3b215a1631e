// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/index/duplicates.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <unordered_map>

#include "engine/base/error.h"

namespace vs {

namespace {

// Union-find over positions in the id list, with path halving.
class Components {
 public:
  explicit Components(size_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), 0); }
  size_t find(size_t i) {
    while (parent_[i] != i) i = parent_[i] = parent_[parent_[i]];
    return i;
  }
  void join(size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  }

 private:
  std::vector<size_t> parent_;
};

// Queries per range search: bounds the vectors and results held at once.
constexpr int64_t kChunk = 1024;

}  // namespace

double default_max_distance(Metric metric) { return metric == Metric::InnerProduct ? 0.05 : 0.1; }

double exact_copy_distance(Metric metric) { return metric == Metric::InnerProduct ? 1e-5 : 2e-5; }

std::vector<int64_t> DuplicateGroup::copies_first() const {
  std::vector<int64_t> order;
  for (const auto& set : copies) order.insert(order.end(), set.begin(), set.end());
  std::vector<int64_t> shown = order;
  std::sort(shown.begin(), shown.end());
  for (const int64_t id : ids)
    if (!std::binary_search(shown.begin(), shown.end(), id)) order.push_back(id);
  return order;
}

std::vector<DuplicateGroup> find_duplicate_groups(const IndexStore& index,
                                                  const std::vector<int64_t>& ids,
                                                  double max_distance) {
  if (!(max_distance >= 0))
    throw Error(ErrorKind::Settings, "The distance limit for duplicates must be 0 or more, not " +
                                         std::to_string(max_distance) + ".");
  const bool ip = index.metric() == Metric::InnerProduct;
  // FAISS keeps similarities above the radius for ip, distances below it for l2.
  const float radius = static_cast<float>(ip ? 1.0 - max_distance : max_distance);
  auto distance = [ip](float value) { return ip ? 1.0 - value : static_cast<double>(value); };

  std::unordered_map<int64_t, size_t> position;
  for (size_t i = 0; i < ids.size(); ++i) position.emplace(ids[i], i);
  Components components(ids.size());
  Components copies(ids.size());
  const double exact = exact_copy_distance(index.metric());
  std::vector<double> spread(ids.size(), 0);
  const int dims = index.dims();
  std::vector<float> queries;
  for (size_t start = 0; start < ids.size(); start += kChunk) {
    const size_t n = std::min<size_t>(kChunk, ids.size() - start);
    queries.resize(n * dims);
    for (size_t q = 0; q < n; ++q) {
      const std::vector<float> vector = index.reconstruct(ids[start + q]);
      std::copy(vector.begin(), vector.end(), queries.begin() + q * dims);
    }
    const auto found = index.range_search(queries.data(), static_cast<int64_t>(n), radius);
    for (size_t q = 0; q < n; ++q) {
      for (const Hit& hit : found[q]) {
        auto other = position.find(hit.id);
        if (other == position.end() || other->second == start + q) continue;
        components.join(start + q, other->second);
        const double d = std::max(0.0, distance(hit.distance));
        if (d <= exact) copies.join(start + q, other->second);
        spread[start + q] = std::max(spread[start + q], d);
      }
    }
  }

  std::unordered_map<size_t, DuplicateGroup> by_root;
  std::unordered_map<size_t, std::vector<int64_t>> copy_sets;
  for (size_t i = 0; i < ids.size(); ++i) {
    DuplicateGroup& group = by_root[components.find(i)];
    group.ids.push_back(ids[i]);
    group.spread = std::max(group.spread, spread[i]);
    copy_sets[copies.find(i)].push_back(ids[i]);
  }
  // Exact copies are linked, so each set lies within one group.
  for (auto& [root, set] : copy_sets) {
    if (set.size() < 2) continue;
    std::sort(set.begin(), set.end());
    by_root[components.find(root)].copies.push_back(std::move(set));
  }
  const auto larger_first = [](const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    return a.size() != b.size() ? a.size() > b.size() : a[0] < b[0];
  };
  std::vector<DuplicateGroup> groups;
  for (auto& [root, group] : by_root) {
    if (group.ids.size() < 2) continue;
    std::sort(group.ids.begin(), group.ids.end());
    std::sort(group.copies.begin(), group.copies.end(), larger_first);
    groups.push_back(std::move(group));
  }
  std::sort(groups.begin(), groups.end(), [&](const DuplicateGroup& a, const DuplicateGroup& b) {
    return a.spread != b.spread ? a.spread < b.spread : larger_first(a.ids, b.ids);
  });
  return groups;
}

}  // namespace vs
