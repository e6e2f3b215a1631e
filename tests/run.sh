#!/usr/bin/env bash
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
meson test -C "$BUILD_DIR" --print-errorlogs "$@"
