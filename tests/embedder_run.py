#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Pushes raw video frames through a pipeline fragment and writes what comes
out: the embeddings (GstVisualSearchEmbeddingMeta, read through the
GstVisualSearch-1.0 typelib) or the raw frames. The parity tests and the
benchmark drive embedder through it.

    embedder_run.py CAPS FRAMES OUT MODE "FRAGMENT" [REPEAT]

FRAMES holds whole frames of CAPS back to back. MODE is "meta" (OUT gets
dims floats per output buffer, zeros when a buffer has no meta) or "raw"
(OUT gets the output buffers' bytes). FRAGMENT goes between appsrc and
appsink, e.g. "embedder weights=random batch-size=4". REPEAT pushes the
frames that many times; after the first round the rate is timed.
stdout gets key=value lines: model_id, preprocessing_id, dims, buffers,
embedded, pts_in_order, images_per_s, and active_precision when FRAGMENT has
an embedder. Exit status 1 when the pipeline posts an error, 2 on bad usage.

With VS_BUILD_DIR set (the test suite sets it), the typelib and
libgstvisualsearch-1.0 are taken from that build tree; otherwise from where
GObject introspection finds them (installed, or GI_TYPELIB_PATH and
LD_LIBRARY_PATH).
"""
import array
import os
import sys
import time

import gi

gi.require_version("GIRepository", "2.0")
from gi.repository import GIRepository  # noqa: E402

if os.environ.get("VS_BUILD_DIR"):
    META_DIR = os.path.join(os.environ["VS_BUILD_DIR"], "gst-libs", "gst", "visualsearch")
    GIRepository.Repository.prepend_search_path(META_DIR)
    GIRepository.Repository.prepend_library_path(META_DIR)

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstVisualSearch", "1.0")
from gi.repository import GLib, Gst, GstApp, GstVideo, GstVisualSearch  # noqa: E402,F401

FRAME_DURATION = Gst.SECOND // 30


class Output:
    """What came out of the appsink, written to OUT as it arrives."""

    def __init__(self, out, raw, expected_pts):
        self.out = out
        self.raw = raw
        self.expected_pts = expected_pts  # filled as frames are pushed
        self.buffers = self.embedded = self.dims = 0
        self.model_id = self.preprocessing_id = None
        self.pts_ok = True

    def collect(self, sample):
        buf = sample.get_buffer()
        if self.buffers < len(self.expected_pts) and buf.pts != self.expected_pts[self.buffers]:
            self.pts_ok = False
        self.buffers += 1
        if self.raw:
            self.out.write(buf.extract_dup(0, buf.get_size()))
            return
        meta = GstVisualSearch.buffer_get_visualsearch_embedding_meta(buf)
        if meta is not None:
            self.embedded += 1
            self.dims = meta.dims
            if self.model_id is None:
                self.model_id, self.preprocessing_id = meta.model_id, meta.preprocessing_id
            self.out.write(array.array("f", meta.get_values()).tobytes())
        elif self.dims:
            self.out.write(bytes(4 * self.dims))


def active_precision(pipeline):
    """The nick of the first embedder's active-precision, or None."""
    it = pipeline.iterate_recurse()
    while True:
        res, element = it.next()
        if res != Gst.IteratorResult.OK:
            return None
        factory = element.get_factory()
        if factory is not None and factory.get_name() == "embedder":
            return element.get_property("active-precision").value_nick


def main():
    Gst.init(None)
    if len(sys.argv) < 6:
        print(f"usage: {sys.argv[0]} CAPS FRAMES OUT meta|raw FRAGMENT [REPEAT]",
              file=sys.stderr)
        return 2
    caps_text, frames_path, out_path, mode, fragment = sys.argv[1:6]
    repeat = int(sys.argv[6]) if len(sys.argv) > 6 else 1

    caps = Gst.Caps.from_string(caps_text)
    info = GstVideo.VideoInfo.new_from_caps(caps) if caps else None
    if info is None:
        print(f"bad caps {caps_text}", file=sys.stderr)
        return 2
    try:
        with open(frames_path, "rb") as f:
            frames = f.read()
    except OSError as e:
        print(e, file=sys.stderr)
        return 2
    n_frames = len(frames) // info.size

    # parse_launch raises when only part of the description parsed (an
    # unknown element, a property that does not exist): such a pipeline
    # never delivers a buffer, so it is refused.
    try:
        pipeline = Gst.parse_launch(
            f"appsrc name=src format=time ! {fragment} ! appsink name=sink sync=false")
    except GLib.Error as e:
        print(e.message, file=sys.stderr)
        return 2
    src = pipeline.get_by_name("src")
    sink = pipeline.get_by_name("sink")
    src.set_property("caps", caps)
    src.set_property("max-buffers", 64)
    src.set_property("block", True)
    sink.set_property("max-buffers", 0)

    try:
        out = open(out_path, "wb")
    except OSError as e:
        print(e, file=sys.stderr)
        return 2
    pts = []
    o = Output(out, mode == "raw", pts)

    def drain(timeout):
        sample = sink.try_pull_sample(timeout)
        if sample is None:
            return False
        o.collect(sample)
        return True

    pipeline.set_state(Gst.State.PLAYING)
    timed_start = None
    failed = False
    for r in range(repeat):
        for i in range(n_frames):
            buf = Gst.Buffer.new_wrapped(frames[i * info.size:(i + 1) * info.size])
            buf.pts = len(pts) * FRAME_DURATION
            buf.duration = FRAME_DURATION
            pts.append(buf.pts)
            if src.push_buffer(buf) != Gst.FlowReturn.OK:
                failed = True
                break
            # Output is collected as we go so appsink never holds every frame.
            while drain(0):
                pass
        if failed:
            break
        if r == 0 and repeat > 1:
            # The first round loads the model and warms up the caches. Loading
            # the model can take seconds; after that, a pause means the rest
            # sits in a batch that is not full yet.
            while o.buffers < len(pts):
                if not drain(60 * Gst.SECOND if o.buffers == 0 else Gst.SECOND // 2):
                    break
            timed_start = time.monotonic()
    src.end_of_stream()

    while True:
        sample = sink.pull_sample()
        if sample is None:
            break
        o.collect(sample)
    msg = pipeline.get_bus().timed_pop_filtered(
        Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    rc = 0
    if msg.type == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        print(f"ERROR: {err.message}\n{dbg or ''}", file=sys.stderr)
        rc = 1
    if timed_start is not None:
        print(f"images_per_s={n_frames * (repeat - 1) / (time.monotonic() - timed_start):.2f}")
    precision = active_precision(pipeline)
    if precision:
        print(f"active_precision={precision}")
    pipeline.set_state(Gst.State.NULL)
    out.close()

    print(f"model_id={o.model_id or '(NULL)'}\npreprocessing_id={o.preprocessing_id or '(NULL)'}\n"
          f"dims={o.dims}\nbuffers={o.buffers}\nembedded={o.embedded}\n"
          f"pts_in_order={int(o.pts_ok and o.buffers == len(pts))}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
