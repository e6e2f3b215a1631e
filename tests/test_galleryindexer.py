# SPDX-License-Identifier: LGPL-2.1-or-later
"""galleryindexer: incremental updates of a folder gallery, on generated trees
with random embedder weights at input size 32.

    test_galleryindexer.py FAISSSEARCH_FEED

Runs gst-launch-1.0 (frames embedded: faissindexer's count in its COMPLETE
progress message). Checks, for Flat and HNSW (which cannot remove vectors in place):
- a first build embeds every frame (stills and a video's frames);
- an update of an unchanged tree embeds nothing and changes nothing;
- after files are added, removed and modified, an update embeds exactly the
  new and changed files' frames, keeps the ids of the unchanged items, counts
  the files, and gives the same sources with the same vectors as a build from
  scratch of the final tree;
- Python faiss reads the updated index (IDMap2) and returns the same top-k as
  faisssearch for the same queries;
- a sub-folder the walk cannot open keeps its items, with a warning naming
  it, and the bad-file counts of gallerysrc and faissindexer agree;
- an index faissindexer built is refused by mode=update;
- pipelines/index-folder.sh builds, then updates, printing progress and counts.
And with checkpoint-interval=1 on a larger tree: a run stopped by Ctrl-C
(gst-launch-1.0 -e) and one killed by SIGKILL each leave a loadable index, and
running again completes it, embedding only what is missing, equal to a build
from scratch.
"""
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import faiss
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures as fx  # noqa: E402
from checks import check, finish  # noqa: E402

FEED = sys.argv[1]
EMBEDDER = "weights=random input-size=32 resize=0 batch-size=4"
K = 4


def run(gallery, index, *props, prefix=()):
    """Runs galleryindexer (after the command words in prefix); returns
    (frames embedded, the COMPLETE text of faissindexer, error or None).
    run.output keeps the whole output."""
    out = subprocess.run([*prefix, "gst-launch-1.0", "-e", "galleryindexer", f"location={gallery}",
                          f"index={index}", "video-interval=0.5", *EMBEDDER.split(), *props],
                         capture_output=True, text=True, timeout=120)
    run.output = out.stdout + out.stderr
    complete = [line for line in out.stdout.splitlines()
                if line.startswith("Progress: (faissindexer)") and "files: added" in line]
    if out.returncode != 0 or len(complete) != 1:
        return None, "", out.stdout + out.stderr
    frames = re.search(r"; (\d+) frames embedded;", complete[0])
    return int(frames.group(1)), complete[0], None


def contents(index):
    """{source: (id, vector)} of an index and its catalog, read by Python
    faiss and sqlite3; None when they do not load as a pair."""
    gallery = faiss.read_index(index)
    with sqlite3.connect(f"file:{index}.db?mode=ro", uri=True) as db:
        rows = db.execute("SELECT i.id, i.source FROM items i ORDER BY id").fetchall()
    if len(rows) != gallery.ntotal:
        return None
    return {source: (id_, gallery.reconstruct(id_)) for id_, source in rows}


def same_gallery(a, b):
    return a.keys() == b.keys() and all(
        np.allclose(a[s][1], b[s][1], atol=1e-4) for s in a)


def still(root, rel, seed, size=(40, 30)):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fx.save(path, "png", fx.gradient(*size, seed=seed))


def make_video(path):
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=20", "pattern=ball",
                    "!", "video/x-raw,width=64,height=48,framerate=10/1", "!", "vp8enc", "!",
                    "webmmux", "!", "filesink", f"location={path}"], check=True, timeout=120)


def top_k_agree(index):
    """faisssearch (through faisssearch-feed) and Python faiss give the same
    top-k ids for the gallery's own vectors as queries."""
    gallery = faiss.read_index(index)
    ids = faiss.vector_to_array(faiss.downcast_index(gallery).id_map)
    queries = np.stack([gallery.reconstruct(int(i)) for i in ids]).astype(np.float32)
    qpath = index + ".queries"
    queries.tofile(qpath)
    with sqlite3.connect(f"file:{index}.db?mode=ro", uri=True) as db:
        model, preprocessing = db.execute(
            "SELECT model_id, preprocessing_id FROM index_facts").fetchone()
    out = subprocess.run([FEED, "search", index, qpath, model, f"k={K}"], capture_output=True,
                         text=True, env=dict(os.environ, VS_FEED_PREPROCESSING=preprocessing))
    if out.returncode != 0:
        print(out.stderr)
        return False
    ours = [[int(p.split(":")[0]) for p in line.split()[1:]] for line in out.stdout.splitlines()]
    _, theirs = gallery.search(queries, K)
    return ours == theirs.tolist()


def incremental(tmp, index_type):
    tree = os.path.join(tmp, "tree-" + index_type)
    index = os.path.join(tmp, index_type + ".faiss")
    for i in range(8):
        still(tree, f"{'cats' if i % 2 else 'dogs'}/{i}.png", i)
    still(tree, "loose.png", 50)
    os.makedirs(os.path.join(tree, "clips"))
    make_video(os.path.join(tree, "clips", "ball.webm"))  # 2 s: 4 frames
    typ = f"index-type={index_type}"

    frames, text, error = run(tree, index, typ)
    check(error is None and frames == 13, f"{index_type}: first build embeds 13 frames "
          f"({frames}, {error})")
    check("added 10, updated 0, removed 0, unchanged 0" in text, f"{index_type}: counts: {text}")
    first = contents(index)

    frames, text, error = run(tree, index, typ)
    check(error is None and frames == 0, f"{index_type}: unchanged tree: nothing embedded "
          f"({frames}, {error})")
    check("up to date" in text and "unchanged 10" in text, f"{index_type}: counts: {text}")
    # The embedder warns of random weights when it loads its model.
    check("random weights" not in run.output,
          f"{index_type}: unchanged tree: the embedder does not even load its model")
    check(contents(index).keys() == first.keys(), f"{index_type}: unchanged tree: same items")

    os.remove(os.path.join(tree, "dogs", "0.png"))
    os.remove(os.path.join(tree, "cats", "3.png"))
    still(tree, "cats/1.png", 99, size=(44, 30))  # modified: new content and size
    still(tree, "cats/new.png", 100)
    still(tree, "birds/new.png", 101)
    frames, text, error = run(tree, index, typ)
    check(error is None and frames == 3,
          f"{index_type}: update embeds the 2 new and 1 changed files ({frames}, {error})")
    check("added 2, updated 1, removed 2, unchanged 7, skipped-bad 0" in text,
          f"{index_type}: counts: {text}")
    updated = contents(index)
    kept = [s for s in first if s in updated and s != "cats/1.png"]
    check(len(kept) == 9 - 3 + 4 and all(first[s][0] == updated[s][0] for s in kept),
          f"{index_type}: the {len(kept)} unchanged items keep their ids")

    scratch = os.path.join(tmp, index_type + "-scratch.faiss")
    frames, _, error = run(tree, scratch, typ, "mode=rebuild")
    check(error is None and frames == 13, f"{index_type}: scratch build ({frames}, {error})")
    check(same_gallery(updated, contents(scratch)),
          f"{index_type}: the update equals a build from scratch (sources and vectors)")
    check(top_k_agree(index), f"{index_type}: Python faiss and faisssearch agree on the top-{K}")

    frames, _, error = run(tree, scratch, typ, "mode=rebuild")
    check(error is None and frames == 13, f"{index_type}: mode=rebuild embeds everything")

    os.remove(os.path.join(tree, "loose.png"))
    frames, text, error = run(tree, index, typ)
    check(error is None and frames == 0 and "removed 1, unchanged 9" in text and
          "random weights" not in run.output,
          f"{index_type}: a vanished file alone: removed without loading the model ({text})")
    check(contents(index).keys() == updated.keys() - {"loose.png"},
          f"{index_type}: ... its item is gone, the others stay")


def unreadable_folder_keeps_its_items(tmp):
    # A folder that cannot be opened does not count as gone: the update
    # keeps every item under it.
    tree = os.path.join(tmp, "locked")
    for i in range(4):
        still(tree, f"dogs/{i}.png", 300 + i)
    for i in range(3):
        still(tree, f"cats/{i}.png", 310 + i)
    index = os.path.join(tmp, "locked.faiss")
    frames, _, error = run(tree, index)
    check(error is None and frames == 7, f"unreadable folder: first build ({frames}, {error})")
    before = contents(index)
    still(tree, "cats/new.png", 320)
    os.mkfifo(os.path.join(tree, "cats", "pipe.png"))
    dogs = os.path.join(tree, "dogs")
    # Root reads a folder of mode 000 anyway: the walk runs without the
    # capabilities that let it.
    prefix = (["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
              if os.geteuid() == 0 else [])
    os.chmod(dogs, 0)
    try:
        denied = subprocess.run([*prefix, "ls", dogs], capture_output=True).returncode != 0
        check(denied, "unreadable folder: the walk cannot open it")
        frames, text, error = run(tree, index, prefix=prefix)
    finally:
        os.chmod(dogs, 0o755)
    check(error is None and frames == 1, f"unreadable folder: the new file is embedded "
          f"({frames}, {error})")
    check("removed 0, unchanged 3, skipped-bad 1, unreadable 1 (their items kept)" in text,
          f"unreadable folder: the counts: {text}")
    after = contents(index) or {}
    check(after.keys() == before.keys() | {"cats/new.png"} and
          all(after[s][0] == before[s][0] for s in before),
          f"unreadable folder: its 4 items are kept: {sorted(after)}")
    check(f"{dogs} cannot be opened as a folder" in run.output and
          "Could not walk all of" in run.output and " is cannot " not in run.output,
          "unreadable folder: one warning names it", run.output[-1500:])
    check("Skipped 1 file " in run.output,
          "unreadable folder: gallerysrc counts the FIFO alone, as faissindexer does",
          run.output[-1500:])


def faissindexer_index_is_refused(tmp):
    tree = os.path.join(tmp, "plain")
    still(tree, "a.png", 1)
    index = os.path.join(tmp, "plain.faiss")
    subprocess.run(["gst-launch-1.0", "-q", "gallerysrc", f"location={tree}", "!", "embedder",
                    *EMBEDDER.split(), "!", "faissindexer", f"location={index}"], check=True,
                   timeout=120)
    _, _, error = run(tree, index)
    error = error or ""
    check("mode=rebuild" in error,
          f"an index faissindexer built is refused by mode=update: {error}")
    # mode is faissindexer's type; append, which would add every file again,
    # is refused before anything is read or written.
    _, _, error = run(tree, os.path.join(tmp, "appended.faiss"), "mode=append")
    error = error or ""
    check("does not append" in error and "mode=update" in error
          and not os.path.exists(os.path.join(tmp, "appended.faiss")),
          f"galleryindexer mode=append is refused, naming mode=update: {error}")


def index_folder_script(tmp):
    tree = os.path.join(tmp, "script")
    for i in range(3):
        still(tree, f"a/{i}.png", 200 + i)
    script = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines", "index-folder.sh")
    env = dict(os.environ, WEIGHTS="random", INPUT_SIZE="32", RESIZE="0",
               BUILD_DIR=os.environ["VS_BUILD_DIR"])
    index = os.path.join(tmp, "script.faiss")
    outputs = []
    for _ in range(2):
        out = subprocess.run([script, tree, index], capture_output=True, text=True, env=env,
                             timeout=120)
        outputs.append(out.stdout)
        check(out.returncode == 0, f"index-folder.sh exits 0: {out.stderr.strip()[-300:]}")
    check(re.search(r"files added 3, updated 0, removed 0, unchanged 0, skipped-bad 0 in "
                    r"[0-9.]+ s", outputs[0]) is not None and
          re.search(r"\d+/3 files, [0-9.]+ images/s, ETA", outputs[0]) is not None,
          "index-folder.sh prints plain progress lines and the counts: " + outputs[0])
    check("files added 0, updated 0, removed 0, unchanged 3, skipped-bad 0" in outputs[1],
          "index-folder.sh updates: " + outputs[1])


def interrupted(tmp):
    """Ctrl-C, then SIGKILL, after the first checkpoint; then a run to the end."""
    tree = os.path.join(tmp, "big")
    total = 200
    for i in range(total):
        still(tree, f"c{i % 4}/{i:03d}.png", 1000 + i, size=(64, 64))
    index = os.path.join(tmp, "big.faiss")
    launch = ["gst-launch-1.0", "-e", "galleryindexer", f"location={tree}", f"index={index}",
              "weights=random", "input-size=96", "resize=0", "batch-size=4",
              "checkpoint-interval=1"]
    embedded = 0
    for sig in (signal.SIGINT, signal.SIGKILL):
        before = os.stat(index + ".db").st_mtime_ns if os.path.exists(index + ".db") else 0
        proc = subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        # Until a checkpoint of this run is on disk.
        while proc.poll() is None and (not os.path.exists(index + ".db") or
                                       os.stat(index + ".db").st_mtime_ns == before):
            time.sleep(0.01)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
        items = contents(index)
        check(items is not None and 0 < len(items) < total,
              f"{sig.name} in the middle leaves a loadable index: "
              f"{len(items) if items else None} of {total} items")
        if sig == signal.SIGINT:
            check("walk was stopped before its end" in out, "Ctrl-C: the run says it stopped")
        embedded = len(items)
    frames, text, error = run(tree, index, "input-size=96")
    check(error is None and frames == total - embedded,
          f"the next run embeds only the {total - embedded} missing files ({frames}, {error})")
    scratch = os.path.join(tmp, "big-scratch.faiss")
    run(tree, scratch, "input-size=96", "mode=rebuild")
    check(same_gallery(contents(index), contents(scratch)),
          "after the interruptions, the index equals a build from scratch")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for index_type in ("Flat", "HNSW16"):
            incremental(tmp, index_type)
        unreadable_folder_keeps_its_items(tmp)
        faissindexer_index_is_refused(tmp)
        index_folder_script(tmp)
        interrupted(tmp)
    finish()


if __name__ == "__main__":
    main()
