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
- the picture without a face is recorded as read (rejected_files, reason
  "no region"), so that updates pass over it while it is unchanged;
- mode=update (the default) of a region index, after adding a mirrored
  astronaut, changing the faceless picture and removing a file: the
  unchanged file's regions keep their ids and vectors, the new file's regions
  are added, the removed file's are gone, and only the new and changed files
  are read; an update with nothing changed reads nothing;
- a detector description that does not parse is refused with an error that
  says what to do.
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

import faiss
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


def gallery_of(location):
    """{source: (id, vector)} of a gallery index."""
    with sqlite3.connect(f"file:{location}.db?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, source FROM items").fetchall()
    gallery = faiss.read_index(location)
    return {source: (id_, gallery.reconstruct(id_)) for id_, source in rows}


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
    check(not os.path.exists(os.path.join(tmp, "bad.faiss")), "the refused runs write no index")

    # mode=update of a region index: a folder of three, then one file added,
    # one changed and one removed.
    folder = os.path.join(tmp, "update")
    os.makedirs(folder)
    shutil.copy(ASTRONAUT, os.path.join(folder, "astronaut.png"))
    shutil.copy(ASTRONAUT, os.path.join(folder, "gone.png"))
    shutil.copy(os.path.join(tmp, "photos", "plain.png"), os.path.join(folder, "plain.png"))
    upd = os.path.join(tmp, "update.faiss")
    rc, output = index(folder, upd, "mode=rebuild", f"detector={DETECTOR}", "roi-types=face")
    check(rc == 0, "a region index of three files to update", output[-1500:])
    before = gallery_of(upd)
    with sqlite3.connect(f"file:{upd}.db?mode=ro", uri=True) as db:
        rejected = [(bytes(p).decode(), r) for p, r in
                    db.execute("SELECT path, reason FROM rejected_files")]
    check(len(rejected) == 1 and rejected[0][0] == "plain.png" and "no region" in rejected[0][1],
          "the picture without a face is recorded as read with no region", rejected)

    mirrored = os.path.join(folder, "mirror.png")
    Image.open(ASTRONAUT).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    mirror_faces = faces_of(mirrored)
    check(mirror_faces, "facedetect finds a face on the mirrored astronaut", mirror_faces)
    os.remove(os.path.join(folder, "gone.png"))
    y, x = np.mgrid[0:200, 0:300]
    Image.fromarray(np.stack([y * 255 // 199, x * 255 // 299, (x * y) % 256],
                             axis=2).astype(np.uint8)).save(os.path.join(folder, "plain.png"))
    rc, output = index(folder, upd, f"detector={DETECTOR}", "roi-types=face")
    complete = [line for line in output.splitlines() if "files: added" in line]
    check(rc == 0 and complete and
          f"{len(mirror_faces)} frames embedded; files: added 1, updated 1, removed 1, "
          "unchanged 1, skipped-bad 0" in complete[-1],
          "the update (mode=update, the default) embeds only the mirrored astronaut's "
          "faces, counts the changed picture as updated and the removed one as removed",
          complete or output[-2000:])
    after = gallery_of(upd)
    kept = {s: v for s, v in before.items() if s.startswith("astronaut.png#")}
    check(kept and all(s in after and after[s][0] == v[0] and np.array_equal(after[s][1], v[1])
                       for s, v in kept.items()),
          "the unchanged file's regions keep their ids and vectors",
          (sorted((s, v[0]) for s, v in kept.items()), sorted((s, v[0]) for s, v in after.items())))
    new = {tuple(int(v) for v in re.fullmatch(r"mirror\.png#xywh=(\d+),(\d+),(\d+),(\d+)",
                                               s).groups())
           for s in after if s.startswith("mirror.png#")}
    check(new == mirror_faces and not any(s.startswith("gone.png") for s in after)
          and len(after) == len(kept) + len(mirror_faces),
          "the new file's regions are added and the removed file's gone", sorted(after))
    check(min((v[0] for s, v in after.items() if s.startswith("mirror.png#")), default=-1)
          > max(v[0] for v in before.values()), "the new regions get new ids",
          sorted((s, v[0]) for s, v in after.items()))
    with sqlite3.connect(f"file:{upd}.db?mode=ro", uri=True) as db:
        files = sorted({bytes(r[0]).decode() for r in db.execute("SELECT path FROM files")})
        rejected = [bytes(r[0]).decode() for r in db.execute("SELECT path FROM rejected_files")]
    check(files == ["astronaut.png", "mirror.png"] and rejected == ["plain.png"],
          "the catalog ties the regions to their files and records the changed picture as "
          "read again", (files, rejected))

    rc, output = index(folder, upd, f"detector={DETECTOR}", "roi-types=face")
    complete = [line for line in output.splitlines() if "files: added" in line]
    check(rc == 0 and complete and "up to date" in complete[-1]
          and "added 0, updated 0, removed 0, unchanged 3, skipped-bad 0" in complete[-1]
          and gallery_of(upd).keys() == after.keys() and "unreadable" not in output,
          "an update with nothing changed reads no file, the one without a face neither, "
          "and does not call it unreadable",
          complete or output[-2000:])

finish()
