# SPDX-License-Identifier: LGPL-2.1-or-later
"""pipelines/find-duplicates.sh (visualsearch-find-duplicates) on a generated
folder: distinct pictures plus near-duplicates of two of them (an exact copy,
a resized copy, a JPEG re-encode), indexed by index-folder.sh with random
weights. The groups printed must be exactly the two families, for an inner
product Flat index (FAISS's own range search) and for an l2 HNSW index (no
range search in FAISS 1.7.3: the exact fallback, and the l2 limit); the
contact sheet has a row per group with the pictures' thumbnails; bad input
ends with a message."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

SCRIPTS = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines")
THUMB = 48
# Random weights put distinct pictures about 0.02 apart in cosine distance
# and these near-duplicates under 0.0005: limits far from both.
LIMITS = {"ip": "0.002", "l2": "0.004"}   # l2 = 2 (1 - cosine) on unit vectors
FAMILIES = [{"pics/base 0.png", "copies/copy of 0.png", "copies/small 0.png"},
            {"pics/base 1.png", "copies/caf\u00e9 1.jpg"}]


def blocks(seed, size=(96, 80)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).resize(
        size, Image.BILINEAR)


def sh(*args, check=True, **env):
    run = subprocess.run(list(args), capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, BUILD_DIR=os.environ["VS_BUILD_DIR"], **env))
    if check and run.returncode != 0:
        raise AssertionError(f"{args[0]} failed:\n{run.stdout}\n{run.stderr}")
    return run


def groups_of(stdout):
    groups = []
    for line in stdout.splitlines():
        if re.match(r"group \d+: \d+ items", line):
            groups.append(set())
        elif line.startswith("  id ") and groups:
            groups[-1].add(line.split(None, 2)[2])
    return groups


class FindDuplicates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = os.path.join(cls.tmp.name, "gallery")
        for d in ("pics", "copies"):
            os.makedirs(os.path.join(root, d))
        for s in range(8):
            blocks(s).save(os.path.join(root, f"pics/base {s}.png"))
        blocks(0).save(os.path.join(root, "copies/copy of 0.png"))
        blocks(0).resize((72, 60), Image.BICUBIC).save(os.path.join(root, "copies/small 0.png"))
        blocks(1).save(os.path.join(root, "copies/caf\u00e9 1.jpg"), quality=70)
        cls.indexes = {}
        for metric, index_type in (("ip", "Flat"), ("l2", "HNSW32")):
            index = os.path.join(cls.tmp.name, f"{metric}.faiss")
            sh(os.path.join(SCRIPTS, "index-folder.sh"), root, index, WEIGHTS="random",
               INPUT_SIZE="64", RESIZE="0", METRIC=metric, INDEX_TYPE=index_type)
            cls.indexes[metric] = index

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def find(self, metric, **env):
        sheet = os.path.join(self.tmp.name, f"{metric}-sheet.png")
        out = sh(os.path.join(SCRIPTS, "find-duplicates.sh"), self.indexes[metric], "--out",
                 sheet, MAX_DISTANCE=LIMITS[metric], THUMB=str(THUMB), **env)
        return out.stdout, sheet

    def test_groups_are_the_families(self):
        for metric in ("ip", "l2"):
            with self.subTest(metric=metric):
                stdout, _ = self.find(metric)
                self.assertEqual(groups_of(stdout), FAMILIES, stdout)
                self.assertIn("2 groups, 5 items in them", stdout)
                self.assertIn("squared L2" if metric == "l2" else "cosine distance", stdout)

    def test_contact_sheet(self):
        stdout, sheet = self.find("ip")
        self.assertIn(f"contact sheet of the 2 largest groups: {sheet}", stdout)
        image = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
        row = 16 + THUMB + 16 + 6
        self.assertEqual(image.shape, (6 + 2 * row, 240, 3))
        # Row 1 holds base 0 and its two copies, row 2 base 1 and its re-encode.
        for r, (seed, count) in enumerate(((0, 3), (1, 2))):
            expected = np.asarray(blocks(seed).resize((THUMB, THUMB), Image.BILINEAR), int)
            for c in range(3):
                top, left = 6 + r * row + 16, 6 + c * (THUMB + 6)
                tile = image[top:top + THUMB, left:left + THUMB]
                if c < count:
                    self.assertLess(np.abs(tile - expected).mean(), 20, (r, c))
                else:
                    self.assertTrue((tile == 24).all(), f"row {r} has no tile {c}")

    def test_only_one_group_on_the_sheet(self):
        stdout, sheet = self.find("ip", SHEET_GROUPS="1")
        self.assertIn("contact sheet of the 1 largest groups", stdout)
        self.assertEqual(Image.open(sheet).size, (240, 6 + 16 + THUMB + 16 + 6))

    def test_a_wide_limit_groups_everything(self):
        out = sh(os.path.join(SCRIPTS, "find-duplicates.sh"), self.indexes["ip"], "--out",
                 os.path.join(self.tmp.name, "all.png"), MAX_DISTANCE="0.5")
        self.assertEqual(len(groups_of(out.stdout)), 1)
        self.assertIn("1 groups, 11 items in them", out.stdout)

    def test_bad_input(self):
        bad = sh(os.path.join(SCRIPTS, "find-duplicates.sh"), self.indexes["ip"], check=False,
                 MAX_DISTANCE="-1")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("--max-distance must be a number from 0 to 4, not '-1'", bad.stderr)
        missing = sh(os.path.join(SCRIPTS, "find-duplicates.sh"),
                     os.path.join(self.tmp.name, "none.faiss"), check=False)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("index-folder.sh", missing.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=sys.argv[:1])
