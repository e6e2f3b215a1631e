#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Where the embedder's oneDNN path spends its time, per primitive.

    nice /usr/bin/python3 tests/bench/profile_onednn.py [BUILD_DIR] [--arch A] [--repeat N]
        [--kernels onednn|aten]

Runs tests/embed-tensor on one random (16, 3, 224, 224) batch N times with
ONEDNN_VERBOSE=1, 2 threads, and reads oneDNN's own execution times: for each
primitive of the network, the median of its runs after the first batch (the
weights' one-off reorders are left out). Prints the time by kind (convolutions by their fused
post-ops, pooling, reorders) and each convolution shape's time, share and
GFLOP/s. --kernels aten profiles the ATen path instead (VISUALSEARCH_FP32_KERNELS):
its oneDNN calls (convolutions, ReLUs, adds, pooling) show the same way, ATen's
own ops (the final mean) do not. Figures only; the machine may be shared.
"""
import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

BATCH, SIZE = 16, 224


def conv_flop(problem):
    v = {k: int(x) for k, x in re.findall(r"([a-z]+)(\d+)", problem)}
    return 2 * v["mb"] * v["ic"] * v["oc"] * v["oh"] * v["ow"] * v["kh"] * v["kw"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kernels", choices=["onednn", "aten"], default="onednn")
    args = parser.parse_args()
    print(cpu.describe(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        x = os.path.join(tmp, "in.f32")
        np.random.default_rng(0).standard_normal((BATCH, 3, SIZE, SIZE), dtype=np.float32).tofile(x)
        res = subprocess.run(
            [os.path.join(args.build, "tests", "embed-tensor"), x, str(BATCH), str(SIZE),
             str(SIZE), os.path.join(tmp, "out.f32"), f"model={args.arch}", "weights=random",
             "threads=2", f"repeat={args.repeat}"],
            capture_output=True, text=True,
            env=dict(os.environ, ONEDNN_VERBOSE="1", VISUALSEARCH_FP32_KERNELS=args.kernels))
    if res.returncode != 0:
        sys.exit(res.stderr)
    kernels = [line for line in res.stdout.splitlines() if line.startswith("kernels=")]
    print(kernels[0] if kernels else "kernels=?")
    # exec,cpu,KIND,IMPL,PROP,MDS,ATTRS,AUX,PROBLEM,MS
    lines = []
    for line in res.stdout.splitlines():
        f = line.split(",")
        if len(f) >= 11 and f[0] == "onednn_verbose" and f[1] == "exec":
            lines.append(((f[3], f[4], f[7].strip(), f[9]), float(f[10])))
    # Each batch runs the same sequence of primitives: the shortest period of
    # the log's tail. The first batch (and the weights' reorders before it)
    # is left out; each step counts with its median over the others.
    keys = [k for k, _ in lines]
    period = next((n for n in range(1, len(keys) // 2 + 1)
                   if keys[-n:] == keys[-2 * n:-n]), 0)
    batches = min(args.repeat - 1, len(keys) // period if period else 0)
    if args.repeat < 2 or batches < 1:
        sys.exit("need --repeat 2 or more, and a log that repeats")
    per_batch = collections.Counter()
    runs = collections.Counter()
    order = []
    for i in range(period):
        key = keys[len(keys) - period + i]
        times = [lines[len(lines) - (b + 1) * period + i][1] for b in range(batches)]
        if key not in runs:
            order.append(key)
        per_batch[key] += statistics.median(times)
        runs[key] += 1
    total = sum(per_batch.values())
    print(f"{args.arch} b{BATCH} @{SIZE}: {total:.1f} ms per batch in oneDNN primitives "
          f"({1000 * BATCH / total:.1f} img/s if nothing else ran)")
    by_kind = collections.Counter()
    for (kind, impl, attrs, problem), ms in per_batch.items():
        post = re.search(r"attr-post-ops:(\S+)", attrs)
        by_kind[f"{kind} {impl}" + (f" +{post.group(1)}" if post else "")] += ms
    print("%-52s %9s %6s" % ("kind (impl, fused post-ops)", "ms", "share"))
    for kind, ms in by_kind.most_common():
        print("%-52s %9.1f %5.1f%%" % (kind, ms, 100 * ms / total))
    print("%-62s %8s %6s %8s" % ("convolution (+ fused post-ops)", "ms", "share", "GFLOP/s"))
    for key in order:
        if key[0] != "convolution" or key not in per_batch:
            continue
        ms = per_batch[key]
        count = runs[key]
        post = re.search(r"attr-post-ops:(\S+)", key[2])
        print("%-62s %8.2f %5.1f%% %8.1f" % (
            (key[3] + (" +" + post.group(1) if post else ""))[:62], ms, 100 * ms / total,
            conv_flop(key[3]) * count / ms / 1e6))


if __name__ == "__main__":
    main()
