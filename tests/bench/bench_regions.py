#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Per-region embedding against the whole-frame path, 640x480.

    /usr/bin/python3 tests/bench/bench_regions.py [BUILD_DIR] [--frames N] [--batch B]

Pushes N 640x480 RGB frames through `appsrc ! embedder ! fakesink` (resnet18,
random weights, torchvision's preprocessing, fp32, threads=2): once whole
frames, then with roi-types=* and 1, 5 and 20 ROI metas per frame (boxes of
64x64 to 200x200, as a detector gives them). Prints frames/s and regions/s
after a warm-up of one batch. Figures only, no assertions: the machine may be
shared (the load average is printed).
"""
import argparse
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

W, H = 640, 480


def boxes(n, rng):
    out = []
    for _ in range(n):
        side = int(rng.integers(64, 200))
        out.append((int(rng.integers(0, W - side)), int(rng.integers(0, H - side)), side, side))
    return out


def rate(frames, regions, batch):
    """Frames/s of the embedder over frames, each with `regions` ROI metas
    (0: the whole-frame path), timed after the first batch."""
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (H, W * 3), dtype=np.uint8).tobytes()
    roi = "roi-types=* roi-min-size=1" if regions else ""
    pipeline = Gst.parse_launch(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=640,height=480,"
        f"framerate=30/1 ! embedder name=e model=resnet18 weights=random precision=fp32 "
        f"threads=2 batch-size={batch} {roi} ! fakesink name=sink sync=false signal-handoffs=true")
    src, sink = pipeline.get_by_name("src"), pipeline.get_by_name("sink")
    seen = []
    sink.connect("handoff", lambda *_: seen.append(time.perf_counter()))
    pipeline.set_state(Gst.State.PLAYING)
    warm = max(1, batch if not regions else -(-batch // regions))
    for i in range(frames + warm):
        buf = Gst.Buffer.new_wrapped(data)
        buf.pts = i * Gst.SECOND // 30
        for x, y, w, h in boxes(regions, rng):
            GstVideo.buffer_add_video_region_of_interest_meta(buf, "object", x, y, w, h)
        src.emit("push-buffer", buf)
    src.emit("end-of-stream")
    msg = pipeline.get_bus().timed_pop_filtered(600 * Gst.SECOND,
                                               Gst.MessageType.EOS | Gst.MessageType.ERROR)
    embedded = pipeline.get_by_name("e").get_property(
        "regions-embedded" if regions else "frames-embedded")
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS or len(seen) < warm + 2:
        raise RuntimeError(f"the pipeline did not finish: {msg}")
    span = seen[-1] - seen[warm - 1]
    return (len(seen) - warm) / span, embedded


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    os.environ["GST_PLUGIN_PATH_1_0"] = os.path.join(os.path.abspath(args.build), "ext",
                                                     "visualsearch")
    Gst.init(None)
    print(cpu.describe(), flush=True)
    print(f"640x480 RGB, resnet18 fp32 at 224 (resize 256), batch-size={args.batch}, "
          f"{args.frames} frames")
    print("%-22s %10s %11s %10s" % ("path", "frames/s", "regions/s", "embedded"))
    whole = None
    for regions in (0, 1, 5, 20):
        fps, embedded = rate(args.frames, regions, args.batch)
        whole = whole or fps
        print("%-22s %10.1f %11s %10d" % ("whole frame" if regions == 0 else
                                          f"roi-types=*, {regions}/frame", fps,
                                          "-" if regions == 0 else "%.1f" % (fps * regions),
                                          embedded), flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(other work on the machine lowers every figure)")


if __name__ == "__main__":
    main()
