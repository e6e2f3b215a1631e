#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Search at a million: build time, memory, file size, recall@10 and queries/s of
the index types faissindexer can write, on N x 512 float vectors (default 1M).

    OPENBLAS_NUM_THREADS=1 nice -n 19 /usr/bin/python3 tests/bench/bench_scale.py [BUILD_DIR]
        [--n 1000000] [--hnsw-n 100000] [--types flat,ivf-flat,...]
        [--ours flat,ivf-flat,hnsw32] [--efs 16,32,...] [--ours-efs 32,128]
        [--curve-efs 16,32,...] [--refine-factors 2,4] [--hnswlib]
        [--hnswlib-pca] [--rounds 3 --round-efs 128,144,160]
        [--flat-queries 50] [--no-debian-pictures] [--rebuild]

(docs/SCALING.md has the figures of one run and what they mean.)

The vectors. The real part: CIFAR-10 sample pictures embedded by torchvision's
resnet18 in /usr/bin/python3 (random weights, torch.manual_seed(0): this
machine has no official weights), at their native 32x32, ImageNet mean/std, the
512-d global average pool, L2-normalised: what `embedder weights=random
input-size=32 resize=0` stores, up to the weights' values; then every distinct
PNG/JPEG picture Debian's installed packages ship (icons, sample photos;
one file per name, the largest), through the same network at 32x32 over
white: real pictures, no augmentations. The synthetic part
(up to N): a mixture of CLUSTERS Gaussian clusters of log-normal sizes, fitted
to the real embeddings' statistics: centres drawn from N(mean, a^2 C) and points
from N(centre, b^2 C), C the real covariance, a^2 + b^2 = 1, then
L2-normalised like the real ones. Uniform noise would be no test: no index can
search it well. Queries: held-out real embeddings and held-out points of the
same clusters; none is in the gallery. Metric: inner product (faissindexer's
default), so the exact neighbours are those of the Flat index.

Everything lands in BUILD_DIR/bench-scale/ and is reused by reruns: the
vectors, the exact neighbours, each index file (with its build time), the
catalogs. --rebuild starts over.

Index types (nlist = 4 sqrt(N), rounded):
  flat          Flat
  ivf-flat      IVF{nlist},Flat
  ivf-sq8       IVF{nlist},SQ8
  ivf-pq        IVF{nlist},PQ64         (64 bytes a vector, no polysemous training)
  hnsw32        HNSW32                  (efConstruction 40, FAISS's default)
  opq-ivf-pq    OPQ64,IVF{nlist},PQ64
  pca-hnsw-rflat  PCA128,HNSW32,RFlat, metric l2, efConstruction 320: a graph on
                the vectors projected to 128 dims, its k x refine-factor best
                re-ranked exactly over the full vectors. Built by our own
                faissindexer (tests/faissindexer-feed), the way a user would,
                so its build time is ours, not Python's. l2 on these unit
                vectors ranks as ip does, and FAISS's PCA centres (fine for l2).
The IVF types share one coarse quantizer, trained once (k-means, 10
iterations, on a sample of TRAIN_PER_LIST vectors per list), and one assignment
of the N vectors to their lists; each type's build time is that shared part
plus its own (training its codes on a sample, encoding, adding). OPQ64 keeps
512 dims, so its rotation is orthonormal: the quantizer's centroids, rotated,
are the centroids of the rotated vectors and the lists stay the same.

Build time: wall seconds and the CPU seconds of every thread of the process
(time.process_time), since on a shared machine, or with the process paused,
wall time says more about the others than about the build.

Measured per type and per nprobe / efSearch, on the real queries, the
synthetic ones and all: recall@10 against the exact top 10 (the mean fraction
of the exact 10 found in the returned 10); the CPU milliseconds a query costs
with one thread and one query per call (a live stream), every query timed on
every path (Python faiss, faisssearch, hnswlib) in the same order, none cut
off (Flat: --flat-queries of each kind, for every path alike); queries/s with
every core on all queries in one call (a batch); the file's size; the resident memory a fresh process needs to load
the file (Python faiss.read_index). Ours: the faisssearch element
(tests/faisssearch-feed: appsrc ! faisssearch k=10 ! appsink) reads the same
file, one query per buffer, and its recall, queries/s, wall and CPU ms per
query and the peak resident memory of the whole process are printed beside
Python's (two runs, one per query kind, so that each kind has its own
time). --hnswlib: hnswlib, the reference HNSW (tests/hnsw-anchor, Debian's
libhnswlib-dev compiled with -march=native: its AVX-512/AVX distances), on the
same 512-d vectors with PCA128,HNSW32,RFlat's M and efConstruction, over
--curve-efs, one thread, one query at a time; the last table puts its curve
beside FAISS's and faisssearch's on the real queries. Figures only: the
machine is shared, so the queries/s and wall ms move with its load; the CPU
ms move much less.
"""
import argparse
import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

DEFAULT_DATASET = "/work/shared/data/cifar10-sample/cifar-10-batches-py"
# Where Debian's packages install pictures (icons, sample photos, figures).
DEBIAN_PICTURE_ROOTS = ["/usr/share", "/usr/lib/python3/dist-packages"]
DIMS = 512
K = 10
CLUSTERS = 2000
WITHIN = 0.35            # b^2: the share of the real variance inside a cluster
REAL_QUERIES = 500
SYNTHETIC_QUERIES = 500
TRAIN_PER_LIST = 25      # k-means sample: FAISS asks for 39 a list; 25 keeps 1M affordable here
CODE_TRAIN = 32768       # PQ / SQ / OPQ training sample
PQ_ITERATIONS = 10        # k-means iterations of each PQ sub-quantizer (FAISS: 25)
OPQ_ITERATIONS = 10       # FAISS: 50
CHUNK = 50000
MODEL = "bench-scale:resnet18-random-seed0"
TYPES = ["flat", "ivf-flat", "ivf-sq8", "hnsw32", "ivf-pq", "opq-ivf-pq", "pca-hnsw-rflat"]
# pca-hnsw-rflat: what faissindexer is given.
PCA_SPEC = "PCA128,HNSW32,RFlat"
PCA_EF_CONSTRUCTION = 320
PCA_TRAIN = 100000
REFINE_EFS = [16, 32, 48, 64, 80, 96, 128]
REFINE_FACTORS = [2, 4]
NPROBES = [1, 4, 16, 64, 256]
EF_SEARCHES = [16, 32, 48, 64, 96, 128, 192, 256]
# The sweep points where our element is run too (each run loads the index anew).
OURS_NPROBES = [16, 64]
OURS_EFS = [32, 128]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the vectors

def real_embeddings(dataset, path):
    """CIFAR sample -> resnet18 (random weights, seed 0) -> 512-d, L2-normalised."""
    if os.path.exists(path):
        return np.load(path)
    import torch
    import torchvision
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()
    model.eval()
    images = []
    for name in sorted(os.listdir(dataset)):
        if name.startswith(("data_batch", "test_batch")):
            with open(os.path.join(dataset, name), "rb") as f:
                images.append(pickle.load(f, encoding="bytes")[b"data"])
    emb = embed(model, np.concatenate(images))
    np.save(path, emb)
    return emb


def debian_pictures(roots=DEBIAN_PICTURE_ROOTS):
    """Every distinct PNG/JPEG picture Debian's installed packages ship (icons,
    sample photos, documentation figures): one file per name, the largest, since
    icon themes ship one picture in several sizes."""
    largest = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                if name.lower().endswith((".png", ".jpg", ".jpeg")):
                    path = os.path.join(folder, name)
                    size = os.path.getsize(path)
                    if size > largest.get(name, ("", -1))[1]:
                        largest[name] = (path, size)
    return sorted(path for path, _ in largest.values())


def picture_embeddings(paths, out_path):
    """The Debian pictures through the same network as the CIFAR ones: RGB over
    white (icons are transparent), resized to 32x32; unreadable files are
    skipped. Writes out_path (rows) and out_path.json (their files)."""
    if os.path.exists(out_path):
        return np.load(out_path)
    import torch
    import torchvision
    from PIL import Image
    pixels, used = [], []
    for path in paths:
        try:
            with Image.open(path) as picture:
                picture = picture.convert("RGBA")
                white = Image.new("RGBA", picture.size, (255, 255, 255, 255))
                rgb = Image.alpha_composite(white, picture).convert("RGB")
                rgb = rgb.resize((32, 32), Image.BICUBIC)
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
        pixels.append(np.asarray(rgb, dtype="uint8").transpose(2, 0, 1))
        used.append(path)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()
    model.eval()
    emb = embed(model, np.stack(pixels).reshape(len(pixels), -1))
    np.save(out_path, emb)
    with open(out_path + ".json", "w") as f:
        json.dump(used, f, indent=0)
    return emb


def embed(model, rows):
    """uint8 CIFAR rows (N x 3072) -> L2-normalised 512-d embeddings."""
    import torch
    pixels = rows.reshape(-1, 3, 32, 32).astype("float32") / 255
    mean = np.array([0.485, 0.456, 0.406], "float32").reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], "float32").reshape(1, 3, 1, 1)
    pixels = (pixels - mean) / std
    out = []
    with torch.no_grad():
        for i in range(0, len(pixels), 256):
            out.append(model(torch.from_numpy(pixels[i:i + 256])).numpy())
    return normalized(np.concatenate(out))


def normalized(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def make_vectors(n, dataset, work, with_debian=True):
    """Writes base.npy (n x 512) and queries.npy once; returns their paths.
    The gallery's first rows are real: the CIFAR sample pictures not held out
    as queries, then (with_debian) Debian's pictures; synthetic rows fill it."""
    base_path, query_path = os.path.join(work, "base.npy"), os.path.join(work, "queries.npy")
    if os.path.exists(base_path) and os.path.exists(query_path):
        return base_path, query_path
    real = real_embeddings(dataset, os.path.join(work, "real.npy"))
    rng = np.random.default_rng(12)
    real = real[rng.permutation(len(real))]
    real_queries, real_base = real[:REAL_QUERIES], real[REAL_QUERIES:][:n]
    # The synthetic clusters are fitted to the CIFAR embeddings only.
    mean = real_base.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(real_base, rowvar=False))
    # x = mean + z @ root gives x the real covariance.
    root = (vectors * np.sqrt(np.clip(values, 0, None))).T.astype("float32")
    centres = mean + np.sqrt(1 - WITHIN) * rng.standard_normal((CLUSTERS, DIMS),
                                                               dtype="float32") @ root
    weights = rng.lognormal(sigma=1.0, size=CLUSTERS)
    weights /= weights.sum()

    def synthetic(count):
        members = rng.choice(CLUSTERS, size=count, p=weights)
        noise = rng.standard_normal((count, DIMS), dtype="float32") @ root
        return normalized(centres[members] + np.sqrt(WITHIN) * noise)

    debian = (picture_embeddings(debian_pictures(), os.path.join(work, "debian.npy"))
              if with_debian else np.zeros((0, DIMS), "float32"))
    cifar_count = len(real_base)
    real_base = np.concatenate([real_base, debian])[:n]
    synthetic_count = n - len(real_base)
    base = np.lib.format.open_memmap(base_path + ".tmp", mode="w+", dtype="float32",
                                     shape=(n, DIMS))
    base[:len(real_base)] = real_base
    for start in range(0, synthetic_count, CHUNK):
        count = min(CHUNK, synthetic_count - start)
        base[len(real_base) + start:len(real_base) + start + count] = synthetic(count)
    base.flush()
    del base
    queries = np.concatenate([real_queries, synthetic(SYNTHETIC_QUERIES)])
    np.save(query_path, queries)
    os.replace(base_path + ".tmp", base_path)
    with open(os.path.join(work, "vectors.json"), "w") as f:
        json.dump({"n": n, "real": len(real_base), "real_cifar": min(cifar_count, n),
                   "real_debian": len(real_base) - min(cifar_count, n),
                   "synthetic": synthetic_count,
                   "real_queries": len(real_queries), "synthetic_queries": SYNTHETIC_QUERIES,
                   "real_total": len(real)}, f)
    return base_path, query_path


def chunks(base):
    for start in range(0, len(base), CHUNK):
        yield start, np.ascontiguousarray(base[start:start + CHUNK])


# ---------------------------------------------------------------- the indexes

class Builder:
    """Builds each index type once, sharing the IVF quantizer and list assignment."""

    def __init__(self, faiss, base, work, hnsw_n, indexer_feed=None):
        self.faiss, self.base, self.work = faiss, base, work
        self.indexer_feed = indexer_feed
        self.n = len(base)
        self.hnsw_n = min(hnsw_n or self.n, self.n)
        self.nlist = int(round(4 * np.sqrt(self.n)))
        self.rng = np.random.default_rng(5)
        self._coarse = None

    def sample(self, count):
        count = min(count, self.n)
        return np.ascontiguousarray(self.base[np.sort(self.rng.choice(self.n, count,
                                                                      replace=False))])

    def coarse(self):
        """(centroids, list of every vector, seconds) computed once, saved."""
        if self._coarse is not None:
            return self._coarse
        path = os.path.join(self.work, f"coarse-{self.nlist}.npz")
        if os.path.exists(path):
            saved = np.load(path)
            # Saved by an earlier version without the CPU time: NaN, printed "?".
            cpu_seconds = float(saved["cpu_seconds"]) if "cpu_seconds" in saved else np.nan
            self._coarse = (saved["centroids"], saved["lists"], float(saved["seconds"]),
                            cpu_seconds)
            return self._coarse
        faiss = self.faiss
        t0, c0 = time.perf_counter(), time.process_time()
        train = self.sample(TRAIN_PER_LIST * self.nlist)
        kmeans = faiss.Kmeans(DIMS, self.nlist, niter=10, seed=1, max_points_per_centroid=10**6)
        kmeans.train(train)
        trained = time.perf_counter() - t0
        quantizer = faiss.IndexFlatIP(DIMS)
        quantizer.add(kmeans.centroids)
        lists = np.empty(self.n, dtype="int64")
        for start, chunk in chunks(self.base):
            lists[start:start + len(chunk)] = quantizer.search(chunk, 1)[1][:, 0]
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        log(f"  coarse quantizer: {self.nlist} lists, k-means on {len(train)} vectors "
            f"{trained:.0f} s, assigning {self.n} vectors {seconds - trained:.0f} s")
        np.savez(path, centroids=kmeans.centroids, lists=lists, seconds=seconds,
                 cpu_seconds=cpu_seconds)
        self._coarse = kmeans.centroids, lists, seconds, cpu_seconds
        return self._coarse

    def ivf(self, codes, transform=None):
        """IVF index over the shared lists; codes: 'Flat', 'SQ8', 'PQ64'."""
        faiss = self.faiss
        centroids, lists, shared, shared_cpu = self.coarse()
        t0, c0 = time.perf_counter(), time.process_time()
        if transform is not None:
            transform.train(self.sample(CODE_TRAIN))
            centroids = transform.apply_py(centroids)
        index = faiss.index_factory(DIMS, f"IVF{self.nlist},{codes}",
                                    faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.quantizer.add(centroids)   # trained: train() below only trains the codes
        if not index.is_trained:
            if isinstance(ivf, faiss.IndexIVFPQ):
                ivf.pq.cp.niter = PQ_ITERATIONS
            train = self.sample(CODE_TRAIN)
            index.train(train if transform is None else transform.apply_py(train))
        for start, chunk in chunks(self.base):
            if transform is not None:
                chunk = transform.apply_py(chunk)
            part = np.ascontiguousarray(lists[start:start + len(chunk)])
            ivf.add_core(len(chunk), faiss.swig_ptr(chunk), None, faiss.swig_ptr(part))
        if transform is not None:
            index = faiss.IndexPreTransform(transform, index)
        return (index, shared + time.perf_counter() - t0,
                shared_cpu + time.process_time() - c0)

    def build_with_faissindexer(self, path):
        """PCA128,HNSW32,RFlat written by faissindexer (through
        faissindexer-feed) to path, with its catalog: wall and CPU seconds."""
        raw = os.path.join(self.work, "base.f32")
        if not os.path.exists(raw):
            write_raw(self.base, raw)
        env = dict(feed_env(self.indexer_feed), OMP_NUM_THREADS=str(os.cpu_count()),
                   OPENBLAS_NUM_THREADS="1", VS_FEED_MODEL=MODEL)
        args = ["/usr/bin/time", "-f", "cpu %U %S", self.indexer_feed, raw, str(DIMS), path,
                f"index-type={PCA_SPEC}", "metric=l2",
                f"ef-construction={PCA_EF_CONSTRUCTION}", "refine-factor=2",
                f"train-size={PCA_TRAIN}", "progress-interval=100000"]
        log("  " + " ".join(args[3:]))
        t0 = time.perf_counter()
        run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=4 * 3600)
        if run.returncode != 0:
            raise SystemExit(f"faissindexer-feed: {run.stderr.strip()}")
        user, system = next(l for l in run.stderr.splitlines() if l.startswith("cpu ")).split()[1:]
        return time.perf_counter() - t0, float(user) + float(system)

    def build(self, kind):
        faiss = self.faiss
        t0, c0 = time.perf_counter(), time.process_time()
        if kind == "flat":
            index = faiss.IndexFlatIP(DIMS)
            for _, chunk in chunks(self.base):
                index.add(chunk)
            return index, time.perf_counter() - t0, time.process_time() - c0
        if kind == "hnsw32":
            # What faissindexer index-type=HNSW32 writes: index_factory's
            # IndexHNSWFlat, efConstruction 40.
            index = faiss.IndexHNSWFlat(DIMS, 32, faiss.METRIC_INNER_PRODUCT)
            for start, chunk in chunks(self.base[:self.hnsw_n]):
                index.add(chunk)
                log(f"  hnsw32: {start + len(chunk)} vectors, "
                    f"{time.perf_counter() - t0:.0f} s, CPU {time.process_time() - c0:.0f} s")
            return index, time.perf_counter() - t0, time.process_time() - c0
        if kind == "opq-ivf-pq":
            opq = faiss.OPQMatrix(DIMS, 64)
            opq.niter = OPQ_ITERATIONS
            return self.ivf("PQ64np", transform=opq)
        return self.ivf({"ivf-flat": "Flat", "ivf-sq8": "SQ8", "ivf-pq": "PQ64np"}[kind])

    def spec(self, kind):
        return {"flat": "Flat", "ivf-flat": f"IVF{self.nlist},Flat",
                "ivf-sq8": f"IVF{self.nlist},SQ8", "ivf-pq": f"IVF{self.nlist},PQ64",
                "hnsw32": "HNSW32" + (f" (first {self.hnsw_n})" if self.hnsw_n < self.n
                                      else ""), "opq-ivf-pq": f"OPQ64,IVF{self.nlist},PQ64",
                "pca-hnsw-rflat": f"{PCA_SPEC} l2 efC{PCA_EF_CONSTRUCTION}"}[kind]


def index_file(faiss, builder, kind, work):
    """The index file of KIND (built and written once), its build wall and CPU seconds."""
    subset = kind == "hnsw32" and builder.hnsw_n < builder.n
    path = os.path.join(work, f"{kind}-first{builder.hnsw_n}.faiss" if subset else f"{kind}.faiss")
    meta = path + ".json"
    if os.path.exists(path) and os.path.exists(meta):
        with open(meta) as f:
            facts = json.load(f)
        return path, facts["build_seconds"], facts.get("build_cpu_seconds", np.nan)
    log(f"building {kind} ({builder.spec(kind)}) on {builder.n} vectors")
    if kind == "pca-hnsw-rflat":
        seconds, cpu_seconds = builder.build_with_faissindexer(path)
    else:
        index, seconds, cpu_seconds = builder.build(kind)
        faiss.write_index(index, path + ".tmp")
        os.replace(path + ".tmp", path)
    with open(meta, "w") as f:
        json.dump({"build_seconds": seconds, "build_cpu_seconds": cpu_seconds,
                   "spec": builder.spec(kind)}, f)
    log(f"  {kind}: built in {seconds:.0f} s, CPU {cpu_seconds:.0f} s")
    return path, seconds, cpu_seconds


# ---------------------------------------------------------------- measuring

def load_rss(path):
    """MiB of resident memory a fresh /usr/bin/python3 adds by faiss.read_index(path)."""
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's, gigabytes here.
    code = ("import faiss, sys\n"
            "def hwm():\n"
            "    with open('/proc/self/status') as f:\n"
            "        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM'))\n"
            "before = hwm()\n"
            "index = faiss.read_index(sys.argv[1])\n"
            "print(hwm() - before)\n")
    out = subprocess.run(["/usr/bin/python3", "-c", code, path], capture_output=True,
                         text=True, check=True)
    return int(out.stdout) / 1024


KINDS = ("real", "synthetic")


class Queries:
    """The queries of one sweep, by kind: the first `real` rows of queries.npy
    are held-out real embeddings, the rest synthetic. `per_kind` of them of
    each kind are searched (and timed) by every path, in the same order: real
    first, then synthetic."""

    def __init__(self, queries, exact, real, per_kind=None):
        self.rows = {"real": np.arange(real), "synthetic": np.arange(real, len(queries))}
        if per_kind:
            self.rows = {kind: rows[:per_kind] for kind, rows in self.rows.items()}
        self.order = np.concatenate([self.rows[kind] for kind in KINDS])
        self.vectors = np.ascontiguousarray(queries[self.order])
        self.exact = exact[self.order]
        self.kind_of = np.concatenate([[kind] * len(self.rows[kind]) for kind in KINDS])

    def split(self, per_query):
        """{real, synthetic, all: mean of per_query} (per_query in self.order)."""
        per_query = np.asarray(per_query, dtype="float64")
        out = {kind: float(per_query[self.kind_of == kind].mean()) for kind in KINDS
               if (self.kind_of == kind).any()}
        out["all"] = float(per_query.mean())
        return out

    def recall(self, found):
        return self.split([len(set(f) & set(e)) / K for f, e in zip(found, self.exact)])


def single_times(index, vectors):
    """One thread, one query per call, every query: (wall, CPU) ms of each."""
    wall, cpu_ms = np.empty(len(vectors)), np.empty(len(vectors))
    for q in range(len(vectors)):
        t0, c0 = time.perf_counter(), time.process_time()
        index.search(vectors[q:q + 1], K)
        wall[q] = 1000 * (time.perf_counter() - t0)
        cpu_ms[q] = 1000 * (time.process_time() - c0)
    return wall, cpu_ms


def python_row(faiss, index, qs):
    """Python faiss on the queries of qs: recall by kind, the one-thread wall and CPU
    ms a query by kind, batch queries/s, HNSW base-level distances a query."""
    faiss.omp_set_num_threads(os.cpu_count())
    faiss.cvar.hnsw_stats.reset()
    t0 = time.perf_counter()
    _, found = index.search(qs.vectors, K)
    batch = len(qs.vectors) / (time.perf_counter() - t0)
    # HNSW's distance computations on its base level, which set its cost.
    distances = faiss.cvar.hnsw_stats.n3 / len(qs.vectors)
    faiss.omp_set_num_threads(1)
    wall, cpu_ms = single_times(index, qs.vectors)
    faiss.omp_set_num_threads(os.cpu_count())
    return qs.recall(found), qs.split(wall), qs.split(cpu_ms), batch, distances


def run_ours(feed, path, qs, props, work, preprocessing=None):
    """faisssearch on the queries of qs, one run per kind (its timing is per run):
    recall, wall and CPU ms a query by kind, start s and peak RSS MiB (the larger)."""
    found, wall, cpu_ms, start, rss = [], {}, {}, 0.0, 0.0
    for kind in KINDS:
        rows = qs.vectors[qs.kind_of == kind]
        if not len(rows):
            continue
        raw = os.path.join(work, f"queries-{kind}-{len(rows)}.f32")
        if not os.path.exists(raw):
            rows.astype("<f4").tofile(raw)
        # Popen's wait consumes the child's rusage; time(1) keeps it.
        args = ["/usr/bin/time", "-f", "maxrss %M", feed, "search", path, raw, MODEL,
                f"k={K}", *props]
        env = feed_env(feed)
        if preprocessing:  # an index faissindexer-feed wrote records "feed"
            env["VS_FEED_PREPROCESSING"] = preprocessing
        run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
        if run.returncode != 0:
            raise SystemExit(f"faisssearch-feed {' '.join(args[4:])}: {run.stderr.strip()}")
        found += [[int(p.split(":")[0]) for p in line.split()[1:]]
                  for line in run.stdout.splitlines()]
        words = next(l for l in run.stderr.splitlines() if l.startswith("start ")).split()
        start = max(start, float(words[1]))
        wall[kind] = 1000 * float(words[5]) / len(rows)
        cpu_ms[kind] = 1000 * float(words[8]) / len(rows)
        rss = max(rss, int(next(l for l in run.stderr.splitlines()
                                if l.startswith("maxrss")).split()[1]) / 1024)
    counts = {kind: (qs.kind_of == kind).sum() for kind in wall}
    total = sum(counts.values())
    wall["all"] = sum(wall[k] * counts[k] for k in counts) / total
    cpu_ms["all"] = sum(cpu_ms[k] * counts[k] for k in counts) / total
    return qs.recall(found), wall, cpu_ms, start, rss


def run_hnswlib(anchor, base_path, qs, work, m, ef_construction, efs, pca=None):
    """tests/hnsw-anchor (hnswlib, -march=native) on the same vectors and queries:
    the graph built once (M, efConstruction, all cores) and saved; then for each
    ef, {ef: (recall by kind, CPU ms by kind)}, one thread, one query at a time.
    pca: (faiss, the pca-hnsw-rflat file, refine factor): the graph is built on
    the vectors projected by that file's PCA, and its K x factor best re-ranked
    over the full vectors, the way PCA128,HNSW32,RFlat searches."""
    raw_base = os.path.join(work, "base.f32")
    if not os.path.exists(raw_base):
        write_raw(np.load(base_path, mmap_mode="r"), raw_base)
    raw_queries = os.path.join(work, f"queries-ordered-{len(qs.vectors)}.f32")
    qs.vectors.astype("<f4").tofile(raw_queries)
    raw_exact = os.path.join(work, f"exact-ordered-{len(qs.vectors)}.i64")
    qs.exact.astype("<i8").tofile(raw_exact)
    graph = os.path.join(work, f"hnswlib-M{m}-efc{ef_construction}.bin")
    args = [anchor, raw_base, raw_queries, raw_exact, str(DIMS), str(K), str(m),
            str(ef_construction), graph, ",".join(map(str, efs))]
    if pca:
        faiss, path, factor = pca
        # Every wrapper below borrows from `index`, which must outlive them.
        index = faiss.read_index(path)
        pre = faiss.downcast_index(faiss.downcast_index(index).base_index)
        pca_matrix = faiss.downcast_VectorTransform(pre.chain.at(0))
        d_out = pca_matrix.d_out
        projected = os.path.join(work, f"base-pca{d_out}.f32")
        if not os.path.exists(projected):
            base = np.load(base_path, mmap_mode="r")
            with open(projected + ".tmp", "wb") as f:
                for _, chunk in chunks(base):
                    pca_matrix.apply_py(chunk).astype("<f4").tofile(f)
            os.replace(projected + ".tmp", projected)
        projected_queries = os.path.join(work, f"queries-ordered-pca{d_out}.f32")
        pca_matrix.apply_py(qs.vectors).astype("<f4").tofile(projected_queries)
        graph = os.path.join(work, f"hnswlib-pca{d_out}-M{m}-efc{ef_construction}.bin")
        args = [anchor, projected, projected_queries, raw_exact, str(d_out), str(K), str(m),
                str(ef_construction), graph, ",".join(map(str, efs)), raw_base, raw_queries,
                str(DIMS), str(factor)]
    log("  " + " ".join(args))
    run = subprocess.run(args, capture_output=True, text=True, timeout=6 * 3600,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    if run.returncode != 0:
        raise SystemExit(f"hnsw-anchor: {run.stderr.strip()}")
    out, ef, recalls, ns = {}, None, [], []
    for line in run.stdout.splitlines() + ["ef end"]:
        words = line.split()
        if words[0] == "ef":
            if ef is not None:
                out[ef] = (qs.split(recalls), qs.split(np.array(ns) / 1e6))
            ef, recalls, ns = (int(words[1]) if words[1] != "end" else None), [], []
        elif words[0] == "q":
            recalls.append(float(words[2]))
            ns.append(float(words[3]))
        else:
            print(f"hnswlib: {line}")
    return out


def write_raw(base, path):
    with open(path + ".tmp", "wb") as f:
        for _, chunk in chunks(base):
            chunk.astype("<f4").tofile(f)
    os.replace(path + ".tmp", path)


def feed_env(feed):
    build = os.path.dirname(os.path.dirname(feed))
    # One OpenMP thread: as the Python "1 thread" column, and faisssearch searches one
    # query per buffer, where more threads only wait on each other.
    return dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(build, "ext", "visualsearch"),
                OMP_NUM_THREADS="1")


def catalog_for(feed, path):
    if not os.path.exists(path + ".db"):
        subprocess.run([feed, "catalog", path, MODEL], check=True, env=feed_env(feed))


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--no-debian-pictures", action="store_true",
                        help="the real part of the gallery: the CIFAR sample only")
    parser.add_argument("--types", default=",".join(TYPES))
    parser.add_argument("--ours", default="flat,ivf-flat,hnsw32,pca-hnsw-rflat",
                        help="types also searched with the faisssearch element ('' for none)")
    parser.add_argument("--flat-queries", type=int, default=50,
                        help="queries of each kind searched on Flat (each scans all N "
                        "vectors), by every path alike")
    parser.add_argument("--hnsw-n", type=int, default=0,
                        help="build HNSW32 on the first HNSW_N vectors only (its build is "
                        "the slowest), measured against their own exact neighbours")
    parser.add_argument("--efs", default=",".join(map(str, EF_SEARCHES)),
                        help="HNSW32's efSearch sweep")
    parser.add_argument("--ours-efs", default=",".join(map(str, OURS_EFS)),
                        help="the efSearch values also run through faisssearch")
    parser.add_argument("--curve-efs", default=",".join(map(str, REFINE_EFS)),
                        help="pca-hnsw-rflat's and hnswlib's efSearch sweep")
    parser.add_argument("--refine-factors", default=",".join(map(str, REFINE_FACTORS)))
    parser.add_argument("--hnswlib", action="store_true",
                        help="also hnswlib (tests/hnsw-anchor) on the same vectors and "
                        f"queries, M 32, efConstruction {PCA_EF_CONSTRUCTION}, over "
                        "--curve-efs, beside pca-hnsw-rflat")
    parser.add_argument("--hnswlib-pca", action="store_true",
                        help="also hnswlib on pca-hnsw-rflat's PCA projections, its best "
                        "k x refine factor re-ranked over the full vectors: the same "
                        "search as ours, hnswlib's walk")
    parser.add_argument("--rounds", type=int, default=0,
                        help="after the curve, search the real queries at --round-efs "
                        "ROUNDS times more with faisssearch and the hnswlib paths asked "
                        "for, alternated, and print each one's lowest CPU ms a query: "
                        "on a machine whose speed drifts, the comparison that holds")
    parser.add_argument("--round-efs", default="128,144,160",
                        help="the ef-search values of --rounds")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    import faiss

    work = os.path.join(os.path.abspath(args.build), "bench-scale", f"n{args.n}")
    if args.rebuild and os.path.isdir(work):
        import shutil
        shutil.rmtree(work)
    os.makedirs(work, exist_ok=True)
    feed = os.path.join(os.path.abspath(args.build), "tests", "faisssearch-feed")
    indexer_feed = os.path.join(os.path.abspath(args.build), "tests", "faissindexer-feed")
    anchor = os.path.join(os.path.abspath(args.build), "tests", "hnsw-anchor")
    if (args.hnswlib or args.hnswlib_pca) and not os.path.exists(anchor):
        raise SystemExit(f"--hnswlib: {anchor} is missing; it is built only where "
                         "hnswlib's header is installed (apt-get install libhnswlib-dev, "
                         "then meson setup --reconfigure and ninja)")
    types = [t for t in args.types.split(",") if t]
    our_types = [t for t in args.ours.split(",") if t]
    curve_efs = [int(e) for e in args.curve_efs.split(",") if e]
    factors = [float(f) if "." in f else int(f) for f in args.refine_factors.split(",") if f]

    print(cpu.describe())
    print(f"load average at start: {os.getloadavg()[0]:.2f}; faiss {faiss.__version__}, "
          f"{os.cpu_count()} OpenMP threads for builds and batches")
    print(f"command (niceness {os.nice(0)}): /usr/bin/python3 " + " ".join(sys.argv))

    t0 = time.perf_counter()
    base_path, query_path = make_vectors(args.n, args.dataset, work,
                                         with_debian=not args.no_debian_pictures)
    base = np.load(base_path, mmap_mode="r")
    queries = np.load(query_path)
    with open(os.path.join(work, "vectors.json")) as f:
        facts = json.load(f)
    debian = facts.get("real_debian", 0)
    print(f"vectors: {args.n} x {DIMS} float32 in {base_path}: {facts['real']} real "
          f"({100 * facts['real'] / args.n:.2f}% of the gallery: "
          f"{facts.get('real_cifar', facts['real'])} CIFAR-10 sample pictures, {debian} "
          f"distinct pictures of Debian's packages; torchvision resnet18, random weights "
          f"seed 0, 32x32, no augmentations) and {facts['synthetic']} synthetic from "
          f"{CLUSTERS} clusters fitted to the CIFAR ones; queries: "
          f"{facts['real_queries']} held-out real CIFAR + {facts['synthetic_queries']} "
          f"synthetic, none in the gallery ({time.perf_counter() - t0:.0f} s)")

    builder = Builder(faiss, base, work, args.hnsw_n, indexer_feed)
    flat_path, _, _ = index_file(faiss, builder, "flat", work)
    exact_path = os.path.join(work, "exact.npy")
    if not os.path.exists(exact_path):
        index = faiss.read_index(flat_path)
        np.save(exact_path, index.search(queries, K)[1])
        del index
    exact = np.load(exact_path)
    if builder.hnsw_n < builder.n:
        prefix_exact_path = os.path.join(work, f"exact-first{builder.hnsw_n}.npy")
        if not os.path.exists(prefix_exact_path):
            index = faiss.IndexFlatIP(DIMS)
            index.add(np.ascontiguousarray(base[:builder.hnsw_n]))
            np.save(prefix_exact_path, index.search(queries, K)[1])
            del index
        prefix_exact = np.load(prefix_exact_path)
    real_queries = facts["real_queries"]

    # Every path searches the same queries in the same order (real, then
    # synthetic), all of them, one at a time, on one thread; only Flat is
    # capped, and the same for every path. ms: wall, which the machine's other
    # load lengthens; CPU ms: the CPU time of the process per query, which it
    # does not.
    header = ("| index | setting | recall@10 real | synthetic | all | CPU ms/query real | all | "
              "q/s batch | HNSW distances/query | ours: recall@10 real | synthetic | all | "
              "ours: CPU ms/query real | all | ours: ms/query all |")
    rows, summary, curve = [], [], {}
    for kind in types:
        path, build_seconds, build_cpu = index_file(faiss, builder, kind, work)
        size = os.path.getsize(path) / 2**20
        rss = load_rss(path)
        index = faiss.read_index(path)
        spec = builder.spec(kind)
        if kind.startswith(("ivf", "opq")):
            params = faiss.ParameterSpace()
            sweep = [(f"nprobe={p}", [("nprobe", p)], [f"nprobe={p}"], p in OURS_NPROBES)
                     for p in NPROBES if p <= builder.nlist]
        elif kind == "hnsw32":
            params = faiss.ParameterSpace()
            efs = [int(e) for e in args.efs.split(",") if e]
            ours_efs = [int(e) for e in args.ours_efs.split(",") if e]
            sweep = [(f"efSearch={e}", [("efSearch", e)], [f"ef-search={e}"], e in ours_efs)
                     for e in efs]
        elif kind == "pca-hnsw-rflat":
            params = faiss.ParameterSpace()
            sweep = [(f"efSearch={e} k_factor={f}", [("efSearch", e), ("k_factor_rf", f)],
                      [f"ef-search={e}", f"refine-factor={f}"], True)
                     for f in factors for e in curve_efs]
        else:
            params, sweep = None, [("", None, None, True)]
        truth = prefix_exact if kind == "hnsw32" and builder.hnsw_n < builder.n else exact
        qs = Queries(queries, truth, real_queries, args.flat_queries if kind == "flat" else None)
        our_start, our_rss = None, None
        for label, setting, prop, with_ours in sweep:
            for name, value in setting or []:
                params.set_index_parameter(index, name, value)
            rec, _, cpu_ms, batch, distances = python_row(faiss, index, qs)
            row = (f"| {spec} | {label} | {rec['real']:.3f} | {rec['synthetic']:.3f} | "
                   f"{rec['all']:.3f} | {cpu_ms['real']:.3g} | {cpu_ms['all']:.3g} | "
                   f"{batch:.3g} | {f'{distances:.0f}' if 'hnsw' in kind else ''} | ")
            ours = None
            if kind in our_types and with_ours:
                catalog_for(feed, path)
                o_rec, o_wall, o_cpu, our_start, our_rss = run_ours(
                    feed, path, qs, prop or [], work,
                    "feed" if kind == "pca-hnsw-rflat" else None)
                ours = (o_rec, o_cpu)
                row += (f"{o_rec['real']:.3f} | {o_rec['synthetic']:.3f} | {o_rec['all']:.3f} | "
                        f"{o_cpu['real']:.3g} | {o_cpu['all']:.3g} | {o_wall['all']:.3g} |")
            else:
                row += " | | | | | |"
            if kind == "pca-hnsw-rflat":
                curve[(setting[0][1], setting[1][1])] = ((rec, cpu_ms), ours)
            rows.append(row)
            print(row, flush=True)
        del index
        cpu_text = "?" if np.isnan(build_cpu) else f"{build_cpu:.0f}"
        summary.append(f"| {spec} | {build_seconds:.0f} | {cpu_text} | {rss:.0f} | {size:.0f} | "
                       + (f"{our_start:.1f} | {our_rss:.0f} |" if our_start is not None
                          else " | |"))

    anchor_rows, pca_anchor_rows = {}, {}
    if args.hnswlib:
        qs = Queries(queries, exact, real_queries)
        anchor_rows = run_hnswlib(anchor, base_path, qs, work, 32, PCA_EF_CONSTRUCTION,
                                  curve_efs)
    if args.hnswlib_pca:
        qs = Queries(queries, exact, real_queries)
        pca_path, _, _ = index_file(faiss, builder, "pca-hnsw-rflat", work)
        pca_anchor_rows = run_hnswlib(anchor, base_path, qs, work, 32, PCA_EF_CONSTRUCTION,
                                      curve_efs, (faiss, pca_path, factors[0]))

    print(f"\nN = {args.n}, {len(queries)} queries, k = {K}, nlist = {builder.nlist}; "
          f"load average at the end: {os.getloadavg()[0]:.2f}\n")
    print("| index | build s | build CPU s | load RSS MiB (Python) | file MiB | ours: start s | "
          "ours: peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(summary))
    print()
    print(header)
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if curve or anchor_rows or pca_anchor_rows:
        factor = factors[0] if factors else None
        print(f"\nThe curve over ef-search, one thread, one query at a time, the same "
              f"{len(queries)} queries in the same order for every path; recall@10 and CPU "
              f"ms a query on the real queries (all queries in brackets). hnswlib: M 32, "
              f"efConstruction {PCA_EF_CONSTRUCTION}, on the {DIMS}-d vectors, l2, "
              f"-march=native; FAISS (Python, Debian's build: scalar distances) and "
              f"faisssearch: {PCA_SPEC} (M 32, efConstruction {PCA_EF_CONSTRUCTION}), "
              f"refine-factor {factor}, the same file.\n")
        print("| ef-search | hnswlib recall@10 real (all) | hnswlib CPU ms real (all) | "
              "FAISS recall@10 real (all) | FAISS CPU ms real (all) | "
              "faisssearch recall@10 real (all) | faisssearch CPU ms real (all) | "
              "hnswlib on the PCA + re-ranking: recall@10 real (all) | CPU ms real (all) |")
        print("|---|---|---|---|---|---|---|---|---|")

        def pair(rec, cpu_ms):
            return (f"{rec['real']:.3f} ({rec['all']:.3f}) | "
                    f"{cpu_ms['real']:.3g} ({cpu_ms['all']:.3g})")
        for ef in curve_efs:
            cells = [pair(*anchor_rows[ef]) if ef in anchor_rows else " | "]
            python, ours = curve.get((ef, factor), (None, None))
            cells.append(pair(*python) if python else " | ")
            cells.append(pair(*ours) if ours else " | ")
            cells.append(pair(*pca_anchor_rows[ef]) if ef in pca_anchor_rows else " | ")
            print(f"| {ef} | " + " | ".join(cells) + " |")

    if args.rounds > 0 and "pca-hnsw-rflat" in types and "pca-hnsw-rflat" in our_types:
        alternate(args, faiss, builder, queries, exact, real_queries, work, feed, anchor,
                  base_path, factors[0] if factors else 2)


def alternate(args, faiss, builder, queries, exact, real_queries, work, feed, anchor,
              base_path, factor):
    """faisssearch and the hnswlib paths on the real queries, one after the other,
    args.rounds times: each one's lowest CPU ms a query over the rounds, so that a
    slow minute of the machine (its speed drifts by up to 2x here) does not decide
    the comparison. The recall of every round must be the same."""
    efs = [int(e) for e in args.round_efs.split(",") if e]
    qs = Queries(queries[:real_queries], exact[:real_queries], real_queries)
    path, _, _ = index_file(faiss, builder, "pca-hnsw-rflat", work)
    paths = {"faisssearch": None}
    if args.hnswlib:
        paths["hnswlib"] = None
    if args.hnswlib_pca:
        paths["hnswlib, PCA + re-ranking"] = (faiss, path, factor)
    best = {(name, ef): (None, []) for name in paths for ef in efs}
    for r in range(args.rounds):
        for name, pca in paths.items():
            if name == "faisssearch":
                catalog_for(feed, path)
                results = {}
                for ef in efs:
                    rec, _, cpu_ms, _, _ = run_ours(
                        feed, path, qs, [f"ef-search={ef}", f"refine-factor={factor}"], work,
                        "feed")
                    results[ef] = (rec, cpu_ms)
            else:
                results = run_hnswlib(anchor, base_path, qs, work, 32, PCA_EF_CONSTRUCTION,
                                      efs, pca)
            for ef in efs:
                rec, cpu_ms = results[ef]
                first, times = best[(name, ef)]
                if first is not None and abs(first - rec["real"]) > 1e-9:
                    raise SystemExit(f"--rounds: {name} at ef-search {ef} found recall "
                                     f"{rec['real']} in round {r + 1}, {first} before")
                best[(name, ef)] = (rec["real"], times + [cpu_ms["real"]])
            log(f"  round {r + 1} {name}: " + ", ".join(
                f"ef {ef} {results[ef][1]['real']:.3f} ms" for ef in efs))
    print(f"\n{len(qs.vectors)} real queries at each ef-search, {args.rounds} rounds, the "
          f"paths alternated within each round; CPU ms a query: the lowest round "
          f"(every round in brackets); ratio: the path's lowest over faisssearch's.\n")
    names = list(paths)
    print("| ef-search | " + " | ".join(f"{n}: recall@10 real | CPU ms real" +
                                        ("" if n == "faisssearch" else " | ratio")
                                        for n in names) + " |")
    print("|---|" + "---|---|" * len(names) + "---|" * (len(names) - 1))
    for ef in efs:
        ours = min(best[("faisssearch", ef)][1])
        cells = []
        for name in names:
            rec, times = best[(name, ef)]
            cells.append(f"{rec:.3f} | {min(times):.3f} ("
                         + ", ".join(f"{t:.3f}" for t in times) + ")")
            if name != "faisssearch":
                cells.append(f"{min(times) / ours:.2f}x")
        print(f"| {ef} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
