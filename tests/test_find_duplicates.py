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
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, expect_error, finish, tmp_dir  # noqa: E402

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


def sh(what, *args, **env):
    """Runs a script; checks that it succeeds if what is given."""
    run = checks.run(list(args), timeout=180,
                     env=dict(os.environ, BUILD_DIR=os.environ["VS_BUILD_DIR"], **env))
    if what:
        check(run.returncode == 0, what,
              None if run.returncode == 0 else f"{run.stdout}\n{run.stderr}")
    return run


def groups_of(stdout):
    groups = []
    for line in stdout.splitlines():
        if re.match(r"group \d+: \d+ items", line):
            groups.append(set())
        elif line.startswith("  id ") and groups:
            groups[-1].add(line.split(None, 2)[2])
    return groups


def main():
    with tmp_dir() as tmp:
        root = os.path.join(tmp, "gallery")
        for d in ("pics", "copies"):
            os.makedirs(os.path.join(root, d))
        for s in range(8):
            blocks(s).save(os.path.join(root, f"pics/base {s}.png"))
        blocks(0).save(os.path.join(root, "copies/copy of 0.png"))
        blocks(0).resize((72, 60), Image.BICUBIC).save(os.path.join(root, "copies/small 0.png"))
        blocks(1).save(os.path.join(root, "copies/caf\u00e9 1.jpg"), quality=70)
        indexes = {}
        for metric, index_type in (("ip", "Flat"), ("l2", "HNSW32")):
            index = os.path.join(tmp, f"{metric}.faiss")
            sh(f"index-folder.sh builds a {metric} {index_type} index",
               os.path.join(SCRIPTS, "index-folder.sh"), root, index, WEIGHTS="random",
               INPUT_SIZE="64", RESIZE="0", METRIC=metric, INDEX_TYPE=index_type)
            indexes[metric] = index

        def find(metric, **env):
            sheet = os.path.join(tmp, f"{metric}-sheet.png")
            what = f"find-duplicates.sh runs on the {metric} index {env}"
            out = sh(what, os.path.join(SCRIPTS, "find-duplicates.sh"), indexes[metric], "--out",
                     sheet, MAX_DISTANCE=LIMITS[metric], THUMB=str(THUMB), **env)
            return out.stdout, sheet

        # The groups are the families.
        for metric in ("ip", "l2"):
            stdout, _ = find(metric)
            check(groups_of(stdout) == FAMILIES, f"{metric}: the groups are the two families",
                  stdout)
            check("2 groups, 5 items in them" in stdout, f"{metric}: the summary", stdout)
            check(("squared L2" if metric == "l2" else "cosine distance") in stdout,
                  f"{metric}: the distance is named", stdout)

        # The contact sheet.
        stdout, sheet = find("ip")
        check(f"contact sheet of the 2 largest groups: {sheet}" in stdout,
              "the contact sheet is announced", stdout)
        image = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
        row = 16 + THUMB + 16 + 6
        check(image.shape == (6 + 2 * row, 240, 3), "the sheet has a row per group", image.shape)
        # Row 1 holds base 0 and its two copies, row 2 base 1 and its re-encode.
        for r, (seed, count) in enumerate(((0, 3), (1, 2))):
            expected = np.asarray(blocks(seed).resize((THUMB, THUMB), Image.BILINEAR), int)
            for c in range(3):
                top, left = 6 + r * row + 16, 6 + c * (THUMB + 6)
                tile = image[top:top + THUMB, left:left + THUMB]
                if c < count:
                    diff = np.abs(tile - expected).mean()
                    check(diff < 20, f"row {r} tile {c} is the picture's thumbnail", diff)
                else:
                    check((tile == 24).all(), f"row {r} has no tile {c}")

        # Only one group on the sheet.
        stdout, sheet = find("ip", SHEET_GROUPS="1")
        check("contact sheet of the 1 largest groups" in stdout,
              "SHEET_GROUPS=1: one group announced", stdout)
        size = Image.open(sheet).size
        check(size == (240, 6 + 16 + THUMB + 16 + 6), "SHEET_GROUPS=1: one row", size)

        # A wide limit groups everything.
        out = sh("find-duplicates.sh runs with a wide limit",
                 os.path.join(SCRIPTS, "find-duplicates.sh"), indexes["ip"], "--out",
                 os.path.join(tmp, "all.png"), MAX_DISTANCE="0.5")
        check(len(groups_of(out.stdout)) == 1 and "1 groups, 11 items in them" in out.stdout,
              "a wide limit groups everything", out.stdout)

        # Bad input.
        bad = sh(None, os.path.join(SCRIPTS, "find-duplicates.sh"), indexes["ip"],
                 MAX_DISTANCE="-1")
        expect_error(bad, "a negative limit is refused",
                     "--max-distance must be a number from 0 to 4, not '-1'", rc=1)
        missing = sh(None, os.path.join(SCRIPTS, "find-duplicates.sh"),
                     os.path.join(tmp, "none.faiss"))
        expect_error(missing, "a missing index is refused, naming index-folder.sh",
                     "index-folder.sh", rc=1)
    finish()


if __name__ == "__main__":
    main()
