#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One source of truth for the embedder's settings: faissindexer and
cifarindexer record the settings the embedder announces in the catalog
(schema 4), and `embedder index=FILE` adopts them.

Checks that the adopting embedder makes the very embeddings of the embedder
that built the index (and shows the adopted settings in its properties);
that a property set against the index is an element error naming the
property, both values and the index, while precision, batch-size,
inference-interval and threads stay free; that model files count by
identity (a moved TorchScript file serves, another one does not); that a
catalog of schema 3 still serves faisssearch, while embedder index= asks for
a rebuild; that faissindexer records no settings that do not describe its
embeddings; and that retrievaleval behind faisssearch finds the catalog by
itself, with the same figures as with index=, an explicit catalog winning.

Usage: test_index_settings.py   (run by meson, with the plugin of the build tree)
"""
import json
import os
import re
import shutil
import sqlite3
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

# After GStreamer: see torchscript_fixtures.py.
import faiss  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, tmp_dir  # noqa: E402
from test_search_e2e import write_cifar10  # noqa: E402
from torchscript_fixtures import write_tiny_torchscript  # noqa: E402

# Away from every default, so that only adoption can reproduce it.
BUILT_WITH = {"weights": "random", "seed": "7", "input-size": "40", "resize": "48",
              "mean": "0.5,0.4,0.3", "std": "0.2,0.25,0.3", "normalize": "false"}


def run(description, prepare=None, timeout=120):
    """Runs a pipeline to EOS, after prepare(pipeline) if given; returns (first
    error or None, warnings, the settings properties of the element named "e",
    read before the pipeline stopped)."""
    pipeline = Gst.parse_launch(description)
    if not isinstance(pipeline, Gst.Pipeline):  # a lone bin such as cifarindexer
        element, pipeline = pipeline, Gst.Pipeline()
        pipeline.add(element)
    if prepare:
        prepare(pipeline)
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    error, warnings = None, []
    while True:
        msg = bus.timed_pop_filtered(timeout * Gst.SECOND, Gst.MessageType.ERROR
                                     | Gst.MessageType.WARNING | Gst.MessageType.EOS)
        if msg is None:
            error = "timed out"
        elif msg.type == Gst.MessageType.WARNING:
            warnings.append(msg.parse_warning()[0].message)
            continue
        elif msg.type == Gst.MessageType.ERROR:
            error = msg.parse_error()[0].message
        break
    properties = {}
    embedder = pipeline.get_by_name("e")
    if embedder is not None:
        properties = {p: str(embedder.get_property(p)) for p in
                      ("model", "weights", "seed", "input-size", "resize", "mean", "std",
                       "normalize")}
    pipeline.set_state(Gst.State.NULL)
    return error, warnings, properties


def vectors(index):
    stored = faiss.read_index(index)
    return stored.reconstruct_n(0, stored.ntotal)


def recorded_settings(index):
    db = sqlite3.connect(index + ".db")
    try:
        return db.execute("SELECT embedder_config FROM index_facts").fetchone()[0]
    finally:
        db.close()


def has(error, *phrases):
    return error is not None and all(p in error for p in phrases)


class Case:
    """The index built with BUILT_WITH, and the files around it."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.dataset = self.path("cifar-10-batches-py")
        write_cifar10(self.dataset, seed=11)
        self.index = self.path("built.faiss")
        props = " ".join(f"{k}={v}" for k, v in BUILT_WITH.items())
        # fp32 here and in the embedders compared with it: an index records
        # int8 only, so precision=auto would measure again and may choose
        # bf16 for one and fp32 for the other.
        error, _, _ = run(f"cifarsrc location={self.dataset} split=train ! "
                          f"embedder {props} batch-size=8 precision=fp32 ! "
                          f"faissindexer location={self.index}")
        self.built = check(error is None, "the index is built with settings away from the "
                           "defaults", error)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def reindex(self, embedder, name, split="train"):
        """Indexes the split again through embedder; returns the new index."""
        index = self.path(name)
        error, warnings, properties = run(
            f"cifarsrc location={self.dataset} split={split} ! {embedder} name=e ! "
            f"faissindexer location={index}")
        check(error is None, f"{embedder} indexes {split}", error)
        return index, warnings, properties


def adopting_embedder_makes_the_same_embeddings(c):
    index, _, properties = c.reindex(
        f"embedder index={c.index} batch-size=3 precision=fp32 threads=1", "adopted.faiss")
    check((vectors(index) == vectors(c.index)).all(), "adopting: the same embeddings")
    check(properties == {**BUILT_WITH, "model": "resnet18", "normalize": "False"},
          "adopting: the properties read back the index's settings", properties)
    # What it announced is what the index records, so it adopts in turn.
    check(recorded_settings(index) == recorded_settings(c.index),
          "adopting: the new index records the same settings", recorded_settings(index))
    settings = Gst.Structure.from_string(recorded_settings(c.index))[0]
    check(settings.get_name() == "visualsearch-embedder-config"
          and settings.get_string("model-id") == "resnet18:random-seed7"
          and settings.get_value("dims") == 512,
          "the recorded settings: name, model id, dims", settings.to_string())


def cifarindexer_records_the_settings(c):
    index = c.path("cifarindexer.faiss")
    error, _, _ = run(f"cifarindexer dataset={c.dataset} index={index} weights=random "
                      "seed=5 input-size=36 resize=0 batch-size=8 precision=fp32")
    check(error is None, "cifarindexer builds an index", error)
    adopted, _, properties = c.reindex(f"embedder index={index} precision=fp32",
                                       "from-cifarindexer.faiss")
    got = (properties.get("seed"), properties.get("input-size"), properties.get("resize"))
    check(got == ("5", "36", "0"), "cifarindexer's settings are adopted", got)
    check((vectors(adopted) == vectors(index)).all(), "cifarindexer's index: the same embeddings")


def contradictions_are_errors(c):
    for prop, mine, theirs in [("resize", "256", "48"), ("input-size", "224", "40"),
                               ("mean", "0.485,0.456,0.406", "0.5,0.4,0.3"),
                               ("std", "1,1,1", "0.2,0.25,0.3"),
                               ("normalize", "true", "false"),
                               ("weights", "/nowhere/resnet18.pth", "random"),
                               ("seed", "42", "7"), ("model", "resnet34", "resnet18")]:
        error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={c.index} "
                          f"{prop}={mine} ! fakesink")
        check(has(error, f"{prop}={mine} contradicts the index {c.index}, which was built "
                         f"with {prop}={theirs}"), f"{prop}={mine} against the index is an error",
              error)
    # The same settings written otherwise, and the free ones, agree.
    error, _, _ = run(f"videotestsrc num-buffers=2 ! embedder index={c.index} "
                      "mean=\"0.50, 0.4, 0.30\" resize=48 weights=random seed=7 "
                      "precision=bf16 batch-size=2 inference-interval=2 threads=1 ! fakesink")
    check(error is None, "the same settings written otherwise, and the free ones, agree", error)


def torchscript_files_count_by_identity(c):
    os.makedirs(c.path("models"))
    write_tiny_torchscript(c.path("models/tiny.pt"), seed=1)
    write_tiny_torchscript(c.path("other.pt"), seed=2)
    index = c.path("tiny.faiss")
    # Built from a relative path: the index must serve from anywhere.
    cwd = os.getcwd()
    os.chdir(c.tmp)
    try:
        error, _, _ = run(f"cifarsrc location={c.dataset} split=train ! embedder "
                          "model=models/tiny.pt input-size=32 resize=0 precision=fp32 ! "
                          f"faissindexer location={index}")
    finally:
        os.chdir(cwd)
    check(error is None, "a TorchScript model by a relative path builds an index", error)
    check(f"model=(string){c.path('models/tiny.pt')}," in (recorded_settings(index) or ""),
          "the index records the model's absolute path", recorded_settings(index))
    adopted, _, properties = c.reindex(f"embedder index={index} precision=fp32",
                                       "tiny-again.faiss")
    check(properties.get("model") == c.path("models/tiny.pt"),
          "the TorchScript model is adopted by its path", properties)
    check((vectors(adopted) == vectors(index)).all(), "TorchScript: the same embeddings")

    error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={index} "
                      f"model={c.path('other.pt')} ! fakesink")
    check(error is not None and re.search(
              re.escape(f"model={c.path('other.pt')} is torchscript:") + r"\w+, but the index "
              + re.escape(index) + r" was built with torchscript:\w+\.", error),
          "another TorchScript file is refused by its identity", error)
    error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={index} model=resnet18 "
                      "weights=random ! fakesink")
    check(has(error, "model=resnet18 with weights=random is resnet18:random-seed42, but the "
                     f"index {index} was built with torchscript:"),
          "resnet18 against a TorchScript index is refused", error)

    shutil.move(c.path("models/tiny.pt"), c.path("moved.pt"))
    error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={index} ! fakesink")
    check(has(error, "if the file has moved, set model or weights to where it is now"),
          "a moved TorchScript file: the error says what to set", error)
    moved, _, _ = c.reindex(f"embedder index={index} model={c.path('moved.pt')} precision=fp32",
                            "tiny-moved.faiss")
    check((vectors(moved) == vectors(index)).all(), "the moved file: the same embeddings")


def schema_3_catalog(c):
    old = c.path("old.faiss")
    shutil.copy(c.index, old)
    shutil.copy(c.index + ".db", old + ".db")
    db = sqlite3.connect(old + ".db")
    db.execute("ALTER TABLE index_facts DROP COLUMN embedder_config")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    props = " ".join(f"{k}={v}" for k, v in BUILT_WITH.items())
    error, _, _ = run(f"cifarsrc location={c.dataset} split=train num-buffers=2 ! "
                      f"embedder {props} ! faisssearch index={old} ! fakesink")
    check(error is None, "a schema 3 catalog still serves searches", error)
    error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={old} ! fakesink")
    check(has(error, f"The index {old} does not record the embedder settings",
              "predates catalog schema 4"), "embedder index= on a schema 3 catalog says why",
          error)


def settings_that_do_not_describe_the_embeddings_are_not_recorded(c):
    index = c.path("tampered.faiss")
    replaced = []

    def replace_settings(pad, info):
        event = info.get_event()
        if event.type != Gst.EventType.CUSTOM_DOWNSTREAM_STICKY or replaced:
            return Gst.PadProbeReturn.OK
        settings = event.get_structure().copy()
        settings.set_value("model-id", "resnet18:someone-else")
        replaced.append(settings)
        pad.push_event(Gst.Event.new_custom(Gst.EventType.CUSTOM_DOWNSTREAM_STICKY,
                                            settings))
        return Gst.PadProbeReturn.DROP

    def tamper(pipeline):
        pipeline.get_by_name("tamper").get_static_pad("src").add_probe(
            Gst.PadProbeType.EVENT_DOWNSTREAM, replace_settings)

    error, warnings, _ = run(
        "videotestsrc num-buffers=3 ! video/x-raw,width=32,height=32 ! embedder "
        "weights=random input-size=32 resize=0 ! identity name=tamper ! "
        f"faissindexer location={index}", prepare=tamper)
    check(error is None and len(replaced) == 1, "tampered settings: the stream runs, "
          "the settings event replaced once", (error, len(replaced)))
    check(any("(model resnet18:someone-else, preprocessing rgb;resize=0;crop=32;"
              in w and "do not describe the embeddings that arrive (model "
              "resnet18:random-seed42" in w for w in warnings),
          "tampered settings: faissindexer warns, naming both", warnings)
    check(recorded_settings(index) is None, "tampered settings are not recorded",
          recorded_settings(index))
    check(faiss.read_index(index).ntotal == 3, "tampered settings: the 3 embeddings are indexed")


def retrievaleval_finds_the_catalog(c):
    figures = {}
    for name, props in [("explicit", f"index={c.index}"), ("found", ""),
                        ("catalog", f"catalog={c.path('copy.db')}")]:
        if name == "catalog":
            shutil.copy(c.index + ".db", c.path("copy.db"))
        output = c.path(f"{name}.json")
        error, _, _ = run(f"cifarsrc location={c.dataset} split=test ! embedder "
                          f"index={c.index} ! faisssearch index={c.index} k=6 "
                          f"post-messages=false ! retrievaleval k=1,5 {props} "
                          f"output={output}")
        check(error is None, f"retrievaleval, catalog {name}, runs", error)
        with open(output) as f:
            figures[name] = json.load(f)
    check(figures["found"] == figures["explicit"],
          "retrievaleval finds the catalog by itself: the figures of index=", figures)
    check(figures["found"]["catalog"] == c.index + ".db" and figures["found"]["queries"] > 0,
          "retrievaleval names the catalog it found, and evaluates queries", figures["found"])
    check(figures["catalog"]["catalog"] == c.path("copy.db"), "an explicit catalog wins",
          figures["catalog"]["catalog"])

    error, _, _ = run(f"cifarsrc location={c.dataset} split=test ! embedder "
                      f"index={c.index} ! retrievaleval k=1")
    check(has(error, "No gallery catalog"), "retrievaleval without a catalog or search says so",
          error)


def main():
    Gst.init(None)
    with tmp_dir() as tmp:
        c = Case(tmp)
        if c.built:
            adopting_embedder_makes_the_same_embeddings(c)
            cifarindexer_records_the_settings(c)
            contradictions_are_errors(c)
            retrievaleval_finds_the_catalog(c)
            schema_3_catalog(c)
            settings_that_do_not_describe_the_embeddings_are_not_recorded(c)
            torchscript_files_count_by_identity(c)
    finish()


if __name__ == "__main__":
    main()
