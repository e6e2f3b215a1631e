# SPDX-License-Identifier: LGPL-2.1-or-later
"""An incremental gallery update with the three plain elements in one
gst-launch-1.0 line, no galleryindexer:

    gst-launch-1.0 gallerysrc location=DIR index=G ! embedder ... !
        faissindexer location=G mode=update

on a generated folder of 5 stills (random embedder weights, input size 32).
Checks: the first run embeds every file; after one file is added, one
modified and one removed, the update embeds exactly the new and the modified
file (faissindexer's COMPLETE counts and frames embedded), the unchanged items
keep their ids and vectors, the new file is in the catalog and the removed one
is gone from index and catalog; an update of the unchanged tree embeds
nothing; and gallerysrc without index (a plain walk) still builds a plain
index that mode=update refuses, as before.
"""
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

import faiss
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures as fx  # noqa: E402
from checks import check, finish  # noqa: E402

EMBEDDER = ["embedder", "weights=random", "input-size=32", "resize=0", "batch-size=2"]


def launch(tree, index, *, with_index=True, mode="update"):
    """Runs the line; returns (return code, COMPLETE text or "", frames
    embedded or None, whole output)."""
    source = ["gallerysrc", f"location={tree}"] + ([f"index={index}"] if with_index else [])
    out = subprocess.run(["gst-launch-1.0", "-e", *source, "!", *EMBEDDER, "!",
                          "faissindexer", f"location={index}", f"mode={mode}"],
                         capture_output=True, text=True, timeout=120)
    complete = [line for line in out.stdout.splitlines()
                if line.startswith("Progress: (faissindexer)") and "files: added" in line]
    text = complete[-1] if complete else ""
    frames = re.search(r"; (\d+) frames embedded;", text)
    return (out.returncode, text, int(frames.group(1)) if frames else None,
            out.stdout + out.stderr)


def contents(index):
    """{source: (id, vector)} of an index and its catalog."""
    gallery = faiss.read_index(index)
    with sqlite3.connect(f"file:{index}.db?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, source FROM items ORDER BY id").fetchall()
    check(len(rows) == gallery.ntotal, "index and catalog hold as many items",
          (len(rows), gallery.ntotal))
    return {source: (id_, gallery.reconstruct(id_)) for id_, source in rows}


def still(tree, rel, seed, size=(40, 30)):
    path = os.path.join(tree, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fx.save(path, "png", fx.gradient(*size, seed=seed))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        index = os.path.join(tmp, "gallery.faiss")
        for i in range(5):
            still(tree, f"{'a' if i % 2 else 'b'}/{i}.png", i)

        rc, text, frames, output = launch(tree, index)
        check(rc == 0 and frames == 5, "first run: every file embedded", (rc, frames, text or output[-800:]))
        check("added 5, updated 0, removed 0, unchanged 0, skipped-bad 0" in text,
              "first run: the counts", text)
        first = contents(index)
        check(sorted(first) == ["a/1.png", "a/3.png", "b/0.png", "b/2.png", "b/4.png"],
              "first run: the catalog lists the files", sorted(first))

        os.remove(os.path.join(tree, "a", "3.png"))
        still(tree, "b/2.png", 77, size=(44, 30))  # new content and size
        still(tree, "c/new.png", 99)
        rc, text, frames, output = launch(tree, index)
        check(rc == 0 and frames == 2, "update: only the new and the changed file are embedded",
              (rc, frames, text or output[-800:]))
        check("added 1, updated 1, removed 1, unchanged 3, skipped-bad 0" in text,
              "update: the counts", text)
        updated = contents(index)
        check("c/new.png" in updated, "update: the new file is in the index", sorted(updated))
        check("a/3.png" not in updated, "update: the removed file is gone", sorted(updated))
        kept = ["a/1.png", "b/0.png", "b/4.png"]
        check(all(s in updated and updated[s][0] == first[s][0] and
                  np.array_equal(updated[s][1], first[s][1]) for s in kept),
              "update: the unchanged files keep their ids and vectors",
              {s: (first[s][0], updated.get(s, (None,))[0]) for s in kept})
        check(updated["b/2.png"][0] not in {v[0] for v in first.values()},
              "update: the changed file has a new id", updated["b/2.png"][0])

        rc, text, frames, output = launch(tree, index)
        check(rc == 0 and frames == 0 and "unchanged 5" in text and "up to date" in text,
              "unchanged tree: nothing embedded", (rc, frames, text))

        plain = os.path.join(tmp, "plain.faiss")
        rc, _, _, output = launch(tree, plain, with_index=False, mode="rebuild")
        check(rc == 0 and not isinstance(faiss.read_index(plain), faiss.IndexIDMap2),
              "gallerysrc without index: a plain index, as before", output[-400:])
        rc, _, _, output = launch(tree, plain)
        check(rc != 0 and "mode=rebuild" in output,
              "mode=update refuses the plain index, naming mode=rebuild", output[-600:])

        # gallerysrc skips from one index, faissindexer updates another (a new
        # file gives the run an embedding to write).
        still(tree, "d/extra.png", 123)
        other = os.path.join(tmp, "other.faiss")
        out = subprocess.run(["gst-launch-1.0", "-e", "gallerysrc", f"location={tree}",
                              f"index={index}", "!", *EMBEDDER, "!", "faissindexer",
                              f"location={other}", "mode=update"],
                             capture_output=True, text=True, timeout=120)
        check(out.returncode == 0 and "does not hold it, so it is missing from the index" in
              out.stdout + out.stderr and "index= the same file as faissindexer location=" in
              out.stdout + out.stderr,
              "index= and location= differ: a warning says what is missing and how to fix it",
              (out.stdout + out.stderr)[-800:])

        # An index= whose catalog cannot be read.
        broken = os.path.join(tmp, "broken.faiss")
        with open(broken, "wb") as f:
            f.write(b"not an index")
        with open(broken + ".db", "wb") as f:
            f.write(b"not a catalog")
        out = subprocess.run(["gst-launch-1.0", "gallerysrc", f"location={tree}",
                              f"index={broken}", "!", "fakesink"],
                             capture_output=True, text=True, timeout=120)
        check(out.returncode != 0 and f"Cannot read what the index {broken} holds" in
              out.stdout + out.stderr,
              "an index= whose catalog cannot be read: an error naming it",
              (out.stdout + out.stderr)[-800:])
    finish()


if __name__ == "__main__":
    main()
