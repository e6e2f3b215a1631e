/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Test-only entry points into EmbeddingEngine, for programs linked with the
// engine (tests/embed_tensor.cpp, tests/fp32_kernels.cpp); not part of the
// engine's interface to the plugin.
#pragma once

#include <vector>

#include "engine/model/embedding_engine.h"

namespace vs {

struct EmbeddingEngineTesting {
  // Embeds an already preprocessed, normalised float NCHW batch
  // (n x 3 x height x width), bypassing add()'s preprocessing.
  static std::vector<float> embed_preprocessed(EmbeddingEngine& engine, const float* nchw, int n,
                                               int height, int width);
};

}  // namespace vs
