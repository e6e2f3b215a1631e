// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/base/module_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/base/error.h"
#include "engine/base/unwind_resume.h"

namespace vs {

namespace {

// Where this code runs from: the plugin, once installed or in the build tree.
std::string own_directory() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&module_symbol), &info) == 0 || !info.dli_fname) return "";
  const std::string path = info.dli_fname;
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::vector<std::string> candidates(const std::string& name, const char* env,
                                    const std::string& build_path) {
  if (const char* value = std::getenv(env); value && *value) return {value};
  std::vector<std::string> paths;
  const std::string dir = own_directory();
  if (!dir.empty()) paths.push_back(dir + "/visualsearch/" + name);
  paths.push_back(build_path);
  return paths;
}

// Only a successful open is remembered, so a module installed later is found.
void* open_module(const std::string& name, const char* env, const std::string& build_path) {
  static std::mutex mutex;
  static std::map<std::string, void*> handles;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = handles.find(name); it != handles.end()) return it->second;
  std::string tried;
  for (const std::string& path : candidates(name, env, build_path)) {
    tried += (tried.empty() ? "" : ", ") + path;
    if (access(path.c_str(), R_OK) != 0) continue;
    // Split unwinders: LibTorch's and OpenCV's own cleanups must resume
    // through libstdc++'s unwinder too (unwind_resume.h).
    const int deep = vs_unwinder_split() ? RTLD_DEEPBIND : 0;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | deep);
    if (!handle)
      throw Error(ErrorKind::Module,
                  "cannot open the module " + path + ": " + dlerror() +
                      " (are its libraries installed? scripts/install-deps.sh installs them)");
    return handles[name] = handle;
  }
  throw Error(ErrorKind::Module, "the module " + name + " was not found (looked for " + tried +
                                     "): reinstall visualsearch, or set " + env + " to its path");
}

}  // namespace

void* module_symbol(const std::string& name, const char* env, const std::string& build_path,
                    const char* symbol) {
  void* handle = open_module(name, env, build_path);
  void* address = dlsym(handle, symbol);
  if (!address)
    throw Error(ErrorKind::Module,
                "the module " + name + " has no " + symbol +
                    " (a module of another visualsearch version?): reinstall visualsearch");
  return address;
}

}  // namespace vs
