# SPDX-License-Identifier: LGPL-2.1-or-later
"""Loading the plugin does not load LibTorch: only an embedder that starts does.
Nor the image codecs module: only the first picture that gallerysrc decodes.

Runs pipelines of every element but the embedder in this process and checks
/proc/self/maps for libtorch_cpu, then starts an embedder and checks that the
engine module and LibTorch are there. Likewise libvisualsearch-codecs.so: not
mapped after a gallerysrc over videos and non-images, mapped after one over a
PNG, and with it OpenCV's imgcodecs (which pulls in GDAL). Counting mapped
libraries, not seconds, so the test means the same on a loaded machine.
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

from checks import check, finish  # noqa: E402


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
plugin = Gst.Registry.get().find_plugin("visualsearch")
check(plugin is not None, "the visualsearch plugin is in the registry")
check(not mapped("libtorch"), "LibTorch not loaded before the plugin")
run("videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! searchoverlay ! fakesink")
for name in ["cifarsrc", "faissindexer", "faisssearch", "cifarindexer", "retrievaleval",
             "gallerysrc", "galleryindexer", "metapublish"]:
    check(Gst.ElementFactory.make(name, None) is not None, f"{name} created")
check(mapped("libgstvisualsearch.so"), "the plugin is loaded")
check(not mapped("libtorch"), "LibTorch not loaded by the plugin and its other elements")
check(not mapped("libvisualsearch-engine"), "engine module not loaded yet")
check(not mapped("libopencv_imgcodecs"), "OpenCV's imgcodecs not loaded by the plugin")
check(not mapped("libvisualsearch-codecs"), "codecs module not loaded by the plugin")

galleries = tempfile.TemporaryDirectory()
videos, stills = os.path.join(galleries.name, "videos"), os.path.join(galleries.name, "stills")
os.makedirs(videos)
os.makedirs(stills)
run("videotestsrc num-buffers=10 ! video/x-raw,width=32,height=24,framerate=10/1 ! jpegenc ! "
    f"avimux ! filesink location={videos}/clip.avi")
with open(os.path.join(videos, "notes.txt"), "w") as f:
    f.write("not a picture\n")
fx.save(os.path.join(stills, "a.png"), "png", fx.gradient(8, 8))
run(f"gallerysrc location={videos} ! fakesink")
check(not mapped("libvisualsearch-codecs"),
      "a gallery of videos and non-images does not open the codecs module")
run(f"gallerysrc location={stills} ! fakesink")
check(mapped("libvisualsearch-codecs"), "a gallery holding a picture opens the codecs module")
check(mapped("libopencv_imgcodecs"), "... and with it OpenCV's imgcodecs")

run("videotestsrc num-buffers=1 ! video/x-raw,width=40,height=30 ! "
    "embedder weights=random input-size=32 resize=0 threads=1 ! fakesink")
check(mapped("libvisualsearch-engine"), "an embedder that starts opens the engine module")
check(mapped("libtorch_cpu"), "... and with it LibTorch")

# A module that is missing or is not ours: an error that says what to do.
def launch_error(variable, module, pipeline):
    res = subprocess.run(["gst-launch-1.0", *pipeline.split(), "!", "fakesink"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, variable: module})
    return res.returncode, res.stdout + res.stderr


for variable, pipeline, what in [
        ("VISUALSEARCH_ENGINE_MODULE", "videotestsrc num-buffers=1 ! embedder weights=random",
         "engine"),
        ("VISUALSEARCH_CODECS_MODULE", f"gallerysrc location={stills}", "codecs")]:
    with tempfile.TemporaryDirectory() as tmp:
        code, out = launch_error(variable, os.path.join(tmp, "missing.so"), pipeline)
        check(code != 0 and "was not found" in out and variable in out,
              f"a missing {what} module is an element error naming the variable")
        bogus = os.path.join(tmp, "bogus.so")
        with open(bogus, "w") as f:
            f.write("not a shared object\n")
        code, out = launch_error(variable, bogus, pipeline)
        check(code != 0 and "cannot open the module " + bogus in out,
              f"a file that is not the {what} module is an element error naming it")
galleries.cleanup()
finish()
