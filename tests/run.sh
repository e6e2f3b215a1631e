#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs what visualsearch needs, builds it, and runs the whole test suite.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

BUILD_DIR=${BUILD_DIR:-build}
if [ -f "$BUILD_DIR/build.ninja" ]; then
  meson setup --reconfigure "$BUILD_DIR"
else
  meson setup "$BUILD_DIR"
fi
ninja -C "$BUILD_DIR"

status=0
meson test -C "$BUILD_DIR" --print-errorlogs "$@" || status=$?
logs=("$BUILD_DIR/meson-logs/testlog.json")

# On a CPU above the AVX2-only class (AVX-512, native bf16, VNNI, AMX), the
# tests whose paths depend on the CPU run once more as an AVX2-only CPU would
# run them (setup avx2class in tests/meson.build), so that one machine checks
# both classes. VS_SKIP_CPU_CLASSES=1 skips it.
if [ "${VS_SKIP_CPU_CLASSES:-0}" != 1 ] && grep -qw avx512f /proc/cpuinfo && [ $# -eq 0 ]; then
  meson test -C "$BUILD_DIR" --setup avx2class --suite cpu-class --print-errorlogs \
    || status=$?
  logs+=("$BUILD_DIR/meson-logs/testlog-avx2class.json")
fi

# The sanitizer stage: the tests of suite 'asan' once more, built with
# AddressSanitizer (LeakSanitizer included) and UndefinedBehaviorSanitizer, at
# -O1 so the build stays short and the reports stay readable
# (tests/sanitizers/README.md). VS_SKIP_SANITIZERS=1 skips it; CI runs it.
if [ "${VS_SKIP_SANITIZERS:-0}" != 1 ]; then
  ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
  if [ -f "$ASAN_BUILD_DIR/build.ninja" ]; then
    meson setup --reconfigure "$ASAN_BUILD_DIR"
  else
    meson setup "$ASAN_BUILD_DIR" --buildtype=debugoptimized -Doptimization=1 \
      -Db_sanitize=address,undefined \
      -Dc_args=-fno-omit-frame-pointer -Dcpp_args=-fno-omit-frame-pointer
  fi
  ninja -C "$ASAN_BUILD_DIR"
  meson test -C "$ASAN_BUILD_DIR" --suite asan --timeout-multiplier 3 --print-errorlogs \
    || status=$?
  logs+=("$ASAN_BUILD_DIR/meson-logs/testlog.json")
fi

# meson's own summary is not a format CI reads; end with the plain count line,
# over both stages.
/usr/bin/python3 - "${logs[@]}" <<'PY'
import json, sys
results = [json.loads(line)["result"] for log in sys.argv[1:] for line in open(log)
           if line.strip()]
passed = sum(r in ("OK", "EXPECTEDFAIL") for r in results)
skipped = sum(r == "SKIP" for r in results)
print(f"{passed} passed, {len(results) - passed - skipped} failed, {skipped} skipped")
PY
exit $status
