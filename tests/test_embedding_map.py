# SPDX-License-Identifier: LGPL-2.1-or-later
"""tools/embedding-map.py on generated indexes: the PNG is a real, non-empty
image; k-means purity is 1 for well-separated labelled clusters and near chance
for shuffled labels; IVF indexes work; a catalog that does not match fails."""
import json
import os
import sqlite3
import struct
import sys

import faiss
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, expect_error, finish, tmp_dir  # noqa: E402

TOOL = os.path.join(os.environ.get("VS_SOURCE_DIR", os.path.dirname(__file__) + "/.."),
                    "tools", "embedding-map.py")
NAMES = ["airplane", "automobile", "bird", "cat"]


def write_gallery(directory, vectors, labels, index_type="Flat", ids=None):
    """An index and a catalog in faissindexer's layout (catalog.h, schema 1);
    with ids, an IDMap2 holding vector i under ids[i], as galleryindexer's."""
    path = os.path.join(directory, f"gallery-{index_type.replace(',', '_')}.faiss")
    index = faiss.index_factory(vectors.shape[1], index_type, faiss.METRIC_L2)
    index.train(vectors)
    if ids is None:
        ids = np.arange(len(vectors))
        index.add(vectors)
    else:
        index = faiss.IndexIDMap2(index)
        index.add_with_ids(vectors, ids.astype(np.int64))
    faiss.write_index(index, path)
    db = sqlite3.connect(path + ".db")
    db.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, label INTEGER, label_name TEXT, source TEXT)")
    db.execute("CREATE TABLE index_facts(model_id TEXT, preprocessing_id TEXT, dims INTEGER, "
               "metric TEXT, index_type TEXT, count INTEGER, created TEXT)")
    db.executemany("INSERT INTO items VALUES (?, ?, ?, ?)",
                   [(int(i), int(l), NAMES[l], f"synth/train/{i}") for i, l in zip(ids, labels)])
    db.execute("INSERT INTO index_facts VALUES ('resnet18:test', 'rgb', ?, 'l2', ?, ?, '2026-01-01T00:00:00Z')",
               (vectors.shape[1], index_type, len(vectors)))
    db.commit()
    db.close()
    return path


def run(args, what):
    proc = checks.run([sys.executable, TOOL] + args)
    check(proc.returncode == 0, what, (proc.returncode, proc.stdout, proc.stderr))
    return proc


def check_png(path, what):
    with open(path, "rb") as f:
        data = f.read()
    check(len(data) > 5000, f"{what}: the PNG is not empty", len(data))
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{what}: PNG signature", data[:8])
    check(data[12:16] == b"IHDR", f"{what}: IHDR first", data[12:16])
    width, height = struct.unpack(">II", data[16:24])
    check(width >= 400 and height >= 300, f"{what}: at least 400x300", (width, height))
    check(data[-8:-4] == b"IEND", f"{what}: IEND last", data[-8:-4])


def main():
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 10, (len(NAMES), 16))
    labels = np.repeat(np.arange(len(NAMES)), 100)
    vectors = (centres[labels] + rng.normal(0, 0.5, (len(labels), 16))).astype(np.float32)

    with tmp_dir() as tmp:
        index = write_gallery(tmp, vectors, labels)
        png, report = os.path.join(tmp, "map.png"), os.path.join(tmp, "map.json")
        proc = run([index, "--output", png, "--json", report], "a labelled Flat gallery maps")
        check_png(png, "labelled clusters")
        with open(report) as f:
            figures = json.load(f)
        check(set(figures) == {"schema", "index", "model_id", "vectors", "dims", "labels",
                               "clusters", "purity", "nmi", "pca_explained_variance", "png"},
              "the report has exactly the documented keys", sorted(figures))
        check(figures["schema"] == "visualsearch-embedding-map/1", "the report's schema",
              figures["schema"])
        check(figures["vectors"] == 400 and figures["dims"] == 16
              and figures["labels"] == 4 and figures["clusters"] == 4,
              "400 vectors of 16 dimensions, 4 labels, 4 clusters", figures)
        check(figures["purity"] == 1.0 and figures["nmi"] > 0.99,
              "well-separated labelled clusters: purity 1, NMI > 0.99", figures)
        check("purity 1.0000" in proc.stdout, "the purity is printed", proc.stdout)

        # An updated gallery: ids with holes, not in the order they were added.
        updated = os.path.join(tmp, "updated")
        os.mkdir(updated)
        index = write_gallery(updated, vectors, labels, "Flat",
                              ids=rng.permutation(len(labels)) * 3 + 1)
        run([index, "--output", png, "--json", report], "a gallery with ids in holes maps")
        with open(report) as f:
            purity = json.load(f)["purity"]
        check(purity == 1.0, "IDMap2 rows in step with the catalog: purity 1", purity)

        # The same vectors with labels that say nothing about them.
        shuffled = rng.permutation(labels)
        index = write_gallery(tmp, vectors, shuffled, "IVF4,Flat")
        run([index, "--output", png, "--json", report, "--clusters", "4"],
            "an IVF gallery with shuffled labels maps")
        check_png(png, "shuffled labels")
        with open(report) as f:
            figures = json.load(f)
        check(figures["purity"] < 0.5, "shuffled labels: purity near chance", figures)

        # A catalog from another index.
        other = os.path.join(tmp, "other")
        os.mkdir(other)
        small = write_gallery(other, vectors[:10], labels[:10])
        proc = checks.run([sys.executable, TOOL, index, "--catalog", small + ".db",
                           "--output", png])
        expect_error(proc, "a catalog from another index is refused",
                     "lists 10 items but the index holds 400")
    finish()


if __name__ == "__main__":
    main()
