// SPDX-License-Identifier: LGPL-2.1-or-later
// The engine module's one entry point, looked up by load_embedding_engine():
// everything else the plugin calls on the engine is virtual.
#include "engine/model/embedding_engine.h"

extern "C" __attribute__((visibility("default"))) vs::EmbeddingEngine* vs_embedding_engine_new(
    const vs::EmbeddingConfig* config, size_t config_size) {
  // A module left over from another build would read the config wrongly.
  if (config_size != sizeof(vs::EmbeddingConfig))
    throw vs::Error(vs::ErrorKind::Module,
                    "the embedding engine module does not match this plugin (another build?): "
                    "reinstall visualsearch");
  return new vs::EmbeddingEngine(*config);
}
