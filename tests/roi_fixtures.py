# SPDX-License-Identifier: LGPL-2.1-or-later
"""Frames with boxes drawn on them, as RGB buffers for an appsrc, for the
region tests; imports GStreamer with the GstVisualSearch typelib of the build
tree (VS_BUILD_DIR)."""
import os

import gi

gi.require_version("GIRepository", "2.0")
from gi.repository import GIRepository  # noqa: E402

META_DIR = os.path.join(os.environ.get("VS_BUILD_DIR", "build"), "gst-libs", "gst",
                        "visualsearch")
GIRepository.Repository.prepend_search_path(META_DIR)
GIRepository.Repository.prepend_library_path(META_DIR)
gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVisualSearch", "1.0")
from gi.repository import GLib, Gst, GstApp, GstVideo, GstVisualSearch  # noqa: E402,F401

import numpy as np  # noqa: E402

Gst.init(None)


def picture(width, height, seed):
    """A frame with coloured boxes drawn on a noisy background."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    for _ in range(6):
        x, y = rng.integers(0, width - 8), rng.integers(0, height - 8)
        w, h = rng.integers(8, width // 2), rng.integers(8, height // 2)
        img[y:y + h, x:x + w] = rng.integers(60, 255, 3, dtype=np.uint8)
    return img


def rgb_buffer(img, pts):
    """img as an RGB buffer, rows padded to 4 bytes as GStreamer lays them out."""
    height, width, _ = img.shape
    stride = (width * 3 + 3) & ~3
    rows = np.zeros((height, stride), dtype=np.uint8)
    rows[:, :width * 3] = img.reshape(height, width * 3)
    buf = Gst.Buffer.new_wrapped(rows.tobytes())
    buf.pts = pts
    buf.duration = Gst.SECOND // 30
    return buf


def caps_of(img):
    height, width, _ = img.shape
    return Gst.Caps.from_string(
        f"video/x-raw,format=RGB,width={width},height={height},framerate=30/1")
