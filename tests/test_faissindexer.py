# SPDX-License-Identifier: LGPL-2.1-or-later
"""faissindexer's files as Python users see them: the index in Python faiss,
the catalog in sqlite3, the export in NumPy; and a writer killed mid-write.

usage: test_faissindexer.py FAISSINDEXER_FEED
"""
import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

import faiss
import fcntl
import io
import numpy as np
from PIL import Image

FEED = None
DIMS = 32


def unit_rows(n, seed):
    v = np.random.default_rng(seed).standard_normal((n, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class FaissIndexerFiles(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.index = os.path.join(self.dir.name, "gallery.faiss")

    def tearDown(self):
        self.dir.cleanup()

    def feed(self, vectors, *props, model=None, frame=None, expect_ok=True):
        path = os.path.join(self.dir.name, "vectors.f32")
        vectors.astype("<f4").tofile(path)
        env = dict(os.environ)
        if model:
            env["VS_FEED_MODEL"] = model
        if frame:
            env["VS_FEED_FRAME"] = frame
        run = subprocess.run([FEED, path, str(DIMS), self.index, *props], env=env,
                             capture_output=True, text=True, timeout=120)
        if expect_ok:
            self.assertEqual(run.returncode, 0, run.stderr)
        else:
            self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        return run

    def catalog(self):
        db = sqlite3.connect(self.index + ".db")
        try:
            facts = db.execute("SELECT model_id, preprocessing_id, dims, metric, index_type, "
                               "count, created FROM index_facts").fetchall()
            items = db.execute("SELECT id, label, label_name, source FROM items "
                               "ORDER BY id").fetchall()
        finally:
            db.close()
        return facts, items

    def thumbnails(self):
        db = sqlite3.connect(self.index + ".db")
        try:
            return dict(db.execute("SELECT id, jpeg FROM thumbnails ORDER BY id").fetchall())
        finally:
            db.close()

    def assert_thumbnail_of_row(self, jpeg, row, size):
        image = Image.open(io.BytesIO(jpeg))
        self.assertEqual(image.format, "JPEG")
        self.assertEqual(image.size, size)
        red = 37 * row % 256
        mean = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, [red, 255 - red, 128], atol=6)

    def test_thumbnails_of_video_frames(self):
        vectors = unit_rows(12, 20)
        self.feed(vectors, frame="200x100:BGRx")
        thumbs = self.thumbnails()
        self.assertEqual(sorted(thumbs), list(range(12)))
        for row, jpeg in thumbs.items():
            self.assert_thumbnail_of_row(jpeg, row, (128, 64))
        self.assertEqual(faiss.read_index(self.index).ntotal, 12)

        # At a frame rate: the converter to RGB keeps it (GStreamer asserted
        # on the differing rates and made no thumbnails).
        run = self.feed(vectors[:4], frame="200x100:BGRx@30")
        self.assertNotIn("CRITICAL", run.stderr)
        self.assertEqual(sorted(self.thumbnails()), [0, 1, 2, 3])

        # Smaller frames are enlarged; another size; RGB needs no conversion.
        self.feed(vectors[:3], "thumbnail-size=48", frame="30x45:RGB")
        thumbs = self.thumbnails()
        self.assertEqual(sorted(thumbs), [0, 1, 2])
        for row, jpeg in thumbs.items():
            self.assert_thumbnail_of_row(jpeg, row, (32, 48))

    def test_no_thumbnails_when_off_or_not_video(self):
        self.feed(unit_rows(5, 21), "thumbnail-size=0", frame="64x64:RGB")
        self.assertEqual(self.thumbnails(), {})
        self.feed(unit_rows(5, 21))
        self.assertEqual(self.thumbnails(), {})

    def test_append_keeps_thumbnails(self):
        self.feed(unit_rows(5, 22), frame="40x40:RGB")
        before = self.thumbnails()
        self.feed(unit_rows(3, 23), "append=true", frame="40x40:RGB")
        after = self.thumbnails()
        self.assertEqual(sorted(after), list(range(8)))
        for row in range(5):
            self.assertEqual(after[row], before[row])
        # The appended frames are rows 0..2 of the second feed.
        for row in range(3):
            self.assert_thumbnail_of_row(after[5 + row], row, (128, 128))

    def test_append_to_a_schema_2_catalog(self):
        self.feed(unit_rows(4, 24))
        db = sqlite3.connect(self.index + ".db")
        db.execute("DROP TABLE thumbnails")
        db.execute("PRAGMA user_version = 2")
        db.commit()
        db.close()
        self.feed(unit_rows(2, 25), "append=true", frame="16x16:RGB")
        self.assertEqual(sorted(self.thumbnails()), [4, 5])
        self.assertEqual(self.catalog()[0][0][5], 6)
        self.assertEqual(faiss.read_index(self.index).ntotal, 6)

    def test_flat_index_catalog_and_npy(self):
        vectors = unit_rows(200, 1)
        run = self.feed(vectors, "export-npy=true", "progress-interval=50")
        self.assertIn("progress: collected 100 embeddings", run.stdout)

        index = faiss.read_index(self.index)
        self.assertEqual(index.ntotal, 200)
        self.assertEqual(index.d, DIMS)
        self.assertEqual(index.metric_type, faiss.METRIC_INNER_PRODUCT)
        np.testing.assert_array_equal(index.reconstruct_n(0, 200), vectors)

        reference = faiss.IndexFlatIP(DIMS)
        reference.add(vectors)
        queries = unit_rows(8, 2)
        d_ours, i_ours = index.search(queries, 5)
        d_ref, i_ref = reference.search(queries, 5)
        np.testing.assert_array_equal(i_ours, i_ref)
        np.testing.assert_allclose(d_ours, d_ref, rtol=1e-6)

        facts, items = self.catalog()
        self.assertEqual(len(facts), 1)
        model, prep, dims, metric, index_type, count, created = facts[0]
        self.assertEqual((model, prep, dims, metric, index_type, count),
                         ("resnet18:feed", "feed", DIMS, "ip", "Flat", 200))
        self.assertRegex(created, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(len(items), 200)
        self.assertEqual(items[17], (17, 7, "class7", "feed/17"))

        embeddings = np.load(os.path.join(self.dir.name, "embeddings.npy"))
        labels = np.load(os.path.join(self.dir.name, "labels.npy"))
        self.assertEqual(embeddings.dtype, np.float32)
        np.testing.assert_array_equal(embeddings, vectors)
        self.assertEqual(labels.dtype, np.int64)
        np.testing.assert_array_equal(labels, np.arange(200) % 10)

    def test_factory_strings(self):
        vectors = unit_rows(400, 3)
        reference = faiss.IndexFlatL2(DIMS)
        reference.add(vectors)
        queries = vectors[:10] + 0.01
        _, i_ref = reference.search(queries, 4)
        for index_type, exact in [("IVF8,Flat", True), ("HNSW16", False),
                                  ("IVF4,PQ8np", False), ("PCA32,IVF4,Flat", False)]:
            with self.subTest(index_type=index_type):
                self.feed(vectors, "index-type=" + index_type, "metric=l2")
                index = faiss.read_index(self.index)
                self.assertEqual(index.ntotal, 400)
                self.assertEqual(self.catalog()[0][0][4], index_type)
                if index_type.startswith("IVF"):
                    faiss.extract_index_ivf(index).nprobe = 8
                _, found = index.search(queries, 4)
                if exact:
                    # IVF with every list probed is exhaustive; its direct
                    # map gives back the stored vectors.
                    np.testing.assert_array_equal(found, i_ref)
                    np.testing.assert_array_equal(index.reconstruct(123), vectors[123])
                else:
                    # Each query sits next to its own gallery vector.
                    np.testing.assert_array_equal(found[:, 0], np.arange(10))

    def test_too_few_vectors_names_the_minimum(self):
        run = self.feed(unit_rows(20, 4), "index-type=IVF64,Flat", expect_ok=False)
        self.assertIn("at least 64 training vectors", run.stderr)
        self.assertFalse(os.path.exists(self.index))
        run = self.feed(unit_rows(100, 4), "index-type=IVF2,PQ8np", expect_ok=False)
        self.assertIn("at least 256 training vectors", run.stderr)

    def test_append_and_mismatch(self):
        first, second = unit_rows(120, 5), unit_rows(30, 6)
        self.feed(first)
        self.feed(second, "append=true")
        index = faiss.read_index(self.index)
        self.assertEqual(index.ntotal, 150)
        np.testing.assert_array_equal(index.reconstruct_n(0, 150), np.vstack([first, second]))
        facts, items = self.catalog()
        self.assertEqual(facts[0][5], 150)
        self.assertEqual([row[0] for row in items], list(range(150)))

        run = self.feed(second, "append=true", model="resnet50:other", expect_ok=False)
        self.assertIn("resnet50:other", run.stderr)
        self.assertIn("resnet18:feed", run.stderr)
        run = self.feed(second, "append=true", "metric=l2", expect_ok=False)
        self.assertIn("metric ip", run.stderr)
        self.assertIn("metric l2", run.stderr)
        self.assertEqual(faiss.read_index(self.index).ntotal, 150)
        self.assertEqual(self.catalog()[0][0][5], 150)

    def test_catalog_records_its_index(self):
        self.feed(unit_rows(50, 8))
        db = sqlite3.connect(self.index + ".db")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            size, crc = db.execute("SELECT index_bytes, index_crc32 FROM index_facts").fetchone()
        finally:
            db.close()
        self.assertEqual(version, 6)
        with open(self.index, "rb") as f:
            content = f.read()
        self.assertEqual(size, len(content))
        self.assertEqual(crc, zlib.crc32(content))
        self.assertEqual(faiss.read_index(self.index).ntotal, 50)

    def appender(self, vectors, name, env_extra=None):
        path = os.path.join(self.dir.name, name)
        vectors.astype("<f4").tofile(path)
        return subprocess.Popen([FEED, path, str(DIMS), self.index, "append=true"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_concurrent_appenders_keep_both(self):
        # Two appending runs at once used to both exit 0 with one run's
        # vectors lost: each wrote back what it had read plus its own.
        base, first, second = unit_rows(1017, 9), unit_rows(100, 10), unit_rows(100, 11)
        self.feed(base)
        runs = [self.appender(first, "first.f32"), self.appender(second, "second.f32")]
        for run in runs:
            out, err = run.communicate(timeout=120)
            self.assertEqual(run.returncode, 0, err)
        index = faiss.read_index(self.index)
        self.assertEqual(index.ntotal, 1217)
        stored = index.reconstruct_n(0, 1217)
        np.testing.assert_array_equal(stored[:1017], base)
        added = {row.tobytes() for row in stored[1017:]}
        self.assertEqual(added, {row.tobytes() for row in np.vstack([first, second])})
        facts, items = self.catalog()
        self.assertEqual(facts[0][5], 1217)
        self.assertEqual(len(items), 1217)

    def test_appender_waits_for_the_lock_and_reads_after_it(self):
        # An appender reads the index only once it holds the lock, so what
        # another writer replaced meanwhile is kept.
        base, other, mine = unit_rows(40, 12), unit_rows(7, 13), unit_rows(5, 14)
        self.feed(base)
        bigger = os.path.join(self.dir.name, "bigger.faiss")
        for path in (self.index, self.index + ".db"):
            shutil.copy(path, path.replace("gallery.faiss", "bigger.faiss"))
        subprocess.run([FEED, self.vectors_file(other), str(DIMS), bigger, "append=true"],
                       check=True, capture_output=True, timeout=120)
        with open(self.index + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            run = self.appender(mine, "mine.f32")
            waiting = False
            for line in run.stdout:
                if "waiting for another writer" in line:
                    waiting = True
                    break
            self.assertTrue(waiting, "the appender did not wait for the lock")
            self.assertIn(self.index + ".lock", line)
            os.replace(bigger, self.index)
            os.replace(bigger + ".db", self.index + ".db")
        out, err = run.communicate(timeout=120)
        self.assertEqual(run.returncode, 0, err)
        index = faiss.read_index(self.index)
        self.assertEqual(index.ntotal, 52)
        np.testing.assert_array_equal(index.reconstruct_n(0, 52), np.vstack([base, other, mine]))

    def vectors_file(self, vectors):
        path = os.path.join(self.dir.name, "extra.f32")
        vectors.astype("<f4").tofile(path)
        return path

    def test_missing_directory_fails_before_any_work(self):
        missing = os.path.join(self.dir.name, "not-there")
        self.index = os.path.join(missing, "gallery.faiss")
        run = self.feed(unit_rows(20, 15), expect_ok=False)
        self.assertIn(missing, run.stderr)
        self.assertIn("does not exist", run.stderr)
        self.assertNotIn("indexing embeddings", run.stdout)

    def test_kill_mid_write_keeps_previous_index(self):
        previous = unit_rows(100, 7)
        self.feed(previous)
        # A big index takes a while to write: SIGKILL the writer as soon as
        # its temporary file appears.
        child = subprocess.Popen([FEED, "random:150000", "256", self.index],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pattern = "%s.tmp.%d.*" % (self.index, child.pid)
        deadline = time.monotonic() + 90
        while not glob.glob(pattern) and child.poll() is None:
            self.assertLess(time.monotonic(), deadline, "the writer never started writing")
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
        child.wait()
        self.assertEqual(child.returncode, -signal.SIGKILL,
                         "the writer finished before it could be killed")
        self.assertTrue(glob.glob(pattern), "the writer was not caught mid-write")

        index = faiss.read_index(self.index)
        self.assertEqual(index.ntotal, 100)
        np.testing.assert_array_equal(index.reconstruct_n(0, 100), previous)
        facts, items = self.catalog()
        self.assertEqual(facts[0][5], 100)
        self.assertEqual(len(items), 100)

        # The leftover temporary does not stand in the way of the next run,
        # which removes it: its writer is gone. A temporary of a live
        # process, or a file that only looks like one, stays.
        live = "%s.tmp.%d.AbC123" % (self.index, os.getpid())
        lookalike = self.index + ".tmp.notes"
        for path in (live, lookalike):
            open(path, "w").close()
        run = self.feed(previous[:10])
        self.assertEqual(faiss.read_index(self.index).ntotal, 10)
        self.assertEqual(glob.glob(pattern), [])
        self.assertIn("left by writers that were killed", run.stdout)
        self.assertTrue(os.path.exists(live))
        self.assertTrue(os.path.exists(lookalike))


if __name__ == "__main__":
    FEED = sys.argv.pop(1)
    unittest.main(verbosity=2)
