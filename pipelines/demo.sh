#!/usr/bin/env bash
# The main job: build visualsearch, get CIFAR-10 and ResNet-18 weights, index
# the training images, search the test images as a stream with the overlay,
# and leave an annotated video, a contact sheet and the printed results.
#
#   pipelines/demo.sh
#   CIFAR10_DIR=../shared/data/cifar10-sample WEIGHTS=random pipelines/demo.sh   # offline
#
# Environment:
#   CIFAR10_DIR       a local CIFAR-10 (the cifar-10-batches-py directory or its parent);
#                     unset: download the official archive (md5-checked) into $DATA_DIR
#   DATA_DIR          where the download goes (default ~/.cache/visualsearch)
#   WEIGHTS           unset: the torchvision cache, else download resnet18-f37072fd.pth;
#                     random: deterministic random weights (offline; results are not meaningful);
#                     or a path to a .pth file
#   MODEL=resnet18  INPUT_SIZE=224  RESIZE=0 (stretch 32x32 to INPUT_SIZE)  PRECISION=fp32
#   NUM_QUERIES=100   test images searched in the stream, FPS=10 frames a second
#   K=5               neighbours per query
#   OUT_DIR=demo-out  where the index, the video, the contact sheet and the logs go
#   BUILD_DIR=build
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"

MODEL=${MODEL:-resnet18}
INPUT_SIZE=${INPUT_SIZE:-224}
RESIZE=${RESIZE:-0}
PRECISION=${PRECISION:-fp32}
NUM_QUERIES=${NUM_QUERIES:-100}
FPS=${FPS:-10}
K=${K:-5}
OUT_DIR=${OUT_DIR:-demo-out}
BUILD_DIR=${BUILD_DIR:-build}
DATA_DIR=${DATA_DIR:-$HOME/.cache/visualsearch}
CIFAR10_URL=https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz
CIFAR10_MD5=c58f30108f718f92721af3b95e74349a

say() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

case "${1:-}" in
  -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

say "1/6 Installing dependencies and building ($BUILD_DIR)"
scripts/install-deps.sh
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR"
ninja -C "$BUILD_DIR"
export GST_PLUGIN_PATH="$repo/$BUILD_DIR/plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
gst-inspect-1.0 visualsearch >/dev/null || die "the plugin in $BUILD_DIR/plugin does not load; see gst-inspect-1.0 visualsearch."
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

say "2/6 Getting CIFAR-10"
find_batches() {
  local d
  for d in "$1" "$1/cifar-10-batches-py" "$1/cifar-10-batches-bin"; do
    if [ -f "$d/batches.meta" ] || [ -f "$d/batches.meta.txt" ]; then echo "$d"; return 0; fi
  done
  return 1
}
if [ -n "${CIFAR10_DIR:-}" ]; then
  DATASET=$(find_batches "$CIFAR10_DIR") || die "CIFAR10_DIR=$CIFAR10_DIR holds no CIFAR-10 batches (expected batches.meta, or a cifar-10-batches-py directory inside it)."
  echo "using the local copy $DATASET"
elif DATASET=$(find_batches "$DATA_DIR"); then
  echo "using $DATASET, downloaded earlier"
else
  mkdir -p "$DATA_DIR"
  archive="$DATA_DIR/cifar-10-python.tar.gz"
  echo "downloading $CIFAR10_URL"
  if ! curl --fail --location --silent --show-error --connect-timeout 20 -o "$archive.part" "$CIFAR10_URL"; then
    rm -f "$archive.part"
    die "could not download CIFAR-10. Offline? Point CIFAR10_DIR at a local copy, e.g. CIFAR10_DIR=../shared/data/cifar10-sample WEIGHTS=random pipelines/demo.sh"
  fi
  echo "$CIFAR10_MD5  $archive.part" | md5sum --check --quiet \
    || { rm -f "$archive.part"; die "the CIFAR-10 download is corrupt (md5 mismatch); run the demo again."; }
  mv "$archive.part" "$archive"
  tar -xzf "$archive" -C "$DATA_DIR"
  DATASET="$DATA_DIR/cifar-10-batches-py"
fi

say "3/6 Getting $MODEL weights"
if [ "${WEIGHTS:-}" = random ]; then
  echo "WEIGHTS=random: deterministic random weights; the pipeline runs end to end but the neighbours are not meaningful."
elif [ -n "${WEIGHTS:-}" ]; then
  [ -f "$WEIGHTS" ] || die "WEIGHTS=$WEIGHTS does not exist."
  echo "using $WEIGHTS"
else
  models/fetch-weights.sh "$MODEL" \
    || die "no $MODEL weights in the torchvision cache and the download failed. Offline? Run with WEIGHTS=random."
  WEIGHTS=""
fi
embedder_props=(model="$MODEL" input-size="$INPUT_SIZE" resize="$RESIZE" precision="$PRECISION")
[ -n "${WEIGHTS:-}" ] && embedder_props+=(weights="$WEIGHTS")
export MODEL INPUT_SIZE RESIZE PRECISION WEIGHTS BUILD_DIR
run() { echo "+ $*"; "$@"; }

INDEX="$OUT_DIR/cifar10-train.faiss"
say "4/6 Indexing the training images into $INDEX"
SPLIT=train run pipelines/index-cifar.sh "$DATASET" "$INDEX"

say "5/6 Searching $NUM_QUERIES test images as a stream, with the overlay"
VIDEO="$OUT_DIR/search.avi"
# framerate paces the source, so the video plays at FPS (cifarsrc otherwise runs as fast as it can).
run gst-launch-1.0 -q cifarsrc location="$DATASET" split=test num-buffers="$NUM_QUERIES" framerate="$FPS/1" \
  ! embedder "${embedder_props[@]}" \
  ! faisssearch index="$INDEX" k="$K" post-messages=false \
  ! videoscale ! video/x-raw,width=320,height=320 \
  ! searchoverlay dataset="$DATASET" \
  ! videoconvert ! jpegenc ! avimux ! filesink location="$VIDEO"
echo "wrote $VIDEO"
echo "The first test images and their neighbours, read from faisssearch's bus messages:"
run /usr/bin/python3 examples/search-results.py --index "$INDEX" -k "$K" \
  --source "cifarsrc location=\"$DATASET\" split=test num-buffers=3" \
  --embedder "${embedder_props[*]}"

say "6/6 Contact sheet for one test image"
QUERY="$OUT_DIR/query.png"
run gst-launch-1.0 -q cifarsrc location="$DATASET" split=test offset=7 num-buffers=1 \
  ! videoconvert ! pngenc ! filesink location="$QUERY"
run pipelines/search-image.sh "$QUERY" "$INDEX" --dataset "$DATASET" --out "$OUT_DIR/contact-sheet.png" -k "$K"

say "Done. In $OUT_DIR: the index and its catalog, search.avi, query.png and contact-sheet.png"
