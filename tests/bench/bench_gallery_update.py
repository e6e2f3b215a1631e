#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Incremental gallery update: the whole process that finds a gallery of small
generated JPEGs unchanged, against the first build of it.

    /usr/bin/python3 tests/bench/bench_gallery_update.py [BUILD_DIR] [--files N] [--runs R]

Writes N (default 5,000) 64x48 JPEGs in 50 folders, builds the index once
(galleryindexer, random resnet18 weights at input size 32), then times R
updates of the unchanged tree (gst-launch-1.0 -e galleryindexer ..., wall time
and peak RSS by /usr/bin/time, warm page cache), and one update after 1% of
the files were touched. The target of an unchanged update is under 2 s for
5,000 files. Figures only.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

EMBEDDER = ["weights=random", "input-size=32", "resize=0", "batch-size=64"]


def timed(argv, env):
    res = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + argv, env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(" ".join(argv) + ": " + res.stdout + res.stderr)
    wall, rss = res.stderr.strip().splitlines()[-1].split()
    summary = [line for line in res.stdout.splitlines() if "files: added" in line]
    return float(wall), int(rss) / 1024, summary[-1].split("; ", 1)[-1] if summary else ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ,
               GST_PLUGIN_PATH=os.path.abspath(os.path.join(args.build, "ext", "visualsearch")))
    print(cpu.describe())

    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "gallery")
        rng = np.random.default_rng(1)
        paths = []
        for i in range(args.files):
            folder = os.path.join(tree, f"class{i % 50:02d}")
            os.makedirs(folder, exist_ok=True)
            paths.append(os.path.join(folder, f"{i:05d}.jpg"))
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
                paths[-1], "JPEG", quality=80)
        index = os.path.join(tmp, "gallery.faiss")
        launch = ["gst-launch-1.0", "-e", "galleryindexer", f"location={tree}",
                  f"index={index}", *EMBEDDER]

        wall, rss, summary = timed(launch, env)
        print(f"first build of {args.files} files: {wall:.2f} s, peak RSS {rss:.0f} MB "
              f"({summary})")
        walls, rsss = [], []
        for _ in range(args.runs):
            wall, rss, summary = timed(launch, env)
            walls.append(wall)
            rsss.append(rss)
        print(f"update, nothing changed: median {statistics.median(walls):.2f} s "
              f"(min {min(walls):.2f}, max {max(walls):.2f}, {args.runs} runs), "
              f"peak RSS {statistics.median(rsss):.0f} MB ({summary}); target < 2 s")
        for path in paths[::100]:
            os.utime(path)
        wall, rss, summary = timed(launch, env)
        print(f"update, {len(paths[::100])} files touched: {wall:.2f} s ({summary})")
        wall, _, _ = timed(["gst-launch-1.0", "-q", "fakesrc", "num-buffers=1", "!",
                            "fakesink"], env)
        print(f"for scale, gst-launch-1.0 fakesrc ! fakesink: {wall:.2f} s")


if __name__ == "__main__":
    main()
