#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The mini gallery shipped for the demo (data/cifar-10-mini) is a complete CIFAR-10
in the official python format: cifarsrc reads it with strict=true, every record
whole, and it stays small and balanced across the classes.

Usage: test_cifar_mini.py   (VS_SOURCE_DIR set by meson)
"""
import os
import pickle
import sys

import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

MINI = os.path.join(os.environ["VS_SOURCE_DIR"], "data", "cifar-10-mini")
BATCHES = os.path.join(MINI, "cifar-10-batches-py")


def load(name):
    with open(os.path.join(BATCHES, name), "rb") as f:
        return pickle.load(f, encoding="bytes")


def frames(split):
    """Every frame cifarsrc (strict) pushes for split, as (32, 32, 3) RGB arrays."""
    pipeline = Gst.parse_launch(
        f'cifarsrc location="{BATCHES}" split={split} strict=true '
        "! video/x-raw,format=RGB ! appsink name=sink sync=false")
    sink = pipeline.get_by_name("sink")
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    out = []
    try:
        while not sink.get_property("eos"):
            # An error stops the stream without EOS: look at the bus between samples.
            message = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.WARNING)
            if message is not None:
                error = (message.parse_error() if message.type == Gst.MessageType.ERROR
                         else message.parse_warning())[0]
                raise AssertionError(f"cifarsrc split={split} strict=true: {error.message}")
            sample = sink.emit("try-pull-sample", Gst.SECOND // 10)
            if sample is None:
                continue
            ok, info = sample.get_buffer().map(Gst.MapFlags.READ)
            assert ok
            out.append(np.frombuffer(info.data, np.uint8).reshape(32, 32, 3).copy())
            sample.get_buffer().unmap(info)
    finally:
        pipeline.set_state(Gst.State.NULL)
    return out


def expect(split, names, per_class):
    got = frames(split)
    batches = [load(n) for n in names]
    labels = [label for b in batches for label in b[b"labels"]]
    planar = np.concatenate([b[b"data"] for b in batches])
    check(planar.dtype == np.uint8, f"{split}: the pixels are bytes", planar.dtype)
    counts = np.bincount(labels, minlength=10).tolist()
    check(counts == [per_class] * 10, f"{split}: {per_class} records of each class", counts)
    check(len(got) == len(labels), f"{split}: cifarsrc reads every record",
          f"{len(got)} frames for {len(labels)} records")
    rgb = planar.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    differ = [i for i, frame in enumerate(got) if not np.array_equal(frame, rgb[i])]
    check(not differ, f"{split}: every frame has the record's pixels",
          f"records {differ[:10]} differ" if differ else None)
    for n, b in zip(names, batches):
        check(sorted(b) == [b"batch_label", b"data", b"filenames", b"labels"],
              f"{split} {n}: the official keys", sorted(b))
        check(len(b[b"filenames"]) == len(b[b"labels"]), f"{split} {n}: a file name per label")


def meta_and_size():
    meta = load("batches.meta")
    check(meta[b"label_names"] == [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog",
                                   b"frog", b"horse", b"ship", b"truck"],
          "batches.meta names CIFAR-10's classes in order", meta[b"label_names"])
    size = sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(MINI) for f in files)
    check(size < 2_000_000, "data/cifar-10-mini stays under 2 MB", size)
    check(os.path.isfile(os.path.join(MINI, "README.md")), "data/cifar-10-mini has a README.md")


if __name__ == "__main__":
    Gst.init(None)
    expect("train", [f"data_batch_{i}" for i in range(1, 6)], 50)
    expect("test", ["test_batch"], 10)
    meta_and_size()
    finish()
