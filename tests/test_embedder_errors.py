"""embedder's errors for unusable weights and models: each must be an element
error that names the file, the first bad key with the shapes, and what to do.

Fixtures are made here with torch; the pipelines run in a child process that
does not import torch, as an application would.
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
import torchvision

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

failures = []


def expect_error(props, code, *needles):
    res = subprocess.run([sys.executable, "-c", CHILD, props], capture_output=True, text=True)
    try:
        got = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        got = {"type": "crash", "message": res.stderr[-2000:]}
    msg = got.get("message", "")
    ok = (got["type"] == "error" and got.get("domain") == "gst-resource-error-quark"
          and got.get("code") == code and all(n in msg for n in needles))
    print(("ok   " if ok else "FAIL ") + props + "\n       -> " + json.dumps(got), flush=True)
    if not ok:
        failures.append(props)


NOT_FOUND, SETTINGS = 3, 13  # GstResourceError values
README = "models/README.md"

with tempfile.TemporaryDirectory() as tmp:
    def save(name, state):
        path = os.path.join(tmp, name)
        torch.save(state, path)
        return path

    r18 = torchvision.models.resnet18(weights=None).state_dict()
    r50 = save("r50.pth", torchvision.models.resnet50(weights=None).state_dict())
    expect_error(f"model=resnet18 weights={r50}", SETTINGS, r50, "resnet50", "model=resnet50", README)
    r34 = save("r34.pth", torchvision.models.resnet34(weights=None).state_dict())
    expect_error(f"model=resnet18 weights={r34}", SETTINGS, r34, "resnet34", README)

    missing = dict(r18)
    del missing["layer2.0.bn1.running_var"]
    path = save("missing.pth", missing)
    expect_error(f"weights={path}", SETTINGS, path, "'layer2.0.bn1.running_var'", "missing", README)

    bad_shape = dict(r18)
    bad_shape["layer3.1.conv2.weight"] = torch.zeros(256, 256, 1, 1)
    path = save("shape.pth", bad_shape)
    expect_error(f"weights={path}", SETTINGS, path, "'layer3.1.conv2.weight'",
                 "[256, 256, 1, 1]", "[256, 256, 3, 3]", README)

    extra = dict(r18)
    extra["layer1.0.se.weight"] = torch.zeros(4)
    path = save("extra.pth", extra)
    expect_error(f"weights={path}", SETTINGS, path, "'layer1.0.se.weight'", README)

    not_resnet = save("mobilenet.pth", torchvision.models.mobilenet_v3_small(weights=None).state_dict())
    expect_error(f"weights={not_resnet}", SETTINGS, not_resnet, README)

    garbage = os.path.join(tmp, "garbage.pth")
    with open(garbage, "wb") as f:
        f.write(os.urandom(4096))
    expect_error(f"weights={garbage}", SETTINGS, garbage, README)

    expect_error(f"weights={tmp}/absent.pth", NOT_FOUND, f"{tmp}/absent.pth", "fetch-weights.sh", README)

    bad_script = os.path.join(tmp, "bad.pt")
    with open(bad_script, "wb") as f:
        f.write(b"this is not a TorchScript archive")
    expect_error(f"model={bad_script}", SETTINGS, bad_script, "export-torchscript.py", README)

    class FeatureMap(torch.nn.Module):
        def forward(self, x):
            return x * 2

    four_d = os.path.join(tmp, "four_d.pt")
    torch.jit.script(FeatureMap()).save(four_d)
    expect_error(f"model={four_d}", SETTINGS, four_d, "(N, D)", README)

if failures:
    print(f"{len(failures)} case(s) failed")
    sys.exit(1)
