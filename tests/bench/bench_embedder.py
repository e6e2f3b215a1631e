#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Images per second of embedder against torchvision, in the same run.

    /usr/bin/python3 tests/bench/bench_embedder.py [BUILD_DIR] [--seconds S]

Ours is measured through the element: tests/embedder_run.py pushes
input-size x input-size RGB frames through `appsrc ! embedder resize=0 ... !
appsink` (so preprocessing is only the uint8 -> normalised float conversion),
after a warm-up round. torchvision runs the same architecture (random
weights, classifier removed) on a ready float batch with
torch.set_num_threads(2): its default NCHW fp32 path, and bf16 autocast in
channels-last. Figures only, no assertions: the machine may be shared.
The first line names the CPU. On a CPU without native bf16 the bf16 columns
say n/a: our precision=bf16 runs as fp32 there, and torchvision's emulated
bf16 is two orders of magnitude slower than its fp32 (0.3 against 20 img/s,
resnet18 @224 b16 on an AMD EPYC with AVX2 only).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIGS = [("resnet18", 224, 1), ("resnet18", 224, 16), ("resnet50", 224, 1),
           ("resnet50", 224, 16), ("resnet18", 32, 256)]


def torchvision_rate(arch, size, batch, bf16, seconds):
    model = getattr(torchvision.models, arch)(weights=None)
    model.fc = torch.nn.Identity()
    model.eval()
    x = torch.randn(batch, 3, size, size)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(x)
        done, start = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - start < seconds:
            model(x)
            done += batch
        return done / (time.perf_counter() - start)


def our_rate(build, arch, size, batch, precision, expected_rate, seconds, tmp, extra="",
             kernels=None, with_precision=False):
    """extra: more embedder properties; kernels: "aten" runs fp32 ResNets on
    ATen's ops rather than oneDNN's primitives (VISUALSEARCH_FP32_KERNELS);
    None, the embedder's default. with_precision: returns (rate, the
    embedder's active-precision). precision=auto measures afresh: its cache
    lives in TMP."""
    # The file holds whole batches (at most ~16 MB); it is pushed once to load
    # and warm up, untimed, then as often as the time budget wants.
    frame_bytes = size * size * 3
    target = max(2 * batch, 8, int(expected_rate * seconds))
    n_file = batch * max(1, min(target, (16 << 20) // frame_bytes) // batch)
    repeat = 1 + max(1, -(-target // n_file))
    frames = os.path.join(tmp, f"frames-{size}.raw")
    np.random.default_rng(0).integers(0, 256, (n_file, size, size, 3),
                                      dtype=np.uint8).tofile(frames)
    res = subprocess.run(
        [sys.executable, os.path.join(TESTS, "embedder_run.py"),
         f"video/x-raw,format=RGB,width={size},height={size},framerate=30/1", frames,
         os.path.join(tmp, "out.bin"), "meta",
         f"embedder model={arch} weights=random input-size={size} resize=0 threads=2 "
         f"batch-size={batch} precision={precision} {extra}", str(repeat)],
        capture_output=True, text=True,
        env=dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(build, "ext", "visualsearch"),
                 VS_BUILD_DIR=os.path.abspath(build),
                 GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"),
                 XDG_CACHE_HOME=os.path.join(tmp, "cache"),
                 **({"VISUALSEARCH_FP32_KERNELS": kernels} if kernels else {})))
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    info = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    if with_precision:
        return float(info["images_per_s"]), info.get("active_precision", "?")
    return float(info["images_per_s"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--seconds", type=float, default=6.0, help="time budget per figure")
    parser.add_argument("--configs", default=",".join("%s:%d:%d" % c for c in CONFIGS),
                        help="comma-separated ARCH:SIZE:BATCH (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    print(cpu.describe(), flush=True)
    bf16 = cpu.native_bf16()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        configs = [(a, int(s), int(b)) for a, s, b in
                   (c.split(":") for c in args.configs.split(","))]
        for arch, size, batch in configs:
            tv32 = torchvision_rate(arch, size, batch, False, args.seconds)
            ours32 = our_rate(args.build, arch, size, batch, "fp32", tv32, args.seconds, tmp)
            tv16 = ours16 = None
            if bf16:
                tv16 = torchvision_rate(arch, size, batch, True, args.seconds)
                ours16 = our_rate(args.build, arch, size, batch, "bf16", tv16, args.seconds, tmp)
            auto = our_rate(args.build, arch, size, batch, "auto", ours32, args.seconds, tmp,
                            with_precision=True)
            rows.append((f"{arch} @{size} b{batch}", tv32, tv16, ours32, ours16, auto))
            print(f"  measured {rows[-1][0]}", file=sys.stderr, flush=True)

    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(other work on the machine lowers every figure)")
    head = ("config", "tv fp32", "tv bf16 CL", "ours fp32", "ours bf16", "ours auto",
            "fp32/tv32", "bf16/tv32", "bf16/tvbf16", "bf16/fp32", "auto/best")
    print("%-20s %9s %10s %9s %9s %14s %9s %9s %11s %9s %9s" % head)
    na = "n/a"
    for name, tv32, tv16, o32, o16, (oauto, picked) in rows:
        best = max(o32, o16 or 0)
        print("%-20s %9.1f %10s %9.1f %9s %14s %8.2fx %9s %11s %9s %8.2fx"
              % (name, tv32, na if tv16 is None else "%.1f" % tv16, o32,
                 na if o16 is None else "%.1f" % o16, "%.1f (%s)" % (oauto, picked),
                 o32 / tv32, na if o16 is None else "%.2fx" % (o16 / tv32),
                 na if o16 is None else "%.2fx" % (o16 / tv16),
                 na if o16 is None else "%.2fx" % (o16 / o32), oauto / best))
    if not bf16:
        print("bf16 columns n/a: this CPU has no native bf16 (precision=bf16 runs as fp32)")
    print("targets: fp32 >= 1.2x tv fp32; bf16 >= 3.5x tv fp32; "
          "resnet18 @224 fp32 >= 68 img/s (60% of the ~114 img/s 2-core limit)")


if __name__ == "__main__":
    main()
