#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Search parity: faisssearch returns the neighbours Python faiss returns, on
the same index file, for the same queries: Flat (l2 and ip), IVF with several
nprobe values and HNSW with efSearch. The index files are written by Python
faiss, so this also shows that faisssearch reads what the reference writes.

Usage: test_search_parity.py FAISSSEARCH_FEED
"""
import os
import sys

import faiss
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, finish, tmp_dir  # noqa: E402

DIMS = 48
GALLERY = 3000
QUERIES = 40
K = 10
MODEL = "parity:1"


def run_feed(feed, *args):
    result = checks.run([feed, *args])
    check(result.returncode == 0, f"faisssearch-feed {' '.join(args)}", result.stderr.strip())
    return result.stdout


def faisssearch(feed, index_path, queries_path, *props):
    rows = []
    for line in run_feed(feed, "search", index_path, queries_path, MODEL,
                         f"k={K}", *props).splitlines():
        metric, *pairs = line.split()
        ids = [int(p.split(":")[0]) for p in pairs]
        dists = [float(p.split(":")[1]) for p in pairs]
        rows.append((metric, ids, dists))
    return rows


def compare(name, rows, ref_d, ref_i, metric):
    check(len(rows) == len(ref_i), f"{name}: one result per query",
          f"{len(rows)} results for {len(ref_i)} queries")
    wrong = []
    for q, (got_metric, ids, dists) in enumerate(rows):
        want = [int(i) for i in ref_i[q] if i >= 0]
        want_d = ref_d[q][: len(want)]
        if got_metric != metric:
            wrong.append(f"query {q}: metric {got_metric}, expected {metric}")
        elif ids != want:
            wrong.append(f"query {q}: ids {ids} != faiss {want}")
        elif len(dists) != len(want_d) or not np.allclose(dists, want_d, rtol=1e-5, atol=1e-5):
            wrong.append(f"query {q}: distances {dists} != faiss {list(want_d)}")
    check(not wrong, f"{name}: {len(rows)} queries, top-{K} ids and distances equal",
          "\n".join(wrong[:5]) if wrong else None)


def main():
    feed = sys.argv[1]
    rng = np.random.default_rng(7)
    # Clustered data, so IVF with a small nprobe really misses neighbours and
    # the parity check covers the nprobe setting, not just exhaustive search.
    centres = rng.normal(size=(30, DIMS)).astype("float32") * 3
    gallery = (centres[rng.integers(0, 30, GALLERY)]
               + rng.normal(size=(GALLERY, DIMS))).astype("float32")
    queries = (centres[rng.integers(0, 30, QUERIES)]
               + rng.normal(size=(QUERIES, DIMS))).astype("float32")
    unit_gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)

    with tmp_dir() as tmp:
        def build(name, factory, metric, data):
            index = faiss.index_factory(DIMS, factory, metric)
            index.train(data)
            index.add(data)
            path = os.path.join(tmp, name)
            faiss.write_index(index, path)
            run_feed(feed, "catalog", path, MODEL)
            return index, path

        def save_queries(name, data):
            path = os.path.join(tmp, name)
            data.astype("<f4").tofile(path)
            return path

        q_raw = save_queries("queries.f32", queries)
        q_unit = save_queries("unit.f32", unit_queries)

        index, path = build("flat-l2.faiss", "Flat", faiss.METRIC_L2, gallery)
        d, i = index.search(queries, K)
        compare("Flat l2", faisssearch(feed, path, q_raw), d, i, "l2")

        index, path = build("flat-ip.faiss", "Flat", faiss.METRIC_INNER_PRODUCT, unit_gallery)
        d, i = index.search(unit_queries, K)
        compare("Flat ip", faisssearch(feed, path, q_unit), d, i, "ip")

        index, path = build("ivf.faiss", "IVF32,Flat", faiss.METRIC_L2, gallery)
        exhaustive = faiss.IndexFlatL2(DIMS)
        exhaustive.add(gallery)
        _, truth = exhaustive.search(queries, K)
        for nprobe in (1, 3, 32):
            index.nprobe = nprobe
            d, i = index.search(queries, K)
            compare(f"IVF32 nprobe={nprobe}", faisssearch(feed, path, q_raw, f"nprobe={nprobe}"),
                    d, i, "l2")
            recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(i, truth)])
            print(f"   recall@{K} vs exhaustive: {recall:.3f}")
            if nprobe == 1:
                check(recall < 0.999, "nprobe=1 misses neighbours on clustered data", recall)

        # ef-search must act exactly as setting index.hnsw.efSearch does in
        # Python, including an ef larger than the one stored in the file.
        index, path = build("hnsw.faiss", "HNSW16", faiss.METRIC_L2, gallery)
        stored_ef = index.hnsw.efSearch
        for ef in (4, 64):
            check(ef != stored_ef, f"ef-search={ef} differs from the stored efSearch", stored_ef)
            index.hnsw.efSearch = ef
            d, i = index.search(queries, K)
            compare(f"HNSW16 efSearch={ef}", faisssearch(feed, path, q_raw, f"ef-search={ef}"),
                    d, i, "l2")

    finish()


if __name__ == "__main__":
    main()
