#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An application's view of the metadata library: stage `meson install` into a
# temporary directory, compile examples/embeddings-app.c (with the examples'
# shared example-pipeline.c) with nothing but
# pkg-config pointing there, and run it against the staged plugin; then run
# examples/read-metas.py through the staged GIR typelib.
set -euo pipefail
: "${VS_BUILD_DIR:?}" "${VS_SOURCE_DIR:?}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

meson install -C "$VS_BUILD_DIR" --destdir "$stage" --no-rebuild --quiet >/dev/null

pc=$(find "$stage" -name gstvisualsearch-1.0.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: meson install staged no gstvisualsearch-1.0.pc"; exit 1; }
# The staged .pc still names the final prefix; point it at the stage.
mkdir -p "$stage/pc"
prefix=$(sed -n 's/^prefix=//p' "$pc")
sed "s|^prefix=.*|prefix=$stage$prefix|" "$pc" > "$stage/pc/gstvisualsearch-1.0.pc"
export PKG_CONFIG_PATH="$stage/pc"

cc -o "$stage/embeddings-app" "$VS_SOURCE_DIR/examples/embeddings-app.c" \
  "$VS_SOURCE_DIR/examples/example-pipeline.c" \
  $(pkg-config --cflags --libs gstvisualsearch-1.0 gstreamer-app-1.0) -lm

lib=$(find "$stage" -name 'libgstvisualsearch-1.0.so.0' | head -n 1)
plugin=$(find "$stage" -name 'libgstvisualsearch.so' | head -n 1)
[ -n "$lib" ] && [ -n "$plugin" ] || { echo "FAIL: library or plugin not staged"; exit 1; }

out=$(LD_LIBRARY_PATH="$(dirname "$lib")" \
  GST_PLUGIN_PATH_1_0="$(dirname "$plugin")" \
  GST_REGISTRY_1_0="$stage/registry.bin" \
  "$stage/embeddings-app" \
  "videotestsrc num-buffers=3 ! video/x-raw,width=96,height=64 ! embedder weights=random input-size=64 resize=0 ! appsink name=sink sync=false")
echo "$out"
echo "$out" | grep -q "^3 frames, 3 with an embedding$" || { echo "FAIL: expected 3 embedded frames"; exit 1; }
echo "$out" | grep -q "dims 512 norm 1.0000" || { echo "FAIL: expected unit-norm 512-d embeddings"; exit 1; }
echo "PASS: installed library + pkg-config + staged plugin"

# Built with introspection (it is when gobject-introspection is installed):
# the .gir goes to share/gir-1.0 and the typelib next to the library, where
# PyGObject finds them once installed.
[ -e "$VS_BUILD_DIR/gst-libs/gst/visualsearch/GstVisualSearch-1.0.typelib" ] || {
  echo "SKIP: built without introspection"; exit 0; }
gir=$(find "$stage" -path '*/share/gir-1.0/GstVisualSearch-1.0.gir' | head -n 1)
typelib=$(find "$stage" -path '*/lib/*girepository-1.0/GstVisualSearch-1.0.typelib' | head -n 1)
[ -n "$gir" ] || { echo "FAIL: no GstVisualSearch-1.0.gir staged under share/gir-1.0"; exit 1; }
[ -n "$typelib" ] || { echo "FAIL: no GstVisualSearch-1.0.typelib staged under lib/.../girepository-1.0"; exit 1; }

out=$(LD_LIBRARY_PATH="$(dirname "$lib")" \
  GI_TYPELIB_PATH="$(dirname "$typelib")" \
  GST_PLUGIN_PATH_1_0="$(dirname "$plugin")" \
  GST_REGISTRY_1_0="$stage/registry.bin" \
  /usr/bin/python3 "$VS_SOURCE_DIR/examples/read-metas.py" \
  "videotestsrc num-buffers=3 ! video/x-raw,width=96,height=64 ! embedder weights=random input-size=64 resize=0 ! appsink name=sink sync=false")
echo "$out"
echo "$out" | grep -q "^3 frames, 3 with visualsearch metas$" || { echo "FAIL: expected 3 frames with metas from Python"; exit 1; }
echo "$out" | grep -q "embedding dims 512 values 512 norm 1.0000" || { echo "FAIL: expected unit-norm 512-d embeddings from Python"; exit 1; }
echo "PASS: installed GIR + typelib read from Python"
