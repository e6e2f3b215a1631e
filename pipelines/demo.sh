#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job: build visualsearch (the plugin and the server, not the tests),
# get CIFAR-10 and ResNet-18 weights, index
# the training images, search the test images as a stream with the overlay,
# and leave an annotated video, a contact sheet and the printed results.
#
#   pipelines/demo.sh
#
# Online it downloads CIFAR-10 and the official weights. When a download fails
# (no network, a proxy, a build box) it falls back to the mini gallery shipped
# in data/cifar-10-mini and to random weights (at input size 64), and says so
# in a banner at the start and at the end. A server that cannot be reached, or
# stops sending, fails its download within about 20 s.
#
# Environment (each choice can be forced):
#   CIFAR10_DIR       a local CIFAR-10 (the cifar-10-batches-py directory or its parent);
#                     unset: download the official archive (md5-checked) into $DATA_DIR
#   DATA_DIR          where the download goes (default ~/.cache/visualsearch)
#   CIFAR10_URL       where the archive is downloaded from (default: the official site)
#   WEIGHTS           unset: the torchvision cache, else download resnet18-f37072fd.pth;
#                     random: deterministic random weights (results are not meaningful);
#                     or a path to a .pth file
#   VS_WEIGHTS_BASE_URL  where models/fetch-weights.sh downloads the weights from
#   MODEL=resnet18  INPUT_SIZE=224 (64 with the random-weight fallback)
#   RESIZE=0 (stretch 32x32 to INPUT_SIZE)  PRECISION=auto
#   NUM_QUERIES=100   test images searched in the stream, FPS=10 frames a second
#   K=5               neighbours per query
#   OUT_DIR=demo-out  where the index, the video, the contact sheet and the logs go
#   BUILD_DIR=build   the build tree (relative to the project's root, or absolute)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"
source "$here/lib.sh"

MODEL=${MODEL:-resnet18}
input_size_forced=${INPUT_SIZE:+yes}
INPUT_SIZE=${INPUT_SIZE:-224}
RESIZE=${RESIZE:-0}
PRECISION=${PRECISION:-auto}
NUM_QUERIES=${NUM_QUERIES:-100}
FPS=${FPS:-10}
K=${K:-5}
OUT_DIR=${OUT_DIR:-demo-out}
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$repo/$BUILD_DIR" ;; esac
DATA_DIR=${DATA_DIR:-$HOME/.cache/visualsearch}
CIFAR10_URL=${CIFAR10_URL:-https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz}
CIFAR10_MD5=c58f30108f718f92721af3b95e74349a
MINI_DIR="$repo/data/cifar-10-mini/cifar-10-batches-py"

say() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

case "${1:-}" in
  -h|--help) awk 'NR > 1 && !/^#/ { exit } /SPDX-License-Identifier/ { next } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
esac

# Each step's wall time, printed as it ends and again in the summary.
step_name="" step_start=0 timings=()
step() {
  end_step
  step_name=$1 step_start=$SECONDS
  say "$1"
}
end_step() {
  [ -n "$step_name" ] || return 0
  local took=$(( SECONDS - step_start ))
  echo "($took s)"
  timings+=("$(printf '%5d s  %s' "$took" "$step_name")")
  step_name=""
}

# What the run fell back to, for the banner.
fallbacks=()
banner() {
  [ ${#fallbacks[@]} -gt 0 ] || return 0
  local line f
  line=$(printf '%.0s#' {1..78})
  printf '\n%s\n# OFFLINE DEFAULTS: a download failed, so this run uses\n' "$line"
  for f in "${fallbacks[@]}"; do printf '#   - %s\n' "$f"; done
  if [ "${WEIGHTS:-}" = random ]; then
    printf '# With random weights the neighbours are NOT meaningful: the pipeline runs end to\n'
    printf '# end, but what it finds does not look like the query.\n'
  fi
  printf '# For real results, with the network (or copy the files over by hand):\n'
  printf '#   models/fetch-weights.sh %s\n' "$MODEL"
  printf '#   CIFAR10_DIR=/path/to/cifar-10-batches-py pipelines/demo.sh\n'
  printf '%s\n' "$line"
}

# A server that cannot be reached, or stops sending, fails within about 20 s
# rather than curl's minutes; quick transient errors are still retried.
download() {
  curl --fail --location --silent --show-error --connect-timeout 10 \
    --speed-limit 1024 --speed-time 10 --retry 2 --retry-max-time 10 -o "$2" "$1"
}

step "1/6 Installing dependencies and building ($BUILD_DIR)"
scripts/install-deps.sh
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR"
# Only what the demo runs, and the server its last line suggests: not the
# tests' programs (meson test builds those it needs). Targets a configuration
# lacks (no libsoup: no server; no introspection: no typelib) are left out.
demo_targets=(ext/visualsearch/libgstvisualsearch.so engine/libvisualsearch-codecs.so
              engine/libvisualsearch-engine.so server/visualsearch-server
              gst-libs/gst/visualsearch/GstVisualSearch-1.0.typelib)
available=$(ninja -C "$BUILD_DIR" -t targets all)
build_targets=()
for target in "${demo_targets[@]}"; do
  if grep -q "^$target:" <<<"$available"; then build_targets+=("$target"); fi
done
echo "building ${build_targets[*]}"
ninja -C "$BUILD_DIR" "${build_targets[@]}"
vs_use_build_tree visualsearch
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

step "2/6 Getting CIFAR-10"
after_build=$SECONDS
find_batches() {
  local d
  for d in "$1" "$1/cifar-10-batches-py" "$1/cifar-10-batches-bin"; do
    if [ -f "$d/batches.meta" ] || [ -f "$d/batches.meta.txt" ]; then echo "$d"; return 0; fi
  done
  return 1
}
# Downloads and unpacks CIFAR-10 into $DATA_DIR; on failure says why on stderr.
download_cifar10() {
  local archive="$DATA_DIR/cifar-10-python.tar.gz"
  mkdir -p "$DATA_DIR" || return 1
  echo "downloading $CIFAR10_URL"
  if ! download "$CIFAR10_URL" "$archive.part"; then
    rm -f "$archive.part"
    echo "demo: could not download $CIFAR10_URL" >&2
    return 1
  fi
  if ! echo "$CIFAR10_MD5  $archive.part" | md5sum --check --quiet; then
    rm -f "$archive.part"
    echo "demo: the download of $CIFAR10_URL is not CIFAR-10 (md5 mismatch; a proxy's page?)" >&2
    return 1
  fi
  mv "$archive.part" "$archive"
  tar -xzf "$archive" -C "$DATA_DIR" || { echo "demo: could not unpack $archive" >&2; return 1; }
}
if [ -n "${CIFAR10_DIR:-}" ]; then
  DATASET=$(find_batches "$CIFAR10_DIR") || die "CIFAR10_DIR=$CIFAR10_DIR holds no CIFAR-10 batches (expected batches.meta, or a cifar-10-batches-py directory inside it)."
  echo "using the local copy $DATASET"
elif DATASET=$(find_batches "$DATA_DIR"); then
  echo "using $DATASET, downloaded earlier"
elif download_cifar10; then
  DATASET="$DATA_DIR/cifar-10-batches-py"
else
  DATASET=$MINI_DIR
  fallbacks+=("the mini gallery data/cifar-10-mini (500 training, 100 test images) instead of CIFAR-10")
  echo "falling back to the mini gallery $DATASET"
fi

step "3/6 Getting $MODEL weights"
# The fallback every script that embeds shares (pipelines/lib.sh).
vs_weights_fallback
if $vs_random_fallback; then
  fallbacks+=("random weights (WEIGHTS=random) instead of the official $MODEL weights")
  echo "falling back to WEIGHTS=random"
  # Random weights find nothing more at 224 than at 64, which costs a twelfth
  # of the arithmetic: the offline default then takes about a minute.
  if [ -z "$input_size_forced" ]; then
    INPUT_SIZE=64
    fallbacks+=("input size 64 instead of 224, enough for random weights")
  fi
elif [ "${WEIGHTS:-}" = random ]; then
  echo "WEIGHTS=random: deterministic random weights; the pipeline runs end to end but the neighbours are not meaningful."
elif [ -n "${WEIGHTS:-}" ]; then
  echo "using $WEIGHTS"
else
  echo "using the official $MODEL weights from the torch hub cache"
fi
end_step
banner
export MODEL INPUT_SIZE RESIZE PRECISION WEIGHTS BUILD_DIR
run() { echo "+ $*"; "$@"; }

INDEX="$OUT_DIR/cifar10-train.faiss"
step "4/6 Indexing the training images into $INDEX"
SPLIT=train run pipelines/index-cifar.sh "$DATASET" "$INDEX"

step "5/6 Searching $NUM_QUERIES test images as a stream, with the overlay"
VIDEO="$OUT_DIR/search.avi"
# framerate paces the source, so the video plays at FPS (cifarsrc otherwise runs as fast as it can).
run gst-launch-1.0 -q cifarsrc location="$DATASET" split=test num-buffers="$NUM_QUERIES" framerate="$FPS/1" \
  ! embedder index="$INDEX" precision="$PRECISION" \
  ! faisssearch index="$INDEX" k="$K" post-messages=false \
  ! videoscale ! video/x-raw,width=320,height=320 \
  ! searchoverlay dataset="$DATASET" \
  ! videoconvert ! jpegenc ! avimux ! filesink location="$VIDEO"
echo "wrote $VIDEO"
echo "The first test images and their neighbours, read from faisssearch's bus messages:"
run /usr/bin/python3 examples/search-results.py --index "$INDEX" -k "$K" \
  --source "cifarsrc location=\"$DATASET\" split=test num-buffers=3" \
  --embedder "precision=$PRECISION"

step "6/6 Contact sheet for one test image"
QUERY="$OUT_DIR/query.png"
run gst-launch-1.0 -q cifarsrc location="$DATASET" split=test offset=7 num-buffers=1 \
  ! videoconvert ! pngenc ! filesink location="$QUERY"
run pipelines/search-image.sh "$QUERY" "$INDEX" --dataset "$DATASET" --out "$OUT_DIR/contact-sheet.png" -k "$K"

end_step
banner
say "Done. In $OUT_DIR: the index and its catalog, search.avi, query.png and contact-sheet.png"
echo "Browse the gallery in a web page: pipelines/serve.sh \"$INDEX\", then open http://127.0.0.1:8080/"
echo "Time of each step:"
printf '%s\n' "${timings[@]}"
printf '%5d s  after the build\n' $(( SECONDS - after_build ))
