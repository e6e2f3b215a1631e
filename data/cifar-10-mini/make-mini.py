#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes cifar-10-batches-py/ here: a small CIFAR-10 in the official python format.

Usage: make-mini.py SOURCE    (SOURCE: a cifar-10-batches-py directory, the full set or a sample)

Takes the first 50 training and the first 10 test images of each class, in the
source's order, so the output depends only on the source. The training images go
into five batches of 100 (10 per class each), because readers of the official
layout, cifarsrc among them, expect data_batch_1 to data_batch_5. The pickles are
written as the official files were, by Python 2's cPickle (protocol 2, bytes as
str), with the same keys: batch_label, labels, data (uint8, N x 3072, planar RGB),
filenames; batches.meta holds label_names.
"""
import os
import pickle
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
# The test fixtures' pickler writes bytes the way Python 2's cPickle did.
sys.path.insert(0, os.path.join(here, "..", "..", "tests"))
from cifar_fixtures import Py2Pickler  # noqa: E402

TRAIN_PER_CLASS = 50
TEST_PER_CLASS = 10
BATCHES = 5
CLASSES = 10


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def dump(obj, path):
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def first_per_class(batches, per_class):
    """(labels, data, filenames) of the first per_class images of each class, in order."""
    taken = [[] for _ in range(CLASSES)]
    for b in batches:
        for label, row, name in zip(b[b"labels"], b[b"data"], b[b"filenames"]):
            if len(taken[label]) < per_class:
                taken[label].append((label, row, name))
    short = [c for c in range(CLASSES) if len(taken[c]) < per_class]
    if short:
        sys.exit(f"make-mini: the source has fewer than {per_class} images of class(es) {short}")
    return taken


def batch(label, groups):
    """A batch of the images in groups (one list per class), the classes taking turns, so
    that the first images of the stream already show every class."""
    ordered = [r for turn in zip(*groups) for r in turn]
    return {b"batch_label": label,
            b"labels": [int(r[0]) for r in ordered],
            b"data": np.stack([r[1] for r in ordered]).astype(np.uint8),
            b"filenames": [r[2] for r in ordered]}


def main(source):
    out = os.path.join(here, "cifar-10-batches-py")
    os.makedirs(out, exist_ok=True)
    meta = load(os.path.join(source, "batches.meta"))
    train = first_per_class([load(os.path.join(source, f"data_batch_{i}")) for i in range(1, 6)],
                            TRAIN_PER_CLASS)
    test = first_per_class([load(os.path.join(source, "test_batch"))], TEST_PER_CLASS)

    per_batch = TRAIN_PER_CLASS // BATCHES
    for i in range(BATCHES):
        groups = [train[c][i * per_batch:(i + 1) * per_batch] for c in range(CLASSES)]
        dump(batch(b"training batch %d of %d" % (i + 1, BATCHES), groups),
             os.path.join(out, f"data_batch_{i + 1}"))
    dump(batch(b"testing batch 1 of 1", test),
         os.path.join(out, "test_batch"))
    dump({b"num_cases_per_batch": TRAIN_PER_CLASS * CLASSES // BATCHES,
          b"label_names": meta[b"label_names"], b"num_vis": 3072},
         os.path.join(out, "batches.meta"))
    print(f"make-mini: wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
