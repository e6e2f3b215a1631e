#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Index files are checked before FAISS reads them: every supported type
written by Python faiss loads and searches; damaged, truncated, hostile and
unsupported files, FIFOs and devices are refused with a message that names the
file, the fault and the fix, never with a crash, a hang or a memory blow-up;
faisssearch turns the refusal into an element error. A seeded mutation fuzz
of valid files ends in a refusal or a working index, every time.

Loads run in index-file-probe under an address-space limit, so a
multi-gigabyte allocation fails the test instead of going unnoticed.

Usage: test_index_file.py INDEX_FILE_PROBE FAISSSEARCH_FEED
"""
import os
import resource
import sys

import faiss

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
import index_fixtures  # noqa: E402
from checks import check, expect_error, finish, tmp_dir  # noqa: E402

MEMORY_LIMIT = 512 << 20  # bytes of address space for a probe
# OpenBLAS maps a 128 MB buffer per thread and, when the limit refuses one,
# retries for ever: one thread keeps the probe well inside the limit.
PROBE_ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
TIMEOUT = 120
FUZZ_SEED = 20240611
FUZZ_ROUNDS = 250  # per file
FUZZ_FILES = ["flat-l2", "ivf-flat", "ivf-direct-map", "ivf-pq", "ivf-sq8", "hnsw", "hnsw-pq",
              "pq", "opq-ivf-pq", "pca-ivf-flat", "idmap2-ivf-flat", "ivf-pq-rflat"]
ADVICE = "Rebuild the index with faissindexer or cifarindexer."
MODEL = "index-file:1"


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def probe(binary, *args):
    return checks.run([binary, *args], timeout=TIMEOUT, env=PROBE_ENV, preexec_fn=limit_memory)


def expect_refusal(run, what, *phrases):
    """The probe's refusal: exit status 1 and a message with every phrase."""
    expect_error(run, what + " is refused", *phrases, rc=1)


def test_valid_files_load(binary, directory):
    for name, path in index_fixtures.write_valid(directory).items():
        run = probe(binary, "load", path)
        expected = 0 if name.startswith("empty") else index_fixtures.COUNT
        check(run.returncode == 0 and run.stdout.strip() == f"loaded {expected}",
              f"{name} ({index_fixtures.VALID[name][0]}) loads and searches",
              f"exit status {run.returncode}: {run.stdout} {run.stderr}")


def test_corruptions_are_refused(binary, directory):
    for name, (data, phrase) in index_fixtures.corruptions().items():
        path = index_fixtures.write(directory, name, data)
        run = probe(binary, "load", path)
        expect_refusal(run, name, path, phrase, ADVICE)
        if name.startswith("unsupported"):
            check("visualsearch loads only index types it can check: Flat" in run.stderr,
                  f"{name}: the message lists the types that load", run.stderr)


# mmap=true searches these in place (pca-hnsw-rflat: its refine stage's
# vectors); the others load as without it.
MAPPED = {"flat-l2", "flat-ip", "idmap-flat", "idmap2-flat", "ivf-flat", "ivf-flat-ip", "ivf-pq",
          "ivf-pq-ip", "ivf-pq-no-residual", "ivf-pq-4bit", "ivf-sq8", "ivf-sq4",
          "ivf-hnsw-quantizer", "opq-ivf-pq", "pca-ivf-flat", "ivf-pq-rflat", "idmap2-ivf-flat",
          "ivf-direct-map", "empty-ivf", "pca-hnsw-rflat"}


def test_mapped_files(binary, directory):
    """Mapped or not, every valid file gives the hits it gives when copied;
    damaged ones, and truncated Flat and IVF files, are refused as when
    copied."""
    for name, path in index_fixtures.write_valid(directory).items():
        run = probe(binary, "map", path)
        expected = 0 if name.startswith("empty") else index_fixtures.COUNT
        mapped = "yes" if name in MAPPED else "no"
        check(run.returncode == 0 and run.stdout.strip() == f"mapped {mapped} loaded {expected}",
              f"{name} mapped: {mapped}, same hits as copied",
              f"exit status {run.returncode}: {run.stdout} {run.stderr}")
    for name, (data, phrase) in index_fixtures.corruptions().items():
        path = index_fixtures.write(directory, name, data)
        expect_refusal(probe(binary, "map", path), name + " (mapped)", path, phrase, ADVICE)
    valid = index_fixtures.write_valid(directory)
    for name in ["flat-l2", "idmap2-flat", "ivf-pq", "empty-ivf"]:
        with open(valid[name], "rb") as f:
            data = f.read()
        for size in [0, 1, 40, len(data) // 2, len(data) - 8, len(data) - 1]:
            path = index_fixtures.write(directory, f"{name}-{size}", data[:size])
            expect_refusal(probe(binary, "map", path), f"{name} cut at {size} (mapped)", path,
                           ADVICE)


def write_random_index(directory, name, factory, rows, seed):
    """An index_factory index (L2) of `rows` Gaussian 512-d vectors, trained
    on the first 2,000 when the type needs it, written as `name`; its path."""
    import numpy as np
    vectors = np.random.default_rng(seed).standard_normal((rows, 512)).astype("float32")
    index = faiss.index_factory(512, factory)
    if not index.is_trained:
        index.train(vectors[:2000])
    index.add(vectors)
    del vectors
    path = os.path.join(directory, name)
    faiss.write_index(index, path)
    return path


def test_load_holds_the_index_once(binary, directory):
    """A load holds the index once, not twice: the file is mapped and let go
    of as FAISS copies it, rather than read whole and then copied."""
    path = write_random_index(directory, "large-flat.faiss", "Flat", 48000, seed=5)
    size_kib = os.path.getsize(path) // 1024
    run = checks.run([binary, "peak", path], timeout=TIMEOUT, env=PROBE_ENV)
    if check(run.returncode == 0, "the peak probe runs", run.stderr):
        grew = int(run.stdout.split()[1])
        check(grew < 1.4 * size_kib, f"loading {size_kib} KiB raised the peak by less than 1.4x",
              f"{grew} KiB")
    os.remove(path)


def test_mapped_refine_load_peak(binary, directory):
    """mmap=true on PCA,HNSW,RFlat: FAISS reads the base alone and the
    re-ranking's vectors are never copied, and the pages the load reads are
    let go of as it goes, so the load's peak stays near the base's size, far
    below the file's (the vectors are 4/5 of it here). Copied, it holds the
    whole file."""
    path = write_random_index(directory, "large-pca-hnsw-rflat.faiss", "PCA128,HNSW8,RFlat",
                              30000, seed=6)
    size_kib = os.path.getsize(path) // 1024
    refine_kib = 30000 * 512 * 4 // 1024
    for mode in ("peak", "peak-map"):
        run = checks.run([binary, mode, path], timeout=TIMEOUT, env=PROBE_ENV)
        if not check(run.returncode == 0, f"the {mode} probe runs", run.stderr):
            continue
        grew = int(run.stdout.split()[1])
        if mode == "peak":
            check(grew > size_kib * 0.9, f"copied, loading {size_kib} KiB holds it all",
                  f"{grew} KiB")
        else:
            # The base, copied, plus the 16 MiB steps in which the file's
            # pages are read (check, digest) and let go of.
            base_kib = size_kib - refine_kib
            check(grew < 1.4 * base_kib + 32 * 1024 and grew < 0.8 * size_kib,
                  f"mapped, the peak rose by less than 1.4x the {base_kib} KiB that are not "
                  f"re-ranking vectors plus 32 MiB, and well below the file's {size_kib} KiB",
                  f"{grew} KiB")
    os.remove(path)


def test_special_files(binary, directory):
    fifo = os.path.join(directory, "fifo.faiss")
    os.mkfifo(fifo)
    expect_refusal(probe(binary, "load", fifo), "FIFO", fifo, "is a FIFO, not a regular file")
    expect_refusal(probe(binary, "load", directory), "directory", "a directory, not a regular file")
    expect_refusal(probe(binary, "load", "/dev/zero"), "device", "/dev/zero",
                   "a device, not a regular file")
    missing = os.path.join(directory, "missing.faiss")
    expect_refusal(probe(binary, "load", missing), "missing file", missing, "does not exist")


def test_unusable_vectors_are_refused(binary, directory):
    """Rows that cannot be compared are refused at load: a NaN row would
    poison every distance to it, a 1e38 row come first (inner product) or
    never (L2) for every query."""
    import numpy as np
    data = index_fixtures.vectors(count=20)
    data[3] = np.nan
    data[7] = 1e38
    data[11, 5] = np.inf
    flat = faiss.IndexFlatL2(index_fixtures.DIMS)
    flat.add(data)
    idmap = faiss.IndexIDMap2(faiss.IndexFlatIP(index_fixtures.DIMS))
    idmap.add_with_ids(data, np.arange(20, dtype="int64") + 100)
    ivf = faiss.index_factory(index_fixtures.DIMS, "IVF4,Flat", faiss.METRIC_INNER_PRODUCT)
    ivf.train(index_fixtures.vectors(count=300))
    huge = index_fixtures.vectors(count=10)
    huge[4] = 1e20
    ivf.add(huge)
    for name, index, phrases in [
            ("flat", flat, ["3 of its stored vectors", "vector 3, vector 7, vector 11"]),
            ("idmap2-flat", idmap, ["3 of its stored vectors", "vector 3, vector 7, vector 11"]),
            ("ivf-flat", ivf, ["1 of its stored vectors", "id 4"])]:
        path = index_fixtures.write(directory, "unusable-" + name,
                                    index_fixtures.serialize(index))
        for mode in ("load", "map"):
            expect_refusal(probe(binary, mode, path), f"{name} with unusable rows ({mode})",
                           path, "not finite", *phrases, ADVICE)


def test_hnsw_metric_mismatch_is_refused(binary, directory):
    """A graph and a storage of different metrics loaded, and our HNSW walk
    and FAISS's returned the same ids with distances of opposite sign."""
    index = index_fixtures.build("HNSW8", faiss.METRIC_L2, count=50)
    faiss.downcast_index(index.storage).metric_type = faiss.METRIC_INNER_PRODUCT
    path = index_fixtures.write(directory, "hnsw-metrics", index_fixtures.serialize(index))
    expect_refusal(probe(binary, "load", path), "an HNSW graph over storage of another metric",
                   path, "graph uses the L2 metric but its storage the inner product metric",
                   ADVICE)


def test_every_truncation(binary, directory):
    # Small files, so that every prefix of each can be tried.
    small = os.path.join(directory, "small")
    os.mkdir(small)
    paths = [index_fixtures.write(small, name, index_fixtures.serialize(
                 index_fixtures.build(spec, metric, count=20)))
             for name, (spec, metric) in index_fixtures.VALID.items()]
    run = probe(binary, "truncate", *paths)
    tried = sum(os.path.getsize(p) for p in paths)
    check(run.returncode == 0 and run.stdout.startswith(f"tried {tried} refused {tried} loaded 0"),
          f"every truncation of {len(paths)} files refused",
          f"exit status {run.returncode}: {run.stdout} {run.stderr}")


def test_fuzz(binary, directory):
    valid = {name: os.path.join(directory, name + ".faiss") for name in FUZZ_FILES}
    scratch = os.path.join(directory, "fuzz.faiss")
    run = probe(binary, "fuzz", str(FUZZ_SEED), str(FUZZ_ROUNDS), scratch, *valid.values())
    # A non-zero status is a crash or an unexpected exception.
    check(run.returncode == 0 and run.stdout.startswith(f"tried {FUZZ_ROUNDS * len(FUZZ_FILES)} "),
          f"fuzz, seed {FUZZ_SEED}, {len(FUZZ_FILES)} files: a refusal or a working index",
          f"exit status {run.returncode}: {run.stdout} {run.stderr[-2000:]}")


def test_faisssearch_element_error(feed, directory):
    """faisssearch reports the refusal as an element error; without the
    checks this index loads and the first frame crashes the search."""
    path = os.path.join(directory, "element.faiss")
    with open(path, "wb") as f:
        f.write(index_fixtures.serialize(index_fixtures.build("HNSW16", faiss.METRIC_L2)))
    run = checks.run([feed, "catalog", path, MODEL], timeout=TIMEOUT)
    check(run.returncode == 0, "faisssearch-feed writes the catalog", run.stderr)
    data, phrase = index_fixtures.corruptions()["hnsw-entry-point"]
    with open(path, "wb") as f:
        f.write(data)
    queries = os.path.join(directory, "queries.f32")
    index_fixtures.vectors(seed=9, count=3).tofile(queries)
    run = checks.run([feed, "search", path, queries, MODEL], timeout=TIMEOUT)
    expect_error(run, "faisssearch posts an element error",
                 "Could not load the search index", path, phrase, ADVICE, rc=2)


def main():
    binary, feed = sys.argv[1], sys.argv[2]
    with tmp_dir() as directory:
        test_valid_files_load(binary, directory)
        test_corruptions_are_refused(binary, directory)
        test_mapped_files(binary, directory)
        test_load_holds_the_index_once(binary, directory)
        test_mapped_refine_load_peak(binary, directory)
        test_special_files(binary, directory)
        test_unusable_vectors_are_refused(binary, directory)
        test_hnsw_metric_mismatch_is_refused(binary, directory)
        test_every_truncation(binary, directory)
        test_fuzz(binary, directory)
        test_faisssearch_element_error(feed, directory)
    finish()


if __name__ == "__main__":
    main()
