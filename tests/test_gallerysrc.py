# SPDX-License-Identifier: LGPL-2.1-or-later
"""gallerysrc on a generated folder tree.

    test_gallerysrc.py GALLERY_RUN

A tree of every still format (class folders with spaces and non-ASCII names,
nested folders, an EXIF-rotated JPEG, 1x1 and 3000x2000 images, a file in the
root, a hidden file), two short videos (vp8/webm and jpeg/avi) and every kind
of bad file (corrupt, truncated, zero bytes, text named .jpg, a PNG declaring
100000x100000, a FIFO, a symbolic link loop). Checks: frames in walk order with
ids from 0, native sizes (caps change with them), pixels equal to PIL's
decoding (upright for the EXIF JPEG), labels from folders, none and a CSV,
sources (plus #t= for video frames, one every video-interval), recursive=false,
every bad file named in one warning at EOS and none of them stopping the walk,
strict=true as an error, progress messages, max-pixels, no hang on the FIFO or
the loop, and memory that stays small with the 100000x100000 header.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures as fx  # noqa: E402

GALLERY_RUN = sys.argv[1]
import checks  # noqa: E402
from checks import check, finish  # noqa: E402


class Run:
    def __init__(self, tmp, pipeline, timeout=120):
        pix, emb = os.path.join(tmp, "pixels.raw"), os.path.join(tmp, "emb.f32")
        res = checks.run([GALLERY_RUN, pipeline, pix, emb], timeout, text=False)
        self.rc = res.returncode
        self.stderr = res.stderr.decode(errors="replace")
        self.frames, self.progress, self.warnings, self.errors = [], [], [], []
        raw = np.fromfile(pix, dtype=np.uint8)
        offset = 0
        for line in res.stdout.decode().splitlines():
            kind, *f = line.split("\t")
            if kind == "frame":
                w, h = int(f[4]), int(f[5])
                self.frames.append(dict(id=int(f[0]), label=int(f[1]), label_name=f[2],
                                        source=f[3], width=w, height=h, pts=int(f[6]),
                                        rgb=raw[offset:offset + w * h * 3].reshape(h, w, 3)))
                offset += w * h * 3
            elif kind == "progress":
                self.progress.append((f[0], int(f[1]), int(f[2])))
            elif kind == "warning":
                self.warnings.append(f[0])
            elif kind == "error":
                self.errors.append(f[0])

    def by_source(self):
        return {f["source"]: f for f in self.frames}


def make_video(path, pipeline_tail, seconds, w, h):
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", f"num-buffers={seconds * 10}",
                    "pattern=ball", "!", f"video/x-raw,width={w},height={h},framerate=10/1",
                    "!", *pipeline_tail.split(), "!", "filesink", f"location={path}"],
                   check=True, timeout=120)


def build_tree(root):
    """Returns {relative path: expected upright RGB} for the stills."""
    stills = {}

    def still(rel, fmt, rgb, **options):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fx.save(path, fmt, rgb, **options)
        stills[rel] = np.asarray(Image.open(path).convert("RGB"))

    still("Beach Photos/sub/deep/photo.webp", "webp-lossless", fx.gradient(50, 40, 1))
    still("Beach Photos/tiny.png", "png", fx.gradient(1, 1, 2))
    exif = os.path.join(root, "Beach Photos", "portrait.jpg")
    fx.exif_rotated_jpeg(exif, fx.gradient(64, 32, 3), orientation=6)
    stills["Beach Photos/portrait.jpg"] = np.asarray(
        ImageOps.exif_transpose(Image.open(exif)).convert("RGB"))
    for i, fmt in enumerate(["bmp", "tiff", "ppm", "jp2", "j2k", "webp", "pgm"]):
        still(f"cats/{i}-{fmt}{fx.FORMATS[fmt][0]}", fmt, fx.gradient(20 + 7 * i, 30 - i, 10 + i))
    still("cats/big.jpg", "jpeg", fx.gradient(3000, 2000, 4))
    still("résumé ünï/café au lait.png", "png", fx.gradient(33, 21, 5))
    still("root.png", "png", fx.gradient(17, 9, 6))
    fx.save(os.path.join(root, "cats", ".hidden.png"), "png", fx.gradient(5, 5))
    # A name that is not UTF-8 (Latin-1 "\xe9t\xe9"): its source must still be valid UTF-8.
    fx.save(os.path.join(os.fsencode(root), b"cats", b"\xe9t\xe9.png"), "png", fx.gradient(6, 4, 7))
    stills["cats/\ufffdt\ufffd.png"] = np.asarray(
        Image.open(os.path.join(os.fsencode(root), b"cats", b"\xe9t\xe9.png")).convert("RGB"))

    os.makedirs(os.path.join(root, "clips"))
    make_video(os.path.join(root, "clips", "ball.webm"), "vp8enc ! webmmux", 3, 64, 48)
    make_video(os.path.join(root, "clips", "ball.avi"), "jpegenc ! avimux", 2, 80, 60)

    bad = os.path.join(root, "bad")
    os.makedirs(bad)
    fx.corrupt_png(os.path.join(root, "root.png"), os.path.join(bad, "corrupt.png"))
    fx.truncate(os.path.join(root, "cats", "big.jpg"), os.path.join(bad, "truncated.jpg"))
    open(os.path.join(bad, "empty.jpg"), "wb").close()
    with open(os.path.join(bad, "text.jpg"), "w") as f:
        f.write("not a picture\n" * 20)
    fx.png_bomb(os.path.join(bad, "bomb.png"))
    subprocess.run(["gst-launch-1.0", "-q", "audiotestsrc", "num-buffers=20", "!", "wavenc", "!",
                    "filesink", f"location={bad}/sound.wav"], check=True, timeout=60)
    os.mkfifo(os.path.join(bad, "fifo.png"))
    os.symlink("..", os.path.join(bad, "loop"))
    return stills


BAD = ["bad/bomb.png", "bad/corrupt.png", "bad/empty.jpg", "bad/fifo.png", "bad/loop",
       "bad/sound.wav", "bad/text.jpg", "bad/truncated.jpg"]
VIDEO_FRAMES = ["clips/ball.avi#t=0.000", "clips/ball.avi#t=1.000", "clips/ball.webm#t=0.000",
                "clips/ball.webm#t=1.000", "clips/ball.webm#t=2.000"]


def close(a, b, exact):
    if a.shape != b.shape:
        return False
    diff = np.abs(a.astype(int) - b.astype(int)).mean()
    return diff == 0 if exact else diff < 2.0


with tempfile.TemporaryDirectory() as tmp:
    root = os.path.join(tmp, "gallery")
    stills = build_tree(root)

    # --- the default walk: folder labels
    run = Run(tmp, f"gallerysrc location={root}")
    check(run.rc == 0 and not run.errors, f"default walk ends with EOS ({run.errors} {run.stderr[-300:]})")
    # Sorted by the names' bytes on disk.
    on_disk = {"cats/\ufffdt\ufffd.png": b"cats/\xe9t\xe9.png"}
    want_order = sorted(list(stills) + VIDEO_FRAMES,
                        key=lambda s: on_disk.get(s, s.split("#")[0].encode()))
    got_order = [f["source"] for f in run.frames]
    check(got_order == want_order, f"frames in sorted walk order, one per still, one per second "
          f"of video:\n  got  {got_order}\n  want {want_order}")
    check([f["id"] for f in run.frames] == list(range(len(run.frames))), "ids 0.. in walk order")
    pts = [f["pts"] for f in run.frames]
    check(pts == sorted(pts) and len(set(pts)) == len(pts), "PTS strictly increasing")

    names = ["Beach Photos", "bad", "cats", "clips", "résumé ünï"]
    frames = run.by_source()
    ok_labels = all(
        (f["label"], f["label_name"]) == ((names.index(s.split("/")[0]), s.split("/")[0])
                                          if "/" in s.split("#")[0] else (-1, "(null)"))
        for s, f in frames.items())
    check(ok_labels, "label-from=folder: first-level folder, numbered in sorted order; the root "
          "file has label -1 and no name")
    for rel, want in stills.items():
        f = frames.get(rel)
        exact = not rel.endswith((".jpg", ".webp")) or "deep" in rel
        check(f is not None and (f["width"], f["height"]) == (want.shape[1], want.shape[0])
              and close(f["rgb"], want, exact),
              f"{rel}: native size {want.shape[1]}x{want.shape[0]}, pixels as PIL decodes them"
              + (" (upright: EXIF orientation 6)" if "portrait" in rel else ""))
    portrait = frames.get("Beach Photos/portrait.jpg")
    check(portrait is not None and (portrait["width"], portrait["height"]) == (32, 64),
          "the EXIF-rotated photo comes out portrait (32x64), not as stored (64x32)")
    sizes = {(f["width"], f["height"]) for f in run.frames}
    check(len(sizes) > 10, f"frames of {len(sizes)} different sizes in one stream (caps change)")
    webm = [frames.get(s) for s in VIDEO_FRAMES if "webm" in s]
    check(all(f is not None and (f["width"], f["height"]) == (64, 48) for f in webm) and
          not np.array_equal(webm[0]["rgb"], webm[1]["rgb"]),
          "video frames at the video's size, different frames at different times")

    check(len(run.warnings) == 1, f"one warning at EOS ({len(run.warnings)})")
    warning = run.warnings[0] if run.warnings else ""
    check(f"Skipped {len(BAD)} files" in warning, f"the warning counts {len(BAD)} bad files: {warning[:120]}")
    for rel in BAD:
        check(os.path.join(root, rel) in warning, f"the warning names {rel}")
    for rel, reason in [("bomb.png", "100000x100000"), ("truncated.jpg", "truncated JPEG"),
                        ("empty.jpg", "empty"), ("fifo.png", "not a regular file"),
                        ("loop", "symbolic link loop"), ("corrupt.png", "damaged"),
                        ("sound.wav", "neither an image nor a video: it has no video stream")]:
        check(f"{rel} is" in warning and reason in warning.split(f"{rel} is", 1)[1].split(";")[0],
              f"... {rel}: {reason}")

    total = len(stills) + 2 + len(BAD) - 2  # walk-time entries (FIFO, loop) are no files
    kinds = [p[0] for p in run.progress]
    check(kinds[:1] == ["start"] and kinds[-1:] == ["complete"] and
          all(k == "continue" for k in kinds[1:-1]), f"progress: start, continue..., complete ({kinds[:3]}...)")
    done = [p[1] for p in run.progress]
    check(done == sorted(done) and run.progress[-1][1:] == (total, total) and
          all(p[2] == total for p in run.progress), f"progress counts files done up to {total}/{total}")

    # --- shard=K/N: runs of consecutive files, the whole walk's sources and labels
    full = [(f["source"], f["label"], f["label_name"]) for f in run.frames]
    sharded, runs = [], []
    for k in range(3):
        part = Run(tmp, f"gallerysrc location={root} shard={k}/3")
        runs.append(part)
        sharded += [(f["source"], f["label"], f["label_name"]) for f in part.frames]
        check(part.rc == 0 and [f["id"] for f in part.frames] == list(range(len(part.frames))),
              f"shard={k}/3 plays to EOS, ids from 0 ({part.errors})")
    check(sharded == full, "shards 0/3, 1/3, 2/3 one after the other give the whole walk's "
          "frames, sources and labels, in its order")
    files = [{s.split("#")[0] for s, _, _ in ((f["source"], 0, 0) for f in r.frames)} for r in runs]
    check(not (files[0] & files[1]) and not (files[1] & files[2]) and not (files[0] & files[2]),
          "no file gives frames in two shards (a video's frames stay in one)")
    check(all(1 <= len(f) for f in files), f"every shard has files ({[len(f) for f in files]})")
    totals = [r.progress[-1] if r.progress else None for r in runs]
    check(all(t and t[0] == "complete" and t[1] == t[2] for t in totals) and
          sum(t[2] for t in totals) == run.progress[-1][2],
          f"each shard's progress counts its own files, together the whole walk's ({totals})")
    for bad_shard in ("3/3", "1/0", "a/2", "1", "-1/2"):
        part = Run(tmp, f"gallerysrc location={root} shard={bad_shard}")
        check(part.rc == 1 and part.errors and f'Invalid shard "{bad_shard}"' in part.errors[0]
              and "K/N" in part.errors[0], f"shard={bad_shard} is an error saying what to give")

    # --- stopped in the middle of a video: the decoding pipeline inside is torn down
    run = Run(tmp, f"gallerysrc location={root}/clips num-buffers=3")
    check(run.rc == 0 and [f["source"] for f in run.frames] == [s[len("clips/"):] for s in VIDEO_FRAMES[:3]],
          "num-buffers=3 stops in the middle of the second video without hanging")

    # --- a sound file ends its walk every time: decodebin 1.22 sometimes drops
    # the error of a demuxer whose only stream is audio, and a sampler that
    # waited for that error waited forever (about one run in three here)
    sounds = os.path.join(tmp, "sounds")
    os.makedirs(sounds)
    os.link(os.path.join(root, "bad", "sound.wav"), os.path.join(sounds, "sound.wav"))
    ended, odd = 0, []
    for _ in range(20):
        run = Run(tmp, f"gallerysrc location={sounds}", timeout=30)
        ok = run.rc == 0 and not run.frames and len(run.warnings) == 1 and \
            "no video stream" in run.warnings[0]
        ended += ok
        if not ok:
            odd.append((run.rc, len(run.frames), run.warnings, run.errors))
    check(ended == 20, f"a folder holding only a sound file: 20 of 20 runs end with the warning "
          f"({ended}; {odd[:1]})")

    # --- label-from=none, recursive=false
    run = Run(tmp, f"gallerysrc location={root} label-from=none")
    check(len(run.frames) == len(want_order) and all(f["label"] == -1 and f["label_name"] == "(null)"
                                                     for f in run.frames), "label-from=none: every label -1")
    run = Run(tmp, f"gallerysrc location={root} recursive=false")
    check([f["source"] for f in run.frames] == ["root.png"] and not run.warnings,
          "recursive=false: only the files in the root")

    # --- label-from=csv: columns in any order, quoted fields, files missing from it
    csv = os.path.join(root, "labels.csv")
    with open(csv, "w", encoding="utf-8") as f:
        f.write('\ufeffsku,label,path\r\n'
                '1,"shell, white",Beach Photos/tiny.png\r\n'
                '2,tabby,./cats/0-bmp.bmp\r\n'
                '3,tabby,"cats/1-tiff.tif"\r\n'
                '4,latte,résumé ünï/café au lait.png\r\n'
                '5,ghost,cats/not-there.png\r\n')
    run = Run(tmp, f"gallerysrc location={root} label-from=csv:{csv}")
    frames = run.by_source()
    labels = {s: (f["label"], f["label_name"]) for s, f in frames.items()}
    csv_names = ["ghost", "latte", "shell, white", "tabby"]
    check(labels.get("Beach Photos/tiny.png") == (2, "shell, white") and
          labels.get("cats/0-bmp.bmp") == (3, "tabby") and labels.get("cats/1-tiff.tif") == (3, "tabby")
          and labels.get("résumé ünï/café au lait.png") == (1, "latte"),
          f"label-from=csv: labels numbered by sorted name {csv_names}")
    check(labels.get("cats/big.jpg") == (-1, "(null)") and "labels.csv" not in str(run.warnings),
          "a file missing from the CSV has label -1; the CSV itself is not a bad file")
    with open(csv, "w") as f:
        f.write("file,class\nroot.png,x\n")
    run = Run(tmp, f"gallerysrc location={root} label-from=csv:{csv}")
    check(run.rc == 1 and run.errors and "no 'path' column" in run.errors[0],
          f"a CSV without a path column is an error that says so: {run.errors}")
    os.unlink(csv)
    run = Run(tmp, f"gallerysrc location={root} label-from=colour")
    check(run.rc == 1 and run.errors and "csv:FILE" in run.errors[0], "an unknown label-from is an error")

    # --- max-pixels
    run = Run(tmp, f"gallerysrc location={root}/cats max-pixels=1000000")
    check("big.jpg is too large" in "".join(run.warnings) and "big.jpg" not in
          [f["source"] for f in run.frames], "max-pixels=1000000 skips the 3000x2000 photo as too large")

    # --- decompression bombs: refused from their header, memory stays small
    bombs = os.path.join(tmp, "bombs")
    os.makedirs(bombs)
    fx.png_bomb(os.path.join(bombs, "declared.png"))
    fx.png_zero_bomb(os.path.join(bombs, "zeros.png"), 12000, 12000)
    for max_pixels, decoded in [(100_000_000, False), (200_000_000, True)]:
        peak = os.path.join(tmp, "peak")
        # A child of its own, so that its peak memory is the only one measured.
        subprocess.run([sys.executable, "-c", "import resource, subprocess, sys; "
                        "subprocess.run(sys.argv[2:], capture_output=True, timeout=120); "
                        "open(sys.argv[1], 'w').write(str(resource.getrusage("
                        "resource.RUSAGE_CHILDREN).ru_maxrss))", peak, GALLERY_RUN,
                        f"gallerysrc location={bombs} max-pixels={max_pixels}",
                        os.path.join(tmp, "p.raw"), os.path.join(tmp, "e.raw")], check=True)
        peak_mb = int(open(peak).read()) / 1024
        if decoded:
            # The control: the same file let through is decoded and costs its size.
            check(peak_mb > 400, f"control: with max-pixels={max_pixels} the 12000x12000 bomb is "
                  f"decoded (peak {peak_mb:.0f} MB > 400 MB)")
        else:
            check(peak_mb < 250, f"a 12000x12000 bomb (a {os.path.getsize(os.path.join(bombs, 'zeros.png')) // 1024} KB "
                  f"file) and a 100000x100000 header: peak memory {peak_mb:.0f} MB < 250 MB")
    run = Run(tmp, f"gallerysrc location={bombs}")
    check(not run.frames and "declared.png is too large" in "".join(run.warnings) and
          "zeros.png is too large: its PNG header declares 12000x12000" in "".join(run.warnings),
          "both bombs are named as too large in the warning")

    # --- strict
    strict = os.path.join(tmp, "strict")
    os.makedirs(strict)
    fx.save(os.path.join(strict, "a.png"), "png", fx.gradient(8, 8))
    fx.truncate(os.path.join(root, "cats", "big.jpg"), os.path.join(strict, "b.jpg"))
    fx.save(os.path.join(strict, "c.png"), "png", fx.gradient(8, 8))
    run = Run(tmp, f"gallerysrc location={strict} strict=true")
    check(run.rc == 1 and run.errors and "b.jpg is a truncated JPEG" in run.errors[0]
          and [f["source"] for f in run.frames] == ["a.png"],
          f"strict=true: the first bad file is an error naming it ({run.errors})")
    run = Run(tmp, f"gallerysrc location={strict}")
    check(run.rc == 0 and [f["source"] for f in run.frames] == ["a.png", "c.png"],
          "strict=false (default): the same folder plays to the end without it")
    run = Run(tmp, f"gallerysrc location={root}/bad strict=true")
    check(run.rc == 1 and run.errors and ("fifo.png" in run.errors[0] or "loop" in run.errors[0]),
          f"strict=true: a FIFO or link loop found by the walk is an error ({run.errors})")
    run = Run(tmp, f"gallerysrc location={tmp}/missing")
    check(run.rc == 1 and run.errors and "missing" in run.errors[0], "a missing location is an error")

finish()
