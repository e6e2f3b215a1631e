#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Index a folder gallery on a Dask cluster: the same index and catalog as
one galleryindexer run over the folder, built in shards on many workers.

    tools/dask-index.py --scheduler tcp://HOST:8786 /shared/photos /shared/photos.faiss \\
        --index-type IVF256,Flat -p weights=/shared/resnet18.pth -p input-size=224

The folder's sorted walk (gallerysrc's) is cut into --shards runs of
consecutive files (gallerysrc shard=K/N; a video's frames stay in one shard).
Each shard is one Dask task that runs our own pipeline, galleryindexer
mode=rebuild index-type=Flat shard=K/N, through PyGObject inside the worker
process (no subprocess), and writes a shard index and catalog under
--work-dir. When all are done, this process merges them into INDEX and
INDEX.db: ids renumbered in shard order (that is, walk order, as a single run
numbers them), every catalog row carried over (labels, label names, sources
with video frame times, thumbnails, file identities, files found
unreadable), the vectors added to a new IDMap2 index of --index-type: Flat
by concatenation, HNSW built from the merged vectors, and IVF types trained
on all the merged vectors, in walk order, then filled: a single run trains
them on every vector at the end of its walk (faissindexer train-size=0), so
a quantizer trained per shard, or on a sample, could not give its result;
and FAISS 1.7.3's merge_from refuses IVF indexes that keep the direct map
ours keep for reconstruct() (see docs/SCALING.md). Both files are written
atomically (temporary, fsync, rename) under INDEX.lock, the lock that
faissindexer takes. The shards are removed after the merge unless
--keep-shards.

Every shard reports the files it skipped; the skipped-file warnings are
merged into the one a single run gives (same sentences, walk order) and
printed, and the catalog's rejected_files is the union of the shards'. An
error in a shard (a bad property, an unreadable folder, strict=true and a
bad file) stops the run with that shard's message. A worker lost mid-shard
(killed, its machine gone) is no error: the scheduler runs its task again on
another worker, which rebuilds that shard from the start.

The workers must reach the folder, --work-dir and the weights under the same
paths (a shared filesystem), and find the plugin: installed, or
GST_PLUGIN_PATH in their environment, or --plugin-path. Relative paths in
weights=, model=, calibration-location= and label-from=csv: are made absolute
when they name a file here; other relative paths are the workers' own. Run
with Debian's
/usr/bin/python3 (python3-distributed, python3-gi, python3-faiss).

Test hook: a worker whose environment sets VS_DASK_INDEX_HOLD=DIR stops in
the middle of the first shard it runs (after its first frame is indexed),
creates DIR/held-K-PID and waits there (at most 10 minutes), so that a test
can kill it mid-shard.
"""
import argparse
import contextlib
import datetime
import fcntl
import os
import shutil
import sqlite3
import sys
import time
import zlib

BAD_FILES_NAMED = 10  # as gallerysrc's warning
_held = []  # shards held by the test hook in this worker process


def _gst():
    """Gst, initialised once per process."""
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    if not Gst.is_initialized():
        Gst.init(None)
    return Gst


def _hold_if_asked(Gst, indexer, shard):
    """The test hook: block the first frame after the first of this
    process's first shard until the process is killed."""
    hold = os.environ.get("VS_DASK_INDEX_HOLD")
    if not hold or _held:
        return
    _held.append(shard)
    it = indexer.iterate_recurse()
    sink = None
    while True:
        ok, child = it.next()
        if ok != Gst.IteratorResult.OK:
            break
        if child.get_factory().get_name() == "faissindexer":
            sink = child.get_static_pad("sink")
    seen = []

    def probe(pad, info):
        if not seen:
            seen.append(1)
            return Gst.PadProbeReturn.OK
        marker = os.path.join(hold, f"held-{shard}-{os.getpid()}")
        open(marker, "w").close()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.1)
        return Gst.PadProbeReturn.OK

    sink.add_probe(Gst.PadProbeType.BUFFER, probe)


def index_shard(task):
    """The Dask task: galleryindexer over shard task["shard"] of
    task["shards"] into task["index"]. Returns what the merge needs:
    {"shard", "index", "warnings": [(text, details)], "worker", "seconds"}.
    Raises RuntimeError with the pipeline's error."""
    import socket
    if task.get("plugin_path"):
        os.environ["GST_PLUGIN_PATH_1_0"] = task["plugin_path"]
    start = time.monotonic()
    Gst = _gst()
    where = f"{socket.gethostname()}:{os.getpid()}"
    shard = task["shard"]
    indexer = Gst.ElementFactory.make("galleryindexer", None)
    if indexer is None:
        raise RuntimeError(f"Worker {where} has no galleryindexer element: install the "
                           "visualsearch plugin there, or give --plugin-path (or "
                           "GST_PLUGIN_PATH in the worker's environment).")
    for path in (task["index"], task["index"] + ".db"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # what a worker lost mid-shard left (a checkpoint)
    settings = [("location", task["location"]), ("index", task["index"]),
                ("mode", "rebuild"), ("index-type", "Flat"), ("metric", task["metric"]),
                ("shard", f"{shard}/{task['shards']}")] + list(task["properties"])
    for name, value in settings:
        # CHILD::PROPERTY reaches a child (source, embedder, indexer) directly.
        found, target, pspec = indexer.lookup(name) if "::" in name else \
            (indexer.find_property(name) is not None, indexer, indexer.find_property(name))
        if not found or pspec is None:
            raise RuntimeError(f"galleryindexer has no property '{name}'; see "
                               "gst-inspect-1.0 galleryindexer (and embedder::NAME for the "
                               "embedder's own, such as embedder::threads).")
        Gst.util_set_object_arg(target, pspec.name, value)
    pipeline = Gst.Pipeline.new(f"shard{shard}")
    pipeline.add(indexer)
    _hold_if_asked(Gst, indexer, shard)
    bus = pipeline.get_bus()
    warnings, error, files = [], None, None
    try:
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            error = "the pipeline did not start"
        types = (Gst.MessageType.EOS | Gst.MessageType.ERROR | Gst.MessageType.WARNING
                 | Gst.MessageType.PROGRESS)
        while True:
            msg = bus.timed_pop_filtered(Gst.SECOND, types)
            if msg is None:
                continue
            if msg.type == Gst.MessageType.PROGRESS:
                # gallerysrc's: how many files this shard holds.
                _, code, _ = msg.parse_progress()
                ok, total = msg.get_structure().get_uint64("files-total")
                if ok and code == "gallery":
                    files = total
                continue
            if msg.type == Gst.MessageType.WARNING:
                err, debug = msg.parse_warning()
                warnings.append((err.message, debug or ""))
                continue
            if msg.type == Gst.MessageType.ERROR:
                err, debug = msg.parse_error()
                error = err.message + (f" ({debug})" if debug else "")
            break
        # Drain what came with the end (warnings posted just before EOS).
        while (msg := bus.pop_filtered(Gst.MessageType.WARNING)) is not None:
            err, debug = msg.parse_warning()
            warnings.append((err.message, debug or ""))
    finally:
        pipeline.set_state(Gst.State.NULL)
    if error and files == 0 and "No buffer carried an embedding" in error:
        # More shards than files: this one holds none, and gives nothing.
        return {"shard": shard, "index": None, "warnings": warnings, "worker": where,
                "seconds": time.monotonic() - start}
    if error:
        raise RuntimeError(f"shard {shard}/{task['shards']} on {where}: {error}")
    return {"shard": shard, "index": task["index"], "warnings": warnings, "worker": where,
            "seconds": time.monotonic() - start}


# ---------------------------------------------------------------------------
# the merge, in this process


def _read_shard(path):
    """(vectors float32 n x d, ids, catalog rows) of a shard."""
    import faiss
    import numpy as np
    index = faiss.read_index(path)
    ids = faiss.vector_to_array(index.id_map) if hasattr(index, "id_map") else None
    if ids is None or not (ids == np.arange(index.ntotal)).all():
        raise RuntimeError(f"The shard index {path} is not the IDMap2 index with ids 0..n-1 "
                           "that galleryindexer mode=rebuild writes.")
    vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else \
        np.zeros((0, index.d), "float32")
    with sqlite3.connect(f"file:{path}.db?mode=ro", uri=True) as db:
        tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rows = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in
                ("items", "thumbnails", "files", "rejected_files", "index_facts")
                if t in tables}
        facts_columns = [r[1] for r in db.execute("PRAGMA table_info(index_facts)")]
    facts = dict(zip(facts_columns, rows["index_facts"][0]))
    if len(rows["items"]) != index.ntotal:
        raise RuntimeError(f"The shard catalog {path}.db has {len(rows['items'])} items for "
                           f"{index.ntotal} vectors.")
    return vectors, rows, facts


def _schema(path):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        sql = [s for (s,) in db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND "
                                        "sql IS NOT NULL ORDER BY rowid")]
    return version, sql


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def merge(shard_indexes, index_path, index_type, metric):
    """Writes index_path and index_path + ".db" from the shards, in order.
    Returns the number of items."""
    import faiss
    import numpy as np
    parts = [_read_shard(p) for p in shard_indexes]
    first = parts[0][2]
    for path, (_, _, facts) in zip(shard_indexes, parts):
        for key in ("model_id", "preprocessing_id", "dims", "metric", "embedder_config",
                    "gallery_root"):
            if facts.get(key) != first.get(key):
                raise RuntimeError(
                    f"The shards disagree on {key}: {shard_indexes[0]} has {first.get(key)!r}, "
                    f"{path} has {facts.get(key)!r}. Every worker must run the same plugin "
                    "version with the same weights file.")
    vectors = np.ascontiguousarray(np.concatenate([v for v, _, _ in parts]), dtype="float32")
    n, dims = len(vectors), int(first["dims"])
    faiss_metric = faiss.METRIC_INNER_PRODUCT if first["metric"] == "ip" else faiss.METRIC_L2
    try:
        index = faiss.index_factory(dims, "IDMap2," + index_type, faiss_metric)
    except RuntimeError as e:
        raise RuntimeError(f"FAISS does not understand the index type \"{index_type}\" "
                           f"({e}); use Flat, IVF256,Flat, IVF256,PQ16 or HNSW32.") from None
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:  # as IndexStore::create: reconstruct() works
        ivf.set_direct_map_type(faiss.DirectMap.Array)
    if not index.is_trained:
        index.train(vectors)  # a single run trains on all of them at the end
    index.add_with_ids(vectors, np.arange(n, dtype="int64"))

    # Catalog rows, renumbered: shard k's id i becomes offset_k + i.
    items, thumbnails, files, rejected = [], [], [], {}
    offset = 0
    for vecs, rows, _ in parts:
        items += [(offset + r[0],) + tuple(r[1:]) for r in rows["items"]]
        thumbnails += [(offset + r[0],) + tuple(r[1:]) for r in rows.get("thumbnails", [])]
        files += [(offset + r[0],) + tuple(r[1:]) for r in rows.get("files", [])]
        for r in rows.get("rejected_files", []):
            rejected[bytes(r[0])] = r
        offset += len(vecs)
    version, schema = _schema(shard_indexes[0] + ".db")

    directory = os.path.dirname(os.path.abspath(index_path))
    catalog_path = index_path + ".db"
    lock = open(index_path + ".lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)  # faissindexer's writers take it too
    tmp_index = f"{index_path}.tmp.{os.getpid()}"
    tmp_catalog = f"{catalog_path}.tmp.{os.getpid()}"
    try:
        faiss.write_index(index, tmp_index)
        _fsync_path(tmp_index)
        with open(tmp_index, "rb") as f:
            data = f.read()
        digest = (len(data), zlib.crc32(data))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_catalog)
        db = sqlite3.connect(tmp_catalog)
        try:
            for sql in schema:
                db.execute(sql)
            facts = dict(first, index_type=index_type, count=n, index_bytes=digest[0],
                         index_crc32=digest[1],
                         created=datetime.datetime.now(datetime.timezone.utc)
                         .strftime("%Y-%m-%dT%H:%M:%SZ"))
            columns = list(first)
            db.execute(f"INSERT INTO index_facts ({','.join(columns)}) VALUES "
                       f"({','.join('?' * len(columns))})", [facts[c] for c in columns])
            for table, rows in (("items", items), ("thumbnails", thumbnails), ("files", files),
                                ("rejected_files", list(rejected.values()))):
                if rows:
                    db.executemany(f"INSERT INTO {table} VALUES "
                                   f"({','.join('?' * len(rows[0]))})", rows)
            db.execute(f"PRAGMA user_version = {int(version)}")
            db.commit()
        finally:
            db.close()
        _fsync_path(tmp_catalog)
        os.rename(tmp_index, index_path)
        os.rename(tmp_catalog, catalog_path)
        _fsync_path(directory)
    finally:
        for tmp in (tmp_index, tmp_catalog):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        lock.close()
    return n


def merged_warnings(results, location):
    """The shards' warnings as one run gives them: the skipped-file warning
    rebuilt from every shard's sentences (walk order, each once), any other
    warning once."""
    sentences, others = [], []
    for result in sorted(results, key=lambda r: r["shard"]):
        for text, debug in result["warnings"]:
            if text.startswith("Skipped "):
                # The details: "file(line): function (): /element:\nsentence\n..."
                for line in debug.split("\n")[1:]:
                    if line and line not in sentences:
                        sentences.append(line)
            elif text not in others:
                others.append(text)
    if sentences:
        named = "; ".join(sentences[:BAD_FILES_NAMED])
        if len(sentences) > BAD_FILES_NAMED:
            named += (f"; and {len(sentences) - BAD_FILES_NAMED} more (listed in the details, "
                      "and by GST_DEBUG=gallerysrc:2)")
        if len(sentences) == 1:
            others.insert(0, f"Skipped 1 file in {location} that is not a readable picture or "
                             f"video: {named}")
        else:
            others.insert(0, f"Skipped {len(sentences)} files in {location} that are not "
                             f"readable pictures or videos: {named}")
    return others


def main():
    parser = argparse.ArgumentParser(
        description="Index a folder gallery in shards on a Dask cluster, merged into one "
                    "index and catalog equal to a single galleryindexer run.")
    parser.add_argument("location", help="the folder of pictures and videos (a path every "
                        "worker reaches)")
    parser.add_argument("index", help="the FAISS index to write; its catalog is INDEX.db")
    parser.add_argument("--scheduler", required=True,
                        help="the Dask scheduler's address, tcp://HOST:PORT")
    parser.add_argument("--shards", type=int, default=0,
                        help="how many shards (default: 4 per worker thread)")
    parser.add_argument("--index-type", default="Flat",
                        help="FAISS index_factory string (galleryindexer index-type)")
    parser.add_argument("--metric", default="ip", choices=["ip", "l2"])
    parser.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                        help="another galleryindexer property for every shard (label-from, "
                        "weights, seed, input-size, strict, ...), or a child's as "
                        "embedder::threads; repeat as needed")
    parser.add_argument("--work-dir", help="where the shards are written (default: "
                        "INDEX.shards beside the index); every worker must reach it")
    parser.add_argument("--keep-shards", action="store_true")
    parser.add_argument("--plugin-path", help="GST_PLUGIN_PATH for the workers' GStreamer")
    parser.add_argument("--timeout", type=float, default=30,
                        help="seconds to wait for the scheduler (default 30)")
    args = parser.parse_args()

    properties = []
    for prop in args.property:
        name, sep, value = prop.partition("=")
        if not sep or not name:
            parser.error(f"-p {prop}: give NAME=VALUE, such as -p weights=resnet18.pth")
        if name in ("location", "index", "mode", "index-type", "metric", "shard"):
            parser.error(f"-p {name}: set by dask-index itself (use its own options)")
        # Paths the workers resolve in their own working directory: made
        # absolute here when they name a file seen from this one.
        if name in ("weights", "model", "calibration-location") and \
                not os.path.isabs(value) and os.path.exists(value):
            value = os.path.abspath(value)
        elif name == "label-from" and value.startswith("csv:") and \
                not os.path.isabs(value[4:]) and os.path.exists(value[4:]):
            value = "csv:" + os.path.abspath(value[4:])
        properties.append((name, value))
    location = os.path.abspath(args.location)
    index_path = os.path.abspath(args.index)
    if not os.path.isdir(location):
        sys.exit(f"dask-index: {args.location} is not a folder; give the folder of pictures "
                 "and videos to index.")
    if not os.path.isdir(os.path.dirname(index_path)):
        sys.exit(f"dask-index: the folder of {args.index} does not exist; create it first.")
    # The index type is checked before any embedding (the dims are not known
    # yet: it must parse for resnet18's 512 or resnet50's 2048).
    import faiss
    errors = []
    for dims in (512, 2048):
        try:
            faiss.index_factory(dims, "IDMap2," + args.index_type)
        except RuntimeError as e:
            errors.append(str(e).strip().splitlines()[-1])
    if len(errors) == 2:
        sys.exit(f"dask-index: FAISS does not understand the index type \"{args.index_type}\" "
                 f"({errors[0]}); use Flat, IVF256,Flat, IVF256,PQ16 or HNSW32.")
    try:
        from distributed import Client, as_completed
    except ImportError:
        sys.exit("dask-index: needs Dask distributed: apt-get install python3-distributed")

    try:
        client = Client(args.scheduler, timeout=args.timeout)
    except OSError as e:
        sys.exit(f"dask-index: cannot reach the Dask scheduler at {args.scheduler}: {e}. "
                 "Start one (dask-scheduler) and its workers (dask-worker ADDRESS), or fix "
                 "--scheduler.")
    with client:
        threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        if threads == 0:
            client.wait_for_workers(1, timeout=args.timeout)
            threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        shards = args.shards or 4 * max(threads, 1)
        work_dir = os.path.abspath(args.work_dir or index_path + ".shards")
        os.makedirs(work_dir, exist_ok=True)
        tasks = [{"shard": k, "shards": shards, "location": location,
                  "index": os.path.join(work_dir, f"shard-{k:05d}-of-{shards:05d}.faiss"),
                  "metric": args.metric, "properties": properties,
                  "plugin_path": args.plugin_path} for k in range(shards)]
        started = time.monotonic()
        print(f"dask-index: {location}: {shards} shards on {threads} worker threads "
              f"({args.scheduler})", flush=True)
        futures = client.map(index_shard, tasks, pure=False)
        results = []
        try:
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                print(f"dask-index: shard {result['shard']} done on {result['worker']} in "
                      f"{result['seconds']:.1f} s ({len(results)}/{shards})", flush=True)
        except Exception as e:  # a shard's own error: nothing is merged
            client.cancel(futures)
            message = str(e)
            if type(e).__name__ == "KilledWorker":
                message = (f"a shard killed every worker that ran it ({e}): a crash while "
                           "reading one of its files? Run `gst-launch-1.0 galleryindexer "
                           "shard=K/N ...` on one machine to see which.")
            if "No buffer carried an embedding" in message:
                message += (" Every file of that shard is unreadable, and a shard must give "
                            "at least one item; give fewer --shards.")
            sys.exit(f"dask-index: {message}\nNothing was written to {args.index}.")
    embed_seconds = time.monotonic() - started
    for warning in merged_warnings(results, location):
        print(f"dask-index: warning: {warning}", file=sys.stderr, flush=True)
    shard_indexes = [r["index"] for r in sorted(results, key=lambda r: r["shard"]) if r["index"]]
    if not shard_indexes:
        sys.exit(f"dask-index: {location} holds no file to index.")
    try:
        count = merge(shard_indexes, index_path, args.index_type, args.metric)
    except (RuntimeError, OSError, sqlite3.Error) as e:
        sys.exit(f"dask-index: the merge failed: {e}\nNothing was written to {args.index}; "
                 f"the shards are in {work_dir}.")
    if not args.keep_shards:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"dask-index: wrote {args.index} and {args.index}.db: {count} items from {shards} "
          f"shards ({embed_seconds:.1f} s indexing, {time.monotonic() - started:.1f} s in all)",
          flush=True)


if __name__ == "__main__":
    main()
