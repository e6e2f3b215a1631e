# SPDX-License-Identifier: LGPL-2.1-or-later
"""embedder's errors for unusable weights and models: each must be an element
error that names the file, the first bad key with the shapes, and what to do.
Also what reaches the stream from a model that misbehaves while running: an
output width that changes, NaN or infinite embeddings.

Fixtures are made here with torch; the pipelines run in a child process that
does not import torch, as an application would.
"""
import collections
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

CHILD = r"""
import json, sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
p = Gst.parse_launch("videotestsrc num-buffers=1 ! embedder " + sys.argv[1] + " ! fakesink")
p.set_state(Gst.State.PLAYING)
m = p.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
out = {"type": "none" if m is None else m.type.first_value_nick}
if m is not None and m.type == Gst.MessageType.ERROR:
    err, dbg = m.parse_error()
    out.update(domain=err.domain, code=err.code, message=err.message)
p.set_state(Gst.State.NULL)
print(json.dumps(out))
"""

# Runs frames through the embedder and reports every error and warning with
# the embedder's counters: what an application sees.
RUN = r"""
import json, sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
p = Gst.parse_launch(sys.argv[1])
e = p.get_by_name("e")
p.set_state(Gst.State.PLAYING)
out = {"messages": []}
while True:
    m = p.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.ERROR
                                       | Gst.MessageType.WARNING | Gst.MessageType.EOS)
    if m is None or m.type == Gst.MessageType.EOS:
        out["end"] = "timeout" if m is None else "eos"
        break
    err, dbg = m.parse_error() if m.type == Gst.MessageType.ERROR else m.parse_warning()
    out["messages"].append({"type": m.type.first_value_nick, "domain": err.domain,
                            "code": err.code, "message": err.message})
    if m.type == Gst.MessageType.ERROR:
        out["end"] = "error"
        break
out["embedded"] = e.get_property("frames-embedded")
out["skipped"] = e.get_property("frames-skipped")
p.set_state(Gst.State.NULL)
print(json.dumps(out))
"""


def run(pipeline):
    res = subprocess.run([sys.executable, "-c", RUN, pipeline], capture_output=True, text=True)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"end": "crash", "messages": [], "stderr": res.stderr[-2000:]}


def messages(got, kind):
    return [m for m in got["messages"] if m["type"] == kind]


def refused(props, domain_code, *needles):
    res = subprocess.run([sys.executable, "-c", CHILD, props], capture_output=True, text=True)
    try:
        got = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        got = {"type": "crash", "message": res.stderr[-2000:]}
    msg = got.get("message", "")
    check(got["type"] == "error" and (got.get("domain"), got.get("code")) == domain_code
          and all(n in msg for n in needles), props, json.dumps(got))


# (domain, code) as the embedder posts them for each kind of vs::Error
NOT_FOUND = ("gst-resource-error-quark", 3)   # GST_RESOURCE_ERROR_NOT_FOUND
SETTINGS = ("gst-resource-error-quark", 13)   # GST_RESOURCE_ERROR_SETTINGS
DECODE = ("gst-stream-error-quark", 7)        # GST_STREAM_ERROR_DECODE: a damaged file
FORMAT = ("gst-stream-error-quark", 11)       # GST_STREAM_ERROR_FORMAT: not a file we read
LIBRARY_FAILED = ("gst-library-error-quark", 1)
README = "models/README.md"


class HandStorage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class HandTensor:
    """Pickles as torch.save pickles a contiguous float tensor."""

    def __init__(self, storage, shape):
        self.storage, self.shape = storage, tuple(shape)

    def __reduce__(self):
        strides, acc = [], 1
        for d in reversed(self.shape):
            strides.insert(0, acc)
            acc *= d
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, 0, self.shape, tuple(strides), False, collections.OrderedDict()))


class HandPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, HandStorage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def save_by_hand(path, state, grow=None, pickle_padding=0, extra_records=0):
    """torch.save's archive of a float state dict, written by hand so that it
    can hold what torch.save never writes: the storage of key `grow` declared
    and stored (deflated zeros) with grow[1] elements, data.pkl followed by
    pickle_padding (deflated) zero bytes, extra_records empty records."""
    tensors, storages = collections.OrderedDict(), []
    for i, (key, t) in enumerate(state.items()):
        t = t.float().contiguous()
        numel = grow[1] if grow and key == grow[0] else t.numel()
        tensors[key] = HandTensor(HandStorage(str(i), numel), t.shape)
        storages.append((str(i), t.numpy().tobytes(), numel * 4))
    program = io.BytesIO()
    HandPickler(program, protocol=2).dump(tensors)

    def deflated(name):
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        return info

    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w") as z:
        with z.open(deflated("archive/data.pkl"), "w", force_zip64=True) as f:
            f.write(program.getvalue())
            for left in range(pickle_padding, 0, -len(zeros)):
                f.write(zeros[:left])
        for key, data, size in storages:
            if size == len(data):
                z.writestr(f"archive/data/{key}", data)
                continue
            with z.open(deflated(f"archive/data/{key}"), "w", force_zip64=True) as f:
                f.write(data)
                for left in range(size - len(data), 0, -len(zeros)):
                    f.write(zeros[:left])
        z.writestr("archive/version", "3\n")
        for i in range(extra_records):
            z.writestr(f"archive/extra/{i}", b"")
    return path

with tempfile.TemporaryDirectory() as tmp:
    def save(name, state):
        path = os.path.join(tmp, name)
        torch.save(state, path)
        return path

    r18 = torchvision.models.resnet18(weights=None).state_dict()
    r50 = save("r50.pth", torchvision.models.resnet50(weights=None).state_dict())
    refused(f"model=resnet18 weights={r50}", SETTINGS, r50, "resnet50", "model=resnet50", README)
    r34 = save("r34.pth", torchvision.models.resnet34(weights=None).state_dict())
    refused(f"model=resnet18 weights={r34}", SETTINGS, r34, "resnet34", README)

    missing = dict(r18)
    del missing["layer2.0.bn1.running_var"]
    path = save("missing.pth", missing)
    refused(f"weights={path}", SETTINGS, path, "'layer2.0.bn1.running_var'", "missing", README)

    bad_shape = dict(r18)
    bad_shape["layer3.1.conv2.weight"] = torch.zeros(256, 256, 1, 1)
    path = save("shape.pth", bad_shape)
    refused(f"weights={path}", SETTINGS, path, "'layer3.1.conv2.weight'",
                 "[256, 256, 1, 1]", "[256, 256, 3, 3]", README)

    extra = dict(r18)
    extra["layer1.0.se.weight"] = torch.zeros(4)
    path = save("extra.pth", extra)
    refused(f"weights={path}", SETTINGS, path, "'layer1.0.se.weight'", README)

    not_resnet = save("mobilenet.pth", torchvision.models.mobilenet_v3_small(weights=None).state_dict())
    refused(f"weights={not_resnet}", SETTINGS, not_resnet, README)

    garbage = os.path.join(tmp, "garbage.pth")
    with open(garbage, "wb") as f:
        f.write(os.urandom(4096))
    refused(f"weights={garbage}", FORMAT, garbage, README)

    # Broken weights would make every embedding NaN.
    for key, value in [("layer2.1.conv1.weight", float("nan")),
                       ("layer1.0.bn2.running_mean", float("inf"))]:
        broken = dict(r18)
        broken[key] = torch.full_like(r18[key], value)
        path = save(f"nonfinite-{key}.pth", broken)
        refused(f"weights={path}", DECODE, path, f"'{key}'", "NaN or infinite", README)
    negative = dict(r18)
    negative["layer3.0.bn1.running_var"] = -torch.ones_like(r18["layer3.0.bn1.running_var"])
    path = save("negative-var.pth", negative)
    refused(f"weights={path}", DECODE, path, "'layer3.0.bn1.running_var'", "negative", README)

    # A small file must not make the loader allocate what a resnet18 never
    # needs: each of these inflates to 100 MB (or holds a 1.3 MB directory),
    # and loaded, with that memory, before the limits.
    path = save_by_hand(os.path.join(tmp, "by-hand.pth"), r18)
    run_ok = run(f"videotestsrc num-buffers=1 ! video/x-raw,width=40,height=30 ! embedder name=e "
                 f"weights={path} input-size=32 resize=0 ! fakesink")
    check(run_ok["end"] == "eos" and run_ok["embedded"] == 1,
          "a hand-written checkpoint loads (the fixtures below differ from it in one way)",
          json.dumps(run_ok))
    path = save_by_hand(os.path.join(tmp, "grown.pth"), r18, grow=("layer1.0.conv1.weight", 25_000_000))
    refused(f"weights={path}", DECODE, path, "needed take 44744448", "storages hold", README)
    path = save_by_hand(os.path.join(tmp, "long-pickle.pth"), r18, pickle_padding=100_000_000)
    refused(f"weights={path}", DECODE, path, "data.pkl takes 1000", README)
    path = save_by_hand(os.path.join(tmp, "long-directory.pth"), r18, extra_records=20000)
    refused(f"weights={path}", DECODE, path, "zip directory takes", README)

    refused(f"weights={tmp}/absent.pth", NOT_FOUND, f"{tmp}/absent.pth", "fetch-weights.sh", README)

    bad_script = os.path.join(tmp, "bad.pt")
    with open(bad_script, "wb") as f:
        f.write(b"this is not a TorchScript archive")
    refused(f"model={bad_script}", FORMAT, bad_script, "export-torchscript.py", README)

    class FeatureMap(torch.nn.Module):
        def forward(self, x):
            return x * 2

    four_d = os.path.join(tmp, "four_d.pt")
    torch.jit.script(FeatureMap()).save(four_d)
    refused(f"model={four_d}", FORMAT, four_d, "(N, D)", README)

    class RaisesForOneFrame(torch.nn.Module):
        def forward(self, x):
            if x.shape[0] == 1:
                raise RuntimeError("refuses single frames")
            return x.mean([2, 3])

    raises = os.path.join(tmp, "raises.pt")
    torch.jit.script(RaisesForOneFrame()).save(raises)
    refused(f"model={raises}", LIBRARY_FAILED, raises, "refuses single frames")

    def frames(props, n=4, sink="fakesink"):
        return (f"videotestsrc num-buffers={n} ! video/x-raw,width=40,height=30 ! "
                f"embedder name=e input-size=32 resize=0 threads=1 {props} ! {sink}")

    STREAM = "gst-stream-error-quark"

    # 8 values for the probe batch of 1 at load, 4 for a batch of 2: the
    # element must not read 8 per frame.
    class WidthFollowsBatch(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, : 8 // x.shape[0]]

    shrinks = os.path.join(tmp, "shrinks.pt")
    torch.jit.script(WidthFollowsBatch()).save(shrinks)
    got = run(frames(f"model={shrinks} batch-size=2"))
    errors = messages(got, "error")
    check(got["end"] == "error" and errors[0]["domain"] == STREAM
          and all(n in errors[0]["message"] for n in [shrinks, "4 values", "8 values"])
          and got["embedded"] == 0,
          "an output width that changes after load is an error naming the model and both widths",
          json.dumps(got))

    # One row for the batch of 1 probed at load, one row for a batch of 4 too:
    # what is wrong is the number of rows, and the message says so.
    class OneRowForAll(torch.nn.Module):
        def forward(self, x):
            return x.mean([0, 2, 3]).unsqueeze(0)

    one_row = os.path.join(tmp, "one_row.pt")
    torch.jit.script(OneRowForAll()).save(one_row)
    got = run(frames(f"model={one_row} batch-size=4"))
    errors = messages(got, "error")
    check(got["end"] == "error" and errors[0]["domain"] == STREAM
          and "of shape (1, 3) for a batch of 4 frames" in errors[0]["message"]
          and "one row per frame, (4, D)" in errors[0]["message"] and got["embedded"] == 0,
          "a model returning 1 row for a batch of 4 is an error that names the row count",
          json.dumps(got))

    # Frames 1 and 3 (the second of each batch) get NaN.
    class NaNForSecondFrame(torch.nn.Module):
        def forward(self, x):
            y = x.mean([2, 3])
            y[1::2] = float("nan")
            return y

    class InfEverywhere(torch.nn.Module):
        def forward(self, x):
            return x.mean([2, 3]) / 0.0

    some_nan = os.path.join(tmp, "some_nan.pt")
    torch.jit.script(NaNForSecondFrame()).save(some_nan)
    all_inf = os.path.join(tmp, "all_inf.pt")
    torch.jit.script(InfEverywhere()).save(all_inf)
    index = os.path.join(tmp, "some_nan.faiss")
    got = run(frames(f"model={some_nan} batch-size=2",
                     sink=f"faissindexer location={index}"))
    warnings = [m for m in messages(got, "warning") if "NaN or infinite" in m["message"]]
    import faiss
    check(got["end"] == "eos" and len(warnings) == 1 and some_nan in warnings[0]["message"]
          and "0:00:00.033333333" in warnings[0]["message"]
          and got["embedded"] == 2 and got["skipped"] == 2
          and faiss.read_index(index).ntotal == 2,
          "NaN embeddings: one warning naming the model, those frames pass without one, "
          "and the index holds only the finite ones", json.dumps(got))
    got = run(frames(f"model={all_inf} normalize=false"))
    warnings = [m for m in messages(got, "warning") if "NaN or infinite" in m["message"]]
    check(got["end"] == "eos" and len(warnings) == 1 and all_inf in warnings[0]["message"]
          and got["embedded"] == 0 and got["skipped"] == 4,
          "infinite embeddings: one warning, no embedding reaches the stream", json.dumps(got))

finish()
