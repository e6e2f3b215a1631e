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

With --tsne it also draws a t-SNE map (scikit-learn's Barnes-Hut t-SNE, PCA
initialisation, seeded) in a second PNG, two panels side
by side: coloured by label, and coloured by k-means cluster. t-SNE costs
O(n log n) per iteration with a large constant, so above --tsne-max-points
(default 2000) it maps a seeded random sample, and says so. Its figure of merit
is the trustworthiness (Venna and Kaski): 1.0 when every point's 5 nearest
neighbours in the map are among its 5 nearest in the embedding space, about
0.5 for a random map. --dims 3 draws both maps in 3-D.

Run with Debian's /usr/bin/python3 (faiss, numpy, matplotlib; python3-sklearn
for --tsne):

    tools/embedding-map.py train.faiss --output map.png --json map.json --tsne
"""
import argparse
import json
import os
import sqlite3
import sys

import numpy as np

# OpenMP threads (FAISS k-means, scikit-learn's t-SNE) wait for work by
# sleeping, not spinning: on a busy machine a spinning team took 20x the CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


def pca(vectors, dims):
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular ** 2
    explained = variance[:dims] / variance.sum() if variance.sum() > 0 else np.zeros(dims)
    points = centred @ vt[:dims].T
    if points.shape[1] < dims:  # fewer dimensions than the map has axes
        points = np.pad(points, ((0, 0), (0, dims - points.shape[1])))
        explained = np.pad(explained, (0, dims - len(explained)))
    return points, explained


TSNE_NEIGHBOURS = 5


def tsne(vectors, dims, max_points, seed):
    """(rows mapped, their map coordinates, perplexity, KL divergence,
    trustworthiness) of a t-SNE of the vectors, or of a seeded random sample
    of max_points of them."""
    try:
        from sklearn.manifold import TSNE, trustworthiness
    except ImportError:
        fail("--tsne needs scikit-learn: apt-get install python3-sklearn")
    rows = np.arange(len(vectors))
    if max_points and len(vectors) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(len(vectors), max_points,
                                                          replace=False))
    sample = vectors[rows].astype(np.float64)
    if len(sample) < 2 * TSNE_NEIGHBOURS + 2:
        fail(f"t-SNE needs at least {2 * TSNE_NEIGHBOURS + 2} vectors; "
             f"there are {len(sample)}.")
    # The usual 30, but perplexity must stay below the number of points.
    perplexity = float(min(30.0, (len(sample) - 1) / 3.0))
    model = TSNE(n_components=dims, perplexity=perplexity, init="pca",
                 learning_rate="auto", random_state=seed)
    points = model.fit_transform(sample)
    trust = trustworthiness(sample, points, n_neighbors=TSNE_NEIGHBOURS)
    return rows, points, perplexity, float(model.kl_divergence_), float(trust)


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


def scatter(fig, position, points, colours_by, names, legend_title, dims, axis_labels,
            title):
    """One panel: the points coloured by colours_by (a label or cluster number
    per point; -1 = unknown), with a legend when it stays readable."""
    import matplotlib.pyplot as plt

    ax = fig.add_subplot(*position, projection="3d" if dims == 3 else None)
    present = sorted(set(colours_by.tolist()))
    cmap = plt.get_cmap("tab10" if len(present) <= 10 else "tab20")
    for i, value in enumerate(present):
        mask = colours_by == value
        name = "unknown" if value < 0 else names.get(value, str(value))
        colour = "0.6" if value < 0 else cmap(i % cmap.N)
        coords = [points[mask, d] for d in range(dims)]
        ax.scatter(*coords, s=6, alpha=0.7, color=colour, label=name, linewidths=0)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    if dims == 3:
        ax.set_zlabel(axis_labels[2])
    ax.set_title(title, fontsize=10)
    if len(present) <= 40:
        ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  title=legend_title, title_fontsize=8)
    return ax


def save(fig, output):
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = output + ".tmp"
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, output)


def figure(panels, size):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(size * panels, size * 0.8), dpi=100)


def draw(points, labels, names, explained, title, output, max_points, seed, size):
    shown = np.arange(len(points))
    if max_points and len(points) > max_points:
        shown = np.sort(np.random.default_rng(seed).choice(len(points), max_points, replace=False))
    dims = points.shape[1]
    fig = figure(1, size)
    axis_labels = [f"PC {d + 1} ({explained[d]:.1%} of variance)" for d in range(dims)]
    scatter(fig, (1, 1, 1), points[shown], labels[shown], names, "label", dims, axis_labels,
            title)
    save(fig, output)


def draw_tsne(points, labels, names, assignment, title, output, size):
    dims = points.shape[1]
    fig = figure(2, size)
    axis_labels = [f"t-SNE {d + 1}" for d in range(dims)]
    scatter(fig, (1, 2, 1), points, labels, names, "label", dims, axis_labels,
            title + ", by label")
    scatter(fig, (1, 2, 2), points, assignment, {}, "k-means cluster", dims, axis_labels,
            title + ", by k-means cluster")
    save(fig, output)


def tsne_output(output):
    root, ext = os.path.splitext(output)
    return f"{root}-tsne{ext or '.png'}"


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
    parser.add_argument("--seed", type=int, default=1234,
                        help="k-means, t-SNE and sampling seed")
    parser.add_argument("--dims", type=int, choices=(2, 3), default=2,
                        help="draw the maps in 2-D (default) or 3-D")
    parser.add_argument("--tsne", action="store_true",
                        help="also draw a t-SNE map, by label and by k-means cluster "
                        "(needs python3-sklearn)")
    parser.add_argument("--tsne-output",
                        help="PNG of the t-SNE map (default: OUTPUT with -tsne before .png)")
    parser.add_argument("--tsne-max-points", type=int, default=2000,
                        help="map at most this many points with t-SNE (a seeded random "
                        "sample); 0 = all")
    parser.add_argument("--points",
                        help="also write the rows' ids, labels, clusters and map "
                        "coordinates to this .npz")
    args = parser.parse_args()
    if args.tsne_max_points < 0:
        fail("--tsne-max-points must be 0 (all) or more.")

    vectors = read_embeddings(args.index)
    labels, names, facts = read_catalog(args.catalog or args.index + ".db", len(vectors))

    points, explained = pca(vectors, args.dims)
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

    tsne_report = None
    if args.tsne:
        rows, mapped, perplexity, kl, trust = tsne(vectors, args.dims, args.tsne_max_points,
                                                   args.seed)
        sampled = len(rows) < len(vectors)
        what = (f"a random sample of {len(rows)} of {len(vectors)}" if sampled
                else f"{len(rows)}")
        tsne_png = args.tsne_output or tsne_output(args.output)
        draw_tsne(mapped, labels[rows], names, assignment[rows],
                  f"{os.path.basename(args.index)}: t-SNE of {what} embeddings",
                  tsne_png, args.size)
        tsne_report = {"points": int(len(rows)), "sampled": sampled,
                       "perplexity": perplexity, "kl_divergence": kl,
                       "trustworthiness": trust, "neighbours": TSNE_NEIGHBOURS,
                       "png": tsne_png}

    print(f"embedding-map: {len(vectors)} vectors, {vectors.shape[1]} dims, {n_labels} labels")
    print(f"  PCA: PC1 {explained[0]:.1%}, PC2 {explained[1]:.1%} of the variance")
    if purity is None:
        print(f"  k-means ({clusters} clusters): no labels in the catalog, purity undefined")
    else:
        print(f"  k-means ({clusters} clusters): purity {purity:.4f}, NMI {nmi:.4f} "
              f"(chance purity for balanced labels ~{1 / max(n_labels, 1):.4f})")
    if tsne_report:
        sampled = (f" (a random sample of {tsne_report['points']} of {len(vectors)}; "
                   f"--tsne-max-points)" if tsne_report["sampled"] else "")
        print(f"  t-SNE ({args.dims}-D, perplexity {tsne_report['perplexity']:.1f}): "
              f"trustworthiness {tsne_report['trustworthiness']:.4f} "
              f"over {TSNE_NEIGHBOURS} neighbours{sampled}")
        print(f"  wrote {tsne_report['png']}")
    print(f"  wrote {args.output}")

    if args.points:
        arrays = {"rows": np.arange(len(vectors)), "labels": labels,
                  "clusters": assignment, "pca": points}
        if tsne_report:
            arrays.update(tsne_rows=rows, tsne=mapped)
        tmp = args.points + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, args.points)

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
        if tsne_report:
            report["tsne"] = tsne_report
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
