# SPDX-License-Identifier: LGPL-2.1-or-later
"""Regions through faissindexer and faisssearch.

faissindexer after embedder roi-types=* makes one item per region (the box in
the source, the crop as thumbnail). faisssearch searches each embedded
region of a frame, puts its neighbours on its ROI meta as
visualsearch-neighbors and posts one visualsearch-regions message per frame.
Searched with the frame it was built from, each region must find its own
item at inner product 1. A region index searched with whole frames, a frame
index with regions and another model's regions are errors; mode=update
indexes regions as rebuild does.
Random resnet18 weights at input-size 64: seconds, not minutes.
"""
import io
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roi_fixtures import Gst, GstVideo, GstVisualSearch, caps_of, picture, rgb_buffer  # noqa: E402,I001
from checks import check, finish, tmp_dir  # noqa: E402

from PIL import Image  # noqa: E402

EMBEDDER = "embedder model=resnet18 weights=random seed=7 input-size=64 resize=72 precision=fp32"
W, H = 200, 150
FRAME = picture(W, H, 5)
ROIS = [("face", 10, 10, 50, 60), ("car", 80, 30, 90, 50), ("face", 150, 100, 48, 48),
        ("person", 20, 90, 40, 50)]


def push(pipeline, frames):
    """Pushes [(img, rois, sample)] into the appsrc named src and ends the
    stream; ROI ids are their index in the frame."""
    src = pipeline.get_by_name("src")
    for i, (img, rois, sample) in enumerate(frames):
        buf = rgb_buffer(img, i * Gst.SECOND // 30)
        for rid, (kind, x, y, w, h) in enumerate(rois):
            GstVideo.buffer_add_video_region_of_interest_meta(buf, kind, x, y, w, h).id = rid
        if sample:
            GstVisualSearch.buffer_add_visualsearch_sample_meta(buf, *sample)
        src.push_sample(Gst.Sample.new(buf, caps_of(img), None, None))
    src.end_of_stream()


def index_frames(path, frames, embedder, props=""):
    """appsrc ! embedder ! faissindexer: None, or the error message."""
    pipeline = Gst.parse_launch(f"appsrc name=src format=time ! {embedder} ! "
                                f"faissindexer location={path} {props}")
    pipeline.set_state(Gst.State.PLAYING)
    push(pipeline, frames)
    m = pipeline.get_bus().timed_pop_filtered(60 * Gst.SECOND,
                                              Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if m is None:
        return "timeout"
    return m.parse_error()[0].message if m.type == Gst.MessageType.ERROR else None


def search(index, frames, embedder=EMBEDDER + " roi-types=*", search_props=""):
    """Runs frames through embedder ! faisssearch: returns the bus messages of
    faisssearch, errors and the region neighbours read from each output
    buffer [{roi id: [(id, distance, label, name, source), ...]}]."""
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time ! {embedder} ! faisssearch index={index} k=3 "
        f"{search_props} ! appsink name=sink sync=false")
    pipeline.set_state(Gst.State.PLAYING)
    push(pipeline, frames)
    outputs = []
    while (sample := pipeline.get_by_name("sink").try_pull_sample(60 * Gst.SECOND)):
        buf, regions, rid = sample.get_buffer(), {}, 0
        while (roi := GstVideo.buffer_get_video_region_of_interest_meta_id(buf, rid)):
            ok, metric, n = GstVisualSearch.region_get_neighbors_info(roi)
            regions[rid] = [GstVisualSearch.region_get_neighbor(roi, i)[1:] for i in range(n)] \
                if ok else None
            rid += 1
        outputs.append(regions)
    messages, errors = [], []
    bus = pipeline.get_bus()
    while (m := bus.pop_filtered(Gst.MessageType.ELEMENT | Gst.MessageType.ERROR)):
        if m.type == Gst.MessageType.ERROR:
            errors.append(m.parse_error()[0].message)
        elif m.src.get_factory().get_name() == "faisssearch":
            messages.append(m.get_structure())
    pipeline.set_state(Gst.State.NULL)
    return messages, errors, outputs


def source_of(rid):
    _, x, y, w, h = ROIS[rid]
    return f"street.png#xywh={x},{y},{w},{h}"


with tmp_dir() as tmp:
    index = os.path.join(tmp, "regions.faiss")
    error = index_frames(index, [(FRAME, ROIS, (0, 4, "", "street.png")),
                                 (picture(W, H, 6), [], (1, 5, "", "empty.png"))],
                         EMBEDDER + " roi-types=*")
    check(error is None, "faissindexer indexes the regions of a frame", error)
    db = sqlite3.connect(index + ".db")
    items = db.execute("SELECT id, label, label_name, source FROM items ORDER BY id").fetchall()
    thumbs = {i: Image.open(io.BytesIO(j)).size
              for i, j in db.execute("SELECT id, jpeg FROM thumbnails")}
    db.close()
    check(items == [(i, 4, kind, source_of(i)) for i, (kind, *_) in enumerate(ROIS)],
          "one item per region: the frame's label, the region's type, the box in the source",
          items)
    check(len(thumbs) == len(ROIS)
          and all(abs(thumbs[i][0] / thumbs[i][1] - ROIS[i][3] / ROIS[i][4]) < 0.1
                  for i in range(len(ROIS))),
          "each region's thumbnail is its crop (its aspect ratio)", thumbs)

    frames = [(FRAME, ROIS, None), (picture(W, H, 6), [], None), (FRAME, ROIS[1:3], None)]
    for props in ("max-batch=1", "max-batch=4"):
        messages, errors, outputs = search(index, frames, search_props=props)
        check(not errors, f"faisssearch {props}: no error", errors)
        names = [m.get_name() for m in messages]
        check(names == ["visualsearch-regions", "visualsearch-regions"],
              f"{props}: one visualsearch-regions message per frame with regions, none for "
              "the frame without, no whole-frame message", names)
        if len(messages) != 2 or len(outputs) != 3:
            continue
        first = messages[0]
        entries = list(first.get_value("regions"))
        check(first.get_value("timestamp") == 0 and first.get_value("metric") == "ip"
              and len(entries) == 4, f"{props}: the message has the frame's times, the metric "
              "and one entry per region", first.to_string()[:300])
        for rid, entry in enumerate(entries):
            kind, x, y, w, h = ROIS[rid]
            fields = {f: entry.get_value(f) for f in
                      ("roi-id", "roi-type", "x", "y", "w", "h")}
            ids, distances = list(entry.get_value("ids")), list(entry.get_value("distances"))
            labels, sources = list(entry.get_value("labels")), list(entry.get_value("sources"))
            check(fields == {"roi-id": rid, "roi-type": kind, "x": x, "y": y, "w": w, "h": h}
                  and len(ids) == len(distances) == len(labels) == 3
                  and ids[0] == rid and abs(distances[0] - 1.0) < 1e-5
                  and labels[0] == 4 and sources[0] == source_of(rid)
                  and distances == sorted(distances, reverse=True),
                  f"{props}: region {rid} ({kind}): box, and its own item nearest at 1.0",
                  (fields, ids, distances, labels, sources))
        nbs = outputs[0]
        check(len(nbs) == 4 and all(nbs[r] and nbs[r][0][0] == r and nbs[r][0][4] == source_of(r)
                                    for r in range(4)),
              f"{props}: each ROI meta carries its neighbours (region_get_neighbor)", nbs)
        check(outputs[1] == {}, f"{props}: the frame without regions passes untouched")
        second = list(messages[1].get_value("regions"))
        check([e.get_value("ids")[0] for e in second] == [1, 2],
              f"{props}: the third frame's two regions find their items", second)

    # embedder index= adopts roi-types from a region index, with the model.
    messages, errors, _ = search(index, frames[:1], embedder=f"embedder index={index}")
    check(not errors and [m.get_name() for m in messages] == ["visualsearch-regions"]
          and messages[0].get_value("regions")[3].get_value("ids")[0] == 3,
          "embedder index=REGION-INDEX embeds regions as the index was built", errors)

    # Another model's regions; the wrong kind of query either way round.
    _, errors, _ = search(index, frames[:1],
                          embedder=EMBEDDER.replace("seed=7", "seed=8") + " roi-types=*")
    check(any("another embedder" in e and "regions" in e for e in errors),
          "regions from another embedder than the index's: an element error saying so", errors)
    _, errors, _ = search(index, frames[:1], embedder=EMBEDDER)
    check(any("holds regions" in e and "roi-types=*" in e for e in errors),
          "a region index searched with whole frames: an error naming roi-types", errors)
    crops = os.path.join(tmp, "crops.faiss")
    error = index_frames(crops, [(FRAME[y:y + h, x:x + w], [], (i, 10 + i, kind, f"crop-{i}.png"))
                                 for i, (kind, x, y, w, h) in enumerate(ROIS)], EMBEDDER)
    _, errors, _ = search(crops, frames[:1])
    check(error is None and any("holds whole frames" in e for e in errors),
          "a frame index searched with regions: an error saying so", (error, errors))

    updated = os.path.join(tmp, "new.faiss")
    error = index_frames(updated, [(FRAME, ROIS, None)], EMBEDDER + " roi-types=*",
                         "mode=update")
    sources = []
    if error is None:
        with sqlite3.connect(f"file:{updated}.db?mode=ro", uri=True) as db:
            sources = [r[0] for r in db.execute("SELECT source FROM items")]
    check(error is None and sources and all("xywh=" in s for s in sources),
          "mode=update indexes regions too, one item per region", (error, sources))

    # A region without neighbours reads as none from Python.
    buf = rgb_buffer(FRAME, 0)
    roi = GstVideo.buffer_add_video_region_of_interest_meta(buf, "face", 1, 2, 3, 4)
    check(not GstVisualSearch.region_get_neighbors_info(roi)[0]
          and not GstVisualSearch.region_get_neighbor(roi, 0)[0],
          "a region without neighbours reads as none")

finish()
