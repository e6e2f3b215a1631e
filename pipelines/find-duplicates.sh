#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Finds groups of near-duplicate pictures in a gallery: prints each group's
# items, the tightest groups first and each group's exact copies first, and
# writes a PNG contact sheet of the tightest groups, a row each, with the
# pictures' whole file names. It warns when one group holds most of the
# gallery (the limit is too wide for the index), and when the index was built
# with random weights, which put every picture about equally close.
#
#   pipelines/find-duplicates.sh INDEX [--dataset DIR] [--out SHEET.png]
#
#   INDEX          an index built by index-folder.sh (or any faissindexer index)
#   --dataset DIR  the CIFAR directory of a CIFAR gallery, for thumbnails the
#                  catalog lacks (folder galleries need none)
#   --out FILE     the contact sheet (default: INDEX's name + "-duplicates.png")
#
# Each item is range-searched against the index; items at most MAX_DISTANCE
# apart are linked, and linked items form a group (a chain of near copies is
# one group). MAX_DISTANCE is a distance, smaller is closer, as faisssearch's
# max-distance and the server's (docs/scores.md): for ip (the default)
# 1 - similarity (default 0.05); for l2 the squared L2 distance (default 0.1). Copies, resized copies and
# JPEG re-encodes are usually well inside the default; raise it to also group
# similar shots. Environment: MAX_DISTANCE, SHEET_GROUPS=8 (rows of the sheet),
# THUMB=96 (thumbnail side in the sheet), BUILD_DIR=build (the tool used when
# not installed).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

dataset="" out="" k=1
vs_parse_args 1 "$@"
index=${positional[0]}
[ -f "$index" ] || vs_die "no index at $index; build one with pipelines/index-folder.sh."
out=${out:-"${index%.faiss}-duplicates.png"}

tool=$(command -v visualsearch-find-duplicates || true)
if [ -z "$tool" ]; then
  repo=$(cd "$(dirname "$0")/.." && pwd)
  tool="${BUILD_DIR:-$repo/build}/tools/visualsearch-find-duplicates"
  [ -x "$tool" ] || vs_die "visualsearch-find-duplicates is neither installed nor built in ${BUILD_DIR:-$repo/build}; run: meson setup build && ninja -C build"
fi

args=("$index" --sheet "$out" --groups "${SHEET_GROUPS:-8}" --thumb "${THUMB:-96}")
[ -n "${MAX_DISTANCE:-}" ] && args+=(--max-distance "$MAX_DISTANCE")
[ -n "$dataset" ] && args+=(--dataset "$dataset")
"$tool" "${args[@]}" || vs_die "finding duplicates failed (see above)."
