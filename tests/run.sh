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

status=0
meson test -C "$BUILD_DIR" --print-errorlogs "$@" || status=$?

# meson's own summary is not a format CI reads; end with the plain count line.
/usr/bin/python3 - "$BUILD_DIR/meson-logs/testlog.json" <<'PY'
import json, sys
results = [json.loads(line)["result"] for line in open(sys.argv[1]) if line.strip()]
passed = sum(r in ("OK", "EXPECTEDFAIL") for r in results)
skipped = sum(r == "SKIP" for r in results)
print(f"{passed} passed, {len(results) - passed - skipped} failed, {skipped} skipped")
PY
exit $status
