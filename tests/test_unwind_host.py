#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""C++ exceptions thrown and caught inside the plugin do not abort a Python
host that loaded libstdc++ before PyGObject loaded GStreamer.

Debian's libgstreamer links libunwind.so.8, whose _Unwind_* functions enter
the global symbol scope with it. A host that loaded libstdc++ first with
immediate binding (ctypes does; so does `import pandas`, through its C++
extension modules) has libstdc++ raise exceptions through libgcc_s, while
libraries loaded later bind their cleanups to libunwind: "terminate called
after throwing ..." (engine/base/unwind_resume.c). Each case runs in a child
Python that loads libstdc++ first, one way or the other, then:
- gallerysrc over a folder with a damaged PNG and a video (both thrown and
  caught inside the plugin), which must reach EOS with the good picture;
- embedder with a file that is not TorchScript, thrown inside LibTorch (the
  engine module), which must be an error message, not an abort.
Skipped (77) when GStreamer does not bring libunwind in (nothing to test);
the pandas cases are skipped without python3-pandas.

Usage: test_unwind_host.py   (run by meson, with the plugin of the build tree)
"""
import importlib.util
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures as fx  # noqa: E402
from checks import check, finish, tmp_dir  # noqa: E402

CHILD = r"""
import ctypes, sys
first, pipeline = sys.argv[1], sys.argv[2]
if first == "pandas":
    import pandas  # noqa: F401
else:
    ctypes.CDLL("libstdc++.so.6")  # RTLD_NOW | RTLD_LOCAL, as an extension module
with open("/proc/self/maps") as f:
    if "libstdc++" not in f.read():
        sys.exit("libstdc++ is not loaded before GStreamer: the case tests nothing")
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
with open("/proc/self/maps") as f:
    if "libunwind" not in f.read():
        print("NO-LIBUNWIND")
        sys.exit(0)
p = Gst.parse_launch(pipeline)
sink = p.get_by_name("sink")
frames = []
if sink is not None:
    sink.connect("handoff", lambda *a: frames.append(1))
p.set_state(Gst.State.PLAYING)
msg = p.get_bus().timed_pop_filtered(
    240 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
p.set_state(Gst.State.NULL)
if msg is None:
    print("TIMEOUT")
elif msg.type == Gst.MessageType.ERROR:
    print("ERROR", msg.parse_error()[0].message)
else:
    print("EOS", len(frames))
"""


def run_child(first, pipeline):
    r = subprocess.run([sys.executable, "-c", CHILD, first, pipeline], capture_output=True,
                       text=True, timeout=300)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def main():
    with tmp_dir() as root:
        cases(root)
    finish()


def cases(root):
    folder = os.path.join(root, "photos")
    os.makedirs(folder)
    fx.save(os.path.join(folder, "good.png"), "png", fx.gradient(40, 30, seed=1))
    fx.corrupt_png(os.path.join(folder, "good.png"), os.path.join(folder, "damaged.png"))
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=3", "!",
                    "video/x-raw,width=32,height=24,framerate=10/1", "!", "vp8enc", "!",
                    "webmmux", "!", "filesink",
                    "location=" + os.path.join(folder, "clip.webm")], check=True, timeout=60)
    not_torchscript = os.path.join(root, "model.pt")
    with open(not_torchscript, "wb") as f:
        f.write(b"PK\x03\x04 not a zip archive, nor TorchScript")

    gallery = (f"gallerysrc location={folder} video-interval=1 ! "
               "fakesink name=sink signal-handoffs=true")
    embedder = (f"videotestsrc num-buffers=2 ! video/x-raw,width=40,height=30 ! "
                f"embedder model={not_torchscript} ! fakesink")
    firsts = ["ctypes"]
    if importlib.util.find_spec("pandas") is not None:
        firsts.append("pandas")
    else:
        print("python3-pandas is not installed: only the ctypes cases run")

    for first in firsts:
        rc, out, err = run_child(first, gallery)
        if out == "NO-LIBUNWIND":
            print("SKIP: this GStreamer does not load libunwind")
            sys.exit(77)
        check(rc == 0 and "terminate called" not in err,
              f"{first} first: gallerysrc's internal exceptions do not abort the host",
              f"rc {rc}, stderr: {err[-400:]}")
        # good.png and the 0.3 s video's one frame (at 0 s); damaged.png skipped.
        check(out == "EOS 2",
              f"{first} first: gallerysrc reaches EOS past the damaged file and the video",
              f"stdout {out!r}")

        rc, out, err = run_child(first, embedder)
        check(rc == 0 and "terminate called" not in err,
              f"{first} first: LibTorch's exception for a bad model does not abort the host",
              f"rc {rc}, stderr: {err[-400:]}")
        check(out.startswith("ERROR") and "TorchScript" in out,
              f"{first} first: the bad model is an error message", f"stdout {out!r}")


if __name__ == "__main__":
    main()
