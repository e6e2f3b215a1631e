#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""End to end: a CIFAR-10 gallery written here is indexed with random weights
(cifarsrc ! embedder ! faissindexer), then searched through the same embedder:
every gallery image finds itself first at distance ~0, the bus messages carry
what the catalog says, the C and Python examples print the same results, a
different embedder is refused with a message naming both models, and
reload=true picks up an index rebuilt by faissindexer while the stream runs.
Label names that are not valid UTF-8 (in batches.meta or in the catalog) reach
Python, bus messages and retrievaleval's JSON as valid UTF-8, with U+FFFD.

Usage: test_search_e2e.py NEIGHBORS_APP SEARCH_RESULTS_PY
"""
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import unittest

import numpy as np

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"]
PER_BATCH = 6          # 5 training batches: 30 gallery images
TEST_IMAGES = 8
EMBEDDER = "embedder weights=random input-size=32 resize=0 batch-size=8"

NEIGHBORS_APP = None
SEARCH_RESULTS_PY = None


def write_cifar10(directory, seed, names=tuple(n.encode() for n in NAMES)):
    """CIFAR-10 python format: random images, so every one is its own best match."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory)
    labels = {}

    def batch(name, n, split, first):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        lab = rng.integers(0, 10, n).tolist()
        for i, label in enumerate(lab):
            labels[f"cifar10/{split}/{first + i}"] = label
        with open(os.path.join(directory, name), "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": lab, b"data": data,
                         b"filenames": [b"x.png"] * n}, f, protocol=2)

    for b in range(5):
        batch(f"data_batch_{b + 1}", PER_BATCH, "train", b * PER_BATCH)
    batch("test_batch", TEST_IMAGES, "test", 0)
    with open(os.path.join(directory, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": list(names),
                     b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072}, f, protocol=2)
    return labels


def run(description, timeout=120):
    """Runs a pipeline to EOS; returns (visualsearch structures, error or None)."""
    pipeline = Gst.parse_launch(description)
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    results, error = [], None
    while True:
        msg = bus.timed_pop_filtered(timeout * Gst.SECOND, Gst.MessageType.ELEMENT
                                     | Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if msg is None:
            error = "timed out"
            break
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s.has_name("visualsearch"):
                results.append(s.copy())
            continue
        if msg.type == Gst.MessageType.ERROR:
            error = msg.parse_error()[0].message
        break
    pipeline.set_state(Gst.State.NULL)
    return results, error


def build_index(dataset, index, split="train", extra=""):
    _, error = run(f"cifarsrc location={dataset} split={split} ! {EMBEDDER} ! "
                   f"faissindexer location={index} {extra}")
    assert error is None, error


class SearchEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dataset = os.path.join(cls.tmp.name, "cifar-10-batches-py")
        cls.labels = write_cifar10(cls.dataset, seed=3)
        cls.index = os.path.join(cls.tmp.name, "gallery.faiss")
        build_index(cls.dataset, cls.index, extra="metric=l2")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_gallery_images_find_themselves(self):
        results, error = run(f"cifarsrc location={self.dataset} split=train ! {EMBEDDER} ! "
                             f"faisssearch index={self.index} k=4 ! fakesink")
        self.assertIsNone(error)
        self.assertEqual(len(results), 5 * PER_BATCH)
        last_running_time = -1
        for frame, s in enumerate(results):
            ids = list(s.get_value("ids"))
            distances = list(s.get_value("distances"))
            labels = list(s.get_value("labels"))
            names = list(s.get_value("label-names"))
            sources = list(s.get_value("sources"))
            self.assertEqual(s.get_string("metric"), "l2")
            self.assertEqual(len(ids), 4)
            self.assertEqual(ids[0], frame)
            self.assertLess(abs(distances[0]), 1e-4)
            self.assertEqual(distances, sorted(distances))
            self.assertGreater(distances[1], distances[0])
            self.assertEqual(sources[0], f"cifar10/train/{frame}")
            for label, name, source in zip(labels, names, sources):
                self.assertEqual(label, self.labels[source])
                self.assertEqual(name, NAMES[label])
            running_time = s.get_value("running-time")
            self.assertGreater(running_time, last_running_time)
            last_running_time = running_time
            self.assertEqual(s.get_value("timestamp"), s.get_value("stream-time"))

    def test_c_and_python_examples(self):
        source = f"cifarsrc location={self.dataset} split=train num-buffers=3"
        env = dict(os.environ)
        out = subprocess.run(
            [NEIGHBORS_APP, f"{source} ! {EMBEDDER} ! faisssearch index={self.index} k=2 "
             "! appsink name=sink sync=false"],
            capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("3 frames, 3 with neighbours", out.stdout)
        for i in range(3):
            self.assertIn(f"1. id {i} label {self.labels[f'cifar10/train/{i}']} "
                          f"{NAMES[self.labels[f'cifar10/train/{i}']]} distance 0.0000",
                          out.stdout)

        embedder_props = EMBEDDER.split(" ", 1)[1]
        out = subprocess.run(
            [sys.executable, SEARCH_RESULTS_PY, "--index", self.index, "--source", source,
             "--embedder", embedder_props, "-k", "2"],
            capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("3 frames searched", out.stdout)
        for i in range(3):
            self.assertIn(f"1. id {i} {NAMES[self.labels[f'cifar10/train/{i}']]} 0.0000 "
                          f"cifar10/train/{i}", out.stdout)

        out = subprocess.run(
            [sys.executable, SEARCH_RESULTS_PY, "--index", self.index + ".missing",
             "--source", source], capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(out.returncode, 1)
        self.assertIn(self.index + ".missing", out.stderr)

    def test_other_embedder_is_refused(self):
        for other, differs in [("embedder weights=random input-size=32 resize=0 seed=7",
                                 "model"),
                               ("embedder weights=random input-size=64 resize=0",
                                "preprocessing")]:
            _, error = run(f"cifarsrc location={self.dataset} num-buffers=1 ! {other} ! "
                           f"faisssearch index={self.index} ! fakesink")
            self.assertIsNotNone(error, other)
            self.assertIn(f"different {differs}", error)
            self.assertIn(self.index, error)

    def test_reload_swaps_index_mid_stream(self):
        live = os.path.join(self.tmp.name, "live.faiss")
        build_index(self.dataset, live, split="train")
        # A live source keeps the stream running while the index is rebuilt;
        # what it shows does not matter, only which gallery answers.
        pipeline = Gst.parse_launch(
            "videotestsrc is-live=true pattern=ball num-buffers=600 ! "
            "video/x-raw,format=RGB,width=32,height=32,framerate=20/1 ! "
            f"{EMBEDDER.replace('batch-size=8', 'batch-size=1')} ! "
            f"faisssearch index={live} k=1 reload=true ! fakesink sync=true")
        bus = pipeline.get_bus()
        pipeline.set_state(Gst.State.PLAYING)
        seen, rebuilt, error = [], None, None
        while True:
            msg = bus.timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.ELEMENT
                                         | Gst.MessageType.ERROR | Gst.MessageType.EOS)
            if msg is None or msg.type != Gst.MessageType.ELEMENT:
                if msg is not None and msg.type == Gst.MessageType.ERROR:
                    error = msg.parse_error()[0].message
                break
            s = msg.get_structure()
            if not s.has_name("visualsearch"):
                continue
            source = list(s.get_value("sources"))[0]
            seen.append(source)
            if len(seen) == 5 and rebuilt is None:
                # The test split becomes the gallery: queries find themselves.
                rebuilt = threading.Thread(target=build_index,
                                           args=(self.dataset, live, "test"))
                rebuilt.start()
            if source.startswith("cifar10/test/"):
                break
        pipeline.set_state(Gst.State.NULL)
        rebuilt.join()
        self.assertIsNone(error)
        self.assertTrue(seen[0].startswith("cifar10/train/"), seen[:5])
        self.assertTrue(seen[-1].startswith("cifar10/test/"),
                        f"never switched to the rebuilt index after {len(seen)} frames")


# batches.meta label names as raw bytes, and the UTF-8 each must arrive as: an
# invalid sequence becomes one U+FFFD per byte (as g_utf8_make_valid does).
BAD_NAMES = [
    (b"air\xffplane", "air\ufffdplane"),
    (b"\xc0\xafslash", "\ufffd\ufffdslash"),                    # overlong '/'
    (b"\xed\xa0\x80surrogate", "\ufffd\ufffd\ufffdsurrogate"),  # U+D800
    (b"trunc\xe2\x82", "trunc\ufffd\ufffd"),                    # 2 of 3 bytes
    (b"\xf4\x90\x80\x80big", "\ufffd\ufffd\ufffd\ufffdbig"),  # past U+10FFFF
    ("caf\u00e9 \u2603".encode(), "caf\u00e9 \u2603"),          # valid: kept
    (b'quo"te\\back', 'quo"te\\back'),
    (b"new\nline\ttab\x01ctl\x7f", "new\nline\ttab\x01ctl\x7f"),
    (b"ship", "ship"),
    (b"truck", "truck"),
]


class InvalidUtf8LabelNames(unittest.TestCase):
    """examples/search-results.py crashed inside PyGObject on such names."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dataset = os.path.join(cls.tmp.name, "cifar-10-batches-py")
        cls.labels = write_cifar10(cls.dataset, seed=5, names=[raw for raw, _ in BAD_NAMES])
        cls.index = os.path.join(cls.tmp.name, "gallery.faiss")
        build_index(cls.dataset, cls.index)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def search_results(self, index):
        out = subprocess.run(
            [sys.executable, SEARCH_RESULTS_PY, "--index", index, "--source",
             f"cifarsrc location={self.dataset} split=train",
             "--embedder", EMBEDDER.split(" ", 1)[1], "-k", "3"],
            capture_output=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr.decode("utf-8", "replace"))
        return out.stdout.decode("utf-8")  # strict: the output is valid UTF-8

    def test_search_results_example(self):
        stdout = self.search_results(self.index)
        self.assertIn(f"{5 * PER_BATCH} frames searched", stdout)
        for frame in range(5 * PER_BATCH):
            name = BAD_NAMES[self.labels[f"cifar10/train/{frame}"]][1]
            self.assertIn(f"1. id {frame} {name} ", stdout)
        self.assertIn("\ufffd", stdout)

    def test_catalog_holds_utf8(self):
        db = sqlite3.connect(self.index + ".db")
        db.text_factory = bytes
        names = {raw.decode("utf-8") for (raw,) in db.execute("SELECT label_name FROM items")}
        db.close()
        self.assertEqual(names, {BAD_NAMES[label][1] for label in self.labels.values()})

    def test_invalid_catalog_strings(self):
        """faisssearch repairs whatever a catalog gives, label names and sources."""
        index = os.path.join(self.tmp.name, "doctored.faiss")
        shutil.copy(self.index, index)
        shutil.copy(self.index + ".db", index + ".db")
        db = sqlite3.connect(index + ".db")
        db.execute("UPDATE items SET label_name = CAST(X'6361748063' AS TEXT), "
                   "source = source || CAST(X'2FC0' AS TEXT)")
        db.commit()
        db.close()
        stdout = self.search_results(index)
        self.assertRegex(stdout, r"1\. id 0 cat\ufffdc [-0-9.]+ cifar10/train/0/\ufffd\n")

    def test_retrievaleval_json(self):
        output = os.path.join(self.tmp.name, "metrics.json")
        _, error = run(f"cifarsrc location={self.dataset} split=train ! {EMBEDDER} ! "
                       f"faisssearch index={self.index} k=3 ! "
                       f"retrievaleval index={self.index} k=1,2 output={output}")
        self.assertIsNone(error)
        with open(output, encoding="utf-8") as f:  # strict decoding, then strict JSON
            result = json.load(f)
        want = {BAD_NAMES[label][1]: label for label in self.labels.values()}
        self.assertEqual({k: v["label"] for k, v in result["per_class"].items()}, want)


if __name__ == "__main__":
    NEIGHBORS_APP, SEARCH_RESULTS_PY = sys.argv[1], sys.argv[2]
    Gst.init(None)
    unittest.main(argv=sys.argv[:1], verbosity=2)
