#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The search scripts in pipelines/, run as a user would: search-image.sh
finds a gallery image itself and draws the contact sheet, search-video.sh
writes an annotated video with every frame, search-webcam.sh runs live from a
test source and stops with a clear message when there is no camera. Each of
them, and evaluate-cifar.sh, also runs with an index built by a TorchScript
model, which the embedder adopts from the index with nothing set.

FolderGallery: the same scripts with a gallery folder indexed by
index-folder.sh, run from another directory: the overlay finds the index by
itself and draws the catalog's thumbnails even when the folder has moved, and
with thumbnail-size=0 it reads the originals relative to the folder the
catalog records.

Usage: test_search_pipelines.py   (VS_SOURCE_DIR and VS_BUILD_DIR set by meson)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_search_e2e import EMBEDDER, NAMES, write_cifar10  # noqa: E402
from torchscript_fixtures import write_tiny_torchscript  # noqa: E402

PIPELINES = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines")


def sh(*args, check=True, cwd=None, **env):
    run_env = dict(os.environ, BUILD_DIR=os.environ["VS_BUILD_DIR"], **env)
    result = subprocess.run(list(args), capture_output=True, text=True, env=run_env,
                            timeout=180, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


class SearchPipelines(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dataset = os.path.join(cls.tmp.name, "cifar-10-batches-py")
        cls.labels = write_cifar10(cls.dataset, seed=5)
        cls.index = os.path.join(cls.tmp.name, "gallery.faiss")
        sh("gst-launch-1.0", "-q", "cifarsrc", f"location={cls.dataset}", "split=train", "!",
           *EMBEDDER.split(), "!", "faissindexer", f"location={cls.index}")
        cls.model = os.path.join(cls.tmp.name, "tiny.pt")
        write_tiny_torchscript(cls.model, seed=4)
        cls.ts_index = os.path.join(cls.tmp.name, "tiny.faiss")
        sh("gst-launch-1.0", "-q", "cifarsrc", f"location={cls.dataset}", "split=train", "!",
           "embedder", f"model={cls.model}", "input-size=32", "resize=0", "!",
           "faissindexer", f"location={cls.ts_index}")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_help(self):
        for script in ("search-image.sh", "search-video.sh", "search-webcam.sh"):
            out = sh(os.path.join(PIPELINES, script), "--help")
            self.assertIn("INDEX", out.stdout)
            self.assertNotEqual(sh(os.path.join(PIPELINES, script), check=False).returncode, 0)

    def search_image(self, index, sheet):
        """Searches gallery image 7 with search-image.sh; checks it comes first."""
        query = self.path("query.png")
        sh("gst-launch-1.0", "-q", "cifarsrc", f"location={self.dataset}", "offset=7",
           "num-buffers=1", "!", "videoconvert", "!", "pngenc", "!", "filesink",
           f"location={query}")
        out = sh(os.path.join(PIPELINES, "search-image.sh"), query, index,
                 "--dataset", self.dataset, "--out", sheet, "-k", "4", THUMB="64")
        first = [line for line in out.stdout.splitlines() if line.strip().startswith("1.")]
        self.assertEqual(len(first), 1, out.stdout)
        name = NAMES[self.labels["cifar10/train/7"]]
        self.assertRegex(first[0], rf"1\. {name} +1\.0000  id 7  cifar10/train/7")
        self.assertIn(f"contact sheet: {sheet}", out.stdout)

    def test_search_image(self):
        sheet = self.path("sheet.png")
        self.search_image(self.index, sheet)

        image = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
        # 4 tiles of 64 px with 4 px gaps make a row narrower than the minimum
        # width; the query keeps a 4:3 box and the results get a band below.
        self.assertEqual(image.shape, (240 + 64 + 32 + 16, 320, 3))
        # The strip starts where its dark background (24) does in the left
        # margin; its first tile is the noise image of record 7.
        strip_top = 240 + int(np.argmax((image[240:, 0] == 24).all(axis=1)))
        tile = image[strip_top + 4:strip_top + 68, 4:68]
        self.assertGreater(tile.std(), 40, "the first thumbnail is missing")
        self.assertTrue((image[:240, :40] == 0).all(), "the query is letterboxed")

    def test_search_video(self):
        clip = self.path("clip.avi")
        sh("gst-launch-1.0", "-q", "videotestsrc", "num-buffers=12", "pattern=ball", "!",
           "video/x-raw,width=160,height=120,framerate=10/1", "!", "jpegenc", "!", "avimux",
           "!", "filesink", f"location={clip}")
        for ext in ("avi", "webm"):
            out_path = self.path(f"annotated.{ext}")
            messages = self.path(f"messages-{ext}.log")
            sh(os.path.join(PIPELINES, "search-video.sh"), clip, self.index, "--dataset",
               self.dataset, "--out", out_path, "-k", "2", INTERVAL="3", MESSAGES=messages,
               THUMB="32")
            with open(messages) as f:
                searched = sum("visualsearch, " in line for line in f)
            self.assertEqual(searched, 4, f"12 frames, every 3rd embedded ({ext})")
            frames = sh("gst-launch-1.0", "-v", "filesrc", f"location={out_path}", "!",
                        "decodebin", "!", "fakesink", "silent=false").stdout.count("chain")
            self.assertEqual(frames, 12, f"frames in the annotated {ext}")
        bad = sh(os.path.join(PIPELINES, "search-video.sh"), clip, self.index, "--out",
                 self.path("out.xyz"), check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn(".avi", bad.stderr)

    def test_search_webcam(self):
        script = os.path.join(PIPELINES, "search-webcam.sh")
        missing = sh(script, self.index, "--device", self.path("video9"), check=False)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no camera at", missing.stderr)
        live = sh(script, self.index, "--dataset", self.dataset,
                  SOURCE="videotestsrc is-live=true num-buffers=20", SINK="fakesink",
                  WIDTH="160", HEIGHT="120")
        self.assertIn("Got EOS", live.stdout)

    def test_torchscript_index(self):
        self.search_image(self.ts_index, self.path("ts-sheet.png"))

        clip = self.path("ts-clip.avi")
        sh("gst-launch-1.0", "-q", "videotestsrc", "num-buffers=6", "!",
           "video/x-raw,width=64,height=48,framerate=10/1", "!", "jpegenc", "!", "avimux",
           "!", "filesink", f"location={clip}")
        messages = self.path("ts-messages.log")
        sh(os.path.join(PIPELINES, "search-video.sh"), clip, self.ts_index, "--out",
           self.path("ts-annotated.avi"), "-k", "2", MESSAGES=messages)
        with open(messages) as f:
            self.assertEqual(sum("visualsearch, " in line for line in f), 6)

        live = sh(os.path.join(PIPELINES, "search-webcam.sh"), self.ts_index,
                  SOURCE="videotestsrc is-live=true num-buffers=5", SINK="fakesink",
                  WIDTH="64", HEIGHT="48")
        self.assertIn("Got EOS", live.stdout)

        out_dir = self.path("ts-evaluate")
        out = sh(os.path.join(PIPELINES, "evaluate-cifar.sh"), self.dataset, MODEL=self.model,
                 INPUT_SIZE="32", RESIZE="0", K="1,3", MAP="none", OUT_DIR=out_dir)
        self.assertIn("MRR", out.stdout)
        with open(os.path.join(out_dir, "metrics.json")) as f:
            self.assertEqual(json.load(f)["queries"], 8)

    def test_index_mismatch_is_reported(self):
        query = self.path("noise.png")
        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(query)
        out = sh(os.path.join(PIPELINES, "search-image.sh"), query, self.index,
                 check=False, MODEL="resnet34")
        self.assertEqual(out.returncode, 1)
        self.assertIn(f"model=resnet34 contradicts the index {self.index}", out.stderr)
        out = sh(os.path.join(PIPELINES, "search-image.sh"), query, self.path("none.faiss"),
                 check=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn("index-cifar.sh", out.stderr)


def blocks(seed, size=(48, 40)):
    """A picture of coarse random blocks: its thumbnails at any scale still
    look like it, unlike pixel noise."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    return small.resize(size, Image.NEAREST)


def first_tile(sheet, thumb):
    """The first result's thumbnail in a search-image.sh sheet (k <= 4, so the
    query box is 320x240)."""
    image = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
    strip_top = 240 + int(np.argmax((image[240:, 0] == 24).all(axis=1)))
    return image[strip_top + 4:strip_top + 4 + thumb, 4:4 + thumb]


class FolderGallery(unittest.TestCase):
    THUMB = 64

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        # A relative folder name with a space, indexed from its parent: the
        # catalog must record where it is, not how it was named.
        cls.folder = os.path.join(cls.tmp.name, "my photos")
        cls.pictures = {}
        for c, name in enumerate(("cats", "dogs")):
            for i in range(3):
                rel = f"{name}/pic {i}.png"
                os.makedirs(os.path.join(cls.folder, name), exist_ok=True)
                blocks(10 * c + i).save(os.path.join(cls.folder, rel))
                cls.pictures[rel] = name
        script = os.path.join(PIPELINES, "index-folder.sh")
        settings = dict(WEIGHTS="random", INPUT_SIZE="32", RESIZE="0")
        cls.index = os.path.join(cls.tmp.name, "thumbs.faiss")
        sh(script, "my photos", "thumbs.faiss", cwd=cls.tmp.name, **settings)
        cls.bare = os.path.join(cls.tmp.name, "bare.faiss")
        sh(script, "my photos", "bare.faiss", cwd=cls.tmp.name, THUMBNAIL_SIZE="0", **settings)
        cls.elsewhere = os.path.join(cls.tmp.name, "elsewhere")
        os.mkdir(cls.elsewhere)
        cls.query = os.path.join(cls.tmp.name, "query.png")
        shutil.copy(os.path.join(cls.folder, "dogs/pic 1.png"), cls.query)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def search_image(self, index, sheet):
        out = sh(os.path.join(PIPELINES, "search-image.sh"), self.query, index, "--out", sheet,
                 "-k", "3", THUMB=str(self.THUMB), cwd=self.elsewhere)
        self.assertRegex(out.stdout, r"1\. dogs +1\.0000  id \d+  dogs/pic 1\.png")
        self.assertNotIn("Cannot show", out.stderr)
        expected = np.asarray(blocks(11).resize((self.THUMB, self.THUMB), Image.BILINEAR),
                              dtype=int)
        tile = first_tile(sheet, self.THUMB)
        self.assertLess(np.abs(tile - expected).mean(), 20,
                        "the first thumbnail is the query's picture")

    def test_search_image_reads_the_originals_from_the_recorded_folder(self):
        self.search_image(self.bare, os.path.join(self.tmp.name, "bare.png"))

    def test_search_image_shows_catalog_thumbnails_without_the_folder(self):
        moved = self.folder + " moved"
        os.rename(self.folder, moved)
        try:
            self.search_image(self.index, os.path.join(self.tmp.name, "thumbs.png"))
        finally:
            os.rename(moved, self.folder)

    def test_search_video_and_webcam(self):
        clip = os.path.join(self.tmp.name, "clip.avi")
        sh("gst-launch-1.0", "-q", "videotestsrc", "num-buffers=4", "pattern=ball", "!",
           "video/x-raw,width=96,height=72,framerate=10/1", "!", "jpegenc", "!", "avimux",
           "!", "filesink", f"location={clip}")
        messages = os.path.join(self.tmp.name, "messages.log")
        sh(os.path.join(PIPELINES, "search-video.sh"), clip, self.bare, "--out",
           os.path.join(self.tmp.name, "annotated.avi"), "-k", "2", MESSAGES=messages,
           THUMB="16", cwd=self.elsewhere)
        with open(messages) as f:
            log = f.read()
        self.assertEqual(log.count("visualsearch, "), 4)
        self.assertRegex(log, r'sources=\(string\)< "(cats|dogs)/pic\\ \d\.png"')
        self.assertNotIn("Cannot show", log)

        live = sh(os.path.join(PIPELINES, "search-webcam.sh"), self.bare,
                  SOURCE="videotestsrc is-live=true num-buffers=5", SINK="fakesink",
                  WIDTH="96", HEIGHT="72", THUMB="16", cwd=self.elsewhere)
        self.assertIn("Got EOS", live.stdout)
        self.assertNotIn("Cannot show", live.stdout + live.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
