#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a pipeline that ends in appsink and reports every frame and bus
message, reading the metas through the GstVisualSearch typelib, for the
gallerysrc tests:

    gallery_run.py "PIPELINE" PIXELS EMBEDDINGS

PIPELINE is everything before "! appsink", e.g. "gallerysrc location=g".
PIXELS gets each frame's packed rows (no stride padding); EMBEDDINGS the
float32 values of each frame's GstVisualSearchEmbeddingMeta, if any. stdout
gets one tab-separated line per event:
    frame  id  label  label_name  source  width  height  pts  embedded
    progress  type  done  total
    warning  message  /  error  message
and it exits 1 after an error.
"""
import array
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstVisualSearch", "1.0")
from gi.repository import GLib, Gst, GstApp, GstVideo, GstVisualSearch  # noqa: E402,F401

PROGRESS = {Gst.ProgressType.START: "start", Gst.ProgressType.CONTINUE: "continue",
            Gst.ProgressType.COMPLETE: "complete"}


def out(*fields):
    sys.stdout.write("\t".join(str(f) for f in fields) + "\n")


def drain_bus(bus):
    """Prints the messages waiting on the bus: (more, failed)."""
    more, failed = True, False
    while True:
        msg = bus.pop()
        if msg is None:
            return more, failed
        if msg.type == Gst.MessageType.PROGRESS:
            s = msg.get_structure()
            kind = msg.parse_progress()[0]
            out("progress", PROGRESS.get(kind, "other"), s.get_uint64("files-done")[1],
                s.get_uint64("files-total")[1])
        elif msg.type == Gst.MessageType.WARNING:
            out("warning", msg.parse_warning()[0].message)
        elif msg.type == Gst.MessageType.ERROR:
            out("error", msg.parse_error()[0].message)
            more, failed = False, True
        elif msg.type == Gst.MessageType.EOS:
            more = False


def report(sample, pixels, embeddings):
    buf = sample.get_buffer()
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    row = info.finfo.pixel_stride[0] * info.width
    ok, mapped = buf.map(Gst.MapFlags.READ)
    try:
        data = mapped.data
        for y in range(info.height):
            start = info.offset[0] + y * info.stride[0]
            pixels.write(data[start:start + row])
    finally:
        buf.unmap(mapped)
    meta = GstVisualSearch.buffer_get_visualsearch_sample_meta(buf)
    emb = GstVisualSearch.buffer_get_visualsearch_embedding_meta(buf)
    if emb is not None:
        embeddings.write(array.array("f", emb.get_values()).tobytes())
    label_name = meta.label_name if meta is not None and meta.label_name is not None else "(null)"
    out("frame", meta.id if meta else -1, meta.label if meta else -2, label_name,
        meta.source if meta else "(no meta)", info.width, info.height, buf.pts,
        int(emb is not None))


def main():
    if len(sys.argv) != 4:
        print(f"usage: {sys.argv[0]} PIPELINE PIXELS EMBEDDINGS", file=sys.stderr)
        return 2
    Gst.init(None)
    try:
        pipeline = Gst.parse_launch(sys.argv[1] + " ! appsink name=sink sync=false")
    except GLib.Error as e:
        out("error", e.message)
        return 1
    sink = pipeline.get_by_name("sink")
    bus = pipeline.get_bus()
    failed = False
    with open(sys.argv[2], "wb") as pixels, open(sys.argv[3], "wb") as embeddings:
        pipeline.set_state(Gst.State.PLAYING)
        while True:
            sample = sink.try_pull_sample(Gst.SECOND // 10)
            if sample is not None:
                report(sample, pixels, embeddings)
            more, failed = drain_bus(bus)
            if not more or (sample is None and sink.is_eos()):
                break
        # Frames still queued after EOS.
        while not failed:
            sample = sink.try_pull_sample(0)
            if sample is None:
                break
            report(sample, pixels, embeddings)
        failed = drain_bus(bus)[1] or failed
        pipeline.set_state(Gst.State.NULL)
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
