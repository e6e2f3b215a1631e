# SPDX-License-Identifier: LGPL-2.1-or-later
"""Files found unreadable are recorded in the catalog (rejected_files) and not
probed again while they stay unchanged, on a small generated folder (3 PNGs, a
notes.txt, a truncated JPEG; random embedder weights, input size 32):

    gst-launch-1.0 gallerysrc location=DIR index=G ! embedder ... !
        faissindexer location=G mode=update

Checks: the first run names both bad files and the catalog records them with
their size and mtime; an unchanged update does not probe them (gallerysrc's
GST_DEBUG log has no "file N/M: PATH" read line for them, but a "not read
again" line), still names them ("unchanged since it was found unreadable")
and counts them as skipped-bad; a notes.txt with a new mtime is probed again;
the truncated JPEG replaced by a good picture is embedded and leaves the
table; a removed bad file leaves it too. galleryindexer on an unchanged
folder with a bad file does not load the embedder's model.
"""
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures as fx  # noqa: E402
from checks import check, finish  # noqa: E402

EMBEDDER = ["embedder", "weights=random", "input-size=32", "resize=0", "batch-size=2"]


def launch(tree, index):
    """Runs the line with gallerysrc's debug log; returns (return code,
    faissindexer's COMPLETE text or "", frames embedded or None, stdout,
    gallerysrc's log)."""
    env = dict(os.environ, GST_DEBUG="gallerysrc:5", GST_DEBUG_NO_COLOR="1")
    out = subprocess.run(["gst-launch-1.0", "-e", "gallerysrc", f"location={tree}",
                          f"index={index}", "!", *EMBEDDER, "!", "faissindexer",
                          f"location={index}", "mode=update"],
                         capture_output=True, text=True, timeout=120, env=env)
    complete = [line for line in out.stdout.splitlines()
                if line.startswith("Progress: (faissindexer)") and "files: added" in line]
    text = complete[0] if complete else ""
    frames = re.search(r"; (\d+) frames embedded;", text)
    return (out.returncode, text, int(frames.group(1)) if frames else None, out.stdout,
            out.stderr)


def probed(log, name):
    """Whether gallerysrc's log shows it reading the file (its per-file
    debug line, which ends with the path)."""
    return re.search(r"file \d+/\d+: \S*/" + re.escape(name) + r"$", log, re.M) is not None


def rejected(index):
    """{path: (size, mtime_ns, reason)} of the catalog's rejected_files."""
    with sqlite3.connect(f"file:{index}.db?mode=ro", uri=True) as db:
        return {bytes(p).decode(): (s, m, r) for p, s, m, r in
                db.execute("SELECT path, size, mtime_ns, reason FROM rejected_files")}


def main():
    tmp = tempfile.mkdtemp(prefix="vs-rejected-")
    tree = os.path.join(tmp, "tree")
    index = os.path.join(tmp, "g.faiss")
    os.makedirs(tree)
    for i in range(3):
        fx.save(os.path.join(tree, f"{i}.png"), "png", fx.gradient(40, 30, seed=i))
    fx.save(os.path.join(tmp, "whole.jpg"), "jpeg", fx.gradient(64, 48, seed=7))
    fx.truncate(os.path.join(tmp, "whole.jpg"), os.path.join(tree, "cut.jpg"))
    notes = os.path.join(tree, "notes.txt")
    with open(notes, "w") as f:
        f.write("pictures from the trip\n")

    rc, text, frames, out, log = launch(tree, index)
    check(rc == 0 and frames == 3, f"first run embeds the 3 pictures ({rc}, {frames}, {text})")
    check("notes.txt" in out and "cut.jpg" in out, "first run names both bad files")
    check("skipped-bad 2" in text, f"first run counts 2 bad files: {text}")
    table = rejected(index)
    st = os.stat(notes)
    check(table.keys() == {"notes.txt", "cut.jpg"}, f"catalog records both: {table}")
    check(table.get("notes.txt", (0, 0, ""))[:2] == (st.st_size, st.st_mtime_ns)
          and table["notes.txt"][2], f"with their identity and reason: {table}")

    rc, text, frames, out, log = launch(tree, index)
    check(rc == 0 and frames == 0 and "up to date" in text,
          f"unchanged update embeds nothing ({rc}, {frames}, {text})")
    check(not probed(log, "notes.txt") and not probed(log, "cut.jpg"),
          "unchanged update does not probe the bad files")
    check(log.count("is not read again") == 2, "its log says they are not read again")
    check("notes.txt is unchanged since it was found unreadable: it is neither" in out and "cut.jpg" in out,
          f"unchanged update still names them: {out[-600:]}")
    check("skipped-bad 2" in text and "unchanged 3" in text, f"and counts them: {text}")
    check(rejected(index) == table, "the catalog's table is unchanged")

    os.utime(notes, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    rc, text, frames, out, log = launch(tree, index)
    check(rc == 0 and probed(log, "notes.txt") and not probed(log, "cut.jpg"),
          "a notes.txt with a new mtime is probed again, alone")
    check(rejected(index).get("notes.txt", (0, 0))[1] == st.st_mtime_ns + 5_000_000_000,
          f"and recorded with its new mtime: {rejected(index)}")
    rc, text, frames, out, log = launch(tree, index)
    check(not probed(log, "notes.txt"), "then not probed again")

    shutil.copy(os.path.join(tmp, "whole.jpg"), os.path.join(tree, "cut.jpg"))
    rc, text, frames, out, log = launch(tree, index)
    check(rc == 0 and frames == 1 and "added 1" in text,
          f"the truncated JPEG replaced by a good one is embedded ({frames}, {text})")
    check(rejected(index).keys() == {"notes.txt"}, f"and leaves the table: {rejected(index)}")

    os.remove(notes)
    rc, text, frames, out, log = launch(tree, index)
    check(rc == 0 and rejected(index) == {}, f"a removed bad file leaves the table ({text})")

    # galleryindexer: an unchanged folder with a bad file needs no model.
    with open(notes, "w") as f:
        f.write("again\n")
    gi = ["gst-launch-1.0", "-e", "galleryindexer", f"location={tree}", f"index={index}",
          "weights=random", "input-size=32", "resize=0"]
    first = subprocess.run(gi, capture_output=True, text=True, timeout=120)
    check(first.returncode == 0 and "notes.txt" in rejected(index),
          f"galleryindexer records the new notes.txt: {first.stdout[-400:]}{first.stderr[-400:]}")
    again = subprocess.run(gi, capture_output=True, text=True, timeout=120)
    output = again.stdout + again.stderr
    # The embedder warns of random weights when it loads its model.
    check(again.returncode == 0 and "random weights" not in output and "up to date" in output
          and "notes.txt" in output,
          f"galleryindexer: unchanged folder with a bad file: model not loaded: {output[-600:]}")
    shutil.rmtree(tmp)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
