#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Downloads official torchvision ResNet checkpoints into the torch hub cache,
# where `embedder` (and torchvision itself) look for them, and checks each one
# the way torchvision does: the hex digits after the last '-' in the file name
# must be a prefix of the file's SHA-256. A server that cannot be reached, or
# stops sending, fails the download within about 20 s.
#
#   models/fetch-weights.sh                 # resnet18
#   models/fetch-weights.sh resnet18 resnet50
#   models/fetch-weights.sh resnet50-11ad3fa6.pth   # any file name with a hash suffix
#
# Environment:
#   TORCH_HOME                 cache root (default ~/.cache/torch); files go to $TORCH_HOME/hub/checkpoints
#   VS_WEIGHTS_BASE_URL        where to download from (default: torchvision's model URL)
#   VS_WEIGHTS_DIR             download into this directory instead of the cache
set -euo pipefail

BASE_URL=${VS_WEIGHTS_BASE_URL:-https://download.pytorch.org/models}
DEST=${VS_WEIGHTS_DIR:-${TORCH_HOME:-$HOME/.cache/torch}/hub/checkpoints}

official_file() {
  case "$1" in
    resnet18) echo resnet18-f37072fd.pth ;;
    resnet34) echo resnet34-b627a593.pth ;;
    resnet50) echo resnet50-11ad3fa6.pth ;;
    resnet101) echo resnet101-cd907fc2.pth ;;
    resnet152) echo resnet152-f82ba261.pth ;;
    *.pth|*.pt) echo "$1" ;;
    *) return 1 ;;
  esac
}

usage() {
  awk 'NR > 1 && !/^#/ { exit } /SPDX-License-Identifier/ { next } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

fetch_one() {
  local file prefix url tmp digest
  if ! file=$(official_file "$1"); then
    echo "fetch-weights: unknown model '$1' (known: resnet18 resnet34 resnet50 resnet101 resnet152, or a file name like resnet50-11ad3fa6.pth)" >&2
    return 2
  fi
  prefix=${file##*-}
  prefix=${prefix%%.*}
  if ! [[ "$prefix" =~ ^[0-9a-f]{6,64}$ ]]; then
    echo "fetch-weights: '$file' carries no hash prefix after its last '-', so it cannot be checked" >&2
    return 2
  fi
  if [ -f "$DEST/$file" ] && sha256sum "$DEST/$file" | grep -q "^$prefix"; then
    echo "fetch-weights: $DEST/$file is already there and checks out"
    return 0
  fi

  mkdir -p "$DEST"
  url="$BASE_URL/$file"
  tmp=$(mktemp "$DEST/.$file.XXXXXX")
  echo "fetch-weights: downloading $url"
  # A server that cannot be reached, or stops sending, fails within about 20 s
  # rather than curl's minutes, so the demo can fall back to random weights;
  # quick transient errors are still retried.
  if ! curl --fail --location --silent --show-error --connect-timeout 10 \
      --speed-limit 1024 --speed-time 10 --retry 2 --retry-max-time 10 -o "$tmp" "$url"; then
    rm -f "$tmp"
    echo "fetch-weights: could not download $url. Offline? Copy the file into $DEST by hand, or run the pipelines with WEIGHTS=random." >&2
    return 1
  fi
  digest=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [[ "$digest" != "$prefix"* ]]; then
    rm -f "$tmp"
    echo "fetch-weights: $file is corrupt: its SHA-256 is $digest, which does not start with $prefix. Nothing was written; try again." >&2
    return 1
  fi
  mv -f "$tmp" "$DEST/$file"
  echo "fetch-weights: wrote $DEST/$file (sha256 $digest)"
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac
[ $# -gt 0 ] || set -- resnet18
status=0
for m in "$@"; do
  fetch_one "$m" || status=$?
done
exit $status
