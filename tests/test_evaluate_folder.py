# SPDX-License-Identifier: LGPL-2.1-or-later
"""pipelines/evaluate-folder.sh end to end on a generated folder of labelled
pictures and a video: the split is stratified by label and by file, and the
figures equal a NumPy computation over the same split.

The reference embeds the whole folder once (gallerysrc ! embedder !
faissindexer, the vectors read back with Python faiss), takes the gallery side
of the split from the evaluation's catalog and the rest as queries, ranks the
gallery by inner product and recomputes every figure with
retrieval_reference.numpy_metrics; the script's JSON must agree to 1e-6.
gallerysrc's two sides of the split, read with gallery_run.py, are the script's
for the same seed and differ for another.

    test_evaluate_folder.py GALLERY_RUN"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

import faiss
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
from retrieval_reference import numpy_metrics  # noqa: E402

GALLERY_RUN = sys.argv[1]
SCRIPT = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines", "evaluate-folder.sh")
# fp32 in both processes: precision=auto decides per process, by measurement
# (a verdict other tests may cache meanwhile), and bf16 embeddings reorder
# near ties, so the reference would rank another list than the script.
SETTINGS = dict(WEIGHTS="random", INPUT_SIZE="32", RESIZE="0", BATCH_SIZE="8", PRECISION="fp32")
EMBEDDER = ["embedder", "weights=random", "input-size=32", "resize=0", "batch-size=8",
            "precision=fp32"]
KS = [1, 3, 5]
TOL = 1e-6
# Files per class: the split keeps round(0.3 n), at least 1 and at most n - 1,
# as queries; a class of one file has none.
COUNTS = {"ant": 10, "bee hive": 6, "caf\u00e9": 4, "solo": 1}


def write_folder(root, rng):
    """Tints under heavy noise: neighbours are better than chance with random
    weights, yet far from perfect, so every figure is tested on values other
    than 0 and 1. One class holds nested folders and a video."""
    tints = rng.integers(110, 146, (len(COUNTS), 3))
    for c, (name, n) in enumerate(COUNTS.items()):
        for i in range(n):
            sub = "deep/" if i % 3 == 2 else ""
            path = os.path.join(root, name, f"{sub}{i:02d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            pixels = np.clip(tints[c] + rng.normal(0, 110, (24, 28, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(path)
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=10", "pattern=ball",
                    "!", "video/x-raw,width=48,height=40,framerate=10/1", "!", "vp8enc", "!",
                    "webmmux", "!", "filesink",
                    f"location={os.path.join(root, 'ant', 'clip.webm')}"],
                   check=True, timeout=120)


def vectors_by_source(index_path):
    index = faiss.read_index(index_path)
    vectors = index.reconstruct_n(0, index.ntotal)
    rows = catalog(index_path)
    return {source: vectors[i] for i, (_, _, _, source) in enumerate(rows)}


def catalog(index_path):
    db = sqlite3.connect(index_path + ".db")
    rows = db.execute("SELECT id, label, label_name, source FROM items ORDER BY id").fetchall()
    db.close()
    return rows


def file_of(source):
    return source.split("#t=")[0]


def split_sources(root, side, seed):
    """The sources gallerysrc gives for one side of the split, in walk order."""
    out = subprocess.run([GALLERY_RUN, f"gallerysrc location={root} split={side} "
                          f"split-seed={seed} query-fraction=0.3 video-interval=0.5",
                          os.devnull, os.devnull], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return [line.split("\t")[4] for line in out.splitlines() if line.startswith("frame\t")]


def main():
    rng = np.random.default_rng(11)
    env = dict(os.environ, BUILD_DIR=os.environ["VS_BUILD_DIR"], **SETTINGS)
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "photos")
        write_folder(root, rng)
        out_dir = os.path.join(tmp, "out")
        proc = subprocess.run([SCRIPT, root], capture_output=True, text=True, timeout=240,
                              env=dict(env, OUT_DIR=out_dir, K="1,3,5", QUERY_FRACTION="0.3",
                                       SPLIT_SEED="3", VIDEO_INTERVAL="0.5"))
        check(proc.returncode == 0, f"evaluate-folder.sh exits 0: {proc.stderr[-500:]}")
        check("P@k" in proc.stdout and "MRR" in proc.stdout and "Per-class" in proc.stdout,
              "the figures are printed: " + proc.stdout)
        check("RANDOM WEIGHTS (resnet18:random-seed42): the figures above show that the "
              "pipeline runs, not how well it retrieves" in proc.stdout,
              "the table says the weights are random", proc.stdout[-600:])
        with open(os.path.join(out_dir, "metrics.json")) as f:
            result = json.load(f)

        everything = os.path.join(tmp, "all.faiss")
        subprocess.run(["gst-launch-1.0", "-q", "gallerysrc", f"location={root}",
                        "video-interval=0.5", "!", *EMBEDDER, "!", "faissindexer",
                        f"location={everything}"], check=True, env=env, timeout=120)
        vectors = vectors_by_source(everything)
        labels = {source: (label, name) for _, label, name, source in catalog(everything)}

        gallery_rows = catalog(os.path.join(out_dir, "gallery.faiss"))
        gallery_sources = [source for _, _, _, source in gallery_rows]
        query_sources = [s for s in vectors if s not in set(gallery_sources)]
        check(set(gallery_sources) <= set(vectors), "the gallery is part of the folder")
        check({file_of(s) for s in gallery_sources}.isdisjoint(map(file_of, query_sources)),
              "a file's frames are all on one side of the split")
        check(sum("#t=" in s for s in vectors) == 2, "the video gave two frames")
        for name, n in COUNTS.items():
            files = {file_of(s) for s in query_sources if labels[s][1] == name}
            total = n + (1 if name == "ant" else 0)
            want = 0 if total == 1 else min(max(round(0.3 * total), 1), total - 1)
            check(len(files) == want, f"class {name}: {len(files)} query files, want {want}")

        gallery = [labels[s] + (s,) for s in gallery_sources]
        g_vectors = np.stack([vectors[s] for s in gallery_sources])
        queries = []
        for source in query_sources:
            order = np.argsort(-(g_vectors @ vectors[source]), kind="stable")[:max(KS)]
            queries.append(labels[source] + (source, [int(i) for i in order]))
        overall, per_class = numpy_metrics(gallery, queries, KS, False)

        check(result["queries"] == len(query_sources) and result["skipped"] == 0,
              f"queries {result['queries']}, want {len(query_sources)}")
        check(result["gallery_items"] == len(gallery_sources), "gallery size")
        for key in ("precision", "recall", "map"):
            for k, want in overall[key].items():
                check(abs(result[key][k] - want) <= TOL, f"{key}@{k}: {result[key][k]} vs {want}")
        for key in ("mrr", "accuracy"):
            check(abs(result[key] - overall[key]) <= TOL, f"{key}: {result[key]} vs {overall[key]}")
        check(set(result["per_class"]) == set(per_class),
              f"classes {sorted(result['per_class'])} vs {sorted(per_class)}")
        for name, want in per_class.items():
            got = result["per_class"].get(name, {})
            for k in map(str, KS):
                check(abs(got.get("precision", {}).get(k, -1) - want["precision"][k]) <= TOL,
                      f"{name} P@{k}")
                check(abs(got.get("map", {}).get(k, -1) - want["map"][k]) <= TOL,
                      f"{name} mAP@{k}")

        check(split_sources(root, "gallery", 3) == gallery_sources and
              sorted(split_sources(root, "queries", 3)) == sorted(query_sources),
              "gallerysrc splits the same way again with the same seed")
        check(sorted(split_sources(root, "queries", 4)) != sorted(query_sources),
              "another seed splits another way")

        # gst-launch-1.0 would keep the default for a value out of range.
        bad = subprocess.run([SCRIPT, root], capture_output=True, text=True, timeout=60,
                             env=dict(env, QUERY_FRACTION="1.5"))
        check(bad.returncode == 1 and "QUERY_FRACTION must be a number from 0.001 to 0.999"
              in bad.stderr, "an impossible QUERY_FRACTION is refused: " + bad.stderr)
    finish()


if __name__ == "__main__":
    main()
