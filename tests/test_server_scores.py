# SPDX-License-Identifier: LGPL-2.1-or-later
"""One vocabulary for scores (docs/scores.md), on an ip and an l2
gallery: the API's distance (smaller is closer: 1 - inner product for ip, the
squared L2 distance for l2) and similarity (the inner product for ip,
1 - d2 / 2 for l2) against Python FAISS's numbers for the same index; and
max-distance, a bound on that distance, keeps the same neighbours in the API
as in faisssearch.
"""
import json
import os
import sys
import tempfile

import faiss
import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_fixtures as sf  # noqa: E402
from checks import check, finish  # noqa: E402


def js(body):
    try:
        return json.loads(body)
    except ValueError:
        return {}


def faisssearch_ids(index, picture, max_distance):
    """The ids faisssearch max-distance=max_distance gives picture."""
    p = Gst.parse_launch(f"filesrc location={picture} ! pngdec ! videoconvert ! "
                         f"video/x-raw,format=RGB ! embedder index={index} ! "
                         f"faisssearch index={index} k=30 max-distance={max_distance} ! fakesink")
    bus = p.get_bus()
    p.set_state(Gst.State.PLAYING)
    ids = None
    kinds = Gst.MessageType.EOS | Gst.MessageType.ERROR | Gst.MessageType.ELEMENT
    msg = bus.timed_pop_filtered(60 * Gst.SECOND, kinds)
    while msg and msg.type == Gst.MessageType.ELEMENT:
        s = msg.get_structure()
        if s and s.has_field("ids"):
            ids = list(s.get_value("ids"))
        msg = bus.timed_pop_filtered(60 * Gst.SECOND, kinds)
    p.set_state(Gst.State.NULL)
    return ids


Gst.init(None)
for metric in ("ip", "l2"):
    with tempfile.TemporaryDirectory() as tmp:
        paths = sf.make_gallery(tmp)
        index = sf.build_index(tmp, "" if metric == "ip" else "metric=l2")
        reference = faiss.read_index(index)
        vectors = reference.reconstruct_n(0, reference.ntotal)
        server = sf.Server("--index", index)
        try:
            # More like item 4: its stored vector searched by FAISS in Python.
            res = js(server.request("/api/items/4/similar?k=29")[2])
            check(res.get("metric") == metric, f"{metric}: the answer names the metric")
            scores, ids = reference.search(vectors[4:5], 30)
            expected = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != 4]
            got = res.get("neighbors", [])
            if metric == "ip":
                want = [(i, 1 - s, s) for i, s in expected]
            else:
                want = [(i, s, 1 - s / 2) for i, s in expected]
            check(len(got) == 29 and
                  all(n["id"] == i and abs(n["distance"] - d) < 1e-5 and
                      abs(n["similarity"] - sim) < 1e-5 for n, (i, d, sim) in zip(got, want)),
                  f"{metric}: distance and similarity are FAISS's score made "
                  f"{'1 - s and s' if metric == 'ip' else 's and 1 - s/2'}",
                  [(n["id"], n["distance"], n["similarity"]) for n in got[:3]])
            check(all(a["distance"] <= b["distance"] and a["similarity"] >= b["similarity"]
                      for a, b in zip(got, got[1:])),
                  f"{metric}: distances grow and similarities shrink down the list")

            # max-distance between two neighbours' distances: the API and
            # faisssearch keep the same nearer ones.
            picture = os.path.join(tmp, "gallery", paths[17])
            with open(picture, "rb") as f:
                png = f.read()
            everything = js(server.request("/api/search?k=30", data=png)[2]).get("neighbors", [])
            d = [n["distance"] for n in everything]
            j = next(j for j in range(9, 28) if d[j + 1] - d[j] > 1e-5)
            bound = (d[j] + d[j + 1]) / 2
            kept = js(server.request(f"/api/search?k=30&max-distance={bound}", data=png)[2])
            kept_ids = [n["id"] for n in kept.get("neighbors", [])]
            check(kept_ids == [n["id"] for n in everything[:j + 1]],
                  f"{metric}: max-distance={bound:.5f} keeps the {j + 1} neighbours at most that far",
                  kept_ids)
            check(faisssearch_ids(index, picture, bound) == kept_ids,
                  f"{metric}: faisssearch max-distance={bound:.5f} keeps the same neighbours")
            check(faisssearch_ids(index, picture, -0.5) == [],
                  f"{metric}: a negative max-distance keeps none")
        finally:
            server.stop()

finish()
