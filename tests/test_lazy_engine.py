"""Loading the plugin does not load LibTorch: only an embedder that starts does.

Runs pipelines of every element but the embedder in this process and checks
/proc/self/maps for libtorch_cpu, then starts an embedder and checks that the
engine module and LibTorch are there. Counting mapped libraries, not seconds,
so the test means the same on a loaded machine.
"""
import os
import subprocess
import sys
import tempfile

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

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
plugin = Gst.Registry.get().find_plugin("visualsearch")
check(plugin is not None, "the visualsearch plugin is in the registry")
check(not mapped("libtorch"), "LibTorch not loaded before the plugin")
run("videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! searchoverlay ! fakesink")
for name in ["cifarsrc", "faissindexer", "faisssearch", "cifarindexer", "retrievaleval"]:
    check(Gst.ElementFactory.make(name, None) is not None, f"{name} created")
check(mapped("libgstvisualsearch.so"), "the plugin is loaded")
check(not mapped("libtorch"), "LibTorch not loaded by the plugin and its other elements")
check(not mapped("libvisualsearch-engine"), "engine module not loaded yet")

run("videotestsrc num-buffers=1 ! video/x-raw,width=40,height=30 ! "
    "embedder weights=random input-size=32 resize=0 threads=1 ! fakesink")
check(mapped("libvisualsearch-engine"), "an embedder that starts opens the engine module")
check(mapped("libtorch_cpu"), "... and with it LibTorch")

# A module that is missing or is not ours: an error that says what to do.
def launch_error(module):
    res = subprocess.run(
        ["gst-launch-1.0", "videotestsrc", "num-buffers=1", "!", "embedder", "weights=random",
         "!", "fakesink"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "VISUALSEARCH_ENGINE_MODULE": module})
    return res.returncode, res.stdout + res.stderr


with tempfile.TemporaryDirectory() as tmp:
    code, out = launch_error(os.path.join(tmp, "missing.so"))
    check(code != 0 and "was not found" in out and "VISUALSEARCH_ENGINE_MODULE" in out,
          "a missing engine module is an element error naming the variable")
    bogus = os.path.join(tmp, "bogus.so")
    with open(bogus, "w") as f:
        f.write("not a shared object\n")
    code, out = launch_error(bogus)
    check(code != 0 and "cannot open the module " + bogus in out,
          "a file that is not a module is an element error naming it")
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
