"""The image codecs module is opened by the first picture decoded, not before.

Runs, in this process, pipelines of the other elements and a gallerysrc over
a folder of videos and non-images, and checks /proc/self/maps for
libvisualsearch-codecs.so; then a gallerysrc over a folder with a PNG, after
which the module (and OpenCV's imgcodecs with it) is mapped. A missing or
foreign module is an element error naming VISUALSEARCH_CODECS_MODULE.

Today the plugin itself still links libopencv_imgcodecs (the thumbnail cache
reads images with cv::imread), so that library is reported, not asserted.
"""
import os
import subprocess
import sys
import tempfile

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures as fx  # noqa: E402

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def mapped(name):
    with open("/proc/self/maps") as f:
        return any(name in line for line in f)


def run(description):
    pipeline = Gst.parse_launch(description)
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        60 * Gst.SECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type == Gst.MessageType.ERROR:
        sys.exit(f"{description}: {msg.parse_error()[0].message if msg else 'timed out'}")


Gst.init(None)
with tempfile.TemporaryDirectory() as tmp:
    videos = os.path.join(tmp, "videos")
    os.makedirs(videos)
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=10", "!",
                    "video/x-raw,width=32,height=24,framerate=10/1", "!", "jpegenc", "!", "avimux",
                    "!", "filesink", f"location={videos}/clip.avi"], check=True, timeout=60)
    with open(os.path.join(videos, "notes.txt"), "w") as f:
        f.write("not a picture\n")
    stills = os.path.join(tmp, "stills")
    os.makedirs(stills)
    fx.save(os.path.join(stills, "a.png"), "png", fx.gradient(8, 8))

    run("videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! searchoverlay ! fakesink")
    for name in ["cifarsrc", "faissindexer", "faisssearch", "cifarindexer", "retrievaleval",
                 "gallerysrc"]:
        check(Gst.ElementFactory.make(name, None) is not None, f"{name} created")
    check(mapped("libgstvisualsearch.so"), "the plugin is loaded")
    print(f"note: libopencv_imgcodecs mapped by the plugin itself: {mapped('libopencv_imgcodecs')} "
          "(the thumbnail cache still links it)")
    check(not mapped("libvisualsearch-codecs"), "codecs module not loaded by the plugin")
    run(f"gallerysrc location={videos} ! fakesink")
    check(not mapped("libvisualsearch-codecs"),
          "a gallery of videos and non-images does not open the codecs module")
    run(f"gallerysrc location={stills} ! fakesink")
    check(mapped("libvisualsearch-codecs"), "the first picture decoded opens the codecs module")
    check(mapped("libopencv_imgcodecs"), "... and with it OpenCV's imgcodecs")

    def launch_error(module):
        res = subprocess.run(["gst-launch-1.0", "gallerysrc", f"location={stills}", "!", "fakesink"],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "VISUALSEARCH_CODECS_MODULE": module})
        return res.returncode, res.stdout + res.stderr

    code, out = launch_error(os.path.join(tmp, "missing.so"))
    check(code != 0 and "was not found" in out and "VISUALSEARCH_CODECS_MODULE" in out,
          "a missing codecs module is an element error naming the variable")
    bogus = os.path.join(tmp, "bogus.so")
    with open(bogus, "w") as f:
        f.write("not a shared object\n")
    code, out = launch_error(bogus)
    check(code != 0 and "cannot open the module " + bogus in out,
          "a file that is not a module is an element error naming it")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
