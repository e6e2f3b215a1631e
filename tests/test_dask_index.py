# SPDX-License-Identifier: LGPL-2.1-or-later
"""tools/dask-index.py on a real Dask cluster on 127.0.0.1: a dask-scheduler
and two dask-worker processes (one thread each, no nanny, so a killed worker
stays dead), started and stopped here, over a small generated folder (PNGs in
three label folders, a file at the root, two short videos, a truncated JPEG
and a notes.txt; random embedder weights, seed fixed, input size 32).

Checks, against one `galleryindexer mode=rebuild` run over the same folder:
- the merged Flat index has the same vectors (to 1e-6) under the same ids and
  the merged catalog the same rows: items (labels, label names, sources with
  video frame times), thumbnails, file identities, rejected files, and the
  index facts but the creation time (the index file is byte-identical too);
- a worker killed with SIGKILL in the middle of a shard (the test hook
  VS_DASK_INDEX_HOLD holds it after the shard's first frame): its shard is
  run again on the other worker, and the result is still identical;
- the truncated JPEG and notes.txt are skipped and reported as the single
  run reports them: the same "Skipped 2 files ..." warning text, and the same
  rejected_files rows;
- IVF (trained on all the merged vectors) gives the single run's index too,
  byte for byte, here with more shards than files: the empty shard gives
  nothing;
- the merged index loads in faisssearch, whose load checks the catalog's
  digest of the index file, and in visualsearch-server (its thumbnails too);
- a bad property and an unreachable scheduler are clear errors.
Skipped (77) without python3-distributed.
"""
import glob
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
import image_fixtures as fx  # noqa: E402
from checks import check, finish  # noqa: E402

try:
    import distributed  # noqa: F401
except ImportError:
    print("SKIP: python3-distributed is not installed (apt-get install python3-distributed; "
          "scripts/install-deps.sh installs it)")
    sys.exit(77)
import faiss  # noqa: E402
import numpy as np  # noqa: E402

TOOL = os.path.join(os.environ["VS_SOURCE_DIR"], "tools", "dask-index.py")
EMBEDDER = {"weights": "random", "seed": "7", "input-size": "32", "resize": "0",
            "batch-size": "3", "thumbnail-size": "24"}
PYTHON = "/usr/bin/python3"


def build_folder(root):
    for label, count in (("cats", 4), ("dogs", 3), ("zebras", 3)):
        os.makedirs(os.path.join(root, label))
        for i in range(count):
            fx.save(os.path.join(root, label, f"{i}.png"), "png",
                    fx.gradient(40 + i, 30, seed=hash(label) % 97 + i))
    fx.save(os.path.join(root, "root.png"), "png", fx.gradient(20, 20, seed=3))
    os.makedirs(os.path.join(root, "clips"))
    for name, n in (("a.webm", 25), ("b.webm", 15)):
        subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", f"num-buffers={n}",
                        "pattern=ball", "!", "video/x-raw,width=64,height=48,framerate=10/1",
                        "!", "vp8enc", "!", "webmmux", "!", "filesink",
                        f"location={os.path.join(root, 'clips', name)}"], check=True, timeout=60)
    fx.save(os.path.join(root, "dogs", "big.jpg"), "jpeg", fx.gradient(64, 64, seed=5))
    fx.truncate(os.path.join(root, "dogs", "big.jpg"), os.path.join(root, "dogs", "broken.jpg"))
    with open(os.path.join(root, "zebras", "notes.txt"), "w") as f:
        f.write("not a picture\n")


def single_run(root, index, index_type):
    props = [f"{k}={v}" for k, v in EMBEDDER.items()]
    res = checks.run(["gst-launch-1.0", "-e", "galleryindexer", f"location={root}",
                      f"index={index}", "mode=rebuild", f"index-type={index_type}", *props],
                     timeout=120)
    warnings = re.findall(r"^WARNING: from element \S+: (.*)$", res.stdout + res.stderr, re.M)
    return res, warnings


def dask_index(scheduler, root, index, *extra, timeout=180):
    props = sum((["-p", f"{k}={v}"] for k, v in EMBEDDER.items()), [])
    return checks.run([PYTHON, TOOL, "--scheduler", scheduler, root, index, *props, *extra],
                      timeout=timeout)


def contents(index):
    """(ids, vectors in id order, catalog tables as row lists, facts)."""
    idx = faiss.read_index(index)
    ids = faiss.vector_to_array(idx.id_map)
    vectors = np.stack([idx.reconstruct(int(i)) for i in ids]) if len(ids) else None
    with sqlite3.connect(f"file:{index}.db?mode=ro", uri=True) as db:
        tables = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                  for t in ("items", "thumbnails", "files", "rejected_files")}
        cur = db.execute("SELECT * FROM index_facts")
        facts = dict(zip([c[0] for c in cur.description], cur.fetchone()))
        facts["user_version"] = db.execute("PRAGMA user_version").fetchone()[0]
    return ids, vectors, tables, facts


def compare(what, merged, single):
    ids_m, vec_m, tab_m, facts_m = contents(merged)
    ids_s, vec_s, tab_s, facts_s = contents(single)
    check(list(ids_m) == list(ids_s) and len(ids_s) > 0,
          f"{what}: the same ids ({len(ids_m)} merged, {len(ids_s)} single run)")
    if vec_m is not None and vec_s is not None and vec_m.shape == vec_s.shape:
        diff = float(np.abs(vec_m - vec_s).max())
        check(diff <= 1e-6, f"{what}: the same vectors under each id (max difference {diff:.2e})")
    else:
        check(False, f"{what}: vectors of the same shape")
    for table in ("items", "thumbnails", "files", "rejected_files"):
        same = tab_m[table] == tab_s[table]
        check(same, f"{what}: catalog table {table} has the same rows ({len(tab_m[table])})",
              None if same else f"merged {str(tab_m[table])[:300]}...\n"
                                f"single {str(tab_s[table])[:300]}...")
    keys = [k for k in facts_s if k not in ("created",)]
    same = all(facts_m.get(k) == facts_s[k] for k in keys)
    check(same, f"{what}: the same index facts but the creation time",
          None if same else "\n".join(f"{k}: {facts_m.get(k)!r} vs {facts_s[k]!r}" for k in keys
                    if facts_m.get(k) != facts_s[k]))
    return tab_s


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    check(False, f"{what} within {timeout} s")
    return False


procs = []
# meson's timeout sends SIGTERM: stop the cluster on the way out all the same.
signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM: stopping the cluster"))


def start(argv, log, **env):
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **env), start_new_session=True)
    procs.append(proc)
    return proc


def stop_all():
    for proc in reversed(procs):  # the workers before their scheduler
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


with checks.tmp_dir("vs-dask-") as tmp:
    root = os.path.join(tmp, "gallery")
    build_folder(root)
    hold = os.path.join(tmp, "hold")
    os.makedirs(hold)
    sched_file = os.path.join(tmp, "scheduler.json")
    log = open(os.path.join(tmp, "cluster.log"), "w")
    try:
        start(["dask-scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
               "--scheduler-file", sched_file], log)
        if not wait_for(lambda: os.path.exists(sched_file), 60, "dask-scheduler starts"):
            raise SystemExit(finish())
        worker = ["dask-worker", "--scheduler-file", sched_file, "--nthreads", "1",
                  "--no-nanny", "--host", "127.0.0.1", "--no-dashboard",
                  "--local-directory", os.path.join(tmp, "workers")]
        # Worker A holds the first shard it runs, mid-way; worker B never holds.
        worker_a = start(worker + ["--name", "A"], log, VS_DASK_INDEX_HOLD=hold)
        worker_b = start(worker + ["--name", "B"], log)
        with open(sched_file) as f:
            address = json.load(f)["address"]
        from distributed import Client
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        check(True, f"a scheduler at {address} and two workers")

        # --- the single-machine run
        single = os.path.join(tmp, "single.faiss")
        res, single_warnings = single_run(root, single, "Flat")
        check(res.returncode == 0, f"galleryindexer single run ({res.stderr[-300:]})")

        # --- dask-index with worker A killed in the middle of its shard
        merged = os.path.join(tmp, "merged.faiss")
        props = sum((["-p", f"{k}={v}"] for k, v in EMBEDDER.items()), [])
        run = subprocess.Popen([PYTHON, TOOL, "--scheduler", address, root, merged,
                                "--shards", "4", *props], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        procs.append(run)
        held = []
        if wait_for(lambda: held.extend(glob.glob(os.path.join(hold, "held-*"))) or held, 120,
                    "worker A holds a shard mid-way"):
            held_shard, held_pid = map(int, os.path.basename(held[0]).split("-")[1:])
            check(held_pid == worker_a.pid, f"worker A (pid {worker_a.pid}) holds shard "
                  f"{held_shard} after its first frame")
            worker_a.kill()
            worker_a.wait(timeout=10)
        try:
            out, err = run.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            run.kill()
            out, err = run.communicate()
        check(run.returncode == 0, "dask-index finishes with worker A killed",
              None if run.returncode == 0 else err[-1000:])
        if held:
            done_on = re.search(rf"shard {held_shard} done on \S+:(\d+)", out)
            again = done_on and int(done_on.group(1)) == worker_b.pid
            check(again, f"the killed shard {held_shard} was run again by worker B",
                  None if again else out)
        check(not os.path.exists(merged + ".shards"), "the shards are removed after the merge")
        check(not glob.glob(os.path.join(tmp, "*.tmp.*")), "no temporary left beside the index")
        if run.returncode == 0:
            tables = compare("Flat, a worker killed mid-shard", merged, single)
            with open(merged, "rb") as a, open(single, "rb") as b:
                check(a.read() == b.read(), "the merged Flat index file is byte-identical to "
                      "the single run's")
            # --- the bad files: skipped and reported as the single run does
            rejected = sorted(bytes(r[0]).decode() for r in tables["rejected_files"])
            check(rejected == ["dogs/broken.jpg", "zebras/notes.txt"],
                  f"the single run rejects the truncated JPEG and notes.txt ({rejected})")
            skipped = [w for w in single_warnings if w.startswith("Skipped ")]
            check(len(skipped) == 1 and "broken.jpg" in skipped[0] and "notes.txt" in skipped[0],
                  f"the single run warns about both ({single_warnings})")
            reported = [w for w in re.findall(r"^dask-index: warning: (.*)$", err, re.M)
                        if w.startswith("Skipped ")]
            check(skipped and reported == skipped,
                  "dask-index reports the same warning, word for word, though the files are "
                  f"in different shards", f"dask-index: {reported}\nsingle run: {skipped}")

            # --- the merged index loads in faisssearch (digest, dims, catalog checked)
            search = checks.gst_launch(
                "gallerysrc", f"location={root}/cats", "!", "embedder",
                *[f"{k}={v}" for k, v in EMBEDDER.items() if k != "thumbnail-size"], "!",
                "faisssearch", f"index={merged}", "k=3", "!", "fakesink", timeout=120)
            check(search.returncode == 0, f"faisssearch searches the merged index "
                  f"({search.stderr[-300:]})")
            # --- and in the server (same loader, plus the thumbnails)
            server_bin = os.path.join(os.environ["VS_BUILD_DIR"], "server", "visualsearch-server")
            if os.path.exists(server_bin):
                import server_fixtures as sf
                server = sf.Server("--index", merged)
                try:
                    status, _, body, _ = server.request("/api/index")
                    facts = json.loads(body) if status == 200 else {}
                    thumb = server.request("/api/items/16/thumbnail")
                finally:
                    server.stop()
                check(status == 200 and facts.get("count") == 17 and thumb[0] == 200
                      and thumb[2][:2] == b"\xff\xd8",
                      "visualsearch-server serves the merged index: /api/index counts 17 items, "
                      "item 16's thumbnail is a JPEG", f"{status} {str(facts)[:200]} {thumb[0]}")
            else:
                print("(visualsearch-server not built: its check is left out)")

        # --- IVF, trained on every merged vector as the single run trains at its end,
        # on more shards than files: the empty shard gives nothing
        cats = os.path.join(root, "cats")
        single_ivf = os.path.join(tmp, "single-ivf.faiss")
        merged_ivf = os.path.join(tmp, "merged-ivf.faiss")
        res = single_run(cats, single_ivf, "IVF2,Flat")[0]
        res_ivf = dask_index(address, cats, merged_ivf, "--shards", "5", "--index-type",
                             "IVF2,Flat")
        check(res.returncode == 0 and res_ivf.returncode == 0,
              "IVF2,Flat in 5 shards of a 4-file folder (one of them empty): both runs succeed",
              None if res_ivf.returncode == 0 else res_ivf.stderr[-1000:])
        if res.returncode == 0 and res_ivf.returncode == 0:
            compare("IVF2,Flat, 5 shards of 4 files", merged_ivf, single_ivf)
            with open(merged_ivf, "rb") as a, open(single_ivf, "rb") as b:
                check(a.read() == b.read(), "the merged IVF2,Flat index file is byte-identical "
                      "to the single run's (same centroids, lists and direct map)")

        # --- bad input
        res = dask_index(address, root, os.path.join(tmp, "bad.faiss"), "-p",
                         "label-from=colour", timeout=120)
        checks.expect_error(res, "a bad label-from in every shard", "label-from", "colour",
                            "Nothing was written")
        res = checks.run([PYTHON, TOOL, "--scheduler", address, root,
                          os.path.join(tmp, "bad.faiss"), "-p", "no-such=1"], timeout=120)
        checks.expect_error(res, "an unknown property", "no property 'no-such'")
        res = checks.run([PYTHON, TOOL, "--scheduler", "tcp://127.0.0.1:9", "--timeout", "2",
                          root, os.path.join(tmp, "bad.faiss")], timeout=60)
        checks.expect_error(res, "an unreachable scheduler", "cannot reach the Dask scheduler",
                            "tcp://127.0.0.1:9")
        check(not os.path.exists(os.path.join(tmp, "bad.faiss")), "no index after an error")
    finally:
        stop_all()
        log.close()
        if checks.failures:
            with open(os.path.join(tmp, "cluster.log")) as f:
                print("the scheduler's and workers' log:\n" + f.read()[-4000:])

finish()
