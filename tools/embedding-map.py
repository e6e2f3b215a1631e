#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Draw a visualsearch index as a 2-D map and measure how well it clusters.

Reads a FAISS index written by faissindexer and its SQLite catalog (the index
path + ".db"), projects the stored embeddings to 2-D with PCA and writes a PNG
scatter coloured by label, with the label names in the legend. It then runs
FAISS k-means (k = the number of labels unless --clusters says otherwise) and
reports the cluster purity against the labels:

    purity = (1/N) * sum over clusters of the count of its most common label

(1.0: every cluster holds a single label; 1/(number of labels) is what a
random assignment of balanced labels scores) and the normalised mutual
information (NMI, arithmetic mean normalisation) between clusters and labels.

Run with Debian's /usr/bin/python3 (faiss, numpy, matplotlib):

    tools/embedding-map.py train.faiss --output map.png --json map.json
"""
import argparse
import json
import os
import sqlite3
import sys

import numpy as np

SCHEMA = "visualsearch-embedding-map/1"


def fail(message):
    print(f"embedding-map: {message}", file=sys.stderr)
    sys.exit(1)


def read_embeddings(path):
    import faiss

    try:
        index = faiss.read_index(path)
    except RuntimeError as e:
        fail(f"cannot read the index {path}: {e}")
    if index.ntotal == 0:
        fail(f"the index {path} is empty; nothing to draw.")
    try:
        if hasattr(index, "id_map"):
            # An IDMap2 (galleryindexer): rows in id order, as the catalog's.
            ids = sorted(faiss.vector_to_array(index.id_map).tolist())
            vectors = np.stack([index.reconstruct(i) for i in ids])
        else:
            vectors = index.reconstruct_n(0, index.ntotal)
    except RuntimeError:
        # IVF indexes keep no id -> list map until asked for one.
        try:
            faiss.extract_index_ivf(index).make_direct_map()
            vectors = index.reconstruct_n(0, index.ntotal)
        except RuntimeError as e:
            fail(f"the index {path} ({type(index).__name__}) cannot give its vectors back: {e}")
    return np.ascontiguousarray(vectors, dtype=np.float32)


def read_catalog(path, count):
    if not os.path.exists(path):
        fail(f"no catalog at {path}; pass --catalog, or rebuild the index with faissindexer.")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, label, label_name FROM items ORDER BY id").fetchall()
        facts = db.execute("SELECT model_id, preprocessing_id, metric, index_type "
                           "FROM index_facts").fetchone()
    except sqlite3.Error as e:
        fail(f"the catalog {path} is unusable: {e}")
    finally:
        db.close()
    if len(rows) != count:
        fail(f"the catalog {path} lists {len(rows)} items but the index holds {count}; "
             "they do not belong together.")
    labels = np.array([-1 if r[1] is None else r[1] for r in rows], dtype=np.int64)
    names = {}
    for _, label, name in rows:
        if label is not None and label >= 0:
            names.setdefault(int(label), name or str(label))
    return labels, names, facts


def pca_2d(vectors):
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular ** 2
    explained = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return centred @ vt[:2].T, explained


def kmeans(vectors, clusters, seed):
    import faiss

    # Several restarts, keeping the best objective: one run often merges two
    # clusters and leaves a centroid stranded.
    km = faiss.Kmeans(vectors.shape[1], clusters, niter=25, nredo=5, seed=seed, verbose=False)
    km.train(vectors)
    _, assignment = km.index.search(vectors, 1)
    return assignment.ravel()


def purity_and_nmi(assignment, labels):
    known = labels >= 0
    a, y = assignment[known], labels[known]
    if a.size == 0:
        return None, None
    _, a = np.unique(a, return_inverse=True)
    _, y = np.unique(y, return_inverse=True)
    table = np.zeros((a.max() + 1, y.max() + 1))
    np.add.at(table, (a, y), 1)
    n = table.sum()
    purity = table.max(axis=1).sum() / n
    joint = table / n
    pa, py = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    mi = np.sum(joint[nz] * np.log(joint[nz] / np.outer(pa, py)[nz]))
    entropy = lambda p: -np.sum(p[p > 0] * np.log(p[p > 0]))
    h = (entropy(pa) + entropy(py)) / 2
    nmi = mi / h if h > 0 else 1.0
    return float(purity), float(nmi)


def draw(points, labels, names, explained, title, output, max_points, seed, size):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = np.arange(len(points))
    if max_points and len(points) > max_points:
        shown = np.sort(np.random.default_rng(seed).choice(len(points), max_points, replace=False))
    fig, ax = plt.subplots(figsize=(size, size * 0.8), dpi=100)
    present = sorted(set(labels[shown].tolist()))
    cmap = plt.get_cmap("tab10" if len(present) <= 10 else "tab20")
    for i, label in enumerate(present):
        mask = labels[shown] == label
        name = "unknown" if label < 0 else names.get(label, str(label))
        colour = "0.6" if label < 0 else cmap(i % cmap.N)
        ax.scatter(points[shown][mask, 0], points[shown][mask, 1], s=6, alpha=0.7,
                   color=colour, label=name, linewidths=0)
    ax.set_xlabel(f"PC 1 ({explained[0]:.1%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.1%} of variance)")
    ax.set_title(title, fontsize=10)
    if len(present) <= 40:
        ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    tmp = output + ".tmp"
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, output)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", help="FAISS index written by faissindexer")
    parser.add_argument("--catalog", help="its SQLite catalog (default: INDEX.db)")
    parser.add_argument("--output", "-o", default="embedding-map.png", help="PNG to write")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--clusters", type=int, default=0,
                        help="k-means clusters (default: the number of labels)")
    parser.add_argument("--max-points", type=int, default=20000,
                        help="draw at most this many points (a random sample); 0 = all")
    parser.add_argument("--size", type=float, default=9.0, help="figure width in inches")
    parser.add_argument("--seed", type=int, default=1234, help="k-means and sampling seed")
    args = parser.parse_args()

    vectors = read_embeddings(args.index)
    labels, names, facts = read_catalog(args.catalog or args.index + ".db", len(vectors))

    points, explained = pca_2d(vectors)
    model = facts[0] if facts else "unknown model"
    title = f"{os.path.basename(args.index)}: {len(vectors)} embeddings of {model}, PCA"
    draw(points, labels, names, explained, title, args.output, args.max_points, args.seed,
         args.size)

    n_labels = len(set(labels[labels >= 0].tolist()))
    clusters = args.clusters or max(n_labels, 2)
    if clusters > len(vectors):
        fail(f"{clusters} clusters need at least as many vectors; the index has {len(vectors)}.")
    assignment = kmeans(vectors, clusters, args.seed)
    purity, nmi = purity_and_nmi(assignment, labels)

    print(f"embedding-map: {len(vectors)} vectors, {vectors.shape[1]} dims, {n_labels} labels")
    print(f"  PCA: PC1 {explained[0]:.1%}, PC2 {explained[1]:.1%} of the variance")
    if purity is None:
        print(f"  k-means ({clusters} clusters): no labels in the catalog, purity undefined")
    else:
        print(f"  k-means ({clusters} clusters): purity {purity:.4f}, NMI {nmi:.4f} "
              f"(chance purity for balanced labels ~{1 / max(n_labels, 1):.4f})")
    print(f"  wrote {args.output}")

    if args.json:
        report = {
            "schema": SCHEMA,
            "index": args.index,
            "model_id": model if facts else None,
            "vectors": int(len(vectors)),
            "dims": int(vectors.shape[1]),
            "labels": n_labels,
            "clusters": clusters,
            "purity": purity,
            "nmi": nmi,
            "pca_explained_variance": [float(e) for e in explained],
            "png": args.output,
        }
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
