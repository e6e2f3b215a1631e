/* SPDX-License-Identifier: LGPL-2.1-or-later */
// Heavy libraries (LibTorch; OpenCV's image codecs, which pull in GDAL) live
// in modules of their own that the plugin opens on first use, so that loading
// the plugin costs what GStreamer itself costs.
#pragma once

#include <string>

namespace vs {

// The address of `symbol` in the module file `name` (e.g.
// "libvisualsearch-engine.so"), opening it on first use; the module stays open
// for the life of the process. Looked for, in order: the file named by the
// environment variable `env` (the only candidate when set), <plugin
// directory>/visualsearch/<name> (the installed layout), and `build_path`.
// Throws vs::Error saying what was tried and what to do.
void* module_symbol(const std::string& name, const char* env, const std::string& build_path,
                    const char* symbol);

}  // namespace vs
