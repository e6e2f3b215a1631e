# SPDX-License-Identifier: LGPL-2.1-or-later
"""embedder roi-types: regions in, one embedding per region out.

Frames with boxes drawn on them get GstVideoRegionOfInterestMeta from an
appsrc; a random-weight resnet18 at input-size 64 keeps every run to a
second or so. The reference for a region is the same crop (margin included,
clipped to the frame) pushed as a frame of its own through the whole-frame
path: the two must agree to 1e-5. Also roi-types filtering, roi-min-size,
empty and outside regions, the per-frame limit, batches of regions across
frames, frames without regions, and facedetect (gstreamer1.0-opencv) in
front on a photograph with a face.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roi_fixtures import GLib, Gst, GstVideo, GstVisualSearch, caps_of, picture, rgb_buffer  # noqa: E402,I001
from checks import check, finish  # noqa: E402

import numpy as np  # noqa: E402

EMBEDDER = "embedder model=resnet18 weights=random seed=7 input-size=64 resize=72 precision=fp32"
TOLERANCE = 1e-5


def run(frames, fragment, upstream=""):
    """Pushes frames [(img, [(type, x, y, w, h), ...])] through
    appsrc ! upstream ! fragment (whose embedder is named e) ! appsink. Each
    ROI gets id = its index in the frame. Returns the outputs [(pts, frame
    embedding or None, {id: (type, box, region embedding or None)})], the
    warnings and the embedder's counters."""
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time ! {upstream} {fragment} ! "
        "appsink name=sink sync=false")
    src, sink, e = (pipeline.get_by_name(n) for n in ("src", "sink", "e"))
    pipeline.set_state(Gst.State.PLAYING)
    for i, (img, rois) in enumerate(frames):
        buf = rgb_buffer(img, i * Gst.SECOND // 30)
        for rid, (kind, x, y, w, h) in enumerate(rois):
            GstVideo.buffer_add_video_region_of_interest_meta(buf, kind, x, y, w, h).id = rid
        src.push_sample(Gst.Sample.new(buf, caps_of(img), None, None))
    src.end_of_stream()

    outputs, warnings, errors = [], [], []
    while True:
        sample = sink.try_pull_sample(60 * Gst.SECOND)
        if sample is None:
            break
        buf = sample.get_buffer()
        emb = GstVisualSearch.buffer_get_visualsearch_embedding_meta(buf)
        regions = {}
        rid = 0
        while (roi := GstVideo.buffer_get_video_region_of_interest_meta_id(buf, rid)):
            s = roi.get_param("visualsearch-embedding")
            values = None
            if s is not None:
                values = np.frombuffer(s.get_value("values").get_data(), dtype=np.float32)
                if s.get_value("dims") != len(values) or not s.get_value("model-id"):
                    check(False, "the parameter's dims and model-id describe its values",
                          s.to_string()[:200])
            regions[rid] = (GLib.quark_to_string(roi.roi_type),
                            (roi.x, roi.y, roi.w, roi.h), values)
            rid += 1
        outputs.append((buf.pts, np.array(emb.get_values(), np.float32) if emb else None,
                        regions))
    bus = pipeline.get_bus()
    while (m := bus.pop_filtered(Gst.MessageType.WARNING | Gst.MessageType.ERROR)):
        (warnings if m.type == Gst.MessageType.WARNING else errors).append(
            m.parse_warning()[0].message if m.type == Gst.MessageType.WARNING
            else m.parse_error()[0].message)
    counters = {n: e.get_property(n) for n in
                ("frames-embedded", "frames-skipped", "regions-embedded")}
    pipeline.set_state(Gst.State.NULL)
    check(not errors, f"no error from {fragment[:60]}...", errors)
    return outputs, warnings, counters


def crop_box(box, margin, width, height):
    """The crop embedder takes of a region: grown by margin, clipped."""
    x, y, w, h = box
    x0 = max(0, math.floor(x - margin * w))
    y0 = max(0, math.floor(y - margin * h))
    x1 = min(width, math.ceil(x + w + margin * w))
    y1 = min(height, math.ceil(y + h + margin * h))
    return x0, y0, x1 - x0, y1 - y0


def whole_frame_embeddings(crops):
    """Each image embedded as a frame of its own (the whole-frame path)."""
    outputs, _, _ = run([(c, []) for c in crops], EMBEDDER + " name=e")
    return [o[1] for o in outputs]


def max_diff(a, b):
    return float(np.max(np.abs(a - b))) if a is not None and b is not None else math.inf


# Parity with the whole-frame path, margins clamped at the frame's edges.
W, H = 160, 120
frame = picture(W, H, 1)
rois = [("face", 40, 30, 48, 40),     # inside, margin inside too
        ("face", 0, 0, 40, 32),       # margin clamped at the top-left corner
        ("face", 128, 92, 32, 28),    # margin clamped at the bottom-right corner
        ("face", 140, 100, 40, 40)]   # reaches outside the frame: clipped
margin = 0.25
outputs, warnings, counters = run([(frame, rois)], EMBEDDER
                                  + f" roi-types=face roi-margin={margin} name=e")
check(len(outputs) == 1 and outputs[0][1] is None,
      "with roi-types the frame itself gets no embedding")
boxes = [crop_box(r[1:], margin, W, H) for r in rois]
check(boxes[1][:2] == (0, 0) and boxes[2][0] + boxes[2][2] == W and boxes[2][1] + boxes[2][3] == H,
      "the reference crops are clamped at the edges", boxes)
refs = whole_frame_embeddings([frame[y:y + h, x:x + w] for x, y, w, h in boxes])
for rid, ref in enumerate(refs):
    got = outputs[0][2][rid][2]
    check(max_diff(got, ref) < TOLERANCE,
          f"region {rid} {rois[rid][1:]}: its embedding is the whole-frame embedding of "
          f"crop {boxes[rid]} (< {TOLERANCE})", max_diff(got, ref))
check(counters == {"frames-embedded": 1, "frames-skipped": 0, "regions-embedded": 4},
      "counters: one frame, four regions", counters)
check(any("reaches outside the frame" in w for w in warnings),
      "a region reaching outside the frame is clipped with a warning", warnings)
check(max_diff(outputs[0][2][0][2], outputs[0][2][1][2]) > 1e-3,
      "different regions get different embeddings")

# The meta library reads the same values (C accessors through GIR).
roi_buf = rgb_buffer(frame, 0)
roi = GstVideo.buffer_add_video_region_of_interest_meta(roi_buf, "face", 1, 2, 3, 4)
GstVisualSearch.region_set_embedding(roi, [0.5, -1.0, 2.0], "m", "p", False)
check(list(GstVisualSearch.region_get_embedding(roi)) == [0.5, -1.0, 2.0]
      and np.array_equal(np.frombuffer(roi.get_param("visualsearch-embedding")
                                       .get_value("values").get_data(), np.float32),
                         np.array([0.5, -1.0, 2.0], np.float32)),
      "region_get_embedding() reads the param embedder writes")

# roi-types filtering.
kinds = [("face", 10, 10, 40, 40), ("car", 70, 20, 60, 50), ("person", 20, 60, 30, 50)]
for types, wanted in (("face", {"face"}), ("face, car", {"face", "car"}),
                      ("*", {"face", "car", "person"}), ("dog", set())):
    outputs, _, counters = run([(frame, kinds)], EMBEDDER + f" roi-types=\"{types}\" name=e")
    got = {kind for kind, _, values in outputs[0][2].values() if values is not None}
    check(got == wanted, f"roi-types=\"{types}\" embeds {sorted(wanted)}", got)
check(counters["frames-skipped"] == 1 and outputs[0][1] is None,
      "a frame without a wanted region passes without any embedding, counted skipped",
      counters)

# roi-min-size, empty regions and regions outside the frame.
small = [("face", 10, 10, 15, 40), ("face", 50, 10, 16, 16), ("face", 80, 10, 0, 20),
         ("face", 170, 10, 20, 20)]
outputs, warnings, counters = run([(frame, small)], EMBEDDER
                                  + " roi-types=face roi-min-size=16 name=e")
embedded = [rid for rid, (_, _, v) in outputs[0][2].items() if v is not None]
check(embedded == [1], "roi-min-size=16 skips 15x40, embeds 16x16; empty and outside skipped",
      embedded)
check(any("is empty" in w or "outside the frame" in w for w in warnings),
      "an empty or outside region is a warning", warnings)

# Batches of regions across frames: the same embeddings as one at a time,
# frames in order; a frame without regions in between.
frames = [(picture(W, H, 10 + i), [("face", 5 + 20 * j, 10 + 15 * i, 36, 44) for j in range(3)])
          for i in range(4)]
frames.insert(2, (picture(W, H, 20), []))
one, _, _ = run(frames, EMBEDDER + " roi-types=face batch-size=1 name=e")
batched, _, counters = run(frames, EMBEDDER + " roi-types=face batch-size=5 name=e")
check([o[0] for o in batched] == [i * Gst.SECOND // 30 for i in range(5)],
      "batch-size=5 over 12 regions: every frame out, in order", [o[0] for o in batched])
diffs = [max_diff(a[2][r][2], b[2][r][2]) for a, b in zip(one, batched) for r in a[2]]
check(len(diffs) == 12 and max(diffs) < TOLERANCE,
      "batched regions get the embeddings they get one at a time", diffs)
check(not batched[2][2] and batched[2][1] is None, "the frame without regions passes untouched")
check(counters == {"frames-embedded": 4, "frames-skipped": 1, "regions-embedded": 12},
      "counters after batching", counters)

# Thousands of boxes: bounded per frame, with a warning.
many = [("face", (i % 20) * 8, (i // 20) * 8, 8, 8) for i in range(300)]
outputs, warnings, counters = run([(picture(W, H, 3), many)], EMBEDDER
                                  + " roi-types=face roi-min-size=1 batch-size=64 name=e")
check(counters["regions-embedded"] == 256
      and sum(v is not None for _, _, v in outputs[0][2].values()) == 256,
      "300 regions in a frame: 256 embedded", counters)
check(any("256 regions" in w for w in warnings), "... with a warning", warnings)

# A real detector in front: facedetect's "face" ROI (id 0, as it leaves them)
# on a photograph of a face.
ASTRONAUT = "/usr/lib/python3/dist-packages/imageio/resources/images/astronaut.png"
have_facedetect = Gst.ElementFactory.find("facedetect") is not None
if not check(have_facedetect and os.path.exists(ASTRONAUT),
             "facedetect (gstreamer1.0-opencv, opencv-data) and astronaut.png "
             "(python3-imageio) are installed: scripts/install-deps.sh"):
    finish()
pipeline = Gst.parse_launch(
    f"filesrc location={ASTRONAUT} ! pngdec ! videoconvert ! imagefreeze num-buffers=2 ! "
    "facedetect display=false ! "
    f"videoconvert ! {EMBEDDER} roi-types=face roi-margin=0.1 name=e ! "
    "appsink name=sink sync=false")
pipeline.set_state(Gst.State.PLAYING)
faces = []
while (sample := pipeline.get_by_name("sink").try_pull_sample(60 * Gst.SECOND)):
    roi = GstVideo.buffer_get_video_region_of_interest_meta_id(sample.get_buffer(), 0)
    if roi is not None:
        values = GstVisualSearch.region_get_embedding(roi)
        faces.append((GLib.quark_to_string(roi.roi_type), roi.w, len(values or [])))
regions = pipeline.get_by_name("e").get_property("regions-embedded")
pipeline.set_state(Gst.State.NULL)
check(len(faces) == 2 and all(k == "face" and w > 40 and n == 512 for k, w, n in faces)
      and regions >= 2,
      "facedetect's faces on astronaut.png each get a 512-d embedding", (faces, regions))

finish()
