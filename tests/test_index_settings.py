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
import tempfile
import unittest

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

# After GStreamer: see torchscript_fixtures.py.
import faiss  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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


class IndexSettings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dataset = os.path.join(cls.tmp.name, "cifar-10-batches-py")
        write_cifar10(cls.dataset, seed=11)
        cls.index = cls.path("built.faiss")
        props = " ".join(f"{k}={v}" for k, v in BUILT_WITH.items())
        error, _, _ = run(f"cifarsrc location={cls.dataset} split=train ! "
                          f"embedder {props} batch-size=8 ! faissindexer location={cls.index}")
        assert error is None, error

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp.name, name)

    def reindex(self, embedder, name, split="train"):
        """Indexes the split again through embedder; returns the new index."""
        index = self.path(name)
        error, warnings, properties = run(
            f"cifarsrc location={self.dataset} split={split} ! {embedder} name=e ! "
            f"faissindexer location={index}")
        self.assertIsNone(error, embedder)
        return index, warnings, properties

    def test_adopting_embedder_makes_the_same_embeddings(self):
        index, _, properties = self.reindex(
            f"embedder index={self.index} batch-size=3 precision=bf16 threads=1", "adopted.faiss")
        self.assertTrue((vectors(index) == vectors(self.index)).all())
        self.assertEqual(properties, {**BUILT_WITH, "model": "resnet18", "normalize": "False"})
        # What it announced is what the index records, so it adopts in turn.
        self.assertEqual(recorded_settings(index), recorded_settings(self.index))
        settings = Gst.Structure.from_string(recorded_settings(self.index))[0]
        self.assertEqual(settings.get_name(), "visualsearch-embedder-config")
        self.assertEqual(settings.get_string("model-id"), "resnet18:random-seed7")
        self.assertEqual(settings.get_value("dims"), 512)

    def test_cifarindexer_records_the_settings(self):
        index = self.path("cifarindexer.faiss")
        error, _, _ = run(f"cifarindexer dataset={self.dataset} index={index} weights=random "
                          "seed=5 input-size=36 resize=0 batch-size=8")
        self.assertIsNone(error)
        adopted, _, properties = self.reindex(f"embedder index={index}", "from-cifarindexer.faiss")
        self.assertEqual((properties["seed"], properties["input-size"], properties["resize"]),
                         ("5", "36", "0"))
        self.assertTrue((vectors(adopted) == vectors(index)).all())

    def test_contradictions_are_errors(self):
        for prop, mine, theirs in [("resize", "256", "48"), ("input-size", "224", "40"),
                                   ("mean", "0.485,0.456,0.406", "0.5,0.4,0.3"),
                                   ("std", "1,1,1", "0.2,0.25,0.3"),
                                   ("normalize", "true", "false"),
                                   ("weights", "/nowhere/resnet18.pth", "random"),
                                   ("seed", "42", "7"), ("model", "resnet34", "resnet18")]:
            error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={self.index} "
                              f"{prop}={mine} ! fakesink")
            self.assertIsNotNone(error, prop)
            self.assertIn(f"{prop}={mine} contradicts the index {self.index}, which was built "
                          f"with {prop}={theirs}", error)
        # The same settings written otherwise, and the free ones, agree.
        error, _, _ = run(f"videotestsrc num-buffers=2 ! embedder index={self.index} "
                          "mean=\"0.50, 0.4, 0.30\" resize=48 weights=random seed=7 "
                          "precision=bf16 batch-size=2 inference-interval=2 threads=1 ! fakesink")
        self.assertIsNone(error)

    def test_torchscript_files_count_by_identity(self):
        os.makedirs(self.path("models"))
        write_tiny_torchscript(self.path("models/tiny.pt"), seed=1)
        write_tiny_torchscript(self.path("other.pt"), seed=2)
        index = self.path("tiny.faiss")
        # Built from a relative path: the index must serve from anywhere.
        cwd = os.getcwd()
        os.chdir(self.tmp.name)
        try:
            error, _, _ = run(f"cifarsrc location={self.dataset} split=train ! embedder "
                              "model=models/tiny.pt input-size=32 resize=0 ! "
                              f"faissindexer location={index}")
        finally:
            os.chdir(cwd)
        self.assertIsNone(error)
        self.assertIn(f"model=(string){self.path('models/tiny.pt')},",
                      recorded_settings(index))
        adopted, _, properties = self.reindex(f"embedder index={index}", "tiny-again.faiss")
        self.assertEqual(properties["model"], self.path("models/tiny.pt"))
        self.assertTrue((vectors(adopted) == vectors(index)).all())

        error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={index} "
                          f"model={self.path('other.pt')} ! fakesink")
        self.assertIsNotNone(error)
        self.assertRegex(error, re.escape(f"model={self.path('other.pt')} is torchscript:") +
                         r"\w+, but the index " + re.escape(index) +
                         r" was built with torchscript:\w+\.")
        error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={index} model=resnet18 "
                          "weights=random ! fakesink")
        self.assertIn("model=resnet18 with weights=random is resnet18:random-seed42, but the "
                      f"index {index} was built with torchscript:", error)

        shutil.move(self.path("models/tiny.pt"), self.path("moved.pt"))
        error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={index} ! fakesink")
        self.assertIsNotNone(error)
        self.assertIn("if the file has moved, set model or weights to where it is now", error)
        moved, _, _ = self.reindex(f"embedder index={index} model={self.path('moved.pt')}",
                                   "tiny-moved.faiss")
        self.assertTrue((vectors(moved) == vectors(index)).all())

    def test_schema_3_catalog(self):
        old = self.path("old.faiss")
        shutil.copy(self.index, old)
        shutil.copy(self.index + ".db", old + ".db")
        db = sqlite3.connect(old + ".db")
        db.execute("ALTER TABLE index_facts DROP COLUMN embedder_config")
        db.execute("PRAGMA user_version = 3")
        db.commit()
        db.close()
        props = " ".join(f"{k}={v}" for k, v in BUILT_WITH.items())
        error, _, _ = run(f"cifarsrc location={self.dataset} split=train num-buffers=2 ! "
                          f"embedder {props} ! faisssearch index={old} ! fakesink")
        self.assertIsNone(error)
        error, _, _ = run(f"videotestsrc num-buffers=1 ! embedder index={old} ! fakesink")
        self.assertIsNotNone(error)
        self.assertIn(f"The index {old} does not record the embedder settings", error)
        self.assertIn("predates catalog schema 4", error)

    def test_settings_that_do_not_describe_the_embeddings_are_not_recorded(self):
        index = self.path("tampered.faiss")
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
        self.assertIsNone(error)
        self.assertEqual(len(replaced), 1)
        self.assertTrue(any("(model resnet18:someone-else, preprocessing rgb;resize=0;crop=32;"
                            in w and "do not describe the embeddings that arrive (model "
                            "resnet18:random-seed42" in w for w in warnings), warnings)
        self.assertIsNone(recorded_settings(index))
        self.assertEqual(faiss.read_index(index).ntotal, 3)

    def test_retrievaleval_finds_the_catalog(self):
        figures = {}
        for name, props in [("explicit", f"index={self.index}"), ("found", ""),
                            ("catalog", f"catalog={self.path('copy.db')}")]:
            if name == "catalog":
                shutil.copy(self.index + ".db", self.path("copy.db"))
            output = self.path(f"{name}.json")
            error, _, _ = run(f"cifarsrc location={self.dataset} split=test ! embedder "
                              f"index={self.index} ! faisssearch index={self.index} k=6 "
                              f"post-messages=false ! retrievaleval k=1,5 {props} "
                              f"output={output}")
            self.assertIsNone(error, name)
            with open(output) as f:
                figures[name] = json.load(f)
        self.assertEqual(figures["found"], figures["explicit"])
        self.assertEqual(figures["found"]["catalog"], self.index + ".db")
        self.assertGreater(figures["found"]["queries"], 0)
        self.assertEqual(figures["catalog"]["catalog"], self.path("copy.db"))

        error, _, _ = run(f"cifarsrc location={self.dataset} split=test ! embedder "
                          f"index={self.index} ! retrievaleval k=1")
        self.assertIn("No gallery catalog", error)


if __name__ == "__main__":
    Gst.init(None)
    unittest.main(verbosity=2)
