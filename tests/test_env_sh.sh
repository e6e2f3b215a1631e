#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# scripts/env.sh makes the README's commands run as typed: sourced in a clean
# environment, from another directory, `gst-inspect-1.0 embedder` and
# `visualsearch-server --help` work; it says what it set, adds nothing twice,
# and a missing build is one clear sentence that leaves the shell running.
set -uo pipefail
: "${VS_SOURCE_DIR:?}" "${VS_BUILD_DIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
check() {  # check WHAT COMMAND...: runs COMMAND, fails the test when it fails
  local what=$1
  shift
  if "$@" >"$work/out" 2>&1; then echo "ok: $what"
  else echo "FAIL: $what"; sed 's/^/  | /' "$work/out"; failed=1; fi
}
# A clean environment: no GStreamer variables, a PATH without the build tree,
# a home of its own (the registry goes there), in a directory outside the tree.
clean() {
  (cd "$work" && env -i HOME="$work" PATH=/usr/local/bin:/usr/bin:/bin \
     BUILD_DIR="$VS_BUILD_DIR" SRC="$VS_SOURCE_DIR" "$@")
}

check "without env.sh, the embedder is not found (the test means something)" \
  clean bash -c '! gst-inspect-1.0 embedder'
check "bash: sourced from another directory, the commands run as typed" \
  clean bash -c '. "$SRC/scripts/env.sh" > said &&
    grep -q "GST_PLUGIN_PATH += $BUILD_DIR/ext/visualsearch" said &&
    grep -q "PATH += $BUILD_DIR/server" said &&
    grep -q "LD_LIBRARY_PATH += $BUILD_DIR/gst-libs/gst/visualsearch" said &&
    grep -q "GI_TYPELIB_PATH += $BUILD_DIR/gst-libs/gst/visualsearch" said &&
    gst-inspect-1.0 embedder > /dev/null &&
    visualsearch-server --help > /dev/null &&
    command -v visualsearch-find-duplicates > /dev/null'
check "bash: a relative path, and sourcing twice adds nothing twice" \
  clean bash -c 'ln -s "$SRC" tree && cd tree && . scripts/env.sh > /dev/null && . scripts/env.sh > /dev/null &&
    [ "$(tr : "\n" <<<"$GST_PLUGIN_PATH" | grep -c visualsearch)" = 1 ] &&
    [ "$(tr : "\n" <<<"$PATH" | grep -c "/server$")" = 1 ] &&
    gst-inspect-1.0 embedder > /dev/null'
if [ "$(realpath "$VS_BUILD_DIR")" = "$(realpath "$VS_SOURCE_DIR/build")" ]; then
  check "without BUILD_DIR: build/ in the source tree, whatever the current directory" \
    clean env -u BUILD_DIR bash -c '. "$SRC/scripts/env.sh" > /dev/null && gst-inspect-1.0 embedder > /dev/null &&
      [ "$(command -v visualsearch-server)" = "$SRC/build/server/visualsearch-server" ]'
fi
check "dash: sourced from the source tree" \
  clean dash -c 'cd "$SRC" && . scripts/env.sh > /dev/null && gst-inspect-1.0 embedder > /dev/null &&
    visualsearch-server --help > /dev/null'
if [ -f "$VS_BUILD_DIR/gst-libs/gst/visualsearch/GstVisualSearch-1.0.typelib" ]; then
  check "the metadata library's typelib loads from Python" \
    clean bash -c '. "$SRC/scripts/env.sh" > /dev/null && /usr/bin/python3 -c "
import gi
gi.require_version(\"GstVisualSearch\", \"1.0\")
from gi.repository import GstVisualSearch
assert GstVisualSearch.metric_to_string(GstVisualSearch.Metric.L2) == \"l2\""'
fi
check "no build: one sentence naming the folder, non-zero status, the shell goes on" \
  clean bash -c 'BUILD_DIR=/nonexistent; . "$SRC/scripts/env.sh" 2> said; status=$?;
    [ $status -ne 0 ] && grep -q "no visualsearch plugin built in /nonexistent" said &&
    [ -z "${GST_PLUGIN_PATH:-}" ] && echo "still here"'
exit $failed
