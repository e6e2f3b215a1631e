#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python applications read the metas through the GstVisualSearch-1.0 typelib:
examples/read-metas.py, run against the build tree (GI_TYPELIB_PATH and
LD_LIBRARY_PATH at build/plugin/meta), prints every frame's sample, embedding
and neighbours, and they agree with the index it searched and with what the C
example (neighbors-app, reading the struct directly) prints for the same frames.

Usage: test_gir.py READ_METAS_PY NEIGHBORS_APP   (VS_BUILD_DIR, VS_SOURCE_DIR set by meson)
"""
import math
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cifar_fixtures  # noqa: E402

READ_METAS, NEIGHBORS_APP = sys.argv[1], sys.argv[2]
META_DIR = os.path.join(os.environ["VS_BUILD_DIR"], "plugin", "meta")
EMBEDDER = "embedder weights=random input-size=32 resize=0"
GALLERY = sum(cifar_fixtures.TRAIN10)
K = 5
FRAMES = 3


def run(*args, env=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    if p.returncode != 0:
        raise AssertionError(f"{args[0]} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout


def neighbours(out, pattern):
    """Per frame, the list of neighbour tuples that `pattern` matches, in order."""
    frames = []
    for line in out.splitlines():
        if line.startswith("frame "):
            frames.append([])
        m = re.match(pattern, line)
        if m:
            frames[-1].append(m.groupdict())
    return frames


class TypelibTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cifar = os.path.join(cls.tmp.name, "cifar-10-batches-py")
        cifar_fixtures.write_cifar10_py(cifar, "py2")
        cls.index = os.path.join(cls.tmp.name, "gallery.faiss")
        run("gst-launch-1.0", "-q", "cifarsrc", f"location={cifar}", "split=train", "!",
            *EMBEDDER.split(), "!", "faissindexer", f"location={cls.index}")
        cls.pipeline = (f'cifarsrc location="{cifar}" split=test num-buffers={FRAMES} ! '
                        f'{EMBEDDER} ! faisssearch index="{cls.index}" k={K} ! '
                        'appsink name=sink sync=false')
        env = dict(os.environ, GI_TYPELIB_PATH=META_DIR,
                   LD_LIBRARY_PATH=META_DIR + os.pathsep + os.environ.get("LD_LIBRARY_PATH", ""))
        cls.out = run("/usr/bin/python3", READ_METAS, cls.pipeline, env=env)
        print(cls.out)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_frame_read(self):
        self.assertIn(f"{FRAMES} frames, {FRAMES} with visualsearch metas", self.out)

    def test_samples(self):
        samples = re.findall(r"sample id (-?\d+) label (-?\d+) (\S+) source (\S+)", self.out)
        want = [(str(i), str(cifar_fixtures.label("cifar10", "test", i)),
                 cifar_fixtures.NAMES10[cifar_fixtures.label("cifar10", "test", i)])
                for i in range(FRAMES)]
        self.assertEqual([s[:3] for s in samples], want)
        for s in samples:
            self.assertNotEqual(s[3], "-")

    def test_embeddings(self):
        emb = re.findall(r"embedding dims (\d+) values (\d+) norm ([\d.]+) normalized (\w+)",
                         self.out)
        self.assertEqual(len(emb), FRAMES)
        for dims, n_values, norm, normalized in emb:
            self.assertEqual(int(dims), 512)
            self.assertEqual(int(n_values), 512, "get_values() returned another length")
            self.assertTrue(math.isclose(float(norm), 1.0, abs_tol=1e-4), norm)
            self.assertEqual(normalized, "True")

    def test_neighbours(self):
        self.assertEqual(re.findall(r"neighbours (\d+) metric (\w+)", self.out),
                         [(str(K), "ip")] * FRAMES)
        frames = neighbours(self.out, r"\s+\d+\. id (?P<id>-?\d+) distance (?P<d>\S+) "
                                      r"label (?P<label>-?\d+) (?P<name>\S+) source (?P<src>\S+)")
        self.assertEqual([len(f) for f in frames], [K] * FRAMES)
        for f in frames:
            ids = [int(n["id"]) for n in f]
            self.assertEqual(len(set(ids)), K, f"repeated ids {ids}")
            for i in ids:
                self.assertIn(i, range(GALLERY))
            distances = [float(n["d"]) for n in f]
            self.assertEqual(distances, sorted(distances, reverse=True),
                             "inner product: nearest (largest) first")
            for n in f:
                label = cifar_fixtures.label("cifar10", "train", int(n["id"]))
                self.assertEqual(int(n["label"]), label)
                self.assertEqual(n["name"], cifar_fixtures.NAMES10[label])
                self.assertNotEqual(n["src"], "-", "the gallery item's source is lost")

    def test_same_as_c(self):
        c_out = run(NEIGHBORS_APP, self.pipeline)
        c = neighbours(c_out, r"\s+\d+\. id (?P<id>-?\d+) label (?P<label>-?\d+) (?P<name>\S+) "
                              r"distance (?P<d>\S+) source (?P<src>\S+)")
        py = neighbours(self.out, r"\s+\d+\. id (?P<id>-?\d+) distance (?P<d>\S+) "
                                  r"label (?P<label>-?\d+) (?P<name>\S+) source (?P<src>\S+)")
        self.assertEqual(len(c), FRAMES, c_out)
        self.assertEqual(py, c)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
