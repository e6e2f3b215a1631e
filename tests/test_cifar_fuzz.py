#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""CifarDataset on mutated CIFAR files: deterministic (fixed seeds), every
python pickle style and the binary format, batches and label name files.

Each mutation overwrites 1-4 bytes, cuts the file short, inserts or removes
1-16 bytes; cifar_probe opens the dataset strict and not strict. Every open
must end in a vs::Error (refused) or a consistent dataset (loaded): a crash or
an exception of another kind kills the probe, a hang trips the timeout.

Usage: test_cifar_fuzz.py PATH/TO/cifar_probe
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cifar_fixtures as fx  # noqa: E402
from checks import check, finish  # noqa: E402

PROBE = sys.argv[1]
MUTATIONS = 450  # per target file

TARGETS = [  # (dataset directory, file mutated in it)
    ("cifar-10-batches-py", "data_batch_1"),   # python 2 pickles, as the official files
    ("cifar-10-batches-py", "batches.meta"),
    ("cifar10-py3", "data_batch_2"),           # protocol 2, pixels as latin-1 text
    ("cifar10-p5", "test_batch"),              # protocol 5, frames and _frombuffer
    ("cifar-100-python", "train"),
    ("cifar-10-batches-bin", "data_batch_1.bin"),
    ("cifar-10-batches-bin", "batches.meta.txt"),
]

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    fx.main(data)
    totals = [0, 0, 0]
    for seed, (directory, name) in enumerate(TARGETS, start=1):
        what = f"{directory}/{name}"
        try:
            r = subprocess.run([PROBE, "fuzz", os.path.join(data, directory), name,
                                os.path.join(tmp, "scratch"), str(MUTATIONS), str(seed)],
                               capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired:
            check(False, f"{what}: the reader hung on a mutated file")
            continue
        if not check(r.returncode == 0, f"{what}: cifar_probe died ({r.returncode}): "
                                        f"{r.stdout[-300:]} {r.stderr[-500:]}"):
            continue
        counts = [int(x) for x in r.stdout.split()[1:4]]
        totals = [a + b for a, b in zip(totals, counts)]
        check(counts[0] == 2 * MUTATIONS and counts[1] + counts[2] == counts[0],
              f"{what}: counts add up: {r.stdout}")
        print(f"{what}: {counts[0]} tried, {counts[1]} refused, {counts[2]} loaded")
    print(f"all: {totals[0]} tried, {totals[1]} refused, {totals[2]} loaded, "
          "no crash, no hang")
finish()
