#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The edge side of many cameras into one view: a camera's frames are
# searched against a local copy of the gallery's index and every frame's
# neighbours are published to an MQTT broker, where visualsearch-server
# --subscribe (or any MQTT client) reads them.
#
#   pipelines/publish-camera.sh INDEX BROKER [--device DEV] [-k K]
#
#   INDEX          a local copy of the index (and its INDEX.db catalog) the
#                  server serves; the frames are embedded exactly as the
#                  gallery was (embedder index=INDEX)
#   BROKER         the broker, HOST[:PORT] (port 1883 by default)
#   --device DEV   the V4L2 camera (default /dev/video0, or $DEVICE)
#   -k K           neighbours per frame (default 5, or $K)
#
# Environment: SOURCE_NAME (the camera's name in each result and on the
# server's Cameras tab; default the host name), TOPIC (default
# cameras/%s/results, %s being SOURCE_NAME; the server then subscribes to
# mqtt://BROKER/cameras/+/results), QOS=0, MQTT_USERNAME and MQTT_PASSWORD
# (a broker with logins), CAMERA (a gst-launch source instead of the camera,
# e.g. CAMERA="videotestsrc is-live=true", or "videotestsrc num-buffers=50"
# to stop after 50 frames), WIDTH=640 HEIGHT=480 (the frame size searched),
# INTERVAL=1 (embed every Nth frame), PRECISION, BUILD_DIR=build, and MODEL
# or WEIGHTS when the TorchScript or weights file of the index has moved.
# A broker that is not up yet, or that goes away, is a warning: metapublish
# tries again (every 1 to 30 s) and keeps the newest results meanwhile
# (max-queued).
# Without a camera it stops at once with a message and exit status 1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

dataset="" out="" device=${DEVICE:-/dev/video0} k=${K:-5}
vs_parse_args 2 "$@"
index=${positional[0]}
broker=${positional[1]}
[ -z "$dataset$out" ] || vs_die "--dataset and --out are not for this script: it shows nothing, it publishes (see --help)."

[ -f "$index" ] || vs_die "no index at $index: copy the server's index and its $index.db catalog here, or build one with pipelines/index-folder.sh."
[[ "$broker" =~ ^[^/:@]+(:[0-9]+)?$ ]] || vs_die "BROKER is HOST or HOST:PORT (e.g. 127.0.0.1:1883), not '$broker'."

if [ -n "${CAMERA:-}" ]; then
  read -r -a camera <<<"$CAMERA"
else
  if [ ! -c "$device" ]; then
    vs_die "no camera at $device. Plug one in, or name it with --device /dev/videoN (ls /dev/video* lists them). Without a camera, try CAMERA=\"videotestsrc is-live=true\" $0 $index $broker."
  fi
  [ -r "$device" ] && [ -w "$device" ] || vs_die "cannot open $device: add yourself to the 'video' group (sudo adduser \$USER video) and log in again."
  gst-inspect-1.0 v4l2src >/dev/null 2>&1 || vs_die "no v4l2src element: install gstreamer1.0-plugins-good."
  camera=(v4l2src device="$device")
fi

vs_use_plugin metapublish
vs_embedder_for "$index"

name=${SOURCE_NAME:-$(hostname)}
publish=(metapublish method=mqtt address="$broker" topic="${TOPIC:-cameras/%s/results}"
         source-name="$name" qos="${QOS:-0}")
if [ -n "${MQTT_USERNAME:-}" ]; then publish+=(username="$MQTT_USERNAME"); fi
if [ -n "${MQTT_PASSWORD:-}" ]; then publish+=(password="$MQTT_PASSWORD"); fi

echo "publishing the matches of ${CAMERA:-$device} as '$name' to $broker; Ctrl+C to stop"
# decodebin takes raw and Motion JPEG cameras alike; the leaky queue drops
# frames the model cannot keep up with instead of delaying the next ones.
exec gst-launch-1.0 "${camera[@]}" ! decodebin ! videoconvert ! videoscale \
  ! "video/x-raw,width=${WIDTH:-640},height=${HEIGHT:-480}" \
  ! queue leaky=downstream max-size-buffers=2 \
  ! "${embedder[@]}" \
  ! faisssearch index="$index" k="$k" post-messages=false \
  ! "${publish[@]}" ! fakesink sync=false
