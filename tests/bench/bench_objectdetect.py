#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""objectdetect at 640x480: frames per second offline, and held live with QoS.

    /usr/bin/python3 tests/bench/bench_objectdetect.py [BUILD_DIR] [--model nanodet.pt]
                                                      [--frames 20] [--seconds 20]

Offline: videotestsrc num-buffers=N+3 ! 640x480 RGB ! objectdetect ! fakesink
sync=false; fps over the N frames after the first 3 (TorchScript's profiling
runs), timed where they reach the sink. Live: videotestsrc is-live=true at 30 fps
! objectdetect qos=true ! fakesink sync=true qos=true for S seconds: frames
delivered, frames detected and skipped by QoS. The model defaults to the
nanodet.pt of models/fetch-detectors.sh. Figures only, no assertions; the
first line names the CPU and the load.
"""
import argparse
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

CAPS = "video/x-raw,format=RGB,width=640,height=480,framerate=30/1"


def run(desc, timeout, arrivals=None):
    pipe = Gst.parse_launch(desc)
    det = pipe.get_by_name("det")
    if arrivals is not None:
        pad = pipe.get_by_name("sink").get_static_pad("sink")
        pad.add_probe(Gst.PadProbeType.BUFFER, lambda *a: arrivals.append(time.monotonic()) or Gst.PadProbeReturn.OK)
    bus = pipe.get_bus()
    t0 = time.monotonic()
    pipe.set_state(Gst.State.PLAYING)
    msg = bus.timed_pop_filtered(int(timeout * Gst.SECOND), Gst.MessageType.EOS | Gst.MessageType.ERROR)
    wall = time.monotonic() - t0
    if msg and msg.type == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        sys.exit(f"bench_objectdetect: {err.message} ({dbg})")
    stats = {p: det.get_property(p) for p in ("frames-processed", "frames-skipped", "detections",
                                               "mean-inference-ms")}
    pipe.set_state(Gst.State.NULL)
    return wall, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/visualsearch/models/nanodet.pt"))
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["GST_PLUGIN_PATH_1_0"] = os.path.join(os.path.abspath(args.build), "ext", "visualsearch")
    Gst.init(None)
    print(cpu.describe())
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    det = f"objectdetect name=det model={args.model} threads={args.threads}"
    n = args.frames
    arrivals = []
    wall, st = run(f"videotestsrc num-buffers={n + 3} pattern=ball ! {CAPS} ! {det} ! fakesink name=sink sync=false",
                   1200, arrivals)
    # the first frames include TorchScript's profiling runs: timed from the 4th on
    steady = (len(arrivals) - 3) / (arrivals[-1] - arrivals[2]) if len(arrivals) > 3 else 0
    print(f"offline 640x480: {n} frames after 3 warm-up frames at {steady:.2f} fps "
          f"({1000 / steady if steady else 0:.0f} ms per frame); all {n + 3} in {wall:.1f} s; "
          f"load {os.getloadavg()[0]:.2f}")
    desc = (f"videotestsrc is-live=true num-buffers={int(args.seconds * 30)} pattern=ball ! {CAPS} ! {det} qos=true "
            f"! fakesink sync=true qos=true")
    wall, st = run(desc, args.seconds * 3 + 60)
    print(f"live 30 fps for {wall:.1f} s with QoS: {st['frames-processed']} frames detected "
          f"({st['frames-processed'] / wall:.2f} fps), {st['frames-skipped']} passed undetected; "
          f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
