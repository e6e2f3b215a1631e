#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Start-up: what loading the plugin adds to a pipeline, and the embedder's own start.

    /usr/bin/python3 tests/bench/bench_startup.py [BUILD_DIR] [--runs N]

Each command runs as a whole process (gst-launch-1.0 -q, warm registry and page
cache), alternately with the reference, N times; medians of wall time and peak
RSS (/usr/bin/time) are printed side by side. The reference is the same
pipeline with GStreamer's own elements only: the difference is what loading
visualsearch costs. The embedder rows add the model load (engine module,
LibTorch, random resnet18 weights), reported separately. Figures only.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

REFERENCE = "videotestsrc num-buffers=1 ! videoconvert ! fakesink"
CASES = [
    ("searchoverlay (plugin loaded)", "videotestsrc num-buffers=1 ! searchoverlay ! fakesink"),
    ("gst-inspect-1.0 faisssearch", None),
    ("embedder start (model load)",
     "videotestsrc num-buffers=1 ! embedder weights=random ! fakesink"),
]


def timed(argv, env):
    res = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + argv, env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(" ".join(argv) + ": " + res.stderr)
    wall, rss = res.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(cpu.describe())
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(os.path.abspath(args.build),
                                                                "ext", "visualsearch"),
                   GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"))
        subprocess.run(["gst-inspect-1.0", "visualsearch"], env=env, capture_output=True)
        launch = lambda desc: ["gst-launch-1.0", "-q"] + desc.split()  # noqa: E731
        print("%-32s %10s %10s %10s %9s %9s" % ("command", "wall s", "ref wall s", "added s",
                                               "peak MiB", "ref MiB"))
        for name, desc in CASES:
            # Inspecting an element loads its plugin (the plugin's own page comes
            # from the registry cache without loading anything).
            argv = launch(desc) if desc else ["gst-inspect-1.0", "faisssearch"]
            ref_argv = launch(REFERENCE) if desc else ["gst-inspect-1.0", "identity"]
            ours, ref = [], []
            timed(argv, env)
            for _ in range(args.runs):
                ours.append(timed(argv, env))
                ref.append(timed(ref_argv, env))
            wall = statistics.median(w for w, _ in ours)
            ref_wall = statistics.median(w for w, _ in ref)
            print("%-32s %10.3f %10.3f %10.3f %9.1f %9.1f" % (
                name, wall, ref_wall, wall - ref_wall, statistics.median(m for _, m in ours),
                statistics.median(m for _, m in ref)), flush=True)
    print(f"medians of {args.runs} alternating runs; reference: '{REFERENCE}' "
          "(gst-inspect-1.0 identity for the inspect row); target: added <= 0.1 s "
          "without an embedder")


if __name__ == "__main__":
    main()
