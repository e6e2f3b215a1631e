#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A tiny TorchScript embedding model for tests that need an index built by a
TorchScript model: one strided convolution, flattened, so that every 32x32
input gives its own 512-dimensional embedding (random images find
themselves first) in milliseconds.

Usage: torchscript_fixtures.py OUT.pt SEED

write_tiny_torchscript() runs this in a child process: a process that has
imported torch cannot catch the C++ exceptions of the embedder's engine
module, so a test that loads the plugin must not import torch itself.
"""
import subprocess
import sys


def write_tiny_torchscript(path, seed):
    """Saves the model, its weights drawn from `seed`, as TorchScript at path."""
    subprocess.run([sys.executable, __file__, path, str(seed)], check=True, timeout=120)


def main(path, seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.Flatten(1)).eval()
    torch.jit.script(model).save(path)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
