#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every element reports a failure of the engine (engine/) with the GStreamer
error domain and code of the vs::Error's kind (ext/visualsearch/element_error.h),
so that an application can tell a missing file from a damaged one, from a file of
another kind and from contradicting settings without parsing the sentence.

One representative failure per kind, each through the element a user meets
it in: a missing index, an index without its catalog, a damaged index, a
damaged catalog, a catalog of a newer schema, missing weights, a property
against the index, an index of another embedder, an index in a folder that
does not exist, and a k list that is not one.

Usage: test_error_kinds.py   (run by meson, with the plugin of the build tree)
"""
import os
import sqlite3
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, tmp_dir  # noqa: E402

EMBEDDER = "embedder weights=random seed=7 input-size=32 resize=0"
FRAMES = "videotestsrc num-buffers=4 ! video/x-raw,width=40,height=30"
# PyGObject gives a GError's domain as its quark's string.
DOMAINS = {Gst.ResourceError: "gst-resource-error-quark", Gst.StreamError: "gst-stream-error-quark",
           Gst.LibraryError: "gst-library-error-quark"}


def first_error(description):
    """Runs a pipeline; returns (domain, code, message) of its first error, or
    None when it reaches EOS."""
    pipeline = Gst.parse_launch(description)
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    msg = bus.timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
    pipeline.set_state(Gst.State.NULL)
    assert msg is not None, f"{description}: neither EOS nor an error within 120 s"
    if msg.type == Gst.MessageType.EOS:
        return None
    error, _ = msg.parse_error()
    return error.domain, error.code, error.message


def element_error(what, description, domain, code, *needles):
    """Checks that the pipeline's first error has the domain, the code and
    every needle."""
    got = first_error(description)
    check(got is not None and (got[0], got[1]) == (DOMAINS[domain], int(code))
          and all(n in got[2] for n in needles),
          f"{what}: {domain.__name__} {code.value_nick}", got or f"{description}: no error")


def main():
    Gst.init(None)
    with tmp_dir() as tmp:
        def path(name):
            return os.path.join(tmp, name)

        gallery = path("gallery.faiss")
        if not check(first_error(f"{FRAMES} ! {EMBEDDER} ! faissindexer location={gallery}")
                     is None, "the gallery index is written"):
            finish()
        with open(gallery, "rb") as f:
            gallery_bytes = f.read()

        def copy_index(name, index_bytes=None, catalog=True):
            """A copy of the gallery index (with other bytes if given) and, if
            catalog, of its catalog."""
            copy = path(name)
            with open(copy, "wb") as f:
                f.write(gallery_bytes if index_bytes is None else index_bytes)
            if catalog:
                with open(gallery + ".db", "rb") as src, open(copy + ".db", "wb") as dst:
                    dst.write(src.read())
            return copy

        def search(index):
            return f"{FRAMES} ! {EMBEDDER} ! faisssearch index={index} ! fakesink"

        missing = path("missing.faiss")
        element_error("missing index", search(missing), Gst.ResourceError,
                      Gst.ResourceError.NOT_FOUND, missing)

        index = copy_index("alone.faiss", catalog=False)
        element_error("index without its catalog", search(index), Gst.ResourceError,
                      Gst.ResourceError.NOT_FOUND, index + ".db")

        index = copy_index("truncated.faiss", gallery_bytes[:len(gallery_bytes) // 2])
        element_error("damaged index", search(index), Gst.StreamError, Gst.StreamError.DECODE,
                      index, "damaged")

        index = copy_index("bad-catalog.faiss", catalog=False)
        with open(index + ".db", "wb") as f:
            f.write(b"not a database " * 100)
        element_error("damaged catalog", search(index), Gst.StreamError, Gst.StreamError.DECODE,
                      index + ".db")

        index = copy_index("newer.faiss")
        db = sqlite3.connect(index + ".db")
        db.execute("PRAGMA user_version = 999")
        db.close()
        element_error("catalog of a newer visualsearch",
                      f"{FRAMES} ! embedder index={index} ! fakesink",
                      Gst.StreamError, Gst.StreamError.FORMAT, "999", "Update visualsearch")

        weights = path("absent.pth")
        element_error("missing weights", f"{FRAMES} ! embedder weights={weights} ! fakesink",
                      Gst.ResourceError, Gst.ResourceError.NOT_FOUND, weights)

        element_error("a property against the index",
                      f"{FRAMES} ! embedder index={gallery} input-size=64 ! fakesink",
                      Gst.ResourceError, Gst.ResourceError.SETTINGS, "input-size=64")

        other = EMBEDDER.replace("seed=7", "seed=8")
        element_error("index of another embedder",
                      f"{FRAMES} ! {other} ! faisssearch index={gallery} ! fakesink",
                      Gst.StreamError, Gst.StreamError.WRONG_TYPE, gallery)

        index = path("no-such-folder/gallery.faiss")
        element_error("index in a missing folder",
                      f"{FRAMES} ! {EMBEDDER} ! faissindexer location={index}",
                      Gst.ResourceError, Gst.ResourceError.NOT_FOUND, "no-such-folder")

        element_error("retrievaleval k=0,5",
                      f"{search(gallery).replace(' ! fakesink', '')} ! retrievaleval k=0,5",
                      Gst.ResourceError, Gst.ResourceError.SETTINGS, "k=0")
    finish()


if __name__ == "__main__":
    main()
