# SPDX-License-Identifier: LGPL-2.1-or-later
"""cifarindexer end to end on a tiny generated CIFAR-10 (python format) with
random embedder weights: the index and catalog it writes, its properties
reaching the children, pipelines/index-cifar.sh, and errors."""
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

import faiss
import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.join(os.environ["VS_SOURCE_DIR"], "tests"))
import cifar_fixtures  # noqa: E402

NATIVE = ["weights=random", "resize=0", "input-size=32", "batch-size=8"]


def launch(*description):
    return subprocess.run(["gst-launch-1.0", "-q", *description], capture_output=True,
                          text=True, timeout=120)


class CifarIndexer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Gst.init(None)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dataset = os.path.join(cls.tmp.name, "cifar-10-batches-py")
        cifar_fixtures.write_cifar10_py(cls.dataset, "py2")
        cls.train = sum(cifar_fixtures.TRAIN10)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_properties_are_the_childrens(self):
        indexer = Gst.ElementFactory.make("cifarindexer", None)
        children = {c.get_factory().get_name(): c for c in indexer.iterate_elements()}
        self.assertEqual(set(children), {"cifarsrc", "embedder", "faissindexer"})
        proxied = {"dataset": ("cifarsrc", "location"), "split": ("cifarsrc", "split"),
                   "model": ("embedder", "model"), "weights": ("embedder", "weights"),
                   "seed": ("embedder", "seed"), "precision": ("embedder", "precision"),
                   "batch-size": ("embedder", "batch-size"),
                   "input-size": ("embedder", "input-size"), "resize": ("embedder", "resize"),
                   "index": ("faissindexer", "location"),
                   "index-type": ("faissindexer", "index-type"),
                   "metric": ("faissindexer", "metric")}
        for name, (factory, child_name) in proxied.items():
            ours = indexer.find_property(name)
            theirs = children[factory].find_property(child_name)
            self.assertEqual(ours.value_type, theirs.value_type, name)
            self.assertEqual(ours.default_value, theirs.default_value, name)
        Gst.util_set_object_arg(indexer, "input-size", "32")
        Gst.util_set_object_arg(indexer, "split", "test")
        Gst.util_set_object_arg(indexer, "index", "/x/y.faiss")
        self.assertEqual(children["embedder"].get_property("input-size"), 32)
        self.assertEqual(children["cifarsrc"].get_property("split"),
                         indexer.get_property("split"))
        self.assertEqual(children["faissindexer"].get_property("location"), "/x/y.faiss")
        self.assertEqual(indexer.get_property("index"), "/x/y.faiss")

    def test_indexes_the_split(self):
        index = self.path("train.faiss")
        run = launch("cifarindexer", "dataset=" + self.dataset, "index=" + index, *NATIVE)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)

        gallery = faiss.read_index(index)
        self.assertEqual(gallery.ntotal, self.train)
        self.assertEqual(gallery.d, 512)
        vectors = gallery.reconstruct_n(0, gallery.ntotal)
        # The embedder normalises, so inner product is cosine.
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)

        db = sqlite3.connect(index + ".db")
        items = db.execute("SELECT id, label, label_name, source FROM items ORDER BY id").fetchall()
        model, prep, dims, metric, count = db.execute(
            "SELECT model_id, preprocessing_id, dims, metric, count FROM index_facts").fetchone()
        db.close()
        expected = [(i, cifar_fixtures.label("cifar10", "train", i),
                     cifar_fixtures.NAMES10[cifar_fixtures.label("cifar10", "train", i)],
                     "cifar10/train/%d" % i) for i in range(self.train)]
        self.assertEqual(items, expected)
        self.assertTrue(model.startswith("resnet18"), model)
        self.assertIn("resize=0", prep)
        self.assertIn("crop=32", prep)
        self.assertEqual((dims, metric, count), (512, "ip", self.train))

        # The same three elements spelled out give the same vectors.
        spelled = self.path("spelled.faiss")
        run = launch("cifarsrc", "location=" + self.dataset, "!", "embedder", *NATIVE, "!",
                     "faissindexer", "location=" + spelled)
        self.assertEqual(run.returncode, 0, run.stderr)
        np.testing.assert_array_equal(
            faiss.read_index(spelled).reconstruct_n(0, self.train), vectors)

    def test_split_and_index_type(self):
        index = self.path("test.faiss")
        run = launch("cifarindexer", "dataset=" + self.dataset, "index=" + index, "split=test",
                     "index-type=HNSW8", "metric=l2", *NATIVE)
        self.assertEqual(run.returncode, 0, run.stderr)
        gallery = faiss.read_index(index)
        self.assertEqual(gallery.ntotal, cifar_fixtures.TEST10)
        self.assertEqual(gallery.metric_type, faiss.METRIC_L2)

    def test_missing_dataset_is_an_error(self):
        missing = self.path("no-such-dataset")
        index = self.path("never.faiss")
        run = launch("cifarindexer", "dataset=" + missing, "index=" + index, *NATIVE)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn(missing, run.stdout + run.stderr)
        self.assertFalse(os.path.exists(index))

    def test_index_cifar_script(self):
        index = self.path("script/gallery.faiss")
        script = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines", "index-cifar.sh")
        env = dict(os.environ, WEIGHTS="random", INPUT_SIZE="32", RESIZE="0", BATCH_SIZE="8",
                   BUILD_DIR=os.environ["VS_BUILD_DIR"])
        run = subprocess.run([script, self.dataset, index], env=env, capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("wrote %s" % index, run.stdout)
        self.assertIn("%d vectors, 512 dims, metric ip" % self.train, run.stdout)
        self.assertEqual(faiss.read_index(index).ntotal, self.train)

        run = subprocess.run([script, self.path("missing")], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(run.returncode, 1)
        self.assertIn("does not exist", run.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
