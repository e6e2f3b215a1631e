# SPDX-License-Identifier: LGPL-2.1-or-later
"""galleryindexer detector=: a gallery of regions, with facedetect
(gstreamer1.0-opencv) in front and random embedder weights at input size 32.

On a generated folder holding imageio's astronaut.png and a picture without
a face, checks that:
- the index holds one item per face facedetect finds (its own element
  message, from a separate gst-launch-1.0 run), each with the file and the
  box as a media fragment (astronaut.png#xywh=X,Y,W,H), and none from the
  picture without a face; both files count as added (read), the face's item
  is tied to its file in the catalog's files table, and no warning about
  frames without an embedding;
- each item's thumbnail is the crop of its box, not the whole picture;
- without roi-types, every region the detector marks is indexed;
- a detector description that does not parse, and a detector with
  mode=update, are refused with errors that say what to do.
Skipped (with a message saying what to install) without facedetect or
astronaut.png.
"""
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

ASTRONAUT = "/usr/lib/python3/dist-packages/imageio/resources/images/astronaut.png"
DETECTOR = "facedetect display=false min-size-width=40 min-size-height=40"
EMBEDDER = ["weights=random", "input-size=32", "resize=0", "batch-size=4"]

have_facedetect = subprocess.run(["gst-inspect-1.0", "facedetect"],
                                 capture_output=True).returncode == 0
if not have_facedetect or not os.path.exists(ASTRONAUT):
    print("SKIP: needs facedetect (gstreamer1.0-opencv, opencv-data) and astronaut.png "
          "(python3-imageio): scripts/install-deps.sh")
    sys.exit(77)


def index(folder, out, *props):
    """Runs galleryindexer with the detector; returns (returncode, output)."""
    run = subprocess.run(["gst-launch-1.0", "-e", "galleryindexer", f"location={folder}",
                          f"index={out}", *EMBEDDER, *props],
                         capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


def faces_of(path):
    """The boxes facedetect finds on a PNG, from its element message."""
    run = subprocess.run(["gst-launch-1.0", "-m", "filesrc", f"location={path}", "!",
                          "pngdec", "!", "videoconvert", "!", *DETECTOR.split(), "!",
                          "fakesink"], capture_output=True, text=True, timeout=60)
    boxes = set()
    for line in run.stdout.replace("\\", "").splitlines():
        if "facedetect" in line and "faces=" in line:
            for x, y, w, h in re.findall(
                    r"x=\(uint\)(\d+), y=\(uint\)(\d+), width=\(uint\)(\d+), "
                    r"height=\(uint\)(\d+)", line):
                boxes.add((int(x), int(y), int(w), int(h)))
    return boxes


with tempfile.TemporaryDirectory() as tmp:
    folder = os.path.join(tmp, "photos")
    os.makedirs(folder)
    shutil.copy(ASTRONAUT, os.path.join(folder, "astronaut.png"))
    # Smooth colours: no face in it.
    y, x = np.mgrid[0:240, 0:320]
    Image.fromarray(np.stack([x * 255 // 319, y * 255 // 239, (x + y) % 256],
                             axis=2).astype(np.uint8)).save(os.path.join(folder, "plain.png"))
    expected = faces_of(ASTRONAUT)
    check(expected, "facedetect finds a face on astronaut.png by itself", expected)

    out = os.path.join(tmp, "faces.faiss")
    rc, output = index(folder, out, "mode=rebuild", f"detector={DETECTOR}",
                       "roi-types=face", "thumbnail-size=64")
    check(rc == 0, "galleryindexer detector=facedetect indexes the folder", output[-2000:])
    complete = [line for line in output.splitlines() if "files: added" in line]
    check(complete and "files: added 2, updated 0, removed 0, unchanged 0, skipped-bad 0"
          in complete[-1] and "carried no embedding" not in output,
          "both files count as added (read), the one without a face too, with no warning",
          complete or output[-1500:])
    with sqlite3.connect(f"file:{out}.db?mode=ro", uri=True) as db:
        files = sorted(bytes(r[0]).decode() for r in db.execute("SELECT path FROM files"))
        check(files == ["astronaut.png"],
              "the face's item is tied to its file in the catalog's files table", files)

        items = db.execute("SELECT i.id, i.source, i.label_name, t.jpeg FROM items i "
                           "LEFT JOIN thumbnails t ON t.id = i.id ORDER BY i.id").fetchall()
        count = db.execute("SELECT count FROM index_facts").fetchone()[0]
    boxes = {}
    for id_, source, name, jpeg in items:
        m = re.fullmatch(r"astronaut\.png#xywh=(\d+),(\d+),(\d+),(\d+)", source)
        if m:
            boxes[tuple(int(v) for v in m.groups())] = jpeg
    check(count == len(items) == len(expected) and set(boxes) == expected,
          "one item per face, its source the file with the box as xywh, none from "
          "the picture without a face", (count, [row[:3] for row in items], expected))

    whole = Image.open(ASTRONAUT).convert("RGB")
    for (x, y, w, h), jpeg in boxes.items():
        thumb = Image.open(io.BytesIO(jpeg)).convert("RGB") if jpeg else None
        if not check(thumb is not None and max(thumb.size) == 64,
                     f"the face at {x},{y} has a 64-pixel thumbnail",
                     thumb and thumb.size):
            continue
        crop = np.asarray(whole.crop((x, y, x + w, y + h)).resize(thumb.size), np.float32)
        full = np.asarray(whole.resize(thumb.size), np.float32)
        seen = np.asarray(thumb, np.float32)
        to_crop, to_full = np.abs(seen - crop).mean(), np.abs(seen - full).mean()
        check(to_crop < 12 and to_crop < to_full / 3,
              f"the thumbnail of the face at {x},{y} is its crop",
              f"mean difference {to_crop:.1f} to the crop, {to_full:.1f} to the picture")

    # roi-types left empty with a detector: every region.
    every = os.path.join(tmp, "every.faiss")
    rc, output = index(folder, every, "mode=rebuild", f"detector={DETECTOR}")
    with sqlite3.connect(f"file:{every}.db?mode=ro", uri=True) as db:
        sources = sorted(r[0] for r in db.execute("SELECT source FROM items"))
    check(rc == 0 and sources == sorted(row[1] for row in items),
          "without roi-types the detector's regions are all indexed", (sources, output[-800:]))

    rc, output = index(folder, os.path.join(tmp, "bad.faiss"), "mode=rebuild",
                       "detector=facedetect display=false ! nosuchelement")
    check(rc != 0 and "Cannot make the detector" in output and "nosuchelement" in output,
          "a detector description naming no element is a clear error", output[-1500:])
    rc, output = index(folder, os.path.join(tmp, "bad.faiss"), "mode=rebuild",
                       "detector=facedetect no-such-property=1")
    check(rc != 0 and "Cannot make the detector" in output,
          "a detector with a property it does not have is a clear error", output[-1500:])
    rc, output = index(folder, out, f"detector={DETECTOR}")
    check(rc != 0 and "mode=rebuild" in output and "cannot keep up to date" in output,
          "a detector with mode=update (the default) is refused, naming mode=rebuild",
          output[-1500:])
    check(not os.path.exists(os.path.join(tmp, "bad.faiss")), "the refused runs write no index")

finish()
