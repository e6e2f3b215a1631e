#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""read-metas: runs a pipeline ending in an appsink named "sink" and prints
each frame's GstVisualSearchSampleMeta, GstVisualSearchEmbeddingMeta and
GstVisualSearchNeighborsMeta, read from the buffers through the GstVisualSearch-1.0
typelib (PyGObject).

    examples/read-metas.py 'cifarsrc location=cifar-10-batches-py split=test
        num-buffers=5 ! embedder index=cifar.faiss ! faisssearch index=cifar.faiss
        ! appsink name=sink sync=false'

Needs the typelib and libgstvisualsearch-1.0 where GObject introspection
finds them: installed, or GI_TYPELIB_PATH and LD_LIBRARY_PATH pointing at
build/gst-libs/gst/visualsearch. Exits 1 when the pipeline fails or no frame
carried a meta, 2 on bad usage.
"""
import math
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVisualSearch", "1.0")
from gi.repository import GLib, Gst, GstApp, GstVisualSearch  # noqa: E402


def print_metas(frame, buf):
    """Prints what visualsearch attached to @buf; returns whether it had anything."""
    print(f"frame {frame} pts {buf.pts / Gst.SECOND:.3f}s")
    sample = GstVisualSearch.buffer_get_visualsearch_sample_meta(buf)
    if sample is not None:
        print(f"  sample id {sample.id} label {sample.label} {sample.label_name or '?'} "
              f"source {sample.source or '-'}")
    emb = GstVisualSearch.buffer_get_visualsearch_embedding_meta(buf)
    if emb is not None:
        # Array fields are not readable from Python: get_values() copies them.
        values = emb.get_values()
        norm = math.sqrt(sum(v * v for v in values))
        print(f"  embedding dims {emb.dims} values {len(values)} norm {norm:.6f} "
              f"normalized {bool(emb.normalized)} model {emb.model_id}")
    nbs = GstVisualSearch.buffer_get_visualsearch_neighbors_meta(buf)
    if nbs is not None:
        metric = GstVisualSearch.metric_to_string(nbs.metric)
        print(f"  neighbours {nbs.n_neighbors} metric {metric}")
        for i in range(nbs.n_neighbors):
            _, nid, distance, label, name, source = nbs.get_neighbor(i)
            print(f"    {i + 1}. id {nid} distance {distance:.6f} label {label} "
                  f"{name or '?'} source {source or '-'}")
    return sample is not None or emb is not None or nbs is not None


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} 'PIPELINE ending in appsink name=sink'",
              file=sys.stderr)
        return 2
    Gst.init(None)
    try:
        pipeline = Gst.parse_launch(sys.argv[1])
    except GLib.Error as e:
        print(f"Cannot build the pipeline: {e.message}", file=sys.stderr)
        return 2
    sink = pipeline.get_by_name("sink")
    if not isinstance(sink, GstApp.AppSink):
        print('The pipeline needs an appsink named "sink"', file=sys.stderr)
        return 2

    pipeline.set_state(Gst.State.PLAYING)
    frames = with_metas = 0
    while True:
        sample = sink.pull_sample()
        if sample is None:
            break
        # The metas live as long as the buffer: read them before dropping it.
        if print_metas(frames, sample.get_buffer()):
            with_metas += 1
        frames += 1

    status = 0
    msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if msg is not None:
        error, debug = msg.parse_error()
        print(f"Pipeline error: {error.message}\n{debug or ''}", file=sys.stderr)
        status = 1
    pipeline.set_state(Gst.State.NULL)
    print(f"{frames} frames, {with_metas} with visualsearch metas")
    if with_metas == 0:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
