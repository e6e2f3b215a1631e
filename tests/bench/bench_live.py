#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Live search: delivered fps, embedded fps and end-to-end latency.

    /usr/bin/python3 tests/bench/bench_live.py [BUILD_DIR] [--seconds S] [--gallery N]
                                               [--precision fp32|bf16]

Pipeline, per configuration (resnet18 at 224, random weights, 2 threads):

    videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=30/1
      ! embedder precision=P qos=Q inference-interval=I
      ! faisssearch k=5 ! searchoverlay persist=true ! fakesink sync=true qos=true

The gallery is the first N images of CIFAR-10 (/work/shared/data/cifar10-sample,
or CIFAR10_DIR), indexed through the same embedder settings. Measured at the
sink's pad after a warm-up: frames delivered per second, frames that carried
an embedding per second, and latency = pipeline clock running time at arrival
minus the frame's running time (the capture instant of the live source), as
mean / p50 / p95 / max, and its drift from the first to the last third of the
run (a growing queue would show there). The torchvision reference rate (batch
1, torch.set_num_threads(2)) runs in a subprocess of the same run. Figures
only, no assertions.
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
from gi.repository import GObject, Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu  # noqa: E402

EMBEDDER = "embedder model=resnet18 weights=random input-size=224 resize=256 threads=2"
CONFIGS = [  # precision, qos, inference-interval
    ("fp32", False, 1),
    ("fp32", True, 1),
    ("fp32", True, 2),
    ("bf16", False, 1),
    ("bf16", True, 1),
]

REFERENCE = """
import sys, time, torch, torchvision
torch.set_num_threads(2)
for bf16 in (False, True)[:int(sys.argv[1])]:
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(3):
            model(x)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 5:
            model(x)
            n += 1
    print("bf16" if bf16 else "fp32", n / (time.perf_counter() - start))
"""


def build_gallery(dataset, count, index):
    pipeline = Gst.parse_launch(
        f"cifarsrc location={dataset} split=train num-buffers={count} ! "
        f"{EMBEDDER} precision=fp32 batch-size=32 ! faissindexer location={index}")
    run_to_eos(pipeline)


def run_to_eos(pipeline):
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        Gst.CLOCK_TIME_NONE, Gst.MessageType.ERROR | Gst.MessageType.EOS)
    pipeline.set_state(Gst.State.NULL)
    if msg.type == Gst.MessageType.ERROR:
        sys.exit(f"pipeline failed: {msg.parse_error()[0].message}")


def measure(index, dataset, precision, qos, interval, seconds, warmup):
    pipeline = Gst.parse_launch(
        "videotestsrc is-live=true pattern=ball ! "
        "video/x-raw,format=RGB,width=640,height=480,framerate=30/1 ! "
        f"{EMBEDDER} name=embedder precision={precision} qos={str(qos).lower()} "
        f"inference-interval={interval} ! "
        f"faisssearch index={index} k=5 post-messages=false ! "
        f"searchoverlay dataset={dataset} persist=true ! fakesink name=sink sync=true qos=true")
    sink = pipeline.get_by_name("sink")
    neighbors_api = []  # registered with the first meta of its kind
    samples = []  # (wall time, latency ns, embedded)

    def on_buffer(pad, info):
        buf = info.get_buffer()
        clock = pipeline.get_clock()
        if clock is None:
            return Gst.PadProbeReturn.OK
        now = clock.get_time() - pipeline.get_base_time()
        segment = pad.get_sticky_event(Gst.EventType.SEGMENT, 0).parse_segment()
        running = segment.to_running_time(Gst.Format.TIME, buf.pts)
        if not neighbors_api:
            try:
                neighbors_api.append(GObject.type_from_name("GstVisualSearchNeighborsMetaAPI"))
            except RuntimeError:
                pass
        embedded = bool(neighbors_api) and buf.get_meta(neighbors_api[0]) is not None
        samples.append((time.monotonic(), now - running, embedded))
        return Gst.PadProbeReturn.OK

    sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    deadline = time.monotonic() + warmup + seconds
    while time.monotonic() < deadline:
        msg = bus.timed_pop_filtered(100 * Gst.MSECOND, Gst.MessageType.ERROR)
        if msg is not None:
            sys.exit(f"pipeline failed: {msg.parse_error()[0].message}")
    embedder = pipeline.get_by_name("embedder")
    skipped = embedder.get_property("frames-skipped")
    inference_ms = embedder.get_property("mean-inference-ms")
    pipeline.set_state(Gst.State.NULL)

    start = samples[0][0] + warmup
    kept = [s for s in samples if s[0] >= start]
    span = kept[-1][0] - kept[0][0]
    lat = sorted(s[1] / 1e6 for s in kept)
    third = max(1, len(kept) // 3)
    first = statistics.mean(s[1] / 1e6 for s in kept[:third])
    last = statistics.mean(s[1] / 1e6 for s in kept[-third:])
    return {
        "delivered": (len(kept) - 1) / span,
        "embedded": (sum(s[2] for s in kept) - 1) / span,
        "mean": statistics.mean(lat), "p50": lat[len(lat) // 2],
        "p95": lat[int(len(lat) * 0.95)], "max": lat[-1], "drift": last - first,
        "skipped": skipped, "inference_ms": inference_ms,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--gallery", type=int, default=1000)
    parser.add_argument("--precision", choices=["fp32", "bf16"],
                        help="run only this precision's configurations")
    args = parser.parse_args()

    os.environ["GST_PLUGIN_PATH"] = os.path.join(os.path.abspath(args.build), "ext", "visualsearch")
    dataset = os.environ.get("CIFAR10_DIR",
                             "/work/shared/data/cifar10-sample/cifar-10-batches-py")
    Gst.init(None)
    if Gst.ElementFactory.find("faisssearch") is None:
        sys.exit(f"no visualsearch plugin in {args.build}/ext/visualsearch")

    print(cpu.describe(), flush=True)
    bf16 = cpu.native_bf16()
    reference = dict(line.split() for line in subprocess.run(
        ["/usr/bin/python3", "-c", REFERENCE, "2" if bf16 else "1"], capture_output=True,
        text=True, check=True).stdout.splitlines())

    with tempfile.TemporaryDirectory() as tmp:
        index = os.path.join(tmp, "gallery.faiss")
        start = time.monotonic()
        build_gallery(dataset, args.gallery, index)
        print(f"gallery: {args.gallery} CIFAR-10 images from {dataset}, indexed in "
              f"{time.monotonic() - start:.1f} s")
        print(f"torchvision resnet18@224 batch 1, 2 threads: fp32 "
              f"{float(reference['fp32']):.1f} img/s, bf16 "
              + (f"{float(reference['bf16']):.1f} img/s" if bf16 else "n/a (no native bf16)"))
        print(f"{'config':24s} {'delivered':>9s} {'embedded':>8s} {'vs ref':>6s} "
              f"{'infer ms':>8s} {'lat mean':>8s} {'p50':>6s} {'p95':>6s} {'max':>6s} "
              f"{'drift':>6s} {'skipped':>7s}")
        for precision, qos, interval in CONFIGS:
            if args.precision and precision != args.precision:
                continue
            if precision == "bf16" and not bf16:
                print(f"{precision} qos={'on' if qos else 'off'} interval={interval}: n/a, no "
                      "native bf16 on this CPU (precision=bf16 runs as fp32)", flush=True)
                continue
            r = measure(index, dataset, precision, qos, interval, args.seconds, args.warmup)
            name = f"{precision} qos={'on' if qos else 'off'} interval={interval}"
            # The source caps embedded fps at 30; the embedder's own rate
            # (preprocessing 640x480 included) is what compares with torchvision.
            ratio = 1000.0 / r["inference_ms"] / float(reference[precision])
            print(f"{name:24s} {r['delivered']:9.1f} {r['embedded']:8.1f} {ratio:6.2f} "
                  f"{r['inference_ms']:8.1f} {r['mean']:8.1f} {r['p50']:6.1f} {r['p95']:6.1f} "
                  f"{r['max']:6.1f} {r['drift']:+6.1f} {r['skipped']:7d}", flush=True)
    print("fps in frames/s; vs ref = (1000 / infer ms) / torchvision img/s; latency in ms "
          "(sink arrival minus capture, running time); drift = last third minus first third")


if __name__ == "__main__":
    main()
