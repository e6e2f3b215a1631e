# SPDX-License-Identifier: LGPL-2.1-or-later
"""tools/embedding-map.py on generated indexes: the PNG is a real, non-empty
image; k-means purity is 1 for well-separated labelled clusters and near chance
for shuffled labels; IVF indexes work; a catalog that does not match fails.
t-SNE (--tsne): its map keeps the clusters apart (nearest neighbours in the map
share their label), its reported trustworthiness equals one computed here in
NumPy from the written coordinates, 3-D maps and sampling above
--tsne-max-points say what they did, and too few points is a clear error."""
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


def trustworthiness(original, mapped, k):
    """Venna and Kaski's trustworthiness, written out: 1 - 2/(n k (2n - 3k - 1))
    times the sum, over each point's k nearest in the map that are not among
    its k nearest in the original space, of (their rank in the original
    space - k)."""
    n = len(original)

    def ranks(x):
        d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        order = np.argsort(d, axis=1, kind="stable")
        rank = np.empty_like(order)
        rank[np.arange(n)[:, None], order] = np.arange(1, n + 1)
        return order, rank

    _, rank_original = ranks(original.astype(np.float64))
    order_mapped, _ = ranks(mapped.astype(np.float64))
    penalty = 0
    for i in range(n):
        for j in order_mapped[i, :k]:
            if rank_original[i, j] > k:
                penalty += rank_original[i, j] - k
    return 1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * penalty


def check_tsne(tmp, index, vectors, labels):
    png, report, points = (os.path.join(tmp, n) for n in ("map.png", "map.json", "map.npz"))
    proc = run([index, "--output", png, "--json", report, "--tsne", "--points", points],
               "a labelled gallery maps with t-SNE")
    tsne_png = os.path.join(tmp, "map-tsne.png")
    check_png(tsne_png, "the t-SNE map")
    with open(tsne_png, "rb") as f:
        width, height = struct.unpack(">II", f.read(24)[16:24])
    check(width > 1.8 * height, "the t-SNE map has two panels side by side", (width, height))
    with open(report) as f:
        figures = json.load(f)["tsne"]
    check(set(figures) == {"points", "sampled", "perplexity", "kl_divergence",
                           "trustworthiness", "neighbours", "png"},
          "the t-SNE report has exactly the documented keys", sorted(figures))
    check(figures["points"] == 400 and not figures["sampled"] and figures["png"] == tsne_png,
          "400 points mapped, none left out", figures)
    saved = np.load(points)
    check(saved["tsne"].shape == (400, 2) and list(saved["tsne_rows"]) == list(range(400)),
          "the .npz holds a 2-D point per row", saved["tsne"].shape)
    mapped = saved["tsne"]
    ours = trustworthiness(vectors, mapped, figures["neighbours"])
    check(abs(ours - figures["trustworthiness"]) < 1e-9,
          "the reported trustworthiness equals NumPy's", (ours, figures["trustworthiness"]))
    check(ours > 0.9, "well-separated clusters map trustworthily (> 0.9)", ours)
    d = ((mapped[:, None, :] - mapped[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :5]
    agreement = (labels[nearest] == labels[:, None]).mean()
    check(agreement > 0.95, "in the t-SNE map, nearest neighbours share their label",
          agreement)
    check(list(saved["clusters"]) and len(set(saved["clusters"].tolist())) == 4,
          "the .npz holds the 4 k-means clusters drawn in the second panel",
          set(saved["clusters"].tolist()))
    check("trustworthiness" in proc.stdout, "the trustworthiness is printed", proc.stdout)

    run([index, "--output", png, "--json", report, "--tsne", "--points", points,
         "--dims", "3", "--tsne-max-points", "150"], "a 3-D t-SNE of a sample maps")
    check_png(tsne_png, "the 3-D t-SNE map")
    with open(report) as f:
        figures = json.load(f)
    check(figures["tsne"]["points"] == 150 and figures["tsne"]["sampled"],
          "above --tsne-max-points a sample of 150 is mapped, and the report says so",
          figures["tsne"])
    check(len(figures["pca_explained_variance"]) == 3, "a 3-D PCA map has three axes",
          figures["pca_explained_variance"])
    saved = np.load(points)
    rows = saved["tsne_rows"]
    check(saved["tsne"].shape == (150, 3) and saved["pca"].shape == (400, 3)
          and len(set(rows.tolist())) == 150 and rows.min() >= 0 and rows.max() < 400,
          "3-D coordinates for the 150 sampled rows, and PCA for all 400",
          (saved["tsne"].shape, saved["pca"].shape))

    proc = checks.run([sys.executable, TOOL, index, "--output", png, "--tsne",
                       "--tsne-max-points", "5"])
    expect_error(proc, "t-SNE of 5 points is refused", "t-SNE needs at least 12 vectors")


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
        check("tsne" not in figures and not os.path.exists(os.path.join(tmp, "map-tsne.png")),
              "no t-SNE unless asked", sorted(figures))

        check_tsne(tmp, index, vectors, labels)

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
