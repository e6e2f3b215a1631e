#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every element reports a failure of plugin/core with the GStreamer error
domain and code of the vs::Error's kind (elements/element_error.h), so that
an application can tell a missing file from a damaged one, from a file of
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
import tempfile
import unittest

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

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


class ErrorKinds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.index = cls.path("gallery.faiss")
        assert first_error(f"{FRAMES} ! {EMBEDDER} ! faissindexer location={cls.index}") is None
        with open(cls.index, "rb") as f:
            cls.index_bytes = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp.name, name)

    def copy_index(self, name, index_bytes=None, catalog=True):
        """A copy of the gallery index (with other bytes if given) and, if
        catalog, of its catalog."""
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(self.index_bytes if index_bytes is None else index_bytes)
        if catalog:
            with open(self.index + ".db", "rb") as src, open(path + ".db", "wb") as dst:
                dst.write(src.read())
        return path

    def assert_error(self, description, domain, code, *needles):
        got = first_error(description)
        self.assertIsNotNone(got, f"{description}: no error")
        self.assertEqual((got[0], got[1]), (DOMAINS[domain], int(code)),
                         f"{description}: wrong domain or code for: {got[2]}")
        for needle in needles:
            self.assertIn(needle, got[2])

    def search(self, index):
        return f"{FRAMES} ! {EMBEDDER} ! faisssearch index={index} ! fakesink"

    def test_missing_index(self):
        missing = self.path("missing.faiss")
        self.assert_error(self.search(missing), Gst.ResourceError, Gst.ResourceError.NOT_FOUND,
                          missing)

    def test_index_without_catalog(self):
        index = self.copy_index("alone.faiss", catalog=False)
        self.assert_error(self.search(index), Gst.ResourceError, Gst.ResourceError.NOT_FOUND,
                          index + ".db")

    def test_damaged_index(self):
        index = self.copy_index("truncated.faiss", self.index_bytes[:len(self.index_bytes) // 2])
        self.assert_error(self.search(index), Gst.StreamError, Gst.StreamError.DECODE,
                          index, "damaged")

    def test_damaged_catalog(self):
        index = self.copy_index("bad-catalog.faiss", catalog=False)
        with open(index + ".db", "wb") as f:
            f.write(b"not a database " * 100)
        self.assert_error(self.search(index), Gst.StreamError, Gst.StreamError.DECODE,
                          index + ".db")

    def test_newer_catalog(self):
        index = self.copy_index("newer.faiss")
        db = sqlite3.connect(index + ".db")
        db.execute("PRAGMA user_version = 999")
        db.close()
        self.assert_error(f"{FRAMES} ! embedder index={index} ! fakesink",
                          Gst.StreamError, Gst.StreamError.FORMAT, "999", "Update visualsearch")

    def test_missing_weights(self):
        weights = self.path("absent.pth")
        self.assert_error(f"{FRAMES} ! embedder weights={weights} ! fakesink",
                          Gst.ResourceError, Gst.ResourceError.NOT_FOUND, weights)

    def test_property_against_index(self):
        self.assert_error(f"{FRAMES} ! embedder index={self.index} input-size=64 ! fakesink",
                          Gst.ResourceError, Gst.ResourceError.SETTINGS, "input-size=64")

    def test_index_of_another_embedder(self):
        other = EMBEDDER.replace("seed=7", "seed=8")
        self.assert_error(f"{FRAMES} ! {other} ! faisssearch index={self.index} ! fakesink",
                          Gst.StreamError, Gst.StreamError.WRONG_TYPE, self.index)

    def test_index_in_missing_folder(self):
        index = self.path("no-such-folder/gallery.faiss")
        self.assert_error(f"{FRAMES} ! {EMBEDDER} ! faissindexer location={index}",
                          Gst.ResourceError, Gst.ResourceError.NOT_FOUND, "no-such-folder")

    def test_bad_k(self):
        self.assert_error(f"{self.search(self.index).replace(' ! fakesink', '')} ! "
                          f"retrievaleval k=0,5", Gst.ResourceError, Gst.ResourceError.SETTINGS,
                          "k=0")


if __name__ == "__main__":
    Gst.init(None)
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)
