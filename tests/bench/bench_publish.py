#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""metapublish: messages per second and the time it adds per frame.

    /usr/bin/python3 tests/bench/bench_publish.py [BUILD_DIR] [--frames N]

Pipeline, per configuration (random weights, input 32, a 500-item Flat
gallery of random CIFAR-like images, k=5):

    videotestsrc num-buffers=N ! video/x-raw,width=32,height=32
      ! embedder ! faisssearch k=5 ! PUBLISH ! fakesink

PUBLISH is `identity` (the pipeline without metapublish), or metapublish with
method=file (a JSON-lines file) or method=mqtt (qos 0 and qos 1, to a
mosquitto started here on a loopback port, with a mosquitto_sub reading
every message), each without and with include-embedding=base64 (512 floats).
Printed side by side:

- frames/s: frames over the pipeline's wall time, start to EOS;
- in element: the time a frame spends in PUBLISH (pad probes on its two
  pads, same thread), median and p99 in microseconds, probes included;
  added: the median minus identity's (the probes' own cost); the element's
  capacity is 1e6 / added, in documents per second of one streaming thread;
- delivered msg/s: documents over the time from the first frame to the last
  one written (file), acknowledged (mqtt: the published counter) and
  received by mosquitto_sub.

A warm-up run comes first, and identity runs again last: the spread of its
two frames/s is the noise of the machine's load. Figures only, no assertions.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import cpu  # noqa: E402

EMBEDDER = "embedder weights=random input-size=32 resize=0 batch-size=16 precision=fp32"


def gallery(tmp, build):
    """A 500-image gallery of videotestsrc patterns indexed like the queries."""
    index = os.path.join(tmp, "gallery.faiss")
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "pattern=snow", "num-buffers=500",
                    "!", "video/x-raw,width=32,height=32", "!", "videoconvert", "!",
                    *EMBEDDER.split(), "!", "faissindexer", f"location={index}"],
                   check=True, timeout=600)
    return index


def run(index, frames, publish, subscriber=None):
    desc = (f"videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=32,height=32 "
            f"! videoconvert ! {EMBEDDER} ! faisssearch index={index} k=5 post-messages=false "
            f"! {publish} name=pub ! fakesink")
    pipeline = Gst.parse_launch(desc)
    pub = pipeline.get_by_name("pub")
    entered, spent = {}, []

    def on_sink(pad, info):
        entered[info.get_buffer().pts] = time.perf_counter_ns()
        return Gst.PadProbeReturn.OK

    def on_src(pad, info):
        t = entered.pop(info.get_buffer().pts, None)
        if t is not None:
            spent.append((time.perf_counter_ns() - t) / 1000)
        return Gst.PadProbeReturn.OK

    pub.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_sink)
    pub.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_src)
    bus = pipeline.get_bus()
    start = time.monotonic()
    pipeline.set_state(Gst.State.PLAYING)
    msg = bus.timed_pop_filtered(600 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    eos = time.monotonic()
    if msg is None or msg.type == Gst.MessageType.ERROR:
        raise RuntimeError(f"{publish}: {msg.parse_error() if msg else 'timed out'}")
    delivered_at = eos
    if publish.startswith("metapublish"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (pub.get_property("published") + pub.get_property("dropped")
                    + pub.get_property("failed") >= frames
                    and (subscriber is None or subscriber.received() >= frames)):
                break
            time.sleep(0.005)
        delivered_at = time.monotonic()
    pipeline.set_state(Gst.State.NULL)
    spent.sort()
    return {"fps": frames / (eos - start),
            "p50": statistics.median(spent),
            "p99": spent[int(0.99 * (len(spent) - 1))],
            "delivered": frames / (delivered_at - start)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir", nargs="?", default="build")
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()
    os.environ["GST_PLUGIN_PATH"] = os.path.join(os.path.abspath(args.build_dir),
                                                 "ext", "visualsearch")
    Gst.init(None)
    from test_metapublish import Broker, Subscriber  # noqa: E402 (needs Gst)

    print(cpu.describe(), flush=True)
    with tempfile.TemporaryDirectory(prefix="vs-bench-publish-") as tmp:
        index = gallery(tmp, args.build_dir)
        broker = Broker(tmp, "broker")
        broker.start()
        try:
            rows = []
            run(index, args.frames, "identity")  # warm-up: caches, the model's first passes
            baseline = run(index, args.frames, "identity")
            rows.append(("identity (no metapublish)", baseline))
            for embedding in ("none", "base64"):
                out = os.path.join(tmp, f"out-{embedding}.jsonl")
                rows.append((f"file, embedding={embedding}",
                             run(index, args.frames, f"metapublish method=file location={out} "
                                 f"include-embedding={embedding}")))
                for qos in (0, 1):
                    topic = f"bench/{embedding}/{qos}"
                    counter = Subscriber(broker.port, topic)
                    counter.ready()
                    rows.append((f"mqtt qos={qos}, embedding={embedding}",
                                 run(index, args.frames,
                                     f"metapublish method=mqtt address=127.0.0.1:{broker.port} "
                                     f"topic={topic} qos={qos} include-embedding={embedding}",
                                     counter)))
                    counter.stop()
            # again at the end: how much the machine's load moved meanwhile
            rows.append(("identity, again", run(index, args.frames, "identity")))
        finally:
            broker.stop()

    print(f"{args.frames} frames per run; in element: median and p99 of the time a frame "
          f"spends in PUBLISH, probes included; added: median minus identity's")
    print(f"{'configuration':34s} {'frames/s':>9s} {'p50 us':>8s} {'p99 us':>8s}"
          f" {'added us':>9s} {'capacity msg/s':>15s} {'delivered msg/s':>16s}")
    for name, r in rows:
        added = r["p50"] - baseline["p50"]
        publishes = name.startswith(("file", "mqtt"))
        capacity = f"{1e6 / added:,.0f}" if publishes and added > 0 else "-"
        delivered = f"{r['delivered']:,.0f}" if publishes else "-"
        print(f"{name:34s} {r['fps']:9.1f} {r['p50']:8.1f} {r['p99']:8.1f} "
              f"{(f'{added:.1f}' if publishes else '-'):>9s} {capacity:>15s} {delivered:>16s}")

if __name__ == "__main__":
    main()
