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
import re
import shutil
import sqlite3
import sys
import threading

import numpy as np

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, expect_error, finish, tmp_dir  # noqa: E402

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"]
PER_BATCH = 6          # 5 training batches: 30 gallery images
TEST_IMAGES = 8
# fp32: a frame must find itself at distance 0.0000, and precision=auto
# measures in each process (bf16 and fp32 embeddings differ in the 4th digit).
EMBEDDER = "embedder weights=random input-size=32 resize=0 batch-size=8 precision=fp32"

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
    check(error is None, f"{split} is indexed into {os.path.basename(index)}", error)


def gallery_images_find_themselves(dataset, labels, index):
    results, error = run(f"cifarsrc location={dataset} split=train ! {EMBEDDER} ! "
                         f"faisssearch index={index} k=4 ! fakesink")
    check(error is None, "the gallery searched for itself runs to EOS", error)
    check(len(results) == 5 * PER_BATCH, "a message per gallery image", len(results))
    last_running_time = -1
    for frame, s in enumerate(results):
        ids = list(s.get_value("ids"))
        distances = list(s.get_value("distances"))
        found_labels = list(s.get_value("labels"))
        names = list(s.get_value("label-names"))
        sources = list(s.get_value("sources"))
        running_time = s.get_value("running-time")
        wrong = [what for what, ok in [
            ("metric l2", s.get_string("metric") == "l2"),
            ("4 neighbours", len(ids) == 4),
            ("itself first", ids[0] == frame),
            ("at distance ~0", abs(distances[0]) < 1e-4),
            ("nearest first", distances == sorted(distances)),
            ("the next one farther", distances[1] > distances[0]),
            ("its own source first", sources[0] == f"cifar10/train/{frame}"),
            ("each neighbour's label and name are the catalog's",
             all(label == labels[source] and name == NAMES[label]
                 for label, name, source in zip(found_labels, names, sources))),
            ("running time increases", running_time > last_running_time),
            ("timestamp is the stream time",
             s.get_value("timestamp") == s.get_value("stream-time")),
        ] if not ok]
        check(not wrong, f"gallery image {frame} finds itself, with the catalog's details",
              f"wrong: {wrong}: {s.to_string()}" if wrong else None)
        last_running_time = running_time


def c_and_python_examples(dataset, labels, index):
    source = f"cifarsrc location={dataset} split=train num-buffers=3"
    out = checks.run(
        [NEIGHBORS_APP, f"{source} ! {EMBEDDER} ! faisssearch index={index} k=2 "
         "! appsink name=sink sync=false"])
    check(out.returncode == 0, "neighbors-app runs", out.stderr)
    check("3 frames, 3 with neighbours" in out.stdout, "neighbors-app reads 3 frames", out.stdout)
    for i in range(3):
        check(f"1. id {i} label {labels[f'cifar10/train/{i}']} "
              f"{NAMES[labels[f'cifar10/train/{i}']]} distance 0.0000" in out.stdout,
              f"neighbors-app: frame {i} finds itself", out.stdout)

    embedder_props = EMBEDDER.split(" ", 1)[1]
    out = checks.run(
        [sys.executable, SEARCH_RESULTS_PY, "--index", index, "--source", source,
         "--embedder", embedder_props, "-k", "2"])
    check(out.returncode == 0, "search-results.py runs", out.stderr)
    check("3 frames searched" in out.stdout, "search-results.py searches 3 frames", out.stdout)
    for i in range(3):
        check(f"1. id {i} {NAMES[labels[f'cifar10/train/{i}']]} 0.0000 "
              f"cifar10/train/{i}" in out.stdout, f"search-results.py: frame {i} finds itself",
              out.stdout)

    out = checks.run([sys.executable, SEARCH_RESULTS_PY, "--index", index + ".missing",
                      "--source", source])
    expect_error(out, "search-results.py names a missing index", index + ".missing", rc=1)


def other_embedder_is_refused(dataset, index):
    for other, differs in [("embedder weights=random input-size=32 resize=0 seed=7",
                            "model"),
                           ("embedder weights=random input-size=64 resize=0",
                            "preprocessing")]:
        _, error = run(f"cifarsrc location={dataset} num-buffers=1 ! {other} ! "
                       f"faisssearch index={index} ! fakesink")
        check(error is not None and f"different {differs}" in error and index in error,
              f"an embedder with another {differs} is refused, naming the index", error)


def reload_swaps_index_mid_stream(tmp, dataset):
    live = os.path.join(tmp, "live.faiss")
    build_index(dataset, live, split="train")
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
            rebuilt = threading.Thread(target=build_index, args=(dataset, live, "test"))
            rebuilt.start()
        if source.startswith("cifar10/test/"):
            break
    pipeline.set_state(Gst.State.NULL)
    rebuilt.join()
    check(error is None, "reload=true: the stream runs without an error", error)
    check(seen[0].startswith("cifar10/train/"), "reload=true: the first gallery answers first",
          seen[:5])
    check(seen[-1].startswith("cifar10/test/"), "reload=true: the rebuilt index answers later",
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


def search_results(dataset, index):
    out = checks.run(
        [sys.executable, SEARCH_RESULTS_PY, "--index", index, "--source",
         f"cifarsrc location={dataset} split=train",
         "--embedder", EMBEDDER.split(" ", 1)[1], "-k", "3"], text=False)
    check(out.returncode == 0, f"search-results.py runs on {os.path.basename(index)}",
          out.stderr.decode("utf-8", "replace"))
    return out.stdout.decode("utf-8")  # strict: the output is valid UTF-8


def invalid_utf8_label_names(tmp):
    """examples/search-results.py crashed inside PyGObject on such names."""
    dataset = os.path.join(tmp, "cifar-10-batches-py")
    labels = write_cifar10(dataset, seed=5, names=[raw for raw, _ in BAD_NAMES])
    index = os.path.join(tmp, "gallery.faiss")
    build_index(dataset, index)

    stdout = search_results(dataset, index)
    check(f"{5 * PER_BATCH} frames searched" in stdout,
          "invalid UTF-8 names: search-results.py searches every frame", stdout)
    for frame in range(5 * PER_BATCH):
        name = BAD_NAMES[labels[f"cifar10/train/{frame}"]][1]
        check(f"1. id {frame} {name} " in stdout,
              f"invalid UTF-8 names: frame {frame} finds itself, its name repaired", stdout)
    check("\ufffd" in stdout, "invalid UTF-8 names: U+FFFD in the output", stdout)

    # The catalog holds UTF-8.
    db = sqlite3.connect(index + ".db")
    db.text_factory = bytes
    names = {raw.decode("utf-8") for (raw,) in db.execute("SELECT label_name FROM items")}
    db.close()
    check(names == {BAD_NAMES[label][1] for label in labels.values()},
          "the catalog holds the names as valid UTF-8", names)

    # faisssearch repairs whatever a catalog gives, label names and sources.
    doctored = os.path.join(tmp, "doctored.faiss")
    shutil.copy(index, doctored)
    shutil.copy(index + ".db", doctored + ".db")
    db = sqlite3.connect(doctored + ".db")
    db.execute("UPDATE items SET label_name = CAST(X'6361748063' AS TEXT), "
               "source = source || CAST(X'2FC0' AS TEXT)")
    db.commit()
    db.close()
    stdout = search_results(dataset, doctored)
    check(re.search(r"1\. id 0 cat\ufffdc [-0-9.]+ cifar10/train/0/\ufffd\n", stdout),
          "faisssearch repairs a catalog's invalid names and sources", stdout)

    # retrievaleval's JSON
    output = os.path.join(tmp, "metrics.json")
    _, error = run(f"cifarsrc location={dataset} split=train ! {EMBEDDER} ! "
                   f"faisssearch index={index} k=3 ! "
                   f"retrievaleval index={index} k=1,2 output={output}")
    check(error is None, "retrievaleval runs on invalid UTF-8 names", error)
    with open(output, encoding="utf-8") as f:  # strict decoding, then strict JSON
        result = json.load(f)
    want = {BAD_NAMES[label][1]: label for label in labels.values()}
    got = {k: v["label"] for k, v in result["per_class"].items()}
    check(got == want, "retrievaleval's JSON holds the repaired names", got)


def main():
    Gst.init(None)
    with tmp_dir() as tmp:
        dataset = os.path.join(tmp, "cifar-10-batches-py")
        labels = write_cifar10(dataset, seed=3)
        index = os.path.join(tmp, "gallery.faiss")
        build_index(dataset, index, extra="metric=l2")
        c_and_python_examples(dataset, labels, index)
        gallery_images_find_themselves(dataset, labels, index)
        other_embedder_is_refused(dataset, index)
        reload_swaps_index_mid_stream(tmp, dataset)
    with tmp_dir() as tmp:
        invalid_utf8_label_names(tmp)
    finish()


if __name__ == "__main__":
    NEIGHBORS_APP, SEARCH_RESULTS_PY = sys.argv[1], sys.argv[2]
    main()
