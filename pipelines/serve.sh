#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Starts visualsearch-server (the web page and JSON API) on an index and
# prints the address to open in a browser. Ctrl-C stops it.
#
#   pipelines/serve.sh [INDEX] [-- SERVER OPTIONS...]
#
#   INDEX   an index built by demo.sh, index-cifar.sh, index-folder.sh or
#           faissindexer (default: the demo's, demo-out/cifar10-train.faiss)
#
# Environment: PORT=8080, BIND=127.0.0.1 (another address needs TOKEN),
# TOKEN (a secret every request must carry), CAMERA (a live source for the
# live tab, e.g. v4l2src or "videotestsrc is-live=true"; default none),
# GALLERY (the folder a folder index came from, for items without catalog
# thumbnails), BUILD_DIR=build (server and plugin used when not installed).
# Options after -- go to visualsearch-server as they are (see its --help).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

index=${1:-demo-out/cifar10-train.faiss}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
case "$index" in -h|--help) vs_usage 0 ;; -*) vs_usage 2 ;; esac
[ -f "$index" ] || vs_die "no index at $index; run pipelines/demo.sh first, or give an index built by pipelines/index-cifar.sh."

vs_use_plugin
repo=$(cd "$(dirname "$0")/.." && pwd)
server=$(command -v visualsearch-server || true)
[ -n "$server" ] || server="${BUILD_DIR:-$repo/build}/server/visualsearch-server"
[ -x "$server" ] || vs_die "visualsearch-server is neither installed nor built in ${BUILD_DIR:-$repo/build}; install libsoup-3.0-dev (scripts/install-deps.sh) and run: meson setup --reconfigure build && ninja -C build"

args=(--index "$index" --port "${PORT:-8080}" --bind "${BIND:-127.0.0.1}")
[ -n "${TOKEN:-}" ] && args+=(--token "$TOKEN")
[ -n "${CAMERA:-}" ] && args+=(--camera "$CAMERA")
[ -n "${GALLERY:-}" ] && args+=(--gallery "$GALLERY")
url="http://${BIND:-127.0.0.1}:${PORT:-8080}/"
[ -n "${TOKEN:-}" ] && url="$url#token=$TOKEN"
echo "serve: open $url in a browser (Ctrl-C stops the server)"
exec "$server" "${args[@]}" "$@"
