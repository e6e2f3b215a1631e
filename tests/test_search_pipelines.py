#!/usr/bin/python3
"""The search scripts in pipelines/, run as a user would: search-image.sh
finds a gallery image itself and draws the contact sheet, search-video.sh
writes an annotated video with every frame, search-webcam.sh runs live from a
test source and stops with a clear message when there is no camera.

Usage: test_search_pipelines.py   (VS_SOURCE_DIR and VS_BUILD_DIR set by meson)
"""
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_search_e2e import EMBEDDER, NAMES, write_cifar10  # noqa: E402

PIPELINES = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines")


def sh(*args, check=True, **env):
    run_env = dict(os.environ, BUILD_DIR=os.environ["VS_BUILD_DIR"], **env)
    result = subprocess.run(list(args), capture_output=True, text=True, env=run_env,
                            timeout=180)
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

    def test_search_image(self):
        query = self.path("query.png")
        sh("gst-launch-1.0", "-q", "cifarsrc", f"location={self.dataset}", "offset=7",
           "num-buffers=1", "!", "videoconvert", "!", "pngenc", "!", "filesink",
           f"location={query}")
        sheet = self.path("sheet.png")
        out = sh(os.path.join(PIPELINES, "search-image.sh"), query, self.index,
                 "--dataset", self.dataset, "--out", sheet, "-k", "4", THUMB="64")
        first = [line for line in out.stdout.splitlines() if line.strip().startswith("1.")]
        self.assertEqual(len(first), 1, out.stdout)
        name = NAMES[self.labels["cifar10/train/7"]]
        self.assertRegex(first[0], rf"1\. {name} +1\.0000  id 7  cifar10/train/7")
        self.assertIn(f"contact sheet: {sheet}", out.stdout)

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

    def test_index_mismatch_is_reported(self):
        query = self.path("noise.png")
        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(query)
        out = sh(os.path.join(PIPELINES, "search-image.sh"), query, self.index,
                 check=False, INPUT_SIZE="64")
        self.assertEqual(out.returncode, 1)
        self.assertIn("different preprocessing", out.stderr)
        out = sh(os.path.join(PIPELINES, "search-image.sh"), query, self.path("none.faiss"),
                 check=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn("index-cifar.sh", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
