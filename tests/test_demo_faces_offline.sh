#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# pipelines/demo-faces.sh on a machine without network and without the face
# embedder: an empty home and cache, the weights download pointed at a closed
# port. It must assemble its folder from Debian-packaged photos and a video,
# index one item per face (the photo's and the video's frames, boxes as
# xywh), fall back to random weights saying so and naming
# models/fetch-detectors.sh faceres, and leave an AVI and a PNG with the face
# boxes drawn; a CAMERA that is not there is refused at once. Skipped (77) without facedetect or astronaut.png.
set -euo pipefail
: "${VS_SOURCE_DIR:?}" "${VS_BUILD_DIR:?}"
source "$VS_SOURCE_DIR/tests/local_servers.sh"
PY=/usr/bin/python3
ASTRONAUT=/usr/lib/python3/dist-packages/imageio/resources/images/astronaut.png
if ! gst-inspect-1.0 facedetect >/dev/null 2>&1 || [ ! -f "$ASTRONAUT" ]; then
  echo "SKIP: needs facedetect (gstreamer1.0-opencv, opencv-data) and astronaut.png (python3-imageio): scripts/install-deps.sh"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$work/home"

status=0
env -i PATH="$PATH" HOME="$work/home" BUILD_DIR="$VS_BUILD_DIR" OUT_DIR="$work/out" \
  VS_WEIGHTS_BASE_URL="http://127.0.0.1:$(closed_port)" \
  "$VS_SOURCE_DIR/pipelines/demo-faces.sh" >"$work/out.log" 2>&1 || status=$?
cat "$work/out.log"
[ "$status" -eq 0 ] || fail "demo-faces.sh exited with $status"
log=$(cat "$work/out.log")
for said in "no faceres in" "models/fetch-detectors.sh faceres" "RANDOM WEIGHTS" "not meaningful"; do
  grep -qF "$said" <<<"$log" || fail "the output does not say: $said"
done

$PY - "$work/out" <<'PY'
import os, re, sqlite3, struct, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
def fail(what):
    sys.exit(f"FAIL: {what}")

db = sqlite3.connect(os.path.join(out, "faces.faiss.db"))
sources = [s for s, in db.execute("SELECT source FROM items")]
model, = db.execute("SELECT model_id FROM index_facts").fetchone()
if not model.endswith(":random-seed42"):
    fail(f"the index was built by {model}, not the random-weight fallback")
if not any(re.fullmatch(r"astronaut\.png#xywh=\d+,\d+,\d+,\d+", s) for s in sources):
    fail(f"no face of astronaut.png in the index: {sources}")
if not any(re.fullmatch(r"slideshow\.avi#t=[\d.]+&xywh=\d+,\d+,\d+,\d+", s) for s in sources):
    fail(f"no face of the video in the index: {sources}")
if not all("xywh=" in s for s in sources):
    fail(f"an item that is not a region: {sources}")

with open(os.path.join(out, "search-faces.avi"), "rb") as f:
    head = f.read(64)
if head[:4] != b"RIFF" or head[8:12] != b"AVI " or struct.unpack_from("<I", head, 48)[0] < 4:
    fail("search-faces.avi is not an AVI of the searched frames")
# The box is outlined in green around the mirrored face (x 240, y 64, 97 wide).
pic = np.asarray(Image.open(os.path.join(out, "search-faces.png")).convert("RGB")).astype(int)
green = (abs(pic - (40, 220, 90)).max(axis=2) < 24)  # searchoverlay's box colour
if green[40:180, 220:360].sum() < 200:
    fail(f"no green box around the face in search-faces.png ({green.sum()} green pixels)")
print(f"{len(sources)} faces indexed: {sources}")
PY
# A camera that is not there is refused before any work.
status=0
env -i PATH="$PATH" HOME="$work/home" BUILD_DIR="$VS_BUILD_DIR" OUT_DIR="$work/out2" \
  CAMERA=/dev/no-such-camera "$VS_SOURCE_DIR/pipelines/demo-faces.sh" >"$work/cam.log" 2>&1 || status=$?
[ "$status" -ne 0 ] && grep -qF "CAMERA=/dev/no-such-camera is not a camera device" "$work/cam.log" \
  && ! grep -qF "1/4" "$work/cam.log" || fail "a missing CAMERA is not refused at once: $(cat "$work/cam.log")"
echo "PASS: demo-faces.sh offline indexes the faces of its photos and video, says the weights are random, and leaves the video and the picture"
