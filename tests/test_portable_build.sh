#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Nothing in the build is compiled for the build machine's CPU only: no
# -march/-mtune=native or -m<isa> flags in any compile command, and no AVX/AVX-512
# instruction in the plugin, its static libraries or the metadata library.
# Wider kernels come from LibTorch/oneDNN/OpenCV, which pick them at run time;
# our own choice (bf16 or fp32) is made at run time by engine/base/cpu_features.cpp.
# Our own AVX2 and AVX-512 code (engine/index/fast_search.cpp's distances) lives
# only in functions named *_avx2 and *_avx512, compiled with a target attribute
# and called through the pointers chosen at run time from cpu_features() and a
# measurement; ymm/zmm instructions anywhere else fail. The one exception to the
# flags check is tests/bench/ (hnsw-anchor, compiled with -march=native for
# hnswlib's own SIMD distances): a benchmark binary, never installed, not part
# of the plugin or its libraries.
set -euo pipefail
build=${VS_BUILD_DIR:?}
fail=0

flags=$(grep '"command"' "$build/compile_commands.json" | grep -v -- '-c \.\./tests/bench/' |
  grep -oE -- '-m(arch|tune|cpu)=[^ "]+|-mavx[0-9a-z_-]*|-mfma|-mamx[a-z-]*' | sort -u || true)
if [ -n "$flags" ]; then
  echo "FAIL CPU-specific compile flags in compile_commands.json: $flags"
  fail=1
else
  echo "ok   no -march/-mtune/-mavx*/-mfma flags in $(grep -c '"command"' "$build/compile_commands.json") compile commands"
fi

for lib in "$build"/ext/visualsearch/libgstvisualsearch.so "$build"/gst-libs/gst/visualsearch/libgstvisualsearch-1.0.so \
    "$build"/engine/libvscore.a "$build"/engine/libvsengine.a; do
  [ -e "$lib" ] || { echo "FAIL missing $lib"; fail=1; continue; }
  n=$(objdump -d "$lib" 2>/dev/null | awk '
    /^[0-9a-f]+ <.*>:$/ { dispatched = ($2 ~ /_avx2|_avx512/) }
    /%[yz]mm[0-9]/ && !dispatched { n++ }
    END { print n + 0 }')
  if [ "$n" -ne 0 ]; then
    echo "FAIL $lib: $n instructions on ymm/zmm registers (AVX/AVX-512) outside run-time dispatch"
    fail=1
  else
    echo "ok   $(basename "$lib"): baseline x86-64 instructions only"
  fi
done
exit $fail
