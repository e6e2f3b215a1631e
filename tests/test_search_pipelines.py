#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The search scripts in pipelines/, run as a user would: search-image.sh
finds a gallery image itself and draws the contact sheet, search-video.sh
writes an annotated video with every frame, search-webcam.sh runs live from a
test source and stops with a clear message when there is no camera. Each of
them, and evaluate-cifar.sh, also runs with an index built by a TorchScript
model, which the embedder adopts from the index with nothing set.

FolderGallery: the same scripts with a gallery folder indexed by
index-folder.sh, run from another directory: the overlay finds the index by
itself and draws the catalog's thumbnails even when the folder has moved, and
with thumbnail-size=0 it reads the originals relative to the folder the
catalog records.

Usage: test_search_pipelines.py [SearchPipelines|FolderGallery]
       (VS_SOURCE_DIR and VS_BUILD_DIR set by meson)
"""
import json
import os
import re
import shutil
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
from checks import check, expect_error, finish, tmp_dir  # noqa: E402
from test_search_e2e import EMBEDDER, NAMES, write_cifar10  # noqa: E402
from torchscript_fixtures import write_tiny_torchscript  # noqa: E402

PIPELINES = os.path.join(os.environ["VS_SOURCE_DIR"], "pipelines")


def sh(*args, must_succeed=True, cwd=None, **env):
    """Runs a command; checks that it succeeds unless told otherwise."""
    run_env = dict(os.environ, BUILD_DIR=os.environ["VS_BUILD_DIR"], **env)
    result = checks.run(list(args), timeout=180, env=run_env, cwd=cwd)
    if must_succeed:
        check(result.returncode == 0, f"{os.path.basename(args[0])} {' '.join(args[1:])} runs",
              None if result.returncode == 0
              else f"exit status {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def search_pipelines(tmp):
    def path(name):
        return os.path.join(tmp, name)

    dataset = path("cifar-10-batches-py")
    labels = write_cifar10(dataset, seed=5)
    index = path("gallery.faiss")
    sh("gst-launch-1.0", "-q", "cifarsrc", f"location={dataset}", "split=train", "!",
       *EMBEDDER.split(), "!", "faissindexer", f"location={index}")
    model = path("tiny.pt")
    write_tiny_torchscript(model, seed=4)
    ts_index = path("tiny.faiss")
    sh("gst-launch-1.0", "-q", "cifarsrc", f"location={dataset}", "split=train", "!",
       "embedder", f"model={model}", "input-size=32", "resize=0", "!",
       "faissindexer", f"location={ts_index}")

    # --help, and no arguments
    for script in ("search-image.sh", "search-video.sh", "search-webcam.sh"):
        out = sh(os.path.join(PIPELINES, script), "--help")
        check("INDEX" in out.stdout, f"{script} --help names INDEX", out.stdout)
        check(sh(os.path.join(PIPELINES, script), must_succeed=False).returncode != 0,
              f"{script} without arguments fails")

    def search_image(index, sheet):
        """Searches gallery image 7 with search-image.sh; checks it comes first."""
        query = path("query.png")
        sh("gst-launch-1.0", "-q", "cifarsrc", f"location={dataset}", "offset=7",
           "num-buffers=1", "!", "videoconvert", "!", "pngenc", "!", "filesink",
           f"location={query}")
        out = sh(os.path.join(PIPELINES, "search-image.sh"), query, index,
                 "--dataset", dataset, "--out", sheet, "-k", "4", THUMB="64")
        first = [line for line in out.stdout.splitlines() if line.strip().startswith("1.")]
        name = NAMES[labels["cifar10/train/7"]]
        check(len(first) == 1
              and re.search(rf"1\. {name} +1\.0000  id 7  cifar10/train/7", first[0]),
              f"{os.path.basename(index)}: gallery image 7 finds itself first", out.stdout)
        check(f"contact sheet: {sheet}" in out.stdout,
              f"{os.path.basename(index)}: the contact sheet is announced", out.stdout)

    # search-image.sh
    sheet = path("sheet.png")
    search_image(index, sheet)
    image = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
    # 4 tiles of 64 px with 4 px gaps make a row narrower than the minimum
    # width; the query keeps a 4:3 box and the results get a band below.
    check(image.shape == (240 + 64 + 32 + 16, 320, 3), "the sheet's size", image.shape)
    # The strip starts where its dark background (24) does in the left
    # margin; its first tile is the noise image of record 7.
    strip_top = 240 + int(np.argmax((image[240:, 0] == 24).all(axis=1)))
    tile = image[strip_top + 4:strip_top + 68, 4:68]
    check(tile.std() > 40, "the first thumbnail is drawn", tile.std())
    # The index has random weights: an orange line on top says so.
    band = int(np.argmin((image[:, 0] == 24).all(axis=1)))
    check(8 <= band <= 30, "a notice band on top", band)
    text = image[:band]
    orange = (text[..., 0] > 150) & (text[..., 2] < 120)
    check(orange.sum() > 50, "the notice says the weights are random, in orange", orange.sum())
    check((image[band:240, :40] == 0).all(), "the query is letterboxed")

    # The sheet goes into the current folder (or OUT=), not beside the query.
    here = path("elsewhere")
    os.makedirs(here)
    out = sh(os.path.join(PIPELINES, "search-image.sh"), path("query.png"), index, "-k", "2",
             cwd=here)
    check(os.path.exists(os.path.join(here, "query-results.png"))
          and not os.path.exists(path("query-results.png")),
          "search-image.sh writes its sheet into the current folder", os.listdir(tmp))
    check("RANDOM WEIGHTS" in out.stdout, "search-image.sh says the weights are random",
          out.stdout)
    sh(os.path.join(PIPELINES, "search-image.sh"), path("query.png"), index, "-k", "2",
       cwd=here, OUT=path("out-sheet.png"))
    check(os.path.exists(path("out-sheet.png")), "OUT= names the sheet")
    # A file that is no picture: one sentence, no GStreamer dump.
    notes = path("notes.png")
    with open(notes, "w") as f:
        f.write("not a picture\n")
    bad = sh(os.path.join(PIPELINES, "search-image.sh"), notes, index, must_succeed=False,
             cwd=here)
    message = expect_error(bad, "search-image.sh answers a non-picture",
                           f"{notes} is not a picture GStreamer can decode", rc=1)
    check(bad.stderr.strip().count("\n") == 0 and "debug info" not in bad.stderr,
          "in one sentence", bad.stderr)
    check(not os.listdir(here) or "notes-results.png" not in os.listdir(here),
          "no sheet is left for a non-picture", os.listdir(here))

    # search-video.sh
    clip = path("clip.avi")
    sh("gst-launch-1.0", "-q", "videotestsrc", "num-buffers=12", "pattern=ball", "!",
       "video/x-raw,width=160,height=120,framerate=10/1", "!", "jpegenc", "!", "avimux",
       "!", "filesink", f"location={clip}")
    for ext in ("avi", "webm"):
        out_path = path(f"annotated.{ext}")
        messages = path(f"messages-{ext}.log")
        sh(os.path.join(PIPELINES, "search-video.sh"), clip, index, "--dataset",
           dataset, "--out", out_path, "-k", "2", INTERVAL="3", MESSAGES=messages,
           THUMB="32")
        with open(messages) as f:
            searched = sum("visualsearch, " in line for line in f)
        check(searched == 4, f"12 frames, every 3rd embedded ({ext})", searched)
        frames = sh("gst-launch-1.0", "-v", "filesrc", f"location={out_path}", "!",
                    "decodebin", "!", "fakesink", "silent=false").stdout.count("chain")
        check(frames == 12, f"12 frames in the annotated {ext}", frames)
    bad = sh(os.path.join(PIPELINES, "search-video.sh"), clip, index, "--out",
             path("out.xyz"), must_succeed=False)
    expect_error(bad, "search-video.sh refuses an unknown container, naming .avi", ".avi", rc=1)

    # search-webcam.sh
    script = os.path.join(PIPELINES, "search-webcam.sh")
    missing = sh(script, index, "--device", path("video9"), must_succeed=False)
    expect_error(missing, "search-webcam.sh without a camera says so", "no camera at", rc=1)
    live = sh(script, index, "--dataset", dataset,
              SOURCE="videotestsrc is-live=true num-buffers=20", SINK="fakesink",
              WIDTH="160", HEIGHT="120")
    check("Got EOS" in live.stdout, "search-webcam.sh runs live to EOS", live.stdout)

    # An index built by a TorchScript model
    search_image(ts_index, path("ts-sheet.png"))
    clip = path("ts-clip.avi")
    sh("gst-launch-1.0", "-q", "videotestsrc", "num-buffers=6", "!",
       "video/x-raw,width=64,height=48,framerate=10/1", "!", "jpegenc", "!", "avimux",
       "!", "filesink", f"location={clip}")
    messages = path("ts-messages.log")
    sh(os.path.join(PIPELINES, "search-video.sh"), clip, ts_index, "--out",
       path("ts-annotated.avi"), "-k", "2", MESSAGES=messages)
    with open(messages) as f:
        searched = sum("visualsearch, " in line for line in f)
    check(searched == 6, "TorchScript index: search-video.sh searches every frame", searched)
    live = sh(os.path.join(PIPELINES, "search-webcam.sh"), ts_index,
              SOURCE="videotestsrc is-live=true num-buffers=5", SINK="fakesink",
              WIDTH="64", HEIGHT="48")
    check("Got EOS" in live.stdout, "TorchScript index: search-webcam.sh runs to EOS",
          live.stdout)
    out_dir = path("ts-evaluate")
    out = sh(os.path.join(PIPELINES, "evaluate-cifar.sh"), dataset, MODEL=model,
             INPUT_SIZE="32", RESIZE="0", K="1,3", MAP="none", OUT_DIR=out_dir)
    check("MRR" in out.stdout, "TorchScript index: evaluate-cifar.sh prints the table",
          out.stdout)
    with open(os.path.join(out_dir, "metrics.json")) as f:
        queries = json.load(f)["queries"]
    check(queries == 8, "TorchScript index: evaluate-cifar.sh runs 8 queries", queries)

    # An index mismatch is reported
    query = path("noise.png")
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(query)
    out = sh(os.path.join(PIPELINES, "search-image.sh"), query, index,
             must_succeed=False, MODEL="resnet34")
    expect_error(out, "search-image.sh MODEL=resnet34 against a resnet18 index",
                 f"model=resnet34 contradicts the index {index}", rc=1)
    out = sh(os.path.join(PIPELINES, "search-image.sh"), query, path("none.faiss"),
             must_succeed=False)
    expect_error(out, "search-image.sh without an index points to index-cifar.sh",
                 "index-cifar.sh", rc=1)


def blocks(seed, size=(48, 40)):
    """A picture of coarse random blocks: its thumbnails at any scale still
    look like it, unlike pixel noise."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    return small.resize(size, Image.NEAREST)


def first_tile(sheet, thumb):
    """The first result's thumbnail in a search-image.sh sheet (k <= 4, so the
    query box is 320x240)."""
    image = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
    strip_top = 240 + int(np.argmax((image[240:, 0] == 24).all(axis=1)))
    return image[strip_top + 4:strip_top + 4 + thumb, 4:4 + thumb]


THUMB = 64


def folder_gallery(tmp):
    # A relative folder name with a space, indexed from its parent: the
    # catalog must record where it is, not how it was named.
    folder = os.path.join(tmp, "my photos")
    for c, name in enumerate(("cats", "dogs")):
        for i in range(3):
            rel = f"{name}/pic {i}.png"
            os.makedirs(os.path.join(folder, name), exist_ok=True)
            blocks(10 * c + i).save(os.path.join(folder, rel))
    script = os.path.join(PIPELINES, "index-folder.sh")
    settings = dict(WEIGHTS="random", INPUT_SIZE="32", RESIZE="0")
    index = os.path.join(tmp, "thumbs.faiss")
    sh(script, "my photos", "thumbs.faiss", cwd=tmp, **settings)
    bare = os.path.join(tmp, "bare.faiss")
    sh(script, "my photos", "bare.faiss", cwd=tmp, THUMBNAIL_SIZE="0", **settings)
    elsewhere = os.path.join(tmp, "elsewhere")
    os.mkdir(elsewhere)
    query = os.path.join(tmp, "query.png")
    shutil.copy(os.path.join(folder, "dogs/pic 1.png"), query)

    def search_image(index, sheet, what):
        out = sh(os.path.join(PIPELINES, "search-image.sh"), query, index, "--out", sheet,
                 "-k", "3", THUMB=str(THUMB), cwd=elsewhere)
        check(re.search(r"1\. dogs +1\.0000  id \d+  dogs/pic 1\.png", out.stdout),
              f"{what}: the query's picture comes first", out.stdout)
        check("Cannot show" not in out.stderr, f"{what}: every result is shown", out.stderr)
        expected = np.asarray(blocks(11).resize((THUMB, THUMB), Image.BILINEAR), dtype=int)
        diff = np.abs(first_tile(sheet, THUMB) - expected).mean()
        check(diff < 20, f"{what}: the first thumbnail is the query's picture", diff)

    search_image(bare, os.path.join(tmp, "bare.png"),
                 "search-image.sh reads the originals from the recorded folder")
    moved = folder + " moved"
    os.rename(folder, moved)
    try:
        search_image(index, os.path.join(tmp, "thumbs.png"),
                     "search-image.sh shows the catalog's thumbnails without the folder")
    finally:
        os.rename(moved, folder)

    clip = os.path.join(tmp, "clip.avi")
    sh("gst-launch-1.0", "-q", "videotestsrc", "num-buffers=4", "pattern=ball", "!",
       "video/x-raw,width=96,height=72,framerate=10/1", "!", "jpegenc", "!", "avimux",
       "!", "filesink", f"location={clip}")
    messages = os.path.join(tmp, "messages.log")
    sh(os.path.join(PIPELINES, "search-video.sh"), clip, bare, "--out",
       os.path.join(tmp, "annotated.avi"), "-k", "2", MESSAGES=messages,
       THUMB="16", cwd=elsewhere)
    with open(messages) as f:
        log = f.read()
    check(log.count("visualsearch, ") == 4, "search-video.sh searches the 4 frames", log)
    check(re.search(r'sources=\(string\)< "(cats|dogs)/pic\\ \d\.png"', log),
          "the messages name the gallery's pictures", log)
    check("Cannot show" not in log, "search-video.sh shows every result", log)

    live = sh(os.path.join(PIPELINES, "search-webcam.sh"), bare,
              SOURCE="videotestsrc is-live=true num-buffers=5", SINK="fakesink",
              WIDTH="96", HEIGHT="72", THUMB="16", cwd=elsewhere)
    check("Got EOS" in live.stdout, "search-webcam.sh runs to EOS", live.stdout)
    check("Cannot show" not in live.stdout + live.stderr, "search-webcam.sh shows every result",
          live.stdout + live.stderr)


GROUPS = {"SearchPipelines": search_pipelines, "FolderGallery": folder_gallery}


def main():
    unknown = [name for name in sys.argv[1:] if name not in GROUPS]
    if unknown:
        sys.exit(f"unknown group(s) {unknown}; the groups are {list(GROUPS)}")
    for name in sys.argv[1:] or GROUPS:
        with tmp_dir() as tmp:
            GROUPS[name](tmp)
    finish()


if __name__ == "__main__":
    main()
