# SPDX-License-Identifier: LGPL-2.1-or-later
"""fp32 ResNets through oneDNN's primitives (fused ReLU and residual adds) give
what ATen's ops give: cosine >= 0.99999 per image for resnet18 and resnet50,
batches of 1 and 3, inputs 32x32, 224x224, 160x224 and 97x61, then 32x32
again (its primitives now run in buffers that grew for the larger inputs).

    test_fp32_kernels.py FP32_KERNELS

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

FP32_KERNELS = sys.argv[1]
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
finish()
