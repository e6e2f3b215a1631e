#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""tools/dask-index.py on 1, 2 and 4 Dask workers on this machine, against
plain galleryindexer over the same folder, in the same run.

    /usr/bin/python3 tests/bench/bench_dask.py [BUILD_DIR] [--count N]
        [--dataset DIR/cifar-10-batches-py] [--workers 1,2,4] [--shards S]
        [--threads T] [--repeat N]

The folder: the first N CIFAR-10 sample images upscaled to 256x256 JPEGs in
class folders (bench_index_folder.py's, cached under BUILD_DIR). Every run
indexes it with resnet18 at input-size 224 (resize 256, batch-size 16): real
torchvision weights when the torch cache has them, random weights otherwise
(the line "weights:" says which; the cost is the same).

Plain: `gst-launch-1.0 -e galleryindexer ... mode=rebuild`. Dask: a
dask-scheduler and W dask-worker processes (one thread each, no nanny) on
127.0.0.1, started before the clock runs; then dask-index.py from launch to
exit: shards on the workers, the merge, the atomic write. Each worker's
embedder gets its share of the cores (threads = cores / workers, at least 1;
--threads 0 lets every one take all cores, as plain galleryindexer does, which
oversubscribes them). Each row prints the
wall time, images/s, and the overhead ratio, its wall time over plain's. The
merged index is checked against plain's (same vectors), so a fast wrong result
cannot pass; the merge's own time is the tool's "s in all" less its "s
indexing". Every configuration runs --repeat times, alternately, and the best
is kept; the load average is printed before and after, since the machine is
shared. Figures only.
"""
import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402
from bench_index_folder import DEFAULT_DATASET, write_gallery  # noqa: E402

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(SOURCE, "tools", "dask-index.py")


def weights():
    """(property value, what it is): real resnet18 weights if cached."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                         "torch", "hub", "checkpoints")
    found = sorted(glob.glob(os.path.join(cache, "resnet18-*.pth")))
    if found:
        return found[0], f"real torchvision resnet18 ({found[0]})"
    return "random", "random (no resnet18 weights in the torch cache; the cost is the same)"


def vectors(index):
    import faiss
    idx = faiss.read_index(index)
    return idx.index.reconstruct_n(0, idx.ntotal)


def start_cluster(tmp, workers, env):
    procs, log = [], open(os.path.join(tmp, "cluster.log"), "w")
    sched = os.path.join(tmp, "scheduler.json")
    procs.append(subprocess.Popen(["dask-scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", sched],
                                  stdout=log, stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + 60
    while not os.path.exists(sched) and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(workers):
        procs.append(subprocess.Popen(
            ["dask-worker", "--scheduler-file", sched, "--nthreads", "1", "--no-nanny",
             "--host", "127.0.0.1", "--no-dashboard", "--local-directory", tmp],
            stdout=log, stderr=subprocess.STDOUT, env=env))
    with open(sched) as f:
        address = json.load(f)["address"]
    from distributed import Client
    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def stop_cluster(procs):
    for proc in reversed(procs):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", nargs="?", default=os.path.join(SOURCE, "build"))
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--shards", type=int, default=0,
                        help="shards per run (default: dask-index's, 4 per worker)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each, alternating; the best is kept (default 2)")
    parser.add_argument("--threads", type=int, default=-1,
                        help="embedder threads in each worker (default: cores / workers; "
                        "0: all cores)")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    env = dict(os.environ, GST_PLUGIN_PATH_1_0=os.path.join(build, "ext", "visualsearch"))
    root = os.path.join(build, f"bench-folder-{args.count}")
    if not os.path.isdir(root):
        write_gallery(args.dataset, args.count, root)
    weight, what = weights()
    props = {"weights": weight, "input-size": "224", "resize": "256", "batch-size": "16"}
    print(cpu.describe())
    print(f"weights: {what}")
    print(f"folder: {root}: {args.count} JPEGs 256x256; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    worker_counts = [int(w) for w in args.workers.split(",")]
    best = {}  # run name -> (wall, cluster up, merge)

    def keep(name, wall, up="-", merge="-"):
        if name not in best or wall < best[name][0]:
            best[name] = (wall, up, merge)

    with tempfile.TemporaryDirectory(prefix="vs-bench-dask-") as tmp:
        plain = os.path.join(tmp, "plain.faiss")
        for _ in range(args.repeat):  # alternately, so that the load hits every run alike
            start = time.monotonic()
            subprocess.run(["gst-launch-1.0", "-q", "-e", "galleryindexer", f"location={root}",
                            f"index={plain}", "mode=rebuild",
                            *[f"{k}={v}" for k, v in props.items()]],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            keep("galleryindexer (one process, all cores)", time.monotonic() - start)
            want = vectors(plain)
            for workers in worker_counts:
                cluster_tmp = tempfile.mkdtemp(dir=tmp)
                started = time.monotonic()
                address, procs = start_cluster(cluster_tmp, workers, env)
                up_s = time.monotonic() - started
                shards = args.shards or 4 * workers
                threads = args.threads if args.threads >= 0 else \
                    max(1, (os.cpu_count() or 1) // workers)
                merged = os.path.join(cluster_tmp, "dask.faiss")
                try:
                    start = time.monotonic()
                    res = subprocess.run(
                        [sys.executable, TOOL, "--scheduler", address, root, merged,
                         "--shards", str(shards), "-p", f"embedder::threads={threads}",
                         *sum((["-p", f"{k}={v}"] for k, v in props.items()), [])],
                        env=env, capture_output=True, text=True)
                    wall = time.monotonic() - start
                finally:
                    stop_cluster(procs)
                if res.returncode != 0:
                    sys.exit(f"dask-index failed with {workers} workers:\n{res.stderr[-2000:]}")
                got = vectors(merged)
                if got.shape != want.shape or float(abs(got - want).max()) > 1e-6:
                    sys.exit(f"{workers} workers: the merged vectors differ from "
                             "galleryindexer's")
                # "(A s indexing, B s in all)": the merge is the difference.
                times = re.search(r"\(([\d.]+) s indexing, ([\d.]+) s in all\)", res.stdout)
                merge = f"{float(times.group(2)) - float(times.group(1)):.1f}" if times else "?"
                keep(f"dask-index, {workers} worker{'s' if workers > 1 else ''} x "
                     f"{threads or 'all'} thr, {shards} shards", wall, f"{up_s:.1f}", merge)
    plain_s = best["galleryindexer (one process, all cores)"][0]
    print(f"best of {args.repeat}:")
    print(f"{'run':44} {'cluster up s':>12} {'wall s':>7} {'merge s':>7} {'images/s':>9} "
          f"{'overhead':>9}")
    for name, (wall, up, merge) in best.items():
        print(f"{name:44} {up:>12} {wall:7.1f} {merge:>7} {args.count / wall:9.1f} "
              f"{wall / plain_s:8.2f}x")
    print("every merged index has galleryindexer's vectors (to 1e-6); load average after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

if __name__ == "__main__":
    main()
