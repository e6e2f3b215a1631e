#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Search parity: faisssearch returns the neighbours Python faiss returns, on
the same index file, for the same queries: Flat (l2 and ip), IVF with several
nprobe values and HNSW with efSearch. The index files are written by Python
faiss, so this also shows that faisssearch reads what the reference writes.

HNSW over flat vectors is searched by visualsearch's own path (AVX2+FMA or
AVX-512 distances, rows prefetched: engine/index/fast_search.cpp) on CPUs that
have them: every HNSW case runs that way (with the distances chosen at start,
then with each SIMD kernel the CPU has by name) and again with
VISUALSEARCH_SEARCH_KERNELS=faiss (FAISS's own search), and all must give
Python's neighbours; the debug log must say which path ran. Also behind a
transform and under an exact re-ranking ("PCA24,HNSW16,RFlat"), whose
k_factor comes from the file or from refine-factor, with mmap=true (the
re-ranking's vectors searched in place), and under an id map.

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


FAISS_KERNELS = dict(os.environ, VISUALSEARCH_SEARCH_KERNELS="faiss")
OUR_PATH = "searched by visualsearch's HNSW path"


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        return next((line.split() for line in f if line.startswith("flags")), [])


def cpu_has_avx2_fma():
    return "avx2" in cpu_flags() and "fma" in cpu_flags()


simd_kernels = ((["avx2"] if cpu_has_avx2_fma() else [])
                + (["avx512"] if "avx512f" in cpu_flags() else []))


def run_feed(feed, *args, env=None):
    result = checks.run([feed, *args], env=env)
    check(result.returncode == 0, f"faisssearch-feed {' '.join(args)}", result.stderr.strip())
    return result.stdout


def faisssearch(feed, index_path, queries_path, *props, env=None):
    rows = []
    for line in run_feed(feed, "search", index_path, queries_path, MODEL,
                         f"k={K}", *props, env=env).splitlines():
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
        # Python, including an ef larger than the one stored in the file; on
        # our path and on FAISS's.
        def both_paths(name, path, queries_path, d, i, metric, *props):
            compare(name, faisssearch(feed, path, queries_path, *props), d, i, metric)
            # Without a setting the walk's distances are chosen by measurement:
            # each SIMD kernel this CPU has is checked by name as well.
            if "VISUALSEARCH_SEARCH_KERNELS" not in os.environ:
                for kernels in simd_kernels:
                    compare(f"{name}, {kernels} distances",
                            faisssearch(feed, path, queries_path, *props,
                                        env=dict(os.environ, VISUALSEARCH_SEARCH_KERNELS=kernels)),
                            d, i, metric)
            compare(name + ", FAISS's search",
                    faisssearch(feed, path, queries_path, *props, env=FAISS_KERNELS),
                    d, i, metric)

        index, path = build("hnsw.faiss", "HNSW16", faiss.METRIC_L2, gallery)
        stored_ef = index.hnsw.efSearch
        for ef in (4, 64):
            check(ef != stored_ef, f"ef-search={ef} differs from the stored efSearch", stored_ef)
            index.hnsw.efSearch = ef
            d, i = index.search(queries, K)
            both_paths(f"HNSW16 efSearch={ef}", path, q_raw, d, i, "l2", f"ef-search={ef}")

        # Which path ran, from faisssearch's log.
        log_env = dict(os.environ, GST_DEBUG="faisssearch:5")
        log = checks.run([feed, "search", path, q_raw, MODEL, f"k={K}"], env=log_env).stderr
        if cpu_has_avx2_fma():
            check(OUR_PATH in log, "with AVX2 and FMA, HNSW runs on visualsearch's path",
                  "\n".join(line for line in log.splitlines() if "searched by" in line))
        else:
            print("   no AVX2+FMA here: FAISS's search only")
        log = checks.run([feed, "search", path, q_raw, MODEL, f"k={K}"],
                         env=dict(log_env, VISUALSEARCH_SEARCH_KERNELS="faiss")).stderr
        check(OUR_PATH not in log and "VISUALSEARCH_SEARCH_KERNELS=faiss" in log,
              "VISUALSEARCH_SEARCH_KERNELS=faiss keeps FAISS's search, and says so")

        index, path = build("hnsw-ip.faiss", "HNSW16", faiss.METRIC_INNER_PRODUCT, unit_gallery)
        for ef in (8, 48):
            index.hnsw.efSearch = ef
            d, i = index.search(unit_queries, K)
            both_paths(f"HNSW16 ip efSearch={ef}", path, q_unit, d, i, "ip", f"ef-search={ef}")

        # A projection, a graph on the projected vectors and an exact
        # re-ranking of k x k_factor candidates over the full ones.
        params = faiss.ParameterSpace()
        index, path = build("pca-hnsw-rflat.faiss", "PCA24,HNSW16,RFlat", faiss.METRIC_L2,
                            gallery)
        index.k_factor = 3
        faiss.write_index(index, path)
        run_feed(feed, "catalog", path, MODEL)
        _, truth = exhaustive.search(queries, K)
        recalls = {}
        for ef, factor in ((8, None), (8, 6), (64, None)):
            params.set_index_parameter(index, "efSearch", ef)
            index.k_factor = factor or 3
            d, i = index.search(queries, K)
            props = [f"ef-search={ef}"] + ([f"refine-factor={factor}"] if factor else [])
            both_paths(f"PCA24,HNSW16,RFlat efSearch={ef} k_factor={factor or '3 (file)'}",
                       path, q_raw, d, i, "l2", *props)
            recalls[(ef, factor)] = np.mean([len(set(a) & set(b)) / K
                                             for a, b in zip(i, truth)])
        print(f"   recall@{K} vs exhaustive: {recalls}")
        check(recalls[(8, 6)] > recalls[(8, None)],
              "refine-factor=6 re-ranks more candidates than the file's 3: higher recall",
              recalls)

        # mmap=true: the refine stage's vectors are read in place from the file
        # (engine/index/index_file.cpp), the rest as without it; same hits.
        params.set_index_parameter(index, "efSearch", 64)
        index.k_factor = 3
        d, i = index.search(queries, K)
        both_paths("PCA24,HNSW16,RFlat efSearch=64 mmap=true", path, q_raw, d, i, "l2",
                   "ef-search=64", "mmap=true")
        log = checks.run([feed, "search", path, q_raw, MODEL, f"k={K}", "mmap=true"],
                         env=dict(os.environ, GST_DEBUG="faisssearch:4")).stderr
        check("in place from its file (mmap)" in log,
              "mmap=true maps a refine stage over flat vectors, and says so",
              "\n".join(line for line in log.splitlines() if "mmap" in line))

        # An id map over the graph: positions become the map's ids.
        ids = rng.permutation(10 * GALLERY)[:GALLERY].astype("int64")
        graph = faiss.IndexHNSWFlat(DIMS, 16, faiss.METRIC_INNER_PRODUCT)
        mapped = faiss.IndexIDMap2(graph)
        mapped.add_with_ids(unit_gallery, ids)
        path = os.path.join(tmp, "idmap2-hnsw.faiss")
        faiss.write_index(mapped, path)
        run_feed(feed, "catalog", path, MODEL)
        graph.hnsw.efSearch = 24
        d, i = mapped.search(unit_queries, K)
        both_paths("IDMap2,HNSW16 ip efSearch=24", path, q_unit, d, i, "ip", "ef-search=24")

    finish()


if __name__ == "__main__":
    main()
