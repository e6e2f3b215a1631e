# SPDX-License-Identifier: LGPL-2.1-or-later
"""pipelines/evaluate-cifar.sh end to end on a generated CIFAR-10 (binary
format): cifarsrc ! embedder ! faissindexer, then cifarsrc ! embedder !
faisssearch ! retrievaleval, then the embedding map.

The gallery queried with itself (leave-one-out) gives query embeddings that are
the index's own vectors, so Python faiss + NumPy recompute every figure from
the index file and its catalog; the element's JSON must agree to 1e-6."""
import json
import os
import sqlite3
import sys

import faiss
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, finish, tmp_dir  # noqa: E402
from retrieval_reference import numpy_metrics  # noqa: E402

SOURCE_DIR = os.environ["VS_SOURCE_DIR"]
SCRIPT = os.path.join(SOURCE_DIR, "pipelines", "evaluate-cifar.sh")
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TOL = 1e-6


def write_cifar10_bin(directory, rng, per_batch=8, test_count=12):
    """Images of four classes, each a tinted pattern plus noise, so neighbours
    are not pure chance even with random weights."""
    os.makedirs(directory)
    tints = rng.integers(0, 256, (4, 3))

    def records(n):
        labels = rng.integers(0, 4, n)
        pixels = np.clip(tints[labels][:, :, None] + rng.normal(0, 40, (n, 3, 1024)), 0, 255)
        out = np.empty((n, 3073), dtype=np.uint8)
        out[:, 0] = labels
        out[:, 1:] = pixels.reshape(n, 3072).astype(np.uint8)
        return out.tobytes()

    for b in range(1, 6):
        with open(os.path.join(directory, f"data_batch_{b}.bin"), "wb") as f:
            f.write(records(per_batch))
    with open(os.path.join(directory, "test_batch.bin"), "wb") as f:
        f.write(records(test_count))
    with open(os.path.join(directory, "batches.meta.txt"), "w") as f:
        f.write("\n".join(NAMES) + "\n")


def run_script(dataset, out_dir, what, **env):
    environment = dict(os.environ, OUT_DIR=out_dir, WEIGHTS="random", INPUT_SIZE="32",
                       RESIZE="0", BATCH_SIZE="8", BUILD_DIR=os.environ["VS_BUILD_DIR"], **env)
    proc = checks.run([SCRIPT, dataset], timeout=240, env=environment)
    check(proc.returncode == 0, what, (proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def leave_one_out_reference(index_path, ks):
    index = faiss.read_index(index_path)
    vectors = index.reconstruct_n(0, index.ntotal)
    db = sqlite3.connect(index_path + ".db")
    rows = db.execute("SELECT id, label, label_name, source FROM items ORDER BY id").fetchall()
    db.close()
    gallery = [(label, name, source) for _, label, name, source in rows]
    _, ids = index.search(vectors, max(ks) + 1)
    queries = [(label, name, source, [int(i) for i in ids[q]])
               for q, (label, name, source) in enumerate(gallery)]
    return gallery, queries


def main():
    rng = np.random.default_rng(7)
    with tmp_dir() as tmp:
        dataset = os.path.join(tmp, "cifar-10-batches-bin")
        write_cifar10_bin(dataset, rng)

        out = os.path.join(tmp, "loo")
        stdout = run_script(dataset, out, "leave-one-out on train runs", K="1,3,5",
                            QUERY_SPLIT="train")
        check("P@k" in stdout and "MRR" in stdout, "the script prints the table", stdout)
        check("RANDOM WEIGHTS (resnet18:random-seed42)" in stdout,
              "the table says the weights are random", stdout[-600:])
        helped = checks.run([SCRIPT, "--help"], timeout=30)
        check(helped.returncode == 0 and helped.stdout.startswith("Retrieval quality on CIFAR"),
              "--help prints the usage, without a licence line", helped.stdout[:200])
        with open(os.path.join(out, "metrics.json")) as f:
            result = json.load(f)
        check(result["exclude_self"] is True and result["queries"] == 40
              and result["gallery_items"] == 40 and result["skipped"] == 0,
              "leave-one-out: 40 queries over 40 items, self excluded, none skipped", result)

        gallery, queries = leave_one_out_reference(os.path.join(out, "cifar-train.faiss"), [1, 3, 5])
        check(all(q[2] == gallery[q[3][0]][2] for q in queries), "each image is its own nearest")
        overall, per_class = numpy_metrics(gallery, queries, [1, 3, 5], True)
        for key in ("precision", "recall", "map"):
            for k, want in overall[key].items():
                check(abs(result[key][k] - want) <= TOL, f"{key}@{k} as NumPy's",
                      (result[key][k], want))
        for key in ("mrr", "accuracy"):
            check(abs(result[key] - overall[key]) <= TOL, f"{key} as NumPy's",
                  (result[key], overall[key]))
        check(set(result["per_class"]) == set(per_class), "the same classes as NumPy's",
              (sorted(result["per_class"]), sorted(per_class)))

        png = os.path.join(out, "embedding-map.png")
        with open(png, "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "the embedding map is a PNG")
        with open(os.path.join(out, "embedding-map.json")) as f:
            purity = json.load(f)["purity"]
        check(0.25 <= purity <= 1.0, "the map's purity is above chance", purity)

        # The default: train is the gallery, test queries it.
        out = os.path.join(tmp, "test")
        run_script(dataset, out, "the default split runs", NUM_QUERIES="10", MAP="none")
        with open(os.path.join(out, "metrics.json")) as f:
            result = json.load(f)
        check(result["exclude_self"] is False and result["queries"] == 10,
              "test queries train: 10 queries, self kept", result)
        check(not os.path.exists(os.path.join(out, "embedding-map.png")),
              "MAP=none draws no map")
    finish()


if __name__ == "__main__":
    main()
