#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Search every frame of a video file and write an annotated copy: each frame
# carries a strip of its k most similar gallery images (thumbnail, label,
# score).
#
#   pipelines/search-video.sh INPUT INDEX [--dataset DIR] [--out OUTPUT] [-k K]
#
#   INPUT          any video file GStreamer decodes (audio is dropped)
#   INDEX          an index built by pipelines/index-folder.sh, index-cifar.sh or
#                  faissindexer; the frames are embedded exactly as the gallery was
#   --dataset DIR  the CIFAR directory the gallery came from, for the thumbnails
#   --out FILE     the annotated video (default: INPUT's name + "-search.avi");
#                  its extension picks the format, all from Debian's
#                  gstreamer1.0-plugins-good/base:
#                    .avi  Motion JPEG in AVI      .mkv  Motion JPEG in Matroska
#                    .mov  Motion JPEG in QuickTime .webm VP8 in WebM
#                    .ogv  Theora in Ogg
#   -k K           results per frame (default 5, or $K)
#
# Environment: INTERVAL=1 (embed every Nth frame; the overlay keeps the last
# results in between), THUMB=64, POSITION=bottom (top, bottom, left, right),
# WIDTH= (scale the output to this width, keeping the aspect ratio),
# MESSAGES= (a file for the per-frame results as gst-launch -m prints them),
# BUILD_DIR=build, PRECISION (unset: the index's int8, else auto; or fp32,
# bf16), and MODEL or WEIGHTS when the TorchScript or weights file of the
# index has moved. The embedder takes everything else from the index
# (embedder index=INDEX).
set -euo pipefail
source "$(dirname "$0")/lib.sh"


dataset="" out="" k=${K:-5}
vs_parse_args 2 "$@"
input=${positional[0]} index=${positional[1]}
[ -f "$input" ] || vs_die "no video at $input."
out=${out:-"${input%.*}-search.avi"}

case "${out##*.}" in
  avi) encode=(jpegenc ! avimux) ;;
  mkv) encode=(jpegenc ! matroskamux) ;;
  mov) encode=(jpegenc ! qtmux) ;;
  webm) encode=(vp8enc deadline=1 ! webmmux) ;;
  ogv) encode=(theoraenc ! oggmux) ;;
  *) vs_die "cannot tell the output format from '$out': use .avi, .mkv, .mov, .webm or .ogv." ;;
esac

vs_use_plugin
vs_embedder_for "$index"

scale=()
if [ -n "${WIDTH:-}" ]; then
  scale=(! videoscale ! "video/x-raw,width=$WIDTH,pixel-aspect-ratio=1/1")
fi
overlay=(searchoverlay thumb-size="${THUMB:-64}" max-thumbs="$k" position="${POSITION:-bottom}" persist=true)
if [ -n "$dataset" ]; then overlay+=(dataset="$dataset"); fi
messages=(-q)
post=false
if [ -n "${MESSAGES:-}" ]; then messages=(-m); post=true; fi

echo "searching $input -> $out"
start=$(date +%s)
gst-launch-1.0 "${messages[@]}" filesrc location="$input" ! decodebin ! videoconvert "${scale[@]}" \
  ! "${embedder[@]}" \
  ! faisssearch index="$index" k="$k" post-messages="$post" \
  ! videoconvert ! "${overlay[@]}" \
  ! videoconvert ! "${encode[@]}" ! filesink location="$out" \
  > "${MESSAGES:-/dev/stdout}" || vs_die "the search failed (see above)."
[ -s "$out" ] || vs_die "nothing was written to $out."
echo "wrote $out in $(( $(date +%s) - start )) s"
