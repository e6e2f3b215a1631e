#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""faisssearch on a large Flat index, copied into memory and with mmap=true:
time to start (load the index) and memory of three processes searching the
same file at once.

Writes a clustered 500k x 512 Flat index (about 1 GB, once) under
BUILD/bench-mmap, then for each mode starts three tests/faisssearch-feed
processes one after another, each searching a few queries (which reads every
vector) and holding its pipeline; with all three up, reads each one's Rss,
Pss (its share of pages several processes map) and VmHWM (the peak, the load
included) from /proc. The page cache is warm: the file was just written or
read (a cold start from disk is slower for both modes).

--index PATH measures an existing index instead (with its catalog PATH.db;
--model names the model the catalog records, --preprocessing what an index
faissindexer-feed wrote records, "feed"), e.g. bench_scale.py's
PCA128,HNSW32,RFlat file. faisssearch's log says whether mmap=true mapped it.

Usage: bench_mmap.py [--build BUILD] [--n 500000] [--processes 3]
                     [--index PATH --model MODEL [--preprocessing feed]]
"""
import argparse
import os
import subprocess
import sys

import numpy as np

MODEL = "bench-mmap:1"
DIMS = 512


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def write_index(path, n):
    import faiss
    rng = np.random.default_rng(12)
    centers = rng.standard_normal((1000, DIMS)).astype("float32")
    index = faiss.IndexFlatIP(DIMS)
    for start in range(0, n, 50000):
        count = min(50000, n - start)
        x = centers[rng.integers(0, len(centers), count)]
        x += 0.5 * rng.standard_normal((count, DIMS)).astype("float32")
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        index.add(x)
    faiss.write_index(index, path)


def proc_kib(pid, name, field):
    with open(f"/proc/{pid}/{name}") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def run_mode(feed, env, path, queries, processes, mmap, model=MODEL):
    """rows of [start s, Rss, Pss, VmHWM KiB] and the first process's log lines
    about how faisssearch loaded the index."""
    children, rows, notes = [], [], []
    try:
        for _ in range(processes):
            child = subprocess.Popen([feed, "search", path, queries, model, "k=10",
                                      f"mmap={'true' if mmap else 'false'}"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
            children.append(child)
            lines = []
            for line in child.stderr:
                lines.append(line)
                if not children[1:] and ("mmap" in line or "searched by" in line):
                    notes.append(line.strip())
                if line.strip() == "held":
                    break
            else:
                raise SystemExit(f"faisssearch-feed: {''.join(lines)}")
            start = float(next(l for l in lines if l.startswith("start ")).split()[1])
            rows.append([start])
        for child, row in zip(children, rows):
            row += [proc_kib(child.pid, "smaps_rollup", "Rss"),
                    proc_kib(child.pid, "smaps_rollup", "Pss"),
                    proc_kib(child.pid, "status", "VmHWM")]
    finally:
        for child in children:
            child.stdin.close()
            child.wait()
    return rows, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                        "build"))
    parser.add_argument("--n", type=int, default=500000)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--index", help="an existing index file (with PATH.db)")
    parser.add_argument("--model", default=MODEL, help="the model --index's catalog records")
    parser.add_argument("--preprocessing", help="the preprocessing it records ('feed')")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    feed = os.path.join(build, "tests", "faisssearch-feed")
    work = os.path.join(build, "bench-mmap")
    os.makedirs(work, exist_ok=True)
    path = os.path.abspath(args.index) if args.index else os.path.join(work,
                                                                        f"flat-{args.n}.faiss")
    env = dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(build, "ext", "visualsearch"),
               OMP_NUM_THREADS="1", VS_FEED_HOLD="1", GST_DEBUG="faisssearch:4")
    if args.preprocessing:
        env["VS_FEED_PREPROCESSING"] = args.preprocessing
    if args.index and not os.path.exists(path + ".db"):
        raise SystemExit(f"--index: {path}.db, its catalog, is missing (tests/faisssearch-feed "
                         "catalog PATH MODEL writes one)")
    if not os.path.exists(path + ".db"):
        log(f"writing {path}")
        write_index(path, args.n)
        subprocess.run([feed, "catalog", path, MODEL], check=True, env=env)
    queries = os.path.join(work, "queries.f32")
    np.random.default_rng(3).standard_normal((4, DIMS)).astype("<f4").tofile(queries)

    size = os.path.getsize(path) / 2**20
    what = args.index if args.index else f"Flat, {args.n} x {DIMS}"
    print(f"{what}, file {size:.0f} MiB; {args.processes} faisssearch "
          f"processes, page cache warm")
    print("| mode | process | start (s) | Rss (MiB) | Pss (MiB) | peak VmHWM (MiB) |")
    print("|---|---|---|---|---|---|")
    for mmap in (False, True):
        rows, notes = run_mode(feed, env, path, queries, args.processes, mmap, args.model)
        for note in notes:
            log(f"{'mmap=true' if mmap else 'copy'}: {note}")
        for i, (start, rss, pss, hwm) in enumerate(rows):
            print(f"| {'mmap=true' if mmap else 'copy'} | {i + 1} | {start:.2f} | "
                  f"{rss / 1024:.0f} | {pss / 1024:.0f} | {hwm / 1024:.0f} |", flush=True)


if __name__ == "__main__":
    main()
