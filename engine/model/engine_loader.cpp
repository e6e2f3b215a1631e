// SPDX-License-Identifier: LGPL-2.1-or-later
// load_embedding_engine(): the LibTorch engine, from its module (see
// engine/base/module_loader.h). Kept free of LibTorch, like everything the plugin links.
#include "engine/base/module_loader.h"
#include "engine/model/embedding_engine.h"

namespace vs {

std::unique_ptr<EmbeddingEngine> load_embedding_engine(const EmbeddingConfig& config) {
  using Factory = EmbeddingEngine* (*)(const EmbeddingConfig*, size_t);
  const auto factory = reinterpret_cast<Factory>(
      module_symbol("libvisualsearch-engine.so", kEngineModuleEnv, VS_ENGINE_MODULE_BUILD_PATH,
                    "vs_embedding_engine_new"));
  return std::unique_ptr<EmbeddingEngine>(factory(&config, sizeof config));
}

}  // namespace vs
