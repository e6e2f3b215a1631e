#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs every system package visualsearch needs on Debian 12 (bookworm).
# Skips apt entirely when everything is already there.
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config curl
  libglib2.0-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  libtorch-dev
  # oneDNN's headers: fp32 ResNets run through its primitives (the library LibTorch links).
  libdnnl-dev
  libfaiss-dev
  libopenblas0-pthread libopenblas-pthread-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libsqlite3-dev sqlite3
  python3-torch python3-torchvision python3-faiss python3-numpy
  python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  gobject-introspection libgirepository1.0-dev
  python3-matplotlib python3-pil python3-sklearn
  # tools/dask-index.py and its test: a Dask scheduler and workers (dask-scheduler, dask-worker).
  python3-distributed
  libsoup-3.0-dev
  # json-glib: every JSON document the server and retrievaleval write (json/).
  libjson-glib-dev
  # metapublish's method=mqtt (libmosquitto); the broker, clients and openssl
  # (a test CA for TLS) for its tests.
  mosquitto libmosquitto-dev mosquitto-clients openssl
  chromium chromium-driver python3-selenium
  # Region tests: facedetect (an upstream detector that attaches ROI metas)
  # with its cascades, and a photograph with a face (imageio's astronaut.png).
  gstreamer1.0-opencv opencv-data python3-imageio
  clang-format-14
)

# npm: models/fetch-detectors.sh, and @tensorflow/tfjs for the tfjs-parity test.
# Debian's nodejs and npm, unless a node that brings its own npm is installed
# (nodesource's nodejs provides npm and conflicts with Debian's).
if ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
