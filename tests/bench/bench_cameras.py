#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Many cameras into one view: N simulated camera pipelines publishing to one
mosquitto, which one visualsearch-server --subscribe reads.

    /usr/bin/python3 tests/bench/bench_cameras.py [BUILD_DIR] [--cameras 8]
        [--seconds 20] [--fps 10]

Each camera is a gst-launch-1.0 process, bounded in time:

    videotestsrc is-live=true pattern=P num-buffers=SECONDS*FPS
      ! video/x-raw,width=64,height=64,framerate=FPS/1 ! videoconvert
      ! embedder weights=random input-size=64 resize=72 ! faisssearch k=5
      ! metapublish method=mqtt topic=cams/camN/results source-name=camN
      ! fakesink

against the server tests' 30-picture gallery (tests/server_fixtures.py), all on
127.0.0.1. Printed:

- messages/s end to end: the documents the server took in (/api/sources
  "received") over the time from the first to the last;
- latency: from the moment metapublish saw a frame (after its embedding and
  search: the document's wall_time_us) to the moment the server took the
  document in (received_us), sampled by polling /api/sources every 20 ms
  (each poll gives every camera's latest document; a document seen twice
  counts once): median, p95, max, in ms. Same machine, same clock;
- the server's resident memory (VmRSS) at the end and its peak (VmHWM), and
  the CPU seconds the server used;
- frames each camera published (metapublish's counters are not visible from
  gst-launch, so: the documents the server received per source).

Figures only, no assertions; the machine is shared by the cameras, the
broker and the server, so the latency includes their contention.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import cpu  # noqa: E402

PATTERNS = ["smpte", "ball", "snow", "pinwheel", "spokes", "gradient", "colors", "zone-plate"]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir", nargs="?", default="build")
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args()
    build = os.path.abspath(args.build_dir)
    os.environ["VS_BUILD_DIR"] = build
    os.environ["GST_PLUGIN_PATH"] = os.path.join(build, "ext", "visualsearch")
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    import server_fixtures as sf  # noqa: E402 (reads VS_BUILD_DIR)
    from test_metapublish import Broker  # noqa: E402

    print(cpu.describe(), flush=True)
    with tempfile.TemporaryDirectory(prefix="vs-bench-cameras-") as tmp:
        sf.make_gallery(tmp)
        index = sf.build_index(tmp)
        broker = Broker(tmp, "broker")
        broker.start()
        server = sf.Server("--index", index,
                           "--subscribe", f"mqtt://127.0.0.1:{broker.port}/cams/+/results")
        cameras = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                _, _, body, _ = server.request("/api/sources")
                if json.loads(body)["connected"]:
                    break
                time.sleep(0.1)
            cpu_before = cpu_seconds(server.proc.pid)
            frames = args.seconds * args.fps
            for n in range(args.cameras):
                cameras.append(subprocess.Popen(
                    ["gst-launch-1.0", "-q", "videotestsrc", "is-live=true",
                     f"pattern={PATTERNS[n % len(PATTERNS)]}", f"num-buffers={frames}", "!",
                     f"video/x-raw,width=64,height=64,framerate={args.fps}/1", "!",
                     "videoconvert", "!", "embedder", "weights=random", "input-size=64",
                     "resize=72", "threads=1", "!", "faisssearch", f"index={index}", "k=5", "!",
                     "metapublish", "method=mqtt", f"address=127.0.0.1:{broker.port}",
                     f"topic=cams/cam{n}/results", f"source-name=cam{n}", "!", "fakesink"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            seen = {}  # (source, frame) -> latency in ms
            received = []  # (monotonic time, total received)
            stop_at = time.monotonic() + args.seconds + 120
            while time.monotonic() < stop_at:
                _, _, body, _ = server.request("/api/sources")
                answer = json.loads(body)
                received.append((time.monotonic(), answer["received"]))
                for s in answer["sources"]:
                    key = (s["source"], s["frame"])
                    if key not in seen:
                        seen[key] = (s["received_us"] - s["wall_time_us"]) / 1000.0
                if all(c.poll() is not None for c in cameras):
                    break
                time.sleep(0.02)
            time.sleep(1)  # the last documents in flight
            _, _, body, _ = server.request("/api/sources")
            answer = json.loads(body)
            cpu_used = cpu_seconds(server.proc.pid) - cpu_before
            failed = [c.stderr.read()[-300:] for c in cameras if c.wait(60) != 0]
            started = next((t for t, r in received if r > 0), None)
            last_total = answer["received"]
            ended = next((t for t, r in received if r >= last_total), received[-1][0])
            latencies = sorted(seen.values())
            per_source = {s["source"]: s["messages"] for s in answer["sources"]}
            print(f"{args.cameras} cameras x {frames} frames at {args.fps} fps, 64x64, k=5, "
                  f"QoS 0, one mosquitto, one server")
            if failed:
                print(f"  {len(failed)} camera pipelines failed: {failed[0]}")
            if started is not None and ended > started:
                print(f"  end to end: {last_total} documents in {ended - started:.1f} s = "
                      f"{last_total / (ended - started):.1f} messages/s "
                      f"(cameras offer {args.cameras * args.fps}/s)")
            print(f"  per camera received: {sorted(per_source.values())} of {frames}")
            if latencies:
                p95 = latencies[int(0.95 * (len(latencies) - 1))]
                print(f"  metapublish -> server, {len(latencies)} sampled documents: median "
                      f"{statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, "
                      f"max {latencies[-1]:.1f} ms")
            print(f"  server: VmRSS {server.rss_kb() / 1024:.1f} MB, VmHWM "
                  f"{server.status_kb('VmHWM') / 1024:.1f} MB, CPU {cpu_used:.2f} s over the run, "
                  f"rejected {answer['rejected']}")
        finally:
            for c in cameras:
                if c.poll() is None:
                    c.terminate()
                    c.wait(30)
            server.stop()
            broker.stop()


if __name__ == "__main__":
    main()
