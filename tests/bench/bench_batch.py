#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Offline evaluation through faisssearch ! retrievaleval, frames searched one
at a time (max-batch=1) and in batches: 10,000 queries.

Builds (once, under BUILD/bench-batch) a clustered gallery of 512-d unit
vectors as Flat and as IVF,Flat, and 10,000 queries near gallery items with
their items' labels (the catalog labels item i with i % 10). Runs
tests/faisssearch-feed with $VS_FEED_LABELS, so that every result passes
through retrievaleval, and reports queries per second from the first push to
the last result (the index and catalog load not included), and checks that
the batched hits equal the single-frame ones.

Usage: bench_batch.py [--build BUILD] [--n 20000] [--queries 10000] [--batches 1,16,64]
"""
import argparse
import os
import subprocess
import sys

import numpy as np

MODEL = "bench-batch:1"
DIMS = 512


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def build(work, n, queries):
    import faiss
    rng = np.random.default_rng(21)
    centers = rng.standard_normal((200, DIMS)).astype("float32")
    x = centers[rng.integers(0, len(centers), n)] + rng.standard_normal((n, DIMS)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    picked = rng.integers(0, n, queries)
    q = x[picked] + 0.05 * rng.standard_normal((queries, DIMS)).astype("float32")
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q.astype("<f4").tofile(os.path.join(work, "queries.f32"))
    (picked % 10).astype("<i4").tofile(os.path.join(work, "labels.i32"))
    paths = {}
    for name, spec in (("flat", "Flat"), ("ivf", f"IVF{int(4 * n ** 0.5)},Flat")):
        index = faiss.index_factory(DIMS, spec, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.add(x)
        paths[name] = os.path.join(work, f"{name}.faiss")
        faiss.write_index(index, paths[name])
    return paths


def run(feed, env, path, work, props):
    out = subprocess.run([feed, "search", path, os.path.join(work, "queries.f32"), MODEL,
                          "k=10", *props], capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"faisssearch-feed {' '.join(props)}: {out.stderr.strip()}")
    words = next(l for l in out.stderr.splitlines() if l.startswith("start ")).split()
    hits = [l for l in out.stdout.splitlines() if l.startswith(("ip ", "l2 "))]
    return int(words[3]) / float(words[5]), hits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                        "build"))
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--batches", default="1,16,64")
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build)
    feed = os.path.join(build_dir, "tests", "faisssearch-feed")
    work = os.path.join(build_dir, "bench-batch", f"{args.n}-{args.queries}")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(build_dir, "ext", "visualsearch"),
               VS_FEED_LABELS=os.path.join(work, "labels.i32"))
    paths = {name: os.path.join(work, f"{name}.faiss") for name in ("flat", "ivf")}
    if not all(os.path.exists(p + ".db") for p in paths.values()):
        log(f"building the gallery under {work}")
        paths = build(work, args.n, args.queries)
        for path in paths.values():
            subprocess.run([feed, "catalog", path, MODEL], check=True, env=env)

    print(f"{args.queries} queries, gallery {args.n} x {DIMS}, k=10, through retrievaleval; "
          f"{os.cpu_count()} CPUs, OpenMP default threads")
    print("| index | max-batch | queries/s | speed-up | hits equal max-batch=1 |")
    print("|---|---|---|---|---|")
    for name, path in paths.items():
        props = ["nprobe=16"] if name == "ivf" else []
        base_qps, base_hits = None, None
        for batch in [int(b) for b in args.batches.split(",")]:
            qps, hits = run(feed, env, path, work, props + [f"max-batch={batch}"])
            if base_qps is None:
                base_qps, base_hits = qps, hits
            same = "yes" if hits == base_hits else "NO"
            print(f"| {name} | {batch} | {qps:.0f} | {qps / base_qps:.2f} | {same} |", flush=True)


if __name__ == "__main__":
    main()
