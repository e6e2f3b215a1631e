// load_embedding_engine(): opens the LibTorch engine module on first use. Kept
// free of LibTorch, like everything the plugin links.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "core/embedding_engine.h"

namespace vs {

namespace {

using Factory = EmbeddingEngine* (*)(const EmbeddingConfig*, size_t);

constexpr const char* kModuleName = "libvisualsearch-engine.so";

// Where this code runs from: the plugin, once installed or in the build tree.
std::string own_directory() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&load_embedding_engine), &info) == 0 || !info.dli_fname)
    return "";
  const std::string path = info.dli_fname;
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::vector<std::string> candidates() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv(kEngineModuleEnv); env && *env) return {env};
  // Installed (and staged) layout: <plugindir>/visualsearch/<module>.
  const std::string dir = own_directory();
  if (!dir.empty()) paths.push_back(dir + "/visualsearch/" + kModuleName);
  paths.push_back(VS_ENGINE_MODULE_BUILD_PATH);
  return paths;
}

// LibTorch cannot be unloaded safely, so the module stays open for the life
// of the process; only a successful open is remembered.
Factory open_engine_module() {
  static std::mutex mutex;
  static Factory factory = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (factory) return factory;
  std::string tried;
  for (const std::string& path : candidates()) {
    tried += (tried.empty() ? "" : ", ") + path;
    if (access(path.c_str(), R_OK) != 0) continue;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle)
      throw Error("cannot open the embedding engine module " + path + ": " + dlerror() +
                  " (is LibTorch installed? scripts/install-deps.sh installs it)");
    factory = reinterpret_cast<Factory>(dlsym(handle, "vs_embedding_engine_new"));
    if (!factory)
      throw Error(path + " is not a visualsearch embedding engine module: reinstall visualsearch");
    return factory;
  }
  throw Error(std::string("the embedding engine module ") + kModuleName +
              " was not found (looked for " + tried + "): reinstall visualsearch, or set " +
              kEngineModuleEnv + " to its path");
}

}  // namespace

std::unique_ptr<EmbeddingEngine> load_embedding_engine(const EmbeddingConfig& config) {
  return std::unique_ptr<EmbeddingEngine>(open_engine_module()(&config, sizeof config));
}

}  // namespace vs
