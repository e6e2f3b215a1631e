# SPDX-License-Identifier: LGPL-2.1-or-later
"""fp32 ResNets through oneDNN's primitives (fused ReLU and residual adds) give
what ATen's ops give: cosine >= 0.99999 per image for resnet18 and resnet50,
batches of 1 and 3, inputs 32x32, 224x224, 160x224 and 97x61, then 32x32
again (its primitives now run in buffers that grew for the larger inputs).
Where the CPU has native bf16 (and it is not hidden), the bf16 ResNets on
oneDNN's primitives too, each image within cosine 0.999 of ATen's fp32.

    test_fp32_kernels.py FP32_KERNELS EMBED_TENSOR

And the embedder's threads setting holds on the oneDNN path (oneDNN runs on
OpenMP, whose thread count the engine sets): its log says nthr:1 for threads=1
and nthr:2 for threads=2.

The checkpoints are made here with random batch norms, so that every folded
bias is non-zero (weights=random has zero biases) and a bias the oneDNN path
dropped would show. Skipped (77) on a build without libdnnl-dev.
"""
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
from model_fixtures import save_random_model  # noqa: E402

FP32_KERNELS, EMBED_TENSOR = sys.argv[1:3]
torch.set_num_threads(2)

with tempfile.TemporaryDirectory() as tmp:
    gen = torch.Generator().manual_seed(12)
    for arch in ["resnet18", "resnet50"]:
        path = os.path.join(tmp, f"{arch}.pth")
        save_random_model(arch, path, 12, gen)
        res = subprocess.run([FP32_KERNELS, arch, path], capture_output=True, text=True)
        print(res.stdout + res.stderr, end="", flush=True)
        if res.returncode == 77:
            sys.exit(77)
        check(res.returncode == 0, f"{arch}: oneDNN and ATen agree on every batch shape")

    x = os.path.join(tmp, "x.f32")
    torch.randn(1, 3, 32, 32).numpy().tofile(x)
    for threads in [1, 2]:
        res = subprocess.run(
            [EMBED_TENSOR, x, "1", "32", "32", os.path.join(tmp, "y.f32"), "model=resnet18",
             "weights=random", f"threads={threads}"],
            capture_output=True, text=True,
            env=dict(os.environ, ONEDNN_VERBOSE="1", VISUALSEARCH_FP32_KERNELS="onednn"))
        nthr = [line for line in res.stdout.splitlines() if ",nthr:" in line]
        check(res.returncode == 0 and "kernels=oneDNN" in res.stdout
              and nthr and nthr[0].endswith(f",nthr:{threads}"),
              f"threads={threads}: oneDNN runs on {threads} OpenMP thread(s)",
              nthr or res.stderr[-300:])
finish()
