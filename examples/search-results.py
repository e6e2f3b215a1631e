#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""search-results: runs a visual search pipeline from Python (PyGObject) and
prints each frame's nearest gallery images from faisssearch's bus messages.

    examples/search-results.py --index cifar.faiss \\
        --source 'cifarsrc location=cifar-10-batches-py split=test num-buffers=5'

The pipeline is SOURCE ! videoconvert ! embedder index=INDEX EMBEDDER ! faisssearch
! fakesink: the embedder takes its model and preprocessing from the index;
every searched frame posts an element message named "visualsearch" with the
arrays ids, distances, labels, label-names and sources (nearest first).
Exits 1 when the pipeline fails and 2 on bad usage.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def print_results(structure):
    pts = structure.get_value("timestamp")
    metric = structure.get_string("metric")
    ids = list(structure.get_value("ids"))
    distances = list(structure.get_value("distances"))
    names = list(structure.get_value("label-names"))
    sources = list(structure.get_value("sources"))
    print(f"frame {pts / Gst.SECOND:.3f}s ({metric}):")
    for rank, (i, d, name, source) in enumerate(zip(ids, distances, names, sources), 1):
        print(f"  {rank}. id {i} {name or '?'} {d:.4f} {source or ''}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True, help="index file written by faissindexer")
    parser.add_argument("--source", required=True,
                        help="gst-launch description of the frames to search")
    parser.add_argument("--embedder", default="",
                        help="more embedder properties, e.g. precision=bf16 batch-size=8 "
                             "(the model and preprocessing come from the index)")
    parser.add_argument("-k", type=int, default=5, help="neighbours per frame")
    args = parser.parse_args()

    Gst.init(None)
    description = (f"{args.source} ! videoconvert ! "
                   f"embedder index=\"{args.index}\" {args.embedder} ! "
                   f"faisssearch index=\"{args.index}\" k={args.k} ! fakesink")
    try:
        pipeline = Gst.parse_launch(description)
    except GLib.Error as e:
        print(f"Cannot build the pipeline: {e.message}", file=sys.stderr)
        return 2

    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    status = 0
    frames = 0
    while True:
        msg = bus.timed_pop_filtered(
            Gst.CLOCK_TIME_NONE,
            Gst.MessageType.ELEMENT | Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if msg.type == Gst.MessageType.ELEMENT:
            structure = msg.get_structure()
            if structure.has_name("visualsearch"):
                print_results(structure)
                frames += 1
            continue
        if msg.type == Gst.MessageType.ERROR:
            error, debug = msg.parse_error()
            print(f"Error from {msg.src.get_name()}: {error.message}\n{debug or ''}",
                  file=sys.stderr)
            status = 1
        break
    pipeline.set_state(Gst.State.NULL)
    print(f"{frames} frames searched")
    return status


if __name__ == "__main__":
    sys.exit(main())
