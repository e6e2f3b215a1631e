#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Search one image: prints its k most similar gallery images and writes a PNG
# contact sheet, the query on top and the results (thumbnail, label, score)
# below it.
#
#   pipelines/search-image.sh IMAGE INDEX [--dataset DIR] [--out SHEET.png] [-k K]
#
#   IMAGE          any image GStreamer decodes (PNG, JPEG, ...)
#   INDEX          an index built by pipelines/index-folder.sh, index-cifar.sh or
#                  faissindexer; the query is embedded exactly as the gallery was
#   --dataset DIR  the CIFAR directory the gallery came from, for the thumbnails
#                  (gallery images stored as file paths need none)
#   --out FILE     the contact sheet (default: $OUT, else IMAGE's name +
#                  "-results.png" in the current folder, not beside IMAGE,
#                  where a folder gallery would index it)
#   -k K           how many results (default 5, or $K)
#
# Environment: THUMB=96 (thumbnail side in the sheet), BUILD_DIR=build (plugin
# used when not installed), PRECISION (unset: the index's int8, else auto;
# or fp32, bf16), and MODEL or WEIGHTS when the TorchScript or weights file
# of the index has moved. The embedder takes everything else from the index
# (embedder index=INDEX).
# Exits 1 on any failure, with a message saying what to do.
set -euo pipefail
source "$(dirname "$0")/lib.sh"


dataset="" out=${OUT:-} k=${K:-5}
vs_parse_args 2 "$@"
image=${positional[0]} index=${positional[1]}
[ -f "$image" ] || vs_die "no image at $image."
base=$(basename "$image")
out=${out:-"${base%.*}-results.png"}
thumb=${THUMB:-96}

vs_use_plugin
vs_embedder_for "$index"

# The sheet: the query scaled into a box as wide as the row of results, then
# a band added below it (videobox) for searchoverlay to draw the results into.
gap=$(( thumb / 16 > 2 ? thumb / 16 : 2 ))
width=$(( gap + k * (thumb + gap) ))
[ "$width" -ge 320 ] || width=320
height=$(( width * 3 / 4 ))
band=$(( thumb + thumb / 2 + 16 ))
overlay=(searchoverlay thumb-size="$thumb" max-thumbs="$k" position=bottom)
if [ -n "$dataset" ]; then overlay+=(dataset="$dataset"); fi

log=$(mktemp)
# The sheet is written beside its place and moved there once whole.
part="$out.part-$$"
trap 'rm -f "$log" "$part"' EXIT
if ! gst-launch-1.0 -m filesrc location="$image" ! decodebin ! videoconvert \
    ! imagefreeze num-buffers=1 \
    ! "${embedder[@]}" \
    ! faisssearch index="$index" k="$k" \
    ! videoconvert ! videoscale add-borders=true \
    ! "video/x-raw,format=RGB,width=$width,height=$height,pixel-aspect-ratio=1/1" \
    ! videobox bottom=-"$band" fill=black \
    ! "${overlay[@]}" \
    ! videoconvert ! pngenc ! filesink location="$part" >"$log" 2>&1; then
  # A file that is no picture fails in decodebin: say so in one sentence.
  error=$(grep -m1 "^ERROR: from element" "$log" || true)
  if [[ "$error" == *GstDecodeBin* || "$error" == *GstTypeFindElement* ]]; then
    vs_die "$image is not a picture GStreamer can decode (${error##*: }); give a PNG, JPEG or another image file."
  fi
  grep -E "^(ERROR|WARNING)|debug info" -A1 "$log" >&2 || cat "$log" >&2
  vs_die "the search failed (see above)."
fi
grep -E "^WARNING" -A1 "$log" >&2 || true

echo "query: $image"
vs_print_results <"$log"
grep -q "visualsearch, " "$log" || vs_die "the image was not searched (no results on the bus)."
model_id=$(vs_model_id "$index")
if vs_random_model_id "$model_id"; then
  echo "RANDOM WEIGHTS: the index was built with random weights ($model_id); every score reads about the same and the neighbours are not meaningful (see models/fetch-weights.sh)."
fi
mv -f "$part" "$out" || vs_die "cannot write the contact sheet $out."
echo "contact sheet: $out"
