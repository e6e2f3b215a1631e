/* SPDX-License-Identifier: LGPL-2.1-or-later */
// The model id an index records (catalog facts, embedder settings): one
// spelling, so that whatever shows an index can say whether its weights are
// random.
//   "resnet18:f37072fd"        official or other checkpoint (hash of the file)
//   "resnet50:random-seed42"   weights=random, drawn from seed 42
//   "torchscript:1a2b3c4d"     a TorchScript module (hash of the file)
#pragma once

#include <cstdint>
#include <string>

namespace vs {

inline std::string random_model_id(const std::string& arch, uint64_t seed) {
  return arch + ":random-seed" + std::to_string(seed);
}

// Whether the model id names random weights: such embeddings are
// reproducible but say nothing about what the pictures show, and every score
// reads about the same.
inline bool has_random_weights(const std::string& model_id) {
  return model_id.find(":random-seed") != std::string::npos;
}

}  // namespace vs
