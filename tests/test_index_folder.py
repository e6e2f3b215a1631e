# SPDX-License-Identifier: LGPL-2.1-or-later
"""pipelines/index-folder.sh as a newcomer meets it, offline:

- with no weights in the torch hub cache and no download (a closed port), it
  falls back to random weights by itself, as the demo does, and says plainly
  what that means for the scores (lib.sh's vs_weights_fallback);
- an update takes every setting from the index: run again with nothing set,
  it needs no WEIGHTS= and embeds only the new file; a setting given that
  contradicts the index is a clear error naming both values;
- a missing WEIGHTS file is refused with advice in the script's own syntax
  (WEIGHTS=random, not weights=random);
- every skipped file is named, in the output and at the end;
- --help starts with what the script does, not a licence line;
- DETECT=faces indexes facedetect's faces (one item per face, its box in the
  source), saying how to fetch faceres when it is not cached; DETECT=objects
  without the cached detector and an unknown DETECT are clear errors; an
  update with DETECT=faces reads no unchanged file again.

Usage: test_index_folder.py   (VS_SOURCE_DIR and VS_BUILD_DIR set by meson)
"""
import os
import shutil
import sqlite3
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, expect_error, finish, tmp_dir  # noqa: E402

SCRIPT = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines", "index-folder.sh")


def picture(seed, path):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).resize(
        (40, 32), Image.BILINEAR).save(path)


def main():
    with tmp_dir() as tmp:
        root = os.path.join(tmp, "photos")
        os.makedirs(os.path.join(root, "a"))
        for s in range(3):
            picture(s, os.path.join(root, "a", f"p{s}.png"))
        with open(os.path.join(root, "a", "notes.txt"), "w") as f:
            f.write("not a picture\n")
        index = os.path.join(tmp, "photos.faiss")
        # No weights anywhere, and a download that fails at once.
        env = dict(os.environ, BUILD_DIR=os.environ["VS_BUILD_DIR"],
                   TORCH_HOME=os.path.join(tmp, "torch"),
                   XDG_CACHE_HOME=os.path.join(tmp, "cache"),
                   VS_WEIGHTS_BASE_URL="http://127.0.0.1:9", INPUT_SIZE="32", RESIZE="0")
        for var in ("WEIGHTS", "MODEL", "SEED", "PRECISION", "METRIC", "INDEX_TYPE", "MODE"):
            env.pop(var, None)

        def run(*args, **extra):
            return checks.run([SCRIPT, *args], timeout=180, env=dict(env, **extra))

        # --help
        out = run("--help")
        check(out.returncode == 0 and out.stdout.startswith("Indexes a folder")
              and "SPDX" not in out.stdout, "--help starts with what it does", out.stdout[:200])

        # The fallback.
        first = run(root, index)
        check(first.returncode == 0, "index-folder.sh falls back to random weights by itself",
              f"{first.stdout}\n{first.stderr}")
        check("RANDOM WEIGHTS" in first.stderr and "not meaningful" in first.stderr
              and "models/fetch-weights.sh resnet18" in first.stderr,
              "the fallback says what random weights mean for the scores", first.stderr)
        check(first.stdout.rstrip().splitlines()[-1].startswith("index-folder: RANDOM WEIGHTS"),
              "the last line says the weights are random", first.stdout[-300:])
        db = sqlite3.connect(f"file:{index}.db?mode=ro", uri=True)
        model_id, count = db.execute("SELECT model_id, count FROM index_facts").fetchone()
        db.close()
        check(model_id == "resnet18:random-seed42" and count == 3,
              "the index holds the 3 pictures, with random weights", (model_id, count))
        # The skipped file is named, in the end counts too.
        last = [line for line in first.stdout.splitlines() if "skipped-bad" in line]
        check(any("notes.txt" in line for line in first.stdout.splitlines()
                  if line.startswith("index-folder: skipped")),
              "the skipped file is named in the output", first.stdout)
        check(last and "notes.txt" in first.stdout[first.stdout.index(last[-1]):],
              "the end counts name the skipped file", first.stdout)

        # An update with nothing set: the index's settings, only the new file embedded.
        picture(7, os.path.join(root, "a", "p7.png"))
        env.pop("INPUT_SIZE")
        env.pop("RESIZE")
        update = run(root, index)
        check(update.returncode == 0, "an update needs no setting again",
              f"{update.stdout}\n{update.stderr}")
        check("added 1," in update.stdout and "unchanged 3" in update.stdout,
              "the update embeds only the new file", update.stdout)
        check("input-size=32" in update.stdout and "weights=random" in update.stdout,
              "the update embeds with the index's settings", update.stdout)
        again = run(root, index)
        check(again.returncode == 0 and "added 0," in again.stdout and "unchanged 4" in again.stdout,
              "an update with nothing to embed succeeds", f"{again.stdout}\n{again.stderr}")

        # Settings that contradict the index.
        for var, value, recorded in (("INPUT_SIZE", "64", "32"), ("METRIC", "l2", "ip"),
                                     ("WEIGHTS", os.path.join(tmp, "a.pth"), "random")):
            if var == "WEIGHTS":
                open(value, "wb").close()
            bad = run(root, index, **{var: value})
            expect_error(bad, f"{var}={value} against the index is refused",
                         f"{var}={value} contradicts the index", f"{var}={recorded}",
                         "MODE=rebuild", rc=1)

        # A WEIGHTS file that does not exist, advised in the script's syntax.
        missing = run(root, os.path.join(tmp, "other.faiss"),
                      WEIGHTS=os.path.join(tmp, "none.pth"))
        message = expect_error(missing, "a missing WEIGHTS file is refused",
                               "none.pth does not exist", "WEIGHTS=random", rc=1)
        check("weights=random" not in message, "no property syntax in the advice", message)

        # DETECT=faces without faceres in the cache: facedetect's faces of
        # astronaut.png, embedded with the weights fallback, each an item.
        astronaut = "/usr/lib/python3/dist-packages/imageio/resources/images/astronaut.png"
        if check(os.path.exists(astronaut)
                 and checks.run(["gst-inspect-1.0", "facedetect"]).returncode == 0,
                 "facedetect (gstreamer1.0-opencv) and astronaut.png (python3-imageio)"):
            faces = os.path.join(tmp, "faces")
            os.makedirs(faces)
            shutil.copy(astronaut, os.path.join(faces, "astronaut.png"))
            picture(9, os.path.join(faces, "plain.png"))
            out = run(faces, os.path.join(tmp, "faces.faiss"), DETECT="faces",
                      INPUT_SIZE="32", RESIZE="0")
            check(out.returncode == 0 and "detector=facedetect" in out.stdout,
                  "DETECT=faces indexes with facedetect", f"{out.stdout}\n{out.stderr}")
            check("models/fetch-detectors.sh faceres" in out.stderr and "RANDOM WEIGHTS" in out.stderr,
                  "without faceres it says how to fetch it, and that the weights are random",
                  out.stderr)
            db = sqlite3.connect(f"file:{tmp}/faces.faiss.db?mode=ro", uri=True)
            sources = [r[0] for r in db.execute("SELECT source FROM items")]
            db.close()
            check(sources and all(s.startswith("astronaut.png#xywh=") for s in sources),
                  "one item per face, with its box", sources)
            update = run(faces, os.path.join(tmp, "faces.faiss"), DETECT="faces")
            check(update.returncode == 0 and "unchanged 2" in update.stdout
                  and "added 0," in update.stdout,
                  "DETECT with an update (the default) reads no unchanged file again",
                  f"{update.stdout}\n{update.stderr}")
        missing = run(root, os.path.join(tmp, "objects.faiss"), DETECT="objects")
        expect_error(missing, "DETECT=objects without nanodet.pt says how to fetch it",
                     "nanodet.pt", "models/fetch-detectors.sh nanodet", rc=1)
        expect_error(run(root, os.path.join(tmp, "x.faiss"), DETECT="cars"),
                     "an unknown DETECT is refused", "use faces or objects", rc=1)
    finish()


if __name__ == "__main__":
    main()
