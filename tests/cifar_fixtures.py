#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes small CIFAR-10/100 datasets in both official formats, plus broken ones.

Usage: cifar_fixtures.py OUTDIR

Pixels and labels follow formulas (pixel(), label() below) so that tests in any
language can check every byte without reading the files back themselves:
record `index` of split `split` has channel c, row y, column x equal to
pixel(dataset, split, index, c, y, x).

OUTDIR/
  cifar-10-batches-py    python 2 style pickles (BINSTRING bytes), as the official files
  cifar10-py3            python 3 pickles, protocol 2 (bytes as _codecs.encode)
  cifar10-p5             python 3 pickles, protocol 5 (numpy _frombuffer)
  cifar-10-batches-bin   binary
  cifar-100-python       python 2 style
  cifar-100-binary       binary
  broken/...             truncated, corrupt and incomplete copies
"""
import os
import pickle
import shutil
import struct
import sys

import numpy as np

TRAIN10 = [7, 5, 6, 4, 3]  # records per data_batch_N
TEST10 = 9
TRAIN100 = 12
TEST100 = 6
NAMES10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FINE100 = [f"fine{i:02d}" for i in range(100)]
COARSE100 = [f"coarse{i:02d}" for i in range(20)]


def pixel(dataset, split, index, c, y, x):
    return (index * 37 + c * 101 + y * 7 + x * 3 + (53 if split == "test" else 0)
            + (11 if dataset == "cifar100" else 0)) % 256


def label(dataset, split, index, kind="fine"):
    t = 1 if split == "test" else 0
    if dataset == "cifar10":
        return (index * 3 + t) % 10
    fine = (index * 7 + t * 3) % 100
    return fine if kind == "fine" else fine // 5


def images(dataset, split, first, count):
    """(count, 3072) uint8, planar R, G, B planes of 32x32, as CIFAR stores them."""
    idx = np.arange(first, first + count).reshape(-1, 1, 1, 1)
    c = np.arange(3).reshape(1, 3, 1, 1)
    y = np.arange(32).reshape(1, 1, 32, 1)
    x = np.arange(32).reshape(1, 1, 1, 32)
    v = (idx * 37 + c * 101 + y * 7 + x * 3 + (53 if split == "test" else 0)
         + (11 if dataset == "cifar100" else 0)) % 256
    return v.astype(np.uint8).reshape(count, 3072)


class Py2Pickler(pickle._Pickler):
    """Writes bytes as python 2's str (SHORT_BINSTRING/BINSTRING), as cPickle did."""

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def dump(obj, path, style):
    with open(path, "wb") as f:
        if style == "py2":
            Py2Pickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=5 if style == "p5" else 2)


def write_cifar10_py(d, style):
    os.makedirs(d, exist_ok=True)
    first = 0
    for b, n in enumerate(TRAIN10, start=1):
        dump({b"batch_label": b"training batch %d of 5" % b,
              b"labels": [label("cifar10", "train", first + i) for i in range(n)],
              b"data": images("cifar10", "train", first, n),
              b"filenames": [b"img_%d.png" % (first + i) for i in range(n)]},
             os.path.join(d, f"data_batch_{b}"), style)
        first += n
    dump({b"batch_label": b"testing batch 1 of 1",
          b"labels": [label("cifar10", "test", i) for i in range(TEST10)],
          b"data": images("cifar10", "test", 0, TEST10)},
         os.path.join(d, "test_batch"), style)
    dump({b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in NAMES10],
          b"num_vis": 3072}, os.path.join(d, "batches.meta"), style)


def write_cifar100_py(d):
    os.makedirs(d, exist_ok=True)
    for split, n in [("train", TRAIN100), ("test", TEST100)]:
        dump({b"filenames": [b"x.png"] * n, b"batch_label": split.encode(),
              b"fine_labels": [label("cifar100", split, i, "fine") for i in range(n)],
              b"coarse_labels": [label("cifar100", split, i, "coarse") for i in range(n)],
              b"data": images("cifar100", split, 0, n)}, os.path.join(d, split), "py2")
    dump({b"fine_label_names": [n.encode() for n in FINE100],
          b"coarse_label_names": [n.encode() for n in COARSE100]}, os.path.join(d, "meta"), "py2")


def write_cifar10_bin(d):
    os.makedirs(d, exist_ok=True)

    def records(split, first, n):
        data = images("cifar10", split, first, n)
        return b"".join(bytes([label("cifar10", split, first + i)]) + data[i].tobytes()
                        for i in range(n))
    first = 0
    for b, n in enumerate(TRAIN10, start=1):
        with open(os.path.join(d, f"data_batch_{b}.bin"), "wb") as f:
            f.write(records("train", first, n))
        first += n
    with open(os.path.join(d, "test_batch.bin"), "wb") as f:
        f.write(records("test", 0, TEST10))
    with open(os.path.join(d, "batches.meta.txt"), "w") as f:
        f.write("\n".join(NAMES10) + "\n\n")


def write_cifar100_bin(d):
    os.makedirs(d, exist_ok=True)
    for split, n in [("train", TRAIN100), ("test", TEST100)]:
        data = images("cifar100", split, 0, n)
        with open(os.path.join(d, f"{split}.bin"), "wb") as f:
            for i in range(n):
                f.write(bytes([label("cifar100", split, i, "coarse"),
                               label("cifar100", split, i, "fine")]) + data[i].tobytes())
    with open(os.path.join(d, "fine_label_names.txt"), "w") as f:
        f.write("\n".join(FINE100) + "\n")
    with open(os.path.join(d, "coarse_label_names.txt"), "w") as f:
        f.write("\n".join(COARSE100) + "\n")


def copy_with(src, dst, name, mutate):
    shutil.copytree(src, dst)
    path = os.path.join(dst, name)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(mutate(data))


def write_broken(out):
    b = os.path.join(out, "broken")
    os.makedirs(b)
    rec = 3073
    # data_batch_2.bin keeps 3 of its 5 records and half of the 4th.
    copy_with(os.path.join(out, "cifar-10-batches-bin"), os.path.join(b, "truncated-bin"),
              "data_batch_2.bin", lambda d: d[:3 * rec + rec // 2])
    copy_with(os.path.join(out, "cifar-10-batches-py"), os.path.join(b, "truncated-py"),
              "data_batch_2", lambda d: d[:len(d) * 2 // 3])
    copy_with(os.path.join(out, "cifar10-py3"), os.path.join(b, "truncated-py3"),
              "data_batch_2", lambda d: d[:len(d) * 2 // 3])
    copy_with(os.path.join(out, "cifar-10-batches-bin"), os.path.join(b, "bad-label-bin"),
              "test_batch.bin", lambda d: bytes([200]) + d[1:])
    copy_with(os.path.join(out, "cifar-10-batches-py"), os.path.join(b, "not-a-pickle"),
              "test_batch", lambda d: b"GIF89a" + d[6:])
    shutil.copytree(os.path.join(out, "cifar-10-batches-py"), os.path.join(b, "missing-batch"))
    os.remove(os.path.join(b, "missing-batch", "data_batch_3"))
    shutil.copytree(os.path.join(out, "cifar-10-batches-bin"), os.path.join(b, "no-meta-bin"))
    os.remove(os.path.join(b, "no-meta-bin", "batches.meta.txt"))
    wrong = os.path.join(b, "wrong-shape")
    os.makedirs(wrong)
    dump({b"labels": [1, 2], b"data": np.zeros((2, 1024), np.uint8)},
         os.path.join(wrong, "test_batch"), "py2")
    mismatch = os.path.join(b, "labels-mismatch")
    os.makedirs(mismatch)
    dump({b"labels": [label("cifar10", "test", i) for i in range(3)],
          b"data": images("cifar10", "test", 0, 2)}, os.path.join(mismatch, "test_batch"), "py2")
    os.makedirs(os.path.join(b, "empty-dir"))


def main(out):
    os.makedirs(out, exist_ok=True)
    write_cifar10_py(os.path.join(out, "cifar-10-batches-py"), "py2")
    write_cifar10_py(os.path.join(out, "cifar10-py3"), "py3")
    write_cifar10_py(os.path.join(out, "cifar10-p5"), "p5")
    write_cifar100_py(os.path.join(out, "cifar-100-python"))
    write_cifar10_bin(os.path.join(out, "cifar-10-batches-bin"))
    write_cifar100_bin(os.path.join(out, "cifar-100-binary"))
    write_broken(out)


if __name__ == "__main__":
    main(sys.argv[1])
