# SPDX-License-Identifier: LGPL-2.1-or-later
"""objectdetect: the GFL decode, NMS, the class filter and the errors, on a
TorchScript detector made here whose outputs are known boxes.

    test_objectdetect.py ROI_DUMP

The fixture is a NanoDet-shaped module for 64x64 input (strides 8 and 16,
reg_max 3, 80 classes) whose box logits are one-hot enough that every
expected distance is an exact bin: the boxes it must give are worked out by
hand below. Its person scores are 0.9 x the mean red of the frame, so a
frame whose channels are read in the wrong order shows as missing persons.
The frames are 128x64 (stretched to 64x64), so x scales by 2.

With models/fetch-detectors.sh's nanodet.pt in the user's cache, the real
detector's best detection must be a person in skimage's astronaut.png and in
matplotlib's grace_hopper.jpg (skipped with a message when missing).
"""
import os
import sys
import tempfile

import torch

ROI_DUMP = sys.argv[1]
torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, failures, finish, run as run_bounded  # noqa: E402


def one_hot(bins, reg_max=3):
    """Logits per side whose softmax expectation is exactly the bin."""
    t = torch.zeros(4, reg_max + 1)
    for side, b in enumerate(bins):
        t[side, b] = 40.0
    return t.reshape(-1)


class Fixture(torch.nn.Module):
    def __init__(self, s8, b8, s16, b16):
        super().__init__()
        self.register_buffer("s8", s8)
        self.register_buffer("b8", b8)
        self.register_buffer("s16", s16)
        self.register_buffer("b16", b16)

    def forward(self, x):
        red = x[:, 0].mean()
        s8 = self.s8.clone()
        s8[:, :, 0] = s8[:, :, 0] * red  # person scores follow the red channel
        return (s8, self.b8 + 0 * x.mean(), self.s16, self.b16)


class Flood(torch.nn.Module):
    """Every class above threshold on every anchor: 6,400 candidates."""

    def forward(self, x):
        z = 0 * x.mean()
        return (torch.full((1, 64, 80), 0.9) + z, torch.zeros(1, 64, 16) + z,
                torch.full((1, 16, 80), 0.8) + z, torch.zeros(1, 16, 16) + z)


class WrongChannels(torch.nn.Module):
    def forward(self, x):
        return (torch.zeros(1, 64, 81) + x.mean(), torch.zeros(1, 64, 16))


class Single(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(1, 64, 80) + x.mean()


def fixture():
    s8, b8 = torch.zeros(1, 64, 80), torch.zeros(1, 64, 16)
    s16, b16 = torch.zeros(1, 16, 80), torch.zeros(1, 16, 16)
    a = 3 * 8 + 2  # stride 8, column 2, row 3: centre (20, 28)
    s8[0, a, 0] = 0.9 / 1.0  # person (times the red mean, 1 on a red frame)
    s8[0, a, 2] = 0.6  # car on the same anchor
    b8[0, a] = one_hot([1, 2, 1, 2])  # (12, 12, 28, 44)
    b = 3 * 8 + 3  # column 3: centre (28, 28)
    s8[0, b, 0] = 0.8
    b8[0, b] = one_hot([1, 2, 1, 2])  # (20, 12, 36, 44): IoU 1/3 with a
    d = 0  # column 0, row 0: centre (4, 4)
    s8[0, d, 16] = 0.3  # dog, under the default threshold
    b8[0, d] = one_hot([0, 0, 1, 1])  # (4, 4, 12, 12)
    c = 0 * 4 + 1  # stride 16, column 1, row 0: centre (24, 8)
    s16[0, c, 2] = 0.7  # car
    b16[0, c] = one_hot([1, 0, 2, 1])  # (8, 8, 56, 24)
    return Fixture(s8, b8, s16, b16)


# in frame pixels (x scaled by 2): type, x, y, w, h, score
PERSON_A = ("person", 24, 12, 32, 32, 0.9)
PERSON_B = ("person", 40, 12, 32, 32, 0.8)
CAR_C = ("car", 16, 8, 96, 16, 0.7)
CAR_A = ("car", 24, 12, 32, 32, 0.6)
DOG_D = ("dog", 8, 4, 16, 8, 0.3)


def run(props, model, fmt="RGB", color="0xffff0000", frames=2, src=None):
    src = src or (f"videotestsrc num-buffers={frames} pattern=solid-color foreground-color={color} "
                  f"! video/x-raw,format={fmt},width=128,height=64,framerate=30/1")
    desc = f"{src} ! objectdetect model={model} {props} ! appsink name=sink sync=false"
    r = run_bounded([ROI_DUMP, desc], timeout=120)
    rois = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts[0] == "frames":
            continue
        frame = int(parts[0])
        # class names may hold spaces ("traffic light"): the numbers are the last 6
        typ = " ".join(parts[1:-6])
        x, y, w, h = map(int, parts[-6:-2])
        rois.setdefault(frame, []).append((typ, x, y, w, h, round(float(parts[-2]), 3)))
    return r.returncode, rois, r.stderr


def expect(name, props, model, want, **kw):
    rc, rois, err = run(props, model, **kw)
    frames = kw.get("frames", 2)
    check(rc == 0, f"{name}: runs ({err.strip()[:200]})")
    for f in range(frames):
        got = rois.get(f, [])
        check(got == list(want), f"{name}: frame {f}: {got}" + ("" if got == list(want) else f" != {list(want)}"))


def expect_error(name, props, model, needle):
    rc, _, err = run(props, model)
    check(rc == 1 and needle in err, f"{name}: element error mentioning '{needle}': {err.strip()[:300]}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "fixture.pt")
        torch.jit.script(fixture()).save(model)
        wrong = os.path.join(tmp, "wrong.pt")
        torch.jit.script(WrongChannels()).save(wrong)
        single = os.path.join(tmp, "single.pt")
        torch.jit.script(Single()).save(single)

        base = "input-size=64"
        expect("defaults", base, model, [PERSON_A, PERSON_B, CAR_C, CAR_A])
        expect("BGRx", base, model, [PERSON_A, PERSON_B, CAR_C, CAR_A], fmt="BGRx")
        expect("xRGB", base, model, [PERSON_A, PERSON_B, CAR_C, CAR_A], fmt="xRGB")
        expect("blue frame: no red, no person", base, model, [CAR_C, CAR_A], fmt="BGRx", color="0xff0000ff")
        expect("nms-iou=0.3 drops the overlapping person", base + " nms-iou=0.3", model,
               [PERSON_A, CAR_C, CAR_A])
        expect("classes=car", base + " classes=car", model, [CAR_C, CAR_A])
        expect("classes=dog,person threshold=0.2", base + " classes=dog,person threshold=0.2", model,
               [PERSON_A, PERSON_B, DOG_D])
        expect("max-detections=2", base + " max-detections=2", model, [PERSON_A, PERSON_B])
        expect("threshold=0.85", base + " threshold=0.85", model, [PERSON_A])

        flood = os.path.join(tmp, "flood.pt")
        torch.jit.script(Flood()).save(flood)
        for limit in (1000, 7):
            rc, rois, err = run(f"{base} max-detections={limit} nms-iou=1", flood, frames=1)
            n = len(rois.get(0, []))
            inside = all(0 <= r[1] and 0 <= r[2] and r[1] + r[3] <= 128 and r[2] + r[4] <= 64 for r in rois.get(0, []))
            check(rc == 0 and n == limit and inside,
                  f"6,400 candidates, max-detections={limit}: {n} regions, all inside the frame", err.strip()[:200])

        expect_error("wrong output channels", base, wrong, "NanoDet head")
        expect_error("a single output", base, single, "NanoDet head")
        expect_error("input-size not matching the grid", "input-size=60", model, "is input-size the model's")
        expect_error("missing model", base, os.path.join(tmp, "none.pt"), "fetch-detectors.sh nanodet")
        expect_error("unknown class", base + " classes=person,unicorn", model, "'unicorn' is not a COCO class")
        not_script = os.path.join(tmp, "junk.pt")
        with open(not_script, "wb") as f:
            f.write(b"not a zip archive")
        expect_error("not TorchScript", base, not_script, "not a loadable TorchScript")

        qos(model)
        real()
    finish()
    return 0


def qos(model):
    """A QoS event saying downstream is 1 s late: the frames before the
    earliest time it implies pass undetected (and unchanged, not dropped), with a
    QoS message each; later frames are detected again. No timing involved: the
    event is sent by hand."""
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    pipe = Gst.parse_launch(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=128,height=64,framerate=30/1 "
        f"! objectdetect name=det model={model} input-size=64 ! appsink name=sink sync=false")
    src, det, sink = (pipe.get_by_name(n) for n in ("src", "det", "sink"))
    pipe.set_state(Gst.State.PLAYING)
    red = bytes([255, 0, 0]) * (128 * 64)
    frame_ns = Gst.SECOND // 30

    def push_pull(pts):
        buf = Gst.Buffer.new_wrapped(red)
        buf.pts, buf.duration = pts, frame_ns
        src.emit("push-buffer", buf)
        return sink.emit("try-pull-sample", 10 * Gst.SECOND)

    got = [push_pull(i * frame_ns) for i in range(2)]
    late = Gst.Event.new_qos(Gst.QOSType.UNDERFLOW, 2.0, Gst.SECOND, frame_ns)
    sent = sink.get_static_pad("sink").push_event(late)
    got += [push_pull(i * frame_ns) for i in range(2, 6)]
    got += [push_pull(3 * Gst.SECOND)]
    check(sent and all(got), "QoS: every frame comes out (7 of 7)", f"sent={sent} got={[bool(g) for g in got]}")
    processed, skipped, dets = (det.get_property(p) for p in ("frames-processed", "frames-skipped", "detections"))
    check((processed, skipped, dets) == (3, 4, 12),
          "QoS: the 4 frames due before earliest pass undetected, the others get their 4 regions",
          f"processed={processed} skipped={skipped} detections={dets}")
    bus = pipe.get_bus()
    msgs = 0
    while True:
        m = bus.pop_filtered(Gst.MessageType.QOS)
        if not m:
            break
        msgs += m.src == det
    check(msgs == 4, f"QoS: one QoS message per skipped frame ({msgs})")
    src.emit("end-of-stream")
    pipe.set_state(Gst.State.NULL)


def real():
    nanodet = os.path.join(os.path.expanduser("~"), ".cache", "visualsearch", "models", "nanodet.pt")
    photos = [("person", "/usr/lib/python3/dist-packages/skimage/data/astronaut.png", "pngdec"),
              ("person", "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg", "jpegdec")]
    if not os.path.exists(nanodet):
        print(f"SKIP real weights: {nanodet} is missing (run models/fetch-detectors.sh nanodet)")
        return
    for label, path, dec in photos:
        if not os.path.exists(path):
            print(f"SKIP real weights on {path}: missing (python3-skimage-lib, python3-matplotlib-data)")
            continue
        src = f"filesrc location={path} ! {dec} ! videoconvert ! video/x-raw,format=RGB ! imagefreeze num-buffers=1"
        rc, rois, err = run("", nanodet, src=src, frames=1)
        got = rois.get(0, [])
        check(rc == 0 and got and got[0][0] == label,
              f"real nanodet on {os.path.basename(path)}: best is {label}: {got[:4]} {err.strip()[:200]}")


if __name__ == "__main__":
    sys.exit(main())
