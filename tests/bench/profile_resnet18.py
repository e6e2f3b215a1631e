#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Where fp32 resnet18 at 224, batch 16, spends its time on this CPU.

    nice /usr/bin/python3 tests/bench/profile_resnet18.py [--repeat N]

Runs, in Python, the same LibTorch ops as engine/model/resnet.cpp: batch norms
folded into the convolutions, weights reordered once for oneDNN, activations
as oneDNN tensors, relu_/add_ after the convolutions, 2 threads. Prints the
torch profiler's share of each op, then each convolution's best time of N,
its share of the time and of the FLOPs, and its GFLOP/s (against the peak
that bench_fp32_peak.py measures). Figures only; the machine may be shared.
"""
import argparse
import os
import sys
import time

import torch
import torchvision
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.profiler import profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

BATCH = 16


class Conv:
    def __init__(self, name, conv, bn):
        f = fuse_conv_bn_eval(conv, bn)
        self.name, self.padding, self.stride = name, list(f.padding), list(f.stride)
        self.weight = torch._C._nn.mkldnn_reorder_conv2d_weight(
            f.weight.detach().to_mkldnn(), self.padding, self.stride, [1, 1], 1)
        self.bias = f.bias.detach().to_mkldnn()
        self.shape = (f.in_channels, f.out_channels, f.kernel_size[0])
        self.seconds, self.flop = [], 0

    def __call__(self, x, timed=False):
        run = lambda: torch.mkldnn_convolution(x, self.weight, self.bias, self.padding,  # noqa: E731
                                               self.stride, [1, 1], 1)
        if not timed:
            return run()
        start = time.perf_counter()
        y = run()
        self.seconds.append(time.perf_counter() - start)
        cin, cout, k = self.shape
        self.flop = 2 * BATCH * cout * cin * k * k * y.size(2) * y.size(3)
        self.out_hw = y.size(2)
        return y


def build():
    m = torchvision.models.resnet18(weights=None).eval()
    stem = Conv("stem", m.conv1, m.bn1)
    blocks = []
    for li, layer in enumerate((m.layer1, m.layer2, m.layer3, m.layer4)):
        for bi, b in enumerate(layer):
            p = f"layer{li + 1}.{bi}."
            ds = Conv(p + "downsample", b.downsample[0], b.downsample[1]) if b.downsample else None
            blocks.append((Conv(p + "conv1", b.conv1, b.bn1), Conv(p + "conv2", b.conv2, b.bn2),
                           ds))
    return stem, blocks


def forward(stem, blocks, x, timed=False):
    x = stem(x.to_mkldnn(), timed).relu_()
    x = torch.max_pool2d(x, 3, 2, 1)
    for c1, c2, ds in blocks:
        identity = ds(x, timed) if ds else x
        out = c2(c1(x, timed).relu_(), timed)
        x = out.add_(identity).relu_()
    return x.to_dense().mean((2, 3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(cpu.describe(), flush=True)
    stem, blocks = build()
    convs = [stem] + [c for b in blocks for c in b if c]
    x = torch.randn(BATCH, 3, 224, 224)
    with torch.no_grad():
        forward(stem, blocks, x)
        with profile() as prof:
            forward(stem, blocks, x)
        for _ in range(args.repeat):
            forward(stem, blocks, x, timed=True)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    total_s = sum(min(c.seconds) for c in convs)
    total_flop = sum(c.flop for c in convs)
    print("%-22s %-16s %9s %7s %7s %9s" % ("convolution", "shape", "best ms", "%time", "%flop",
                                            "GFLOP/s"))
    for c in convs:
        cin, cout, k = c.shape
        s = min(c.seconds)
        print("%-22s %-16s %9.1f %6.1f%% %6.1f%% %9.1f" % (
            c.name, f"{k}x{k} {cin}>{cout} @{c.out_hw}", s * 1e3, 100 * s / total_s,
            100 * c.flop / total_flop, c.flop / s / 1e9))
    print(f"convolutions alone: {total_flop / total_s / 1e9:.1f} GFLOP/s, "
          f"{BATCH / total_s:.1f} img/s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
