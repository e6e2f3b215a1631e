# SPDX-License-Identifier: LGPL-2.1-or-later
"""faissindexer's files as Python users see them: the index in Python faiss,
the catalog in sqlite3, the export in NumPy; and a writer killed mid-write.

usage: test_faissindexer.py FAISSINDEXER_FEED
"""
import glob
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zlib

import faiss
import fcntl
import io
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, finish, tmp_dir  # noqa: E402

FEED = None
DIMS = 32


def unit_rows(n, seed):
    v = np.random.default_rng(seed).standard_normal((n, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class Case:
    """One test's directory and the index in it."""

    def __init__(self, directory):
        self.dir = directory
        self.index = os.path.join(directory, "gallery.faiss")

    def feed(self, vectors, *props, model=None, frame=None, expect_ok=True):
        path = os.path.join(self.dir, "vectors.f32")
        vectors.astype("<f4").tofile(path)
        env = dict(os.environ)
        if model:
            env["VS_FEED_MODEL"] = model
        if frame:
            env["VS_FEED_FRAME"] = frame
        run = checks.run([FEED, path, str(DIMS), self.index, *props], env=env)
        what = (f"{len(vectors)} vectors, {' '.join(props)} model={model} frame={frame}: "
                + ("indexed" if expect_ok else "refused (exit status 1)"))
        check(run.returncode == (0 if expect_ok else 1), what,
              f"exit status {run.returncode}: {run.stdout} {run.stderr}")
        return run

    def catalog(self):
        db = sqlite3.connect(self.index + ".db")
        try:
            facts = db.execute("SELECT model_id, preprocessing_id, dims, metric, index_type, "
                               "count, created FROM index_facts").fetchall()
            items = db.execute("SELECT id, label, label_name, source FROM items "
                               "ORDER BY id").fetchall()
        finally:
            db.close()
        return facts, items

    def thumbnails(self):
        db = sqlite3.connect(self.index + ".db")
        try:
            return dict(db.execute("SELECT id, jpeg FROM thumbnails ORDER BY id").fetchall())
        finally:
            db.close()

    def appender(self, vectors, name):
        path = os.path.join(self.dir, name)
        vectors.astype("<f4").tofile(path)
        return subprocess.Popen([FEED, path, str(DIMS), self.index, "append=true"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def vectors_file(self, vectors):
        path = os.path.join(self.dir, "extra.f32")
        vectors.astype("<f4").tofile(path)
        return path


def check_thumbnail_of_row(jpeg, row, size, what):
    image = Image.open(io.BytesIO(jpeg))
    red = 37 * row % 256
    mean = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)
    check(image.format == "JPEG" and image.size == size
          and np.allclose(mean, [red, 255 - red, 128], rtol=0, atol=6),
          f"{what}: row {row}'s thumbnail is a {size[0]}x{size[1]} JPEG of its frame",
          (image.format, image.size, mean))


def thumbnails_of_video_frames(c):
    vectors = unit_rows(12, 20)
    c.feed(vectors, frame="200x100:BGRx")
    thumbs = c.thumbnails()
    check(sorted(thumbs) == list(range(12)), "a thumbnail per row", sorted(thumbs))
    for row, jpeg in thumbs.items():
        check_thumbnail_of_row(jpeg, row, (128, 64), "200x100 BGRx")
    check(faiss.read_index(c.index).ntotal == 12, "12 vectors indexed with their thumbnails")

    # At a frame rate: the converter to RGB keeps it (GStreamer asserted
    # on the differing rates and made no thumbnails).
    run = c.feed(vectors[:4], frame="200x100:BGRx@30")
    check("CRITICAL" not in run.stderr, "frames at a frame rate: no GStreamer assertion",
          run.stderr)
    check(sorted(c.thumbnails()) == [0, 1, 2, 3], "frames at a frame rate: thumbnails",
          sorted(c.thumbnails()))

    # Smaller frames are enlarged; another size; RGB needs no conversion.
    c.feed(vectors[:3], "thumbnail-size=48", frame="30x45:RGB")
    thumbs = c.thumbnails()
    check(sorted(thumbs) == [0, 1, 2], "small RGB frames: a thumbnail per row", sorted(thumbs))
    for row, jpeg in thumbs.items():
        check_thumbnail_of_row(jpeg, row, (32, 48), "30x45 RGB, thumbnail-size=48")


def no_thumbnails_when_off_or_not_video(c):
    c.feed(unit_rows(5, 21), "thumbnail-size=0", frame="64x64:RGB")
    check(c.thumbnails() == {}, "thumbnail-size=0: no thumbnails")
    c.feed(unit_rows(5, 21))
    check(c.thumbnails() == {}, "no video frames: no thumbnails")


def append_keeps_thumbnails(c):
    c.feed(unit_rows(5, 22), frame="40x40:RGB")
    before = c.thumbnails()
    c.feed(unit_rows(3, 23), "append=true", frame="40x40:RGB")
    after = c.thumbnails()
    check(sorted(after) == list(range(8)), "append: a thumbnail for each of the 8 rows",
          sorted(after))
    check(all(after.get(row) == before.get(row) for row in range(5)),
          "append: the first 5 thumbnails are kept")
    # The appended frames are rows 0..2 of the second feed.
    for row in range(3):
        check_thumbnail_of_row(after[5 + row], row, (128, 128), "appended")


def append_to_a_schema_2_catalog(c):
    c.feed(unit_rows(4, 24))
    db = sqlite3.connect(c.index + ".db")
    db.execute("DROP TABLE thumbnails")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    c.feed(unit_rows(2, 25), "append=true", frame="16x16:RGB")
    check(sorted(c.thumbnails()) == [4, 5], "schema 2: the appended rows get thumbnails",
          sorted(c.thumbnails()))
    check(c.catalog()[0][0][5] == 6 and faiss.read_index(c.index).ntotal == 6,
          "schema 2: 6 rows in the catalog and the index")


def flat_index_catalog_and_npy(c):
    vectors = unit_rows(200, 1)
    run = c.feed(vectors, "export-npy=true", "progress-interval=50")
    check("progress: collected 100 embeddings" in run.stdout, "progress is reported",
          run.stdout)

    index = faiss.read_index(c.index)
    check((index.ntotal, index.d, index.metric_type) == (200, DIMS, faiss.METRIC_INNER_PRODUCT),
          "a Flat inner-product index of 200 vectors", (index.ntotal, index.d, index.metric_type))
    check(np.array_equal(index.reconstruct_n(0, 200), vectors), "the vectors are stored as fed")

    reference = faiss.IndexFlatIP(DIMS)
    reference.add(vectors)
    queries = unit_rows(8, 2)
    d_ours, i_ours = index.search(queries, 5)
    d_ref, i_ref = reference.search(queries, 5)
    check(np.array_equal(i_ours, i_ref) and np.allclose(d_ours, d_ref, rtol=1e-6, atol=0),
          "searches as Python faiss's IndexFlatIP", (i_ours, i_ref))

    facts, items = c.catalog()
    check(len(facts) == 1, "one row of index facts", facts)
    model, prep, dims, metric, index_type, count, created = facts[0]
    check((model, prep, dims, metric, index_type, count)
          == ("resnet18:feed", "feed", DIMS, "ip", "Flat", 200), "the index facts", facts[0])
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", created),
          "created is an ISO 8601 UTC time", created)
    check(len(items) == 200 and items[17] == (17, 7, "class7", "feed/17"),
          "the catalog's items", items[17:18])

    embeddings = np.load(os.path.join(c.dir, "embeddings.npy"))
    labels = np.load(os.path.join(c.dir, "labels.npy"))
    check(embeddings.dtype == np.float32 and np.array_equal(embeddings, vectors),
          "embeddings.npy: float32, the vectors as fed", embeddings.dtype)
    check(labels.dtype == np.int64 and np.array_equal(labels, np.arange(200) % 10),
          "labels.npy: int64, the labels as fed", labels.dtype)


def factory_strings(c):
    vectors = unit_rows(400, 3)
    reference = faiss.IndexFlatL2(DIMS)
    reference.add(vectors)
    queries = vectors[:10] + 0.01
    _, i_ref = reference.search(queries, 4)
    for index_type, exact in [("IVF8,Flat", True), ("HNSW16", False),
                              ("IVF4,PQ8np", False), ("PCA32,IVF4,Flat", False)]:
        c.feed(vectors, "index-type=" + index_type, "metric=l2")
        index = faiss.read_index(c.index)
        check(index.ntotal == 400 and c.catalog()[0][0][4] == index_type,
              f"{index_type}: 400 vectors, the type in the catalog", index.ntotal)
        if index_type.startswith("IVF"):
            faiss.extract_index_ivf(index).nprobe = 8
        _, found = index.search(queries, 4)
        if exact:
            # IVF with every list probed is exhaustive; its direct
            # map gives back the stored vectors.
            check(np.array_equal(found, i_ref)
                  and np.array_equal(index.reconstruct(123), vectors[123]),
                  f"{index_type}: exhaustive search and the direct map", found)
        else:
            # Each query sits next to its own gallery vector.
            check(np.array_equal(found[:, 0], np.arange(10)),
                  f"{index_type}: each query finds its own gallery vector", found[:, 0])


def cone_rows(n, seed):
    """Unit vectors crowded into a narrow cone, their variance in a few
    directions: what ResNet embeddings look like to a PCA."""
    rng = np.random.default_rng(seed)
    axis = np.random.default_rng(99).standard_normal(DIMS)
    axis /= np.linalg.norm(axis)
    spread = np.exp(-np.arange(DIMS) / 4.0)
    v = (axis + 0.6 * rng.standard_normal((n, DIMS)) * spread).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def pca_with_inner_product(c):
    """metric=ip behind a PCA: faissindexer projects without FAISS's
    centring, which on vectors in a narrow cone ranks the wrong neighbours;
    the file still searches the same way in Python faiss."""
    gallery, queries = cone_rows(2000, 21), cone_rows(50, 22)
    exact = faiss.IndexFlatIP(DIMS)
    exact.add(gallery)
    _, truth = exact.search(queries, 10)

    def recall(found):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])

    for index_type in ("PCA8,Flat", "PCA8,HNSW16,RFlat"):
        # What FAISS's own index_factory and train give.
        centred = faiss.index_factory(DIMS, index_type, faiss.METRIC_INNER_PRODUCT)
        centred.train(gallery)
        centred.add(gallery)
        props = ["index-type=" + index_type, "metric=ip"]
        if index_type.endswith("RFlat"):
            centred.k_factor = 4
            props.append("refine-factor=4")
        c.feed(gallery, *props)
        index = faiss.read_index(c.index)
        pre = faiss.downcast_index(index.base_index) if index_type.endswith("RFlat") else index
        pca = faiss.downcast_VectorTransform(pre.chain.at(0))
        bias = faiss.vector_to_array(pca.b)
        ours, theirs = recall(index.search(queries, 10)[1]), recall(centred.search(queries, 10)[1])
        print(f"   {index_type} ip recall@10: {ours:.3f} uncentred, {theirs:.3f} centred")
        check(np.all(bias == 0), f"{index_type} ip: the PCA projects without centring", bias[:4])
        check(ours >= 0.75 and theirs < 0.6,
              f"{index_type} ip: recall@10 {ours:.2f} where FAISS's centred PCA gives "
              f"{theirs:.2f}", (ours, theirs))


def hnsw_build_settings(c):
    """ef-construction reaches the graph and refine-factor the file's
    k_factor; without them FAISS's defaults (40, 1) are written."""
    vectors = unit_rows(300, 23)
    c.feed(vectors, "index-type=HNSW16,RFlat", "ef-construction=96", "refine-factor=2.5")
    index = faiss.read_index(c.index)
    graph = faiss.downcast_index(index.base_index)
    check(index.k_factor == 2.5 and graph.hnsw.efConstruction == 96,
          "HNSW16,RFlat ef-construction=96 refine-factor=2.5: written into the file",
          (index.k_factor, graph.hnsw.efConstruction))
    c.feed(vectors, "index-type=HNSW16,RFlat")
    index = faiss.read_index(c.index)
    check(index.k_factor == 1 and faiss.downcast_index(index.base_index).hnsw.efConstruction == 40,
          "without them: FAISS's k_factor 1 and efConstruction 40")


def too_few_vectors_names_the_minimum(c):
    run = c.feed(unit_rows(20, 4), "index-type=IVF64,Flat", expect_ok=False)
    check("at least 64 training vectors" in run.stderr, "IVF64 names its minimum", run.stderr)
    check(not os.path.exists(c.index), "a refused index is not written")
    run = c.feed(unit_rows(100, 4), "index-type=IVF2,PQ8np", expect_ok=False)
    check("at least 256 training vectors" in run.stderr, "PQ8 names its minimum", run.stderr)


def append_and_mismatch(c):
    first, second = unit_rows(120, 5), unit_rows(30, 6)
    c.feed(first)
    c.feed(second, "append=true")
    index = faiss.read_index(c.index)
    check(index.ntotal == 150
          and np.array_equal(index.reconstruct_n(0, 150), np.vstack([first, second])),
          "append: the index holds both feeds in order", index.ntotal)
    facts, items = c.catalog()
    check(facts[0][5] == 150 and [row[0] for row in items] == list(range(150)),
          "append: the catalog counts and lists 150 items", facts[0])

    run = c.feed(second, "append=true", model="resnet50:other", expect_ok=False)
    check("resnet50:other" in run.stderr and "resnet18:feed" in run.stderr,
          "append from another model: refused, naming both", run.stderr)
    run = c.feed(second, "append=true", "metric=l2", expect_ok=False)
    check("metric ip" in run.stderr and "metric l2" in run.stderr,
          "append with another metric: refused, naming both", run.stderr)
    check(faiss.read_index(c.index).ntotal == 150 and c.catalog()[0][0][5] == 150,
          "refused appends change nothing")


def catalog_records_its_index(c):
    c.feed(unit_rows(50, 8))
    db = sqlite3.connect(c.index + ".db")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        size, crc = db.execute("SELECT index_bytes, index_crc32 FROM index_facts").fetchone()
    finally:
        db.close()
    check(version == 6, "catalog schema 6", version)
    with open(c.index, "rb") as f:
        content = f.read()
    check(size == len(content) and crc == zlib.crc32(content),
          "the catalog records the index's size and CRC-32", (size, crc))
    check(faiss.read_index(c.index).ntotal == 50, "50 vectors indexed")


def concurrent_appenders_keep_both(c):
    # Two appending runs at once keep both runs' vectors, rather than each
    # writing back what it had read plus its own.
    base, first, second = unit_rows(1017, 9), unit_rows(100, 10), unit_rows(100, 11)
    c.feed(base)
    runs = [c.appender(first, "first.f32"), c.appender(second, "second.f32")]
    for run in runs:
        out, err = run.communicate(timeout=120)
        check(run.returncode == 0, "a concurrent appender succeeds", err)
    index = faiss.read_index(c.index)
    check(index.ntotal == 1217, "concurrent appenders: 1217 vectors", index.ntotal)
    stored = index.reconstruct_n(0, index.ntotal)
    check(np.array_equal(stored[:1017], base), "concurrent appenders: the base is kept")
    added = {row.tobytes() for row in stored[1017:]}
    check(added == {row.tobytes() for row in np.vstack([first, second])},
          "concurrent appenders: both runs' vectors are kept")
    facts, items = c.catalog()
    check(facts[0][5] == 1217 and len(items) == 1217,
          "concurrent appenders: the catalog counts and lists 1217 items", facts[0])


def appender_waits_for_the_lock_and_reads_after_it(c):
    # An appender reads the index only once it holds the lock, so what
    # another writer replaced meanwhile is kept.
    base, other, mine = unit_rows(40, 12), unit_rows(7, 13), unit_rows(5, 14)
    c.feed(base)
    bigger = os.path.join(c.dir, "bigger.faiss")
    for path in (c.index, c.index + ".db"):
        shutil.copy(path, path.replace("gallery.faiss", "bigger.faiss"))
    subprocess.run([FEED, c.vectors_file(other), str(DIMS), bigger, "append=true"],
                   check=True, capture_output=True, timeout=120)
    with open(c.index + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run = c.appender(mine, "mine.f32")
        waiting, line = False, ""
        for line in run.stdout:
            if "waiting for another writer" in line:
                waiting = True
                break
        check(waiting and c.index + ".lock" in line,
              "the appender waits for the lock, naming the lock file", line)
        os.replace(bigger, c.index)
        os.replace(bigger + ".db", c.index + ".db")
    out, err = run.communicate(timeout=120)
    check(run.returncode == 0, "the waiting appender succeeds", err)
    index = faiss.read_index(c.index)
    check(index.ntotal == 52
          and np.array_equal(index.reconstruct_n(0, 52), np.vstack([base, other, mine])),
          "the appender adds to what the other writer left", index.ntotal)


def gst_launch_runs_the_plugin():
    """In the sanitizer stage this test runs without libasan preloaded (the
    feed program is instrumented and checked for leaks itself), and the
    uninstrumented gst-launch-1.0 cannot load the instrumented plugin: the
    cases that need it run in the plain stage."""
    if "ASAN_OPTIONS" in os.environ and "LD_PRELOAD" not in os.environ:
        print("skipped here (sanitizer stage, no libasan preloaded for gst-launch-1.0); "
              "the plain stage runs it", flush=True)
        return False
    return True


def gst_launch_appender_plays_after_the_lock(c):
    if not gst_launch_runs_the_plugin():
        return
    # gst-launch-1.0 keeps a prerolled pipeline in PAUSED while a progress
    # is open: a second appender must go on once the lock is free and write
    # its 100 vectors, not wait there for good.
    embed = ["embedder", "weights=random", "input-size=32", "resize=0", "threads=1", "!",
             "faissindexer", f"location={c.index}", "append=true"]
    holder = subprocess.Popen(["gst-launch-1.0", "fdsrc", "!", "rawvideoparse", "width=32",
                               "height=32", "format=rgb", "!", *embed],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    lock_taken = False
    with open(c.index + ".lock", "a") as lock:
        deadline = time.monotonic() + 60
        while not lock_taken and holder.poll() is None and time.monotonic() < deadline:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(lock, fcntl.LOCK_UN)
                time.sleep(0.05)
            except BlockingIOError:
                lock_taken = True
    check(lock_taken, "the first appender holds the lock")
    holder.stdin.write(bytes(range(256)) * (32 * 32 * 3 * 50 // 256))
    # gst-launch-1.0 prints the progress only once the state change that
    # waits returns; the element's debug log says it the moment it is posted.
    second = subprocess.Popen(["gst-launch-1.0", "videotestsrc", "num-buffers=100", "!",
                               "video/x-raw,width=32,height=32,format=RGB", "!", *embed],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, GST_DEBUG="faissindexer:4",
                                       GST_DEBUG_NO_COLOR="1"))
    waiting = ""
    for line in second.stderr:
        if "waiting for another writer" in line:
            waiting = line
            break
    check(waiting, "the second appender waits for the lock", waiting)
    holder.stdin.close()
    check(holder.wait(timeout=120) == 0, "the first appender finishes", holder.stderr.read())
    try:
        out, err = second.communicate(timeout=120)
        finished = second.returncode == 0
    except subprocess.TimeoutExpired:
        second.kill()
        out, err = second.communicate()
        finished = False
    check(finished, "the second appender plays once the lock is free, and finishes",
          (out or "")[-600:] + (err or "")[-600:])
    check(os.path.exists(c.index) and faiss.read_index(c.index).ntotal == 150,
          "both appenders' vectors are in the index (50 + 100)")


def writes_through_a_symbolic_link(c):
    # A write through a link updates the real index rather than replacing the
    # link with a new file, and writers through either name share one lock.
    base, mine, theirs = unit_rows(30, 21), unit_rows(4, 22), unit_rows(6, 23)
    c.feed(base)
    link = os.path.join(c.dir, "link.faiss")
    os.symlink("gallery.faiss", link)
    with open(c.index + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run = subprocess.Popen([FEED, c.vectors_file(mine), str(DIMS), link, "append=true"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        waited = ""
        for line in run.stdout:
            if "waiting for another writer" in line:
                waited = line
                break
        check(waited, "a writer through the link waits for the lock of the index it names",
              waited)
    other = c.appender(theirs, "theirs.f32")
    _, other_err = other.communicate(timeout=120)
    check(other.returncode == 0, "a writer through the file's own name appends", other_err)
    out, err = run.communicate(timeout=120)
    check(run.returncode == 0, "the writer through the link appends", err)
    check(os.path.islink(link), "the link is still a link")
    check(not os.path.exists(link + ".db") and not os.path.exists(link + ".lock"),
          "no catalog or lock file of the link's own")
    index = faiss.read_index(c.index)
    stored = index.reconstruct_n(0, index.ntotal)
    check(index.ntotal == 40 and {r.tobytes() for r in stored} ==
          {r.tobytes() for r in np.vstack([base, mine, theirs])},
          "the real index holds both writers' vectors", index.ntotal)
    facts, items = c.catalog()
    check(facts[0][5] == 40 and len(items) == 40, "its catalog lists all 40 items", facts[0])


def missing_directory_fails_before_any_work(c):
    missing = os.path.join(c.dir, "not-there")
    c.index = os.path.join(missing, "gallery.faiss")
    run = c.feed(unit_rows(20, 15), expect_ok=False)
    check(missing in run.stderr and "does not exist" in run.stderr,
          "a missing directory is named", run.stderr)
    check("indexing embeddings" not in run.stdout, "a missing directory fails before any work",
          run.stdout)


def kill_mid_write_keeps_previous_index(c):
    previous = unit_rows(100, 7)
    c.feed(previous)
    # A big index takes a while to write: SIGKILL the writer as soon as
    # its temporary file appears.
    child = subprocess.Popen([FEED, "random:150000", "256", c.index],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pattern = "%s.tmp.%d.*" % (c.index, child.pid)
    deadline = time.monotonic() + 90
    while not glob.glob(pattern) and child.poll() is None:
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError("the writer never started writing")
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()
    check(child.returncode == -signal.SIGKILL, "the writer is killed before it finishes",
          child.returncode)
    check(glob.glob(pattern), "the writer is caught mid-write")

    index = faiss.read_index(c.index)
    check(index.ntotal == 100 and np.array_equal(index.reconstruct_n(0, 100), previous),
          "the previous index is intact", index.ntotal)
    facts, items = c.catalog()
    check(facts[0][5] == 100 and len(items) == 100, "the previous catalog is intact", facts[0])

    # The leftover temporary does not stand in the way of the next run,
    # which removes it: its writer is gone. A temporary of a live
    # process, or a file that only looks like one, stays.
    live = "%s.tmp.%d.AbC123" % (c.index, os.getpid())
    lookalike = c.index + ".tmp.notes"
    for path in (live, lookalike):
        open(path, "w").close()
    run = c.feed(previous[:10])
    check(faiss.read_index(c.index).ntotal == 10, "the next run writes its index")
    check(glob.glob(pattern) == [] and "left by writers that were killed" in run.stdout,
          "the next run removes the killed writer's temporary and says so", run.stdout)
    check(os.path.exists(live) and os.path.exists(lookalike),
          "a live process's temporary and a lookalike stay")


def catalog_that_cannot_be_written(c):
    """A catalog that cannot be written (no room: here the file size limit,
    which the small SQ4 index stays under) is a write error that says the
    previous files are intact, not advice to rebuild what is not damaged."""
    c.feed(unit_rows(100, 5))
    path = os.path.join(c.dir, "more.f32")
    unit_rows(2000, 6).astype("<f4").tofile(path)

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 << 10, 48 << 10))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG rather than death

    run = checks.run([FEED, path, str(DIMS), c.index, "index-type=SQ4"],
                     preexec_fn=small_files)
    check(run.returncode == 1 and "Cannot write the catalog" in run.stderr
          and "intact" in run.stderr and "Rebuild" not in run.stderr,
          "a catalog that cannot be written: a write error, the previous files intact, "
          "no advice to rebuild", run.stderr[-600:])
    index = faiss.read_index(c.index)
    facts, items = c.catalog()
    check(index.ntotal == 100 and len(items) == 100, "the previous index and catalog stay",
          (index.ntotal, len(items)))


def read_only_directory_is_one_error(c):
    """An index that cannot be opened for writing is one element error that
    says what to do, not followed by GstBaseSink's generic one. Root writes
    anywhere, so gst-launch-1.0 runs without the capability to."""
    if not gst_launch_runs_the_plugin():
        return
    os.chmod(c.dir, 0o555)
    try:
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] \
            if os.geteuid() == 0 else []
        run = checks.run(prefix + [
            "gst-launch-1.0", "videotestsrc", "num-buffers=3", "!",
            "video/x-raw,width=32,height=32", "!", "embedder", "weights=random",
            "input-size=32", "resize=0", "precision=fp32", "!", "faissindexer",
            "location=" + c.index])
    finally:
        os.chmod(c.dir, 0o755)
    errors = [line for line in (run.stdout + run.stderr).splitlines()
              if line.startswith("ERROR: from element")]
    check(run.returncode != 0 and len(errors) == 1 and "make it writable" in errors[0]
          and "failed to post a proper error message" not in run.stdout + run.stderr,
          "a read-only index directory: one error, which says what to do", errors)


CASES = [append_and_mismatch, catalog_that_cannot_be_written, read_only_directory_is_one_error, append_keeps_thumbnails, append_to_a_schema_2_catalog,
         appender_waits_for_the_lock_and_reads_after_it, catalog_records_its_index,
         concurrent_appenders_keep_both, factory_strings, gst_launch_appender_plays_after_the_lock,
         pca_with_inner_product,
         hnsw_build_settings, flat_index_catalog_and_npy,
         kill_mid_write_keeps_previous_index, missing_directory_fails_before_any_work,
         no_thumbnails_when_off_or_not_video, thumbnails_of_video_frames,
         too_few_vectors_names_the_minimum, writes_through_a_symbolic_link]


if __name__ == "__main__":
    FEED = sys.argv[1]
    for case in CASES:
        print(f"-- {case.__name__}", flush=True)
        with tmp_dir() as directory:
            case(Case(directory))
    finish()
