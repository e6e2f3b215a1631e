# SPDX-License-Identifier: LGPL-2.1-or-later
"""pipelines/find-duplicates.sh (visualsearch-find-duplicates) on a generated
folder: distinct pictures plus near-duplicates of two of them (an exact copy,
a resized copy, a JPEG re-encode), indexed by index-folder.sh with random
weights. The groups printed must be exactly the three families, the tightest
first, for an inner product Flat index (FAISS's own range search) and for an
l2 HNSW index (no range search in FAISS 1.7.3: the exact fallback, and the l2
limit); exact copies are named and shown first; the contact sheet has a row
per group with the pictures' thumbnails and says the weights are random; a
limit that links most of the gallery is warned about; bad input ends with a
message."""
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
            {"pics/base 1.png", "copies/caf\u00e9 1.jpg"},
            {"pics/base 7.png", "pics/base 7 again.png"}]
SEEDS = {"pics/base 7.png": 7, "pics/base 7 again.png": 7, "copies/caf\u00e9 1.jpg": 1,
         "pics/base 1.png": 1}


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
    return [set(items) for items in listed(stdout)]


def listed(stdout):
    """The groups' items in the order printed."""
    groups = []
    for line in stdout.splitlines():
        if re.match(r"group \d+: \d+ items", line):
            groups.append([])
        elif line.startswith("  id ") and groups:
            groups[-1].append(line.split(None, 2)[2])
    return groups


def spreads(stdout):
    return [float(m) for m in re.findall(r"^group \d+: \d+ items, farthest link ([0-9.]+)$",
                                          stdout, re.M)]


def seed_of(name):
    return SEEDS.get(name, 0)


def find_row(image, expected, left=6, below=0):
    """The top of the first tile at left, at or below `below`, that shows
    expected (an RGB array); None when none does."""
    side = expected.shape[0]

    def diff(top):
        return np.abs(image[top:top + side, left:left + side] - expected).mean()

    for top in range(below, image.shape[0] - side + 1):
        if diff(top) < 20:
            # Smooth pictures also match a few rows off: the best nearby.
            near = range(top, min(top + side, image.shape[0] - side + 1))
            return min(near, key=diff)
    return None


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
        blocks(7).save(os.path.join(root, "pics/base 7 again.png"))
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

        # The groups are the families, the tightest first, exact copies named and first.
        for metric in ("ip", "l2"):
            stdout, _ = find(metric)
            got = groups_of(stdout)
            check(len(got) == 3 and all(f in got for f in FAMILIES),
                  f"{metric}: the groups are the three families", stdout)
            check(spreads(stdout) == sorted(spreads(stdout)), f"{metric}: the tightest first",
                  spreads(stdout))
            check("3 groups, 7 items in them" in stdout, f"{metric}: the summary", stdout)
            check(("squared L2" if metric == "l2" else "cosine distance") in stdout,
                  f"{metric}: the distance is named", stdout)
            check(stdout.count("exact copies: ") == 2, f"{metric}: two sets of exact copies",
                  stdout)
            for group in listed(stdout):
                if "copies/copy of 0.png" in group:
                    check(set(group[:2]) == {"pics/base 0.png", "copies/copy of 0.png"},
                          f"{metric}: the exact copy of base 0 is listed first", group)
            check("random weights" in stdout, f"{metric}: the random weights are named", stdout)
            check("holds" not in stdout, f"{metric}: no warning about one group holding most",
                  stdout)

        # The contact sheet: a notice on top, then a row per group.
        stdout, sheet = find("ip")
        check(f"contact sheet of the 3 tightest groups: {sheet}" in stdout,
              "the contact sheet is announced", stdout)
        image = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
        check(image.shape[1] == 240, "the sheet is 240 wide", image.shape)
        notice = image[6:6 + 16, 6:234]
        orange = (notice[..., 0] > 150) & (notice[..., 2] < 120)
        check(orange.sum() > 50, "the sheet says the weights are random, in orange",
              orange.sum())
        top = 0
        for r, group in enumerate(listed(stdout)):
            expected = np.asarray(blocks(seed_of(group[0])).resize((THUMB, THUMB),
                                                                   Image.BILINEAR), int)
            found = find_row(image, expected, below=top)
            if not check(found is not None, f"row {r} shows its group's first picture"):
                break
            top = found + THUMB
            for c in range(3):
                tile = image[found:found + THUMB, 6 + c * (THUMB + 6):6 + c * (THUMB + 6) + THUMB]
                if c < len(group):
                    expected = np.asarray(blocks(seed_of(group[c])).resize(
                        (THUMB, THUMB), Image.BILINEAR), int)
                    diff = np.abs(tile - expected).mean()
                    check(diff < 20, f"row {r} tile {c} is the picture's thumbnail", diff)
                else:
                    check((tile == 24).all(), f"row {r} has no tile {c}")

        # Only one group on the sheet.
        stdout, sheet = find("ip", SHEET_GROUPS="1")
        check("contact sheet of the 1 tightest groups" in stdout,
              "SHEET_GROUPS=1: one group announced", stdout)
        one = Image.open(sheet).size
        check(one[0] == 240 and one[1] < image.shape[0] - 2 * (THUMB + 16),
              "SHEET_GROUPS=1: one row", (one, image.shape))

        # A wide limit groups everything, says so, and still shows the exact
        # copies first, though base 7 and its copy have the last ids.
        wide_sheet = os.path.join(tmp, "all.png")
        out = sh("find-duplicates.sh runs with a wide limit",
                 os.path.join(SCRIPTS, "find-duplicates.sh"), indexes["ip"], "--out",
                 wide_sheet, MAX_DISTANCE="0.5", THUMB=str(THUMB))
        check(len(groups_of(out.stdout)) == 1 and "1 groups, 12 items in them" in out.stdout,
              "a wide limit groups everything", out.stdout)
        check("warning: group 1 holds 12 of the 12 items" in out.stdout,
              "one group holding most of the gallery is warned about", out.stdout)
        order = listed(out.stdout)[0]
        check(set(order[:2]) == {"pics/base 0.png", "copies/copy of 0.png"}
              and set(order[2:4]) == {"pics/base 7.png", "pics/base 7 again.png"},
              "the exact copies are listed first", order)
        image = np.asarray(Image.open(wide_sheet).convert("RGB")).astype(int)
        first = np.asarray(blocks(0).resize((THUMB, THUMB), Image.BILINEAR), int)
        row = find_row(image, first)
        if check(row is not None, "the wide sheet's row starts with base 0"):
            for c, seed in enumerate((0, 0, 7, 7)):
                tile = image[row:row + THUMB, 6 + c * (THUMB + 6):6 + c * (THUMB + 6) + THUMB]
                expected = np.asarray(blocks(seed).resize((THUMB, THUMB), Image.BILINEAR), int)
                check(np.abs(tile - expected).mean() < 20,
                      f"wide sheet tile {c} is an exact copy (base {seed})")

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
