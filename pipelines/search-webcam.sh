#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Live search: every webcam frame is matched against the gallery and shown
# with a strip of its most similar images (thumbnail, label, score).
#
#   pipelines/search-webcam.sh INDEX [--dataset DIR] [--device DEV] [-k K]
#
#   INDEX          an index built by pipelines/index-folder.sh, index-cifar.sh or
#                  faissindexer; the frames are embedded exactly as the gallery was
#   --dataset DIR  the CIFAR directory the gallery came from, for the thumbnails
#   --device DEV   the V4L2 camera (default /dev/video0, or $DEVICE)
#   -k K           results per frame (default 5, or $K)
#
# The display keeps the camera's rate: when the model cannot keep up, the
# embedder's QoS skips embeddings (never frames) and the overlay keeps the
# last results on screen. Environment: WIDTH=640 HEIGHT=480 (frame size
# searched and shown), INTERVAL=1 (embed every Nth frame), PRECISION (unset:
# the index's int8, else auto; bf16, where the CPU has it natively and it
# holds up, is ~3x faster), THUMB=64, POSITION=bottom,
# SINK=autovideosink, SOURCE= (a gst-launch source to use instead of the
# camera, e.g. SOURCE="videotestsrc is-live=true"), BUILD_DIR=build, and
# MODEL or WEIGHTS when the TorchScript or weights file of the index has
# moved. The embedder takes everything else from the index (embedder
# index=INDEX).
# Without a camera it stops at once with a message and exit status 1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"


dataset="" device=${DEVICE:-/dev/video0} k=${K:-5}
vs_parse_args 1 "$@"
index=${positional[0]}

if [ -n "${SOURCE:-}" ]; then
  read -r -a source <<<"$SOURCE"
else
  if [ ! -c "$device" ]; then
    vs_die "no camera at $device. Plug one in, or name it with --device /dev/videoN (ls /dev/video* lists them). Without a camera, try SOURCE=\"videotestsrc is-live=true\" $0 $index, or search a file with pipelines/search-video.sh."
  fi
  [ -r "$device" ] && [ -w "$device" ] || vs_die "cannot open $device: add yourself to the 'video' group (sudo adduser \$USER video) and log in again."
  gst-inspect-1.0 v4l2src >/dev/null 2>&1 || vs_die "no v4l2src element: install gstreamer1.0-plugins-good."
  source=(v4l2src device="$device")
fi

vs_use_plugin
vs_embedder_for "$index"

overlay=(searchoverlay thumb-size="${THUMB:-64}" max-thumbs="$k" position="${POSITION:-bottom}" persist=true)
if [ -n "$dataset" ]; then overlay+=(dataset="$dataset"); fi

echo "searching ${SOURCE:-$device} live against $index; close the window or press Ctrl+C to stop"
# decodebin takes raw and Motion JPEG cameras alike.
exec gst-launch-1.0 "${source[@]}" ! decodebin ! videoconvert ! videoscale \
  ! "video/x-raw,width=${WIDTH:-640},height=${HEIGHT:-480}" \
  ! "${embedder[@]}" qos=true \
  ! faisssearch index="$index" k="$k" post-messages=false \
  ! videoconvert ! "${overlay[@]}" \
  ! videoconvert ! "${SINK:-autovideosink}" sync=true
