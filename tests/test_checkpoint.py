#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""PickleReader and load_checkpoint against what Python itself writes.

Usage: test_checkpoint.py PATH/TO/checkpoint_probe

Writes pickles (protocols 0-5, python2-style opcodes) and torch.save archives
(a torchvision ResNet-18 state dict with random weights, views into shared
storages, every dtype, wrapped dicts, broken files) into a temporary directory,
runs checkpoint_probe on them and compares keys, dtypes, shapes and bytes.
"""
import collections
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

PROBE = sys.argv[1]


def probe(*args):
    r = subprocess.run([PROBE, *args], capture_output=True, timeout=300)
    if r.returncode not in (0, 2):
        raise SystemExit(f"checkpoint_probe {args} crashed with {r.returncode}: {r.stderr.decode()}")
    return r.returncode, r.stdout.decode("utf-8", "replace")


def canonical(v):
    """Mirrors canonical() in checkpoint_probe.cpp for plain data."""
    if v is None:
        return "N"
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, int):
        return f"i{v}"
    if isinstance(v, float):
        return "f" + struct.pack(">d", v).hex()
    if isinstance(v, str):
        return "u" + v.encode("utf-8", "surrogatepass").hex()
    if isinstance(v, bytes):
        return "b" + v.hex()
    if isinstance(v, list):
        return "[" + "".join(canonical(x) + "," for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + "".join(canonical(x) + "," for x in v) + ")"
    if isinstance(v, (set, frozenset)):
        return "{" + "".join(canonical(x) + "," for x in v) + "}"
    if isinstance(v, dict):
        return "<" + "".join(canonical(k) + ":" + canonical(x) + "," for k, x in v.items()) + ">"
    raise TypeError(type(v))


def test_pickles(tmp):
    shared = [1, 2, 3]
    ints = [0, 1, -1, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**31,
            2**32, 2**63 - 1, -2**63, -129]
    value = {
        "ints": ints,
        "floats": [0.0, -0.0, 1.5, -2.25, 1e300, 3.141592653589793, float("inf")],
        "text": ["", "a", "héllo ☃ 𝄞", "x" * 300, "y" * 70000],
        "bytes": [b"", b"\x00\xff\x80abc", bytes(range(256)) * 2],
        "nested": (None, True, False, (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [shared, shared]),
        "many": list(range(2500)),
        "dict": {i: str(i) for i in range(1200)},
    }
    for proto in range(0, 6):
        v = dict(value)
        if proto >= 4:
            v["sets"] = [set([1, 2, 3]), frozenset(["a", "b"])]
        path = os.path.join(tmp, f"p{proto}.pkl")
        with open(path, "wb") as f:
            pickle.dump(v, f, protocol=proto)
        rc, out = probe("pickle", path)
        check(rc == 0 and out.strip() == canonical(v), f"pickle protocol {proto} round trip: {out[:200]}")

    # What python 2's cPickle wrote for CIFAR: BINSTRING/SHORT_BINSTRING keys
    # and payloads, and protocol 0's quoted STRING.
    py2 = (b"\x80\x02}q\x01(U\x04dataq\x02T\x05\x01\x00\x00" + bytes(range(256)) + b"abcde"
           + b"U\x06labelsq\x03]q\x04(K\x01K\x02eU\x01sS'a\\'b\\x00\\n'\np5\nu.")
    path = os.path.join(tmp, "py2.pkl")
    with open(path, "wb") as f:
        f.write(py2)
    rc, out = probe("pickle", path)
    want = canonical({b"data": bytes(range(256)) + b"abcde", b"labels": [1, 2], b"s": b"a'b\x00\n"})
    check(rc == 0 and out.strip() == want, f"python 2 pickle: {out[:200]}")

    # Objects stay calls with their state; nothing is executed.
    obj = collections.OrderedDict(a=1)
    obj._metadata = {"": {"version": 1}}
    path = os.path.join(tmp, "ordered.pkl")
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    rc, out = probe("pickle", path)
    check(rc == 0 and out.startswith("C(Gcollections.OrderedDict;") and "state=" in out,
          f"OrderedDict with _metadata: {out[:200]}")

    bad = {
        "empty": b"",
        "no STOP": b"\x80\x02K\x01",
        "cut string": b"\x80\x02X\x10\x00\x00\x00abc",
        "huge length": b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\x7f",
        "unknown opcode": b"\x80\x02\xff.",
        "stack underflow": b"\x80\x02a.",
        "bad memo": b"\x80\x02h\x07.",
        "protocol 9": b"\x80\x09N.",
        "wide int": b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.",
    }
    for name, data in bad.items():
        path = os.path.join(tmp, "bad.pkl")
        with open(path, "wb") as f:
            f.write(data)
        rc, out = probe("pickle", path)
        check(rc == 2 and "at byte" in out, f"bad pickle '{name}' gives an error with an offset: {out!r}")

    rc, out = probe("hostile", os.path.join(tmp, "p2.pkl"))
    check(rc == 0 and "hostile pickles: ok" in out, f"hostile pickles: {out}")


def expected_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def load(path, tmp):
    out_bin = os.path.join(tmp, "tensors.bin")
    rc, out = probe("checkpoint", path, out_bin)
    if rc != 0:
        return rc, out, None, None
    rows = [line.split("\t") for line in out.splitlines()]
    with open(out_bin, "rb") as f:
        data = f.read()
    return rc, out, rows, data


def compare(path, sd, tmp, what):
    rc, out, rows, data = load(path, tmp)
    if not check(rc == 0, f"{what}: loads ({out.strip()[:300]})"):
        return
    items = [(k, v) for k, v in sd.items() if isinstance(v, torch.Tensor)]
    check([r[0] for r in rows] == [k for k, _ in items], f"{what}: keys in file order")
    pos = 0
    for (key, t), row in zip(items, rows):
        dtype = str(t.dtype).replace("torch.", "")
        shape = ",".join(str(d) for d in t.shape)
        check(row[1] == dtype, f"{what}: {key} dtype {row[1]} != {dtype}")
        check(row[2] == shape, f"{what}: {key} shape {row[2]} != {shape}")
        want = expected_bytes(t)
        check(data[pos:pos + len(want)] == want, f"{what}: {key} values differ")
        pos += len(want)
    check(pos == len(data), f"{what}: {len(data) - pos} extra bytes")


def test_checkpoints(tmp):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    for p in model.parameters():  # random, but not the init's structured values
        p.data.normal_()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(7)
    sd = model.state_dict()
    resnet = os.path.join(tmp, "resnet18.pth")
    torch.save(sd, resnet)
    check(hasattr(sd, "_metadata"), "the state dict carries _metadata (the case torch::pickle_load rejects)")
    compare(resnet, sd, tmp, "resnet18")
    rc, out, rows, _ = load(resnet, tmp)
    check(rows is not None and len(rows) == 122, f"resnet18 has 122 entries, got {len(rows or [])}")

    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    views = collections.OrderedDict()
    views["base"] = base
    views["slice"] = base[2:5, 1:8:2]        # offset + non-contiguous strides
    views["transposed"] = base.t()
    views["row"] = base[3]
    views["scalar"] = torch.tensor(5, dtype=torch.int64)
    views["empty"] = torch.zeros(0, 3)
    views["param"] = torch.nn.Parameter(torch.randn(3, 2))
    views["expanded"] = torch.randn(3, 1).expand(3, 4)  # stride 0
    for dt in [torch.float64, torch.float16, torch.bfloat16, torch.bool, torch.int8,
               torch.uint8, torch.int16, torch.int32]:
        views[str(dt)] = (torch.randn(4, 3) * 50).to(dt)
    views["not a tensor"] = 42
    path = os.path.join(tmp, "views.pth")
    torch.save(views, path)
    compare(path, views, tmp, "views")

    small = collections.OrderedDict((k, v) for k, v in list(sd.items())[:5])
    for wrapper in ["state_dict", "model"]:
        path = os.path.join(tmp, f"wrapped_{wrapper}.pth")
        torch.save({wrapper: small, "epoch": 3}, path)
        compare(path, small, tmp, f"wrapped in {wrapper}")

    # Same archive, deflated by another zip tool.
    deflated = os.path.join(tmp, "deflated.pth")
    with zipfile.ZipFile(os.path.join(tmp, "wrapped_model.pth")) as src, \
            zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    compare(deflated, small, tmp, "deflated archive")

    # torch.save writes a ZIP64 end record too; make the classic one defer to it.
    with open(os.path.join(tmp, "wrapped_model.pth"), "rb") as f:
        z64 = bytearray(f.read())
    end = z64.rfind(b"PK\x05\x06")
    check(z64.rfind(b"PK\x06\x06") > 0, "torch.save writes a ZIP64 end record")
    z64[end + 8:end + 20] = b"\xff" * 12
    path = os.path.join(tmp, "zip64.pth")
    with open(path, "wb") as f:
        f.write(z64)
    compare(path, small, tmp, "ZIP64 directory")

    def expect_error(path, words, what):
        rc, out, _, _ = load(path, tmp)
        ok = rc == 2 and all(w in out for w in words)
        check(ok, f"{what}: expected an error mentioning {words}, got {out.strip()[:300]!r}")

    expect_error(os.path.join(tmp, "nope.pth"), ["nope.pth", "No such file"], "missing file")
    text = os.path.join(tmp, "text.pth")
    with open(text, "w") as f:
        f.write("hello, this is not a checkpoint\n" * 10)
    expect_error(text, ["text.pth", "not a zip archive"], "text file")
    legacy = os.path.join(tmp, "legacy.pth")
    torch.save(small, legacy, _use_new_zipfile_serialization=False)
    expect_error(legacy, ["legacy", "_use_new_zipfile_serialization=True"], "legacy format")
    with open(resnet, "rb") as f:
        whole = f.read()
    for frac in [0.0001, 0.5, 0.999]:
        cut = os.path.join(tmp, "cut.pth")
        with open(cut, "wb") as f:
            f.write(whole[:int(len(whole) * frac)])
        expect_error(cut, ["cut.pth", "truncated"], f"truncated at {frac}")
    corrupt = bytearray(whole)
    corrupt[len(whole) // 2] ^= 0xFF
    path = os.path.join(tmp, "corrupt.pth")
    with open(path, "wb") as f:
        f.write(corrupt)
    expect_error(path, ["CRC"], "flipped byte in tensor data")

    missing = os.path.join(tmp, "missing_record.pth")
    with zipfile.ZipFile(os.path.join(tmp, "wrapped_model.pth")) as src, \
            zipfile.ZipFile(missing, "w") as dst:
        names = [i.filename for i in src.infolist()]
        dropped = [n for n in names if "/data/" in n][0]
        for n in names:
            if n != dropped:
                dst.writestr(n, src.read(n))
    expect_error(missing, ["no record", dropped], "missing storage record")
    nopkl = os.path.join(tmp, "nopkl.pth")
    with zipfile.ZipFile(nopkl, "w") as dst:
        dst.writestr("archive/other.txt", "hi")
    expect_error(nopkl, ["torch.save"], "zip without data.pkl")

    whole_model = os.path.join(tmp, "whole_model.pth")
    torch.save(torch.nn.Linear(3, 2), whole_model)
    expect_error(whole_model, ["torch.nn.modules.linear.Linear", "model.state_dict()"],
                 "a whole module instead of its state dict")
    scripted = os.path.join(tmp, "scripted.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), scripted)
    expect_error(scripted, ["TorchScript"], "a TorchScript file")

    rc, out = probe("hostile-zip", os.path.join(tmp, "views.pth"), os.path.join(tmp, "scratch.pth"))
    check(rc == 0 and "mutations:" in out, f"mutated checkpoints only raise errors: {out}")


with tempfile.TemporaryDirectory() as tmp:
    test_pickles(tmp)
    test_checkpoints(tmp)
finish()
