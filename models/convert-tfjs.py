#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Converts a TF.js graph model (model.json and its weight shards) to TorchScript.

Needs only torch (Debian's python3-torch; run with /usr/bin/python3): the graph's
nodes are run as torch ops by a small interpreter, nodes fed only by constants are
folded at load time, and the rest is traced into a TorchScript module that
Debian's LibTorch 1.13 loads.

  convert-tfjs.py MODEL.json OUT.pt                        # all outputs, as a tuple
  convert-tfjs.py faceres.json faceres.pt --embedder --output global_pooling/Mean
  convert-tfjs.py nanodet.json nanodet.pt --detector

--embedder wraps a model whose input is 0-255 NHWC (the face embedders) so that the
saved module takes `embedder`'s normalised NCHW batch and returns the (N, D)
embedding of the first output: run it with `embedder mean=0,0,0 std=1/255` (or
std=0.00392156862745098) so the pixels reach the model as 0-255.
--detector saves a NanoDet-shaped detector for `objectdetect`: input NCHW float
(N, 3, S, S), outputs a tuple ordered (scores, box distributions) per level, finest
stride first.
"""

import argparse
import json
import math
import os
import re
import sys
import tempfile

import warnings

import torch
import torch.nn.functional as F

# shapes and attributes are constants of the traced graph: that is intended
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)

DTYPES = {
    "float32": torch.float32,
    "int32": torch.int32,
    "bool": torch.bool,
    "float16": torch.float16,
    "uint8": torch.uint8,
    "int8": torch.int8,
    "uint16": torch.int32,  # read separately (torch 1.13 has no uint16)
    "int16": torch.int16,
}
BYTES = {"float32": 4, "int32": 4, "bool": 1, "float16": 2, "uint8": 1, "int8": 1,
         "uint16": 2, "int16": 2}


class ConvertError(Exception):
    pass


def _read_raw(buf, offset, dtype, count):
    size = BYTES[dtype] * count
    if offset + size > len(buf):
        raise ConvertError(f"the weight shards end at byte {len(buf)}, a weight needs up to {offset + size}")
    raw = bytearray(buf[offset:offset + size])
    if dtype == "uint16":
        t = torch.frombuffer(raw, dtype=torch.int16).to(torch.int32) & 0xFFFF if count else torch.zeros(0, dtype=torch.int32)
    else:
        t = torch.frombuffer(raw, dtype=DTYPES[dtype]) if count else torch.zeros(0, dtype=DTYPES[dtype])
    return t.clone(), size


def load_weights(model_json, base_dir):
    """Reads every weight of the manifest: returns {name: tensor}. Quantized
    weights (float16, or uint8/uint16 with scale and min) come back as their
    original dtype."""
    weights = {}
    for group in model_json.get("weightsManifest", []):
        buf = bytearray()
        for p in group["paths"]:
            path = os.path.join(base_dir, p)
            try:
                with open(path, "rb") as f:
                    buf += f.read()
            except OSError as e:
                raise ConvertError(f"cannot read weight shard {path}: {e.strerror}") from None
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = math.prod(shape)
            dtype = w["dtype"]
            q = w.get("quantization")
            if dtype == "string":
                raise ConvertError(f"weight {w['name']}: string tensors are not supported")
            if q:
                qdtype = q["dtype"]
                if qdtype not in ("float16", "uint8", "uint16"):
                    raise ConvertError(f"weight {w['name']}: unknown quantization dtype {qdtype}")
                t, size = _read_raw(buf, offset, qdtype, count)
                if qdtype == "float16":
                    t = t.to(torch.float32)
                elif "scale" in q:
                    t = t.to(torch.float32) * q["scale"] + q.get("min", 0.0)
                else:
                    raise ConvertError(f"weight {w['name']}: {qdtype} quantization without scale/min")
                t = t.to(DTYPES[dtype])
            else:
                if dtype not in BYTES:
                    raise ConvertError(f"weight {w['name']}: unknown dtype {dtype}")
                t, size = _read_raw(buf, offset, dtype, count)
            offset += size
            weights[w["name"]] = t.reshape(shape)
        if offset != len(buf):
            raise ConvertError(f"weight shards {group['paths']}: {len(buf)} bytes, the manifest describes {offset}")
    return weights


def _attr(node, name, default=None):
    a = node.get("attr", {}).get(name)
    if a is None:
        return default
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            import base64
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        return []
    if "s" in a:
        import base64
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "type" in a:
        return a["type"]
    return default


def _tf_pads(x, node, k, stride, dilation):
    """x NCHW: (top, bottom, left, right) as TF's padding attribute says."""
    padding = _attr(node, "padding", "VALID")
    if padding == "VALID":
        return (0, 0, 0, 0)
    if padding == "EXPLICIT":
        p = _attr(node, "explicit_paddings", [])
        fmt = _attr(node, "data_format", "NHWC")
        hw = p[2:6] if fmt == "NHWC" else p[4:8]
        return tuple(hw)
    if padding != "SAME":
        raise ConvertError(f"{node['name']}: unknown padding {padding}")
    pads = []
    for dim, kk, s, d in ((x.shape[2], k[0], stride[0], dilation[0]), (x.shape[3], k[1], stride[1], dilation[1])):
        eff = (kk - 1) * d + 1
        out = (int(dim) + s - 1) // s
        total = max((out - 1) * s + eff - int(dim), 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _tf_pad(x, node, k, stride, dilation, value=0.0):
    """x NCHW. Pads as TF's padding attribute says; returns the padded tensor."""
    top, bottom, left, right = _tf_pads(x, node, k, stride, dilation)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _hw(node, name):
    v = _attr(node, name, [1, 1, 1, 1])
    fmt = _attr(node, "data_format", "NHWC")
    if fmt != "NHWC":
        raise ConvertError(f"{node['name']}: data_format {fmt} is not supported (NHWC only)")
    return v[1:3]


# The element-wise ops of one input, as graph nodes (run_op); the activations
# among them (and Elu) are also what a fused node's tail may apply (_fused).
_ELEMENTWISE = {
    "Relu": torch.relu,
    "Relu6": lambda x: torch.clamp(x, 0.0, 6.0),
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Abs": torch.abs,
    "Neg": torch.neg,
    "Exp": torch.exp,
    "Sqrt": torch.sqrt,
    "Rsqrt": torch.rsqrt,
    "Square": lambda x: x * x,
}
_FUSED_ACTIVATIONS = {op: _ELEMENTWISE[op] for op in ("Relu", "Relu6", "Sigmoid")}
_FUSED_ACTIVATIONS["Elu"] = F.elu


def _fused(node, y, extra):
    """Applies the fused_ops tail of _FusedConv2D / FusedDepthwiseConv2dNative / _FusedMatMul."""
    ops = _attr(node, "fused_ops", [])
    i = 0
    for op in ops:
        if op == "BiasAdd":
            y = y + extra[i]
            i += 1
        elif op in _FUSED_ACTIVATIONS:
            y = _FUSED_ACTIVATIONS[op](y)
        elif op == "LeakyRelu":
            y = F.leaky_relu(y, _attr(node, "leakyrelu_alpha", 0.2))
        elif op == "Prelu":
            alpha = extra[i]
            i += 1
            y = torch.where(y >= 0, y, y * alpha)
        else:
            raise ConvertError(f"{node['name']}: fused op {op} is not supported")
    return y


def _nhwc_conv(x, w, node, depthwise, bias=None):
    """x NHWC. w is TF's HWIO (HW, in, multiplier for depthwise) or, after
    TfjsGraph's rewrites (node["_oihw"]), already torch's OIHW; node["_pad"]
    is a zero padding folded in from a Pad node before it."""
    strides = _hw(node, "strides")
    dil = _hw(node, "dilations")
    xn = x.permute(0, 3, 1, 2)
    if not node.get("_oihw"):
        w = torch_conv_weight(w, depthwise)
    kh, kw = int(w.shape[2]), int(w.shape[3])
    groups = int(xn.shape[1]) if depthwise else int(xn.shape[1]) // int(w.shape[1])
    pad = node.get("_pad")
    if pad is None:
        pad = _tf_pads(xn, node, (kh, kw), strides, dil)
    if pad[0] == pad[1] and pad[2] == pad[3]:
        y = F.conv2d(xn, w, bias, stride=strides, dilation=dil, groups=groups, padding=(pad[0], pad[2]))
    else:
        xn = F.pad(xn, (pad[2], pad[3], pad[0], pad[1]))
        y = F.conv2d(xn, w, bias, stride=strides, dilation=dil, groups=groups)
    return y.permute(0, 2, 3, 1)


def torch_conv_weight(w, depthwise):
    """TF's conv kernel (HWIO, or H W in multiplier) as torch's OIHW."""
    if depthwise:
        kh, kw, cin, mult = (int(d) for d in w.shape)
        return w.reshape(kh, kw, cin * mult).permute(2, 0, 1).unsqueeze(1).contiguous()
    return w.permute(3, 2, 0, 1).contiguous()


def _reduce_axes(x, axes):
    axes = axes.reshape(-1).tolist() if torch.is_tensor(axes) else list(axes)
    return [a % x.dim() for a in axes]


def _splitv(node, x, sizes, dim):
    sizes = sizes.tolist()
    dim = int(dim) % x.dim()
    if -1 in sizes:
        rest = int(x.shape[dim]) - sum(s for s in sizes if s != -1)
        sizes[sizes.index(-1)] = rest
    return list(torch.split(x, sizes, dim=dim))


def _resize_bilinear(node, x, size):
    size = [int(v) for v in size.tolist()]
    half = _attr(node, "half_pixel_centers", False)
    align = _attr(node, "align_corners", False)
    xn = x.permute(0, 3, 1, 2)
    if align:
        y = F.interpolate(xn, size=size, mode="bilinear", align_corners=True)
    elif half:
        y = F.interpolate(xn, size=size, mode="bilinear", align_corners=False)
    else:
        raise ConvertError(f"{node['name']}: ResizeBilinear without half_pixel_centers or align_corners is not supported")
    return y.permute(0, 2, 3, 1)


def _sparse_to_dense(node, idx, shape, values, default):
    out = torch.full([int(s) for s in shape.reshape(-1).tolist()], default.item(), dtype=values.dtype)
    idx = idx.long()
    if idx.dim() < 2:
        idx = idx.reshape(-1, 1)
    values = values.expand(idx.shape[0]) if values.dim() == 0 else values
    out[tuple(idx.t())] = values
    return out


def _pool(node, x, kind):
    k = _hw(node, "ksize")
    s = _hw(node, "strides")
    xn = x.permute(0, 3, 1, 2)
    if kind == "max":
        xn = _tf_pad(xn, node, k, s, (1, 1), value=float("-inf"))
        y = F.max_pool2d(xn, k, s)
    else:
        if _attr(node, "padding", "VALID") == "SAME":
            # TF averages over the valid pixels only
            ones = torch.ones_like(xn[:, :1])
            num = F.avg_pool2d(_tf_pad(xn, node, k, s, (1, 1)), k, s)
            den = F.avg_pool2d(_tf_pad(ones, node, k, s, (1, 1)), k, s)
            y = num / den
        else:
            y = F.avg_pool2d(xn, k, s)
    return y.permute(0, 2, 3, 1)


def run_op(node, a):
    """Runs one graph node on its input values `a`; returns a value or a list."""
    op = node["op"]
    name = node["name"]
    if op in ("Identity", "StopGradient", "Snapshot"):
        return a[0]
    if op in ("Add", "AddV2", "BiasAdd"):
        return a[0] + a[1]
    if op == "Sub":
        return a[0] - a[1]
    if op == "Mul":
        return a[0] * a[1]
    if op in ("RealDiv", "Div"):
        return a[0] / a[1]
    if op == "Maximum":
        return torch.maximum(a[0], a[1].to(a[0].dtype))
    if op == "Minimum":
        return torch.minimum(a[0], a[1].to(a[0].dtype))
    if op in _ELEMENTWISE:
        return _ELEMENTWISE[op](a[0])
    if op == "LeakyRelu":
        return F.leaky_relu(a[0], _attr(node, "alpha", 0.2))
    if op == "Prelu":
        return torch.where(a[0] >= 0, a[0], a[0] * a[1])
    if op == "Softmax":
        return torch.softmax(a[0], dim=-1)
    if op == "Cast":
        dst = _attr(node, "DstT", "DT_FLOAT")
        return a[0].to({"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_INT64": torch.int64,
                        "DT_BOOL": torch.bool}[dst])
    if op == "Pad":
        p = a[1].tolist()
        flat = [v for pair in reversed(p) for v in pair]
        return F.pad(a[0], flat)
    if op == "PadV2":
        p = a[1].tolist()
        flat = [v for pair in reversed(p) for v in pair]
        return F.pad(a[0], flat, value=float(a[2].item()))
    if op == "Transpose":
        return a[0].permute(a[1].tolist())
    if op == "Reshape":
        return a[0].reshape([int(v) for v in a[1].reshape(-1).tolist()])
    if op == "Squeeze":
        dims = _attr(node, "squeeze_dims", [])
        x = a[0]
        if not dims:
            return x.squeeze()
        for d in sorted((d % x.dim() for d in dims), reverse=True):
            x = x.squeeze(d)
        return x
    if op == "ExpandDims":
        return a[0].unsqueeze(int(a[1].item()))
    if op == "ConcatV2":
        axis = int(a[-1].item())
        return torch.cat(a[:-1], dim=axis)
    if op == "SplitV":
        return _splitv(node, a[0], a[1], a[2].item())
    if op == "Split":
        n = _attr(node, "num_split", 1)
        return list(torch.chunk(a[1], n, dim=int(a[0].item())))
    if op in ("Mean", "Sum", "Max"):
        axes = _reduce_axes(a[0], a[1])
        keep = _attr(node, "keep_dims", False)
        if op == "Mean":
            return torch.mean(a[0], dim=axes, keepdim=keep)
        if op == "Sum":
            return torch.sum(a[0], dim=axes, keepdim=keep)
        return torch.amax(a[0], dim=axes, keepdim=keep)
    if op in ("MatMul", "_FusedMatMul"):
        x, w = a[0], a[1]
        if _attr(node, "transpose_a", False):
            x = x.t()
        if _attr(node, "transpose_b", False):
            w = w.t()
        y = x @ w
        return _fused(node, y, a[2:]) if op == "_FusedMatMul" else y
    if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
        depthwise = "Depthwise" in op
        fused = op.startswith("_Fused") or op.startswith("Fused")
        bias = a[2] if node.get("_bias") else None
        y = _nhwc_conv(a[0], a[1], node, depthwise, bias)
        return _fused(node, y, a[2:]) if fused else y
    if op == "MaxPool":
        return _pool(node, a[0], "max")
    if op == "AvgPool":
        return _pool(node, a[0], "avg")
    if op == "ResizeBilinear":
        return _resize_bilinear(node, a[0], a[1])
    if op == "SparseToDense":
        return _sparse_to_dense(node, a[0], a[1], a[2], a[3])
    raise ConvertError(f"node {name}: op {op} is not supported")


SUPPORTED_OPS = [
    "Identity", "Add", "AddV2", "BiasAdd", "Sub", "Mul", "RealDiv", "Maximum", "Minimum",
    "Relu", "Relu6", "LeakyRelu", "Prelu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Sqrt",
    "Rsqrt", "Square", "Softmax", "Cast", "Pad", "PadV2", "Transpose", "Reshape", "Squeeze",
    "ExpandDims", "ConcatV2", "SplitV", "Split", "Mean", "Sum", "Max", "MatMul", "_FusedMatMul",
    "Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative", "MaxPool",
    "AvgPool", "ResizeBilinear", "SparseToDense",
]


def _ref(s):
    """'name:1' -> ('name', 1); control inputs ('^name') -> None."""
    if s.startswith("^"):
        return None
    m = re.match(r"^(.*?)(?::(\d+))?$", s)
    return m.group(1), int(m.group(2) or 0)


class TfjsGraph(torch.nn.Module):
    """Runs a TF.js graph as torch ops. Constant-only subgraphs are folded here, in
    __init__; forward runs the rest (and is what tracing records)."""

    def __init__(self, model_json, weights, outputs):
        super().__init__()
        nodes = model_json["modelTopology"]["node"]
        by_name = {n["name"]: n for n in nodes}
        placeholders = [n["name"] for n in nodes if n["op"] == "Placeholder"]
        if len(placeholders) != 1:
            raise ConvertError(f"the graph has {len(placeholders)} inputs, only single-input graphs are supported")
        self.input_name = placeholders[0]
        self.input_shape = [int(d.get("size", -1)) for d in
                            by_name[self.input_name]["attr"]["shape"]["shape"].get("dim", [])]
        self.outputs = outputs
        for o in outputs:
            if o not in by_name:
                raise ConvertError(f"output {o} is not a node of the graph")
        # topological order of what the outputs need
        order, seen, stack = [], set(), [(o, False) for o in reversed(outputs)]
        while stack:
            name, done = stack.pop()
            if done:
                order.append(name)
                continue
            if name in seen:
                continue
            seen.add(name)
            stack.append((name, True))
            for i in by_name[name].get("input", []):
                r = _ref(i)
                if r and r[0] not in seen:
                    if r[0] not in by_name:
                        raise ConvertError(f"node {name} reads {r[0]}, which the graph lacks")
                    stack.append((r[0], False))
        consts = {}
        for name in order:
            n = by_name[name]
            if n["op"] == "Const":
                if name not in weights:
                    raise ConvertError(f"constant {name} is not in the weights manifest")
                consts[name] = weights[name]
        self.plan = []
        folded = {}
        dynamic = {self.input_name}
        for name in order:
            n = by_name[name]
            if n["op"] in ("Const", "Placeholder"):
                continue
            if n["op"] not in SUPPORTED_OPS:
                raise ConvertError(f"node {name}: op {n['op']} is not supported (supported: {', '.join(SUPPORTED_OPS)})")
            refs = [r for r in map(_ref, n.get("input", [])) if r]
            if all(r[0] not in dynamic for r in refs):
                args = [self._pick(consts.get(r[0], folded.get(r[0])), r[1]) for r in refs]
                folded[name] = run_op(n, args)
            else:
                dynamic.add(name)
                self.plan.append((n, refs))
        self._rewrite(consts, folded, dynamic, outputs)
        self._names = {}
        needed = set()
        for n, refs in self.plan:
            for r in refs:
                if r[0] not in dynamic:
                    needed.add(r[0])
        for o in outputs:
            if o not in dynamic:
                needed.add(o)
        for i, name in enumerate(sorted(needed)):
            v = consts.get(name, folded.get(name))
            if isinstance(v, list):
                raise ConvertError(f"multi-output constant {name} is not supported")
            key = f"c{i}"
            self.register_buffer(key, v.clone())
            self._names[name] = key

    def _rewrite(self, consts, folded, dynamic, outputs):
        """Rewrites that change no result, for speed: convolution kernels in
        torch's layout once (not per call), a zero Pad before a Transpose
        before a VALID convolution folded into the convolution's padding, and
        a constant per-channel Add after a plain convolution into its bias."""
        def value(name):
            v = consts.get(name, folded.get(name))
            return None if isinstance(v, list) else v

        producer = {n["name"]: (n, refs) for n, refs in self.plan}
        uses = {}
        for n, refs in self.plan:
            for r in refs:
                uses[r[0]] = uses.get(r[0], 0) + 1
        for o in outputs:
            uses[o] = uses.get(o, 0) + 1
        drop = set()
        plan = []
        for n, refs in self.plan:
            op = n["op"]
            if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative") \
                    and len(refs) >= 2 and value(refs[1][0]) is not None and refs[1][1] == 0 \
                    and _attr(n, "data_format", "NHWC") == "NHWC":
                n = dict(n)
                refs = list(refs)
                wname = refs[1][0] + "/oihw"
                consts[wname] = torch_conv_weight(value(refs[1][0]), "Depthwise" in op)
                refs[1] = (wname, 0)
                n["_oihw"] = True
                # Pad -> Transpose(0, 2, 3, 1) -> VALID convolution
                t = producer.get(refs[0][0])
                if _attr(n, "padding", "VALID") == "VALID" and t and t[0]["op"] == "Transpose" \
                        and uses.get(t[0]["name"]) == 1:
                    perm = value(t[1][1][0])
                    p = producer.get(t[1][0][0])
                    if perm is not None and perm.tolist() == [0, 2, 3, 1] and p and p[0]["op"] == "Pad" \
                            and uses.get(p[0]["name"]) == 1:
                        pads = value(p[1][1][0])
                        if pads is not None and pads.shape == (4, 2) and pads[:2].abs().sum() == 0:
                            n["_pad"] = tuple(int(v) for v in pads[2:].reshape(-1).tolist())
                            drop.add(p[0]["name"])
                            tn, trefs = t
                            producer[tn["name"]] = (tn, [p[1][0]] + list(trefs[1:]))
                # a plain convolution's constant per-channel Add
                if op in ("Conv2D", "DepthwiseConv2dNative") and uses.get(n["name"]) == 1:
                    for c, crefs in self.plan:
                        if c["op"] in ("Add", "AddV2", "BiasAdd") and crefs[0][0] == n["name"]:
                            b = value(crefs[1][0])
                            cout = int(consts[wname].shape[0])
                            if b is not None and b.dim() == 1 and b.shape[0] == cout and b.is_floating_point():
                                n["_bias"] = True
                                refs.append(crefs[1])
                                c_new = {"name": c["name"], "op": "Identity", "input": [n["name"]]}
                                producer[c["name"]] = (c_new, [crefs[0]])
                            break
                producer[n["name"]] = (n, refs)
        for n, refs in self.plan:
            if n["name"] not in drop:
                plan.append(producer[n["name"]])
        self.plan = plan
        for name in drop:
            dynamic.discard(name)
        for n, refs in self.plan:
            for r in refs:
                if r[0] in consts and r[0] not in folded:
                    dynamic.discard(r[0])

    @staticmethod
    def _pick(v, idx):
        if isinstance(v, list):
            return v[idx]
        if idx != 0:
            raise ConvertError(f"output {idx} of a single-output node")
        return v

    def forward(self, x):
        vals = {self.input_name: x}
        for name, key in self._names.items():
            vals[name] = getattr(self, key)
        for n, refs in self.plan:
            vals[n["name"]] = run_op(n, [self._pick(vals[r[0]], r[1]) for r in refs])
        outs = tuple(self._pick(vals[o], 0) for o in self.outputs)
        return outs


class NhwcEmbedder(torch.nn.Module):
    """Takes the embedder's normalised NCHW batch, hands the model NHWC, returns
    the first output as (N, D)."""

    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def forward(self, x):
        y = self.graph(x.permute(0, 2, 3, 1).contiguous())[0]
        return y.reshape(y.shape[0], -1)


def default_outputs(model_json):
    nodes = model_json["modelTopology"]["node"]
    names = {n["name"] for n in nodes}
    sig = model_json.get("signature") or (model_json.get("userDefinedMetadata") or {}).get("signature")
    if sig and sig.get("outputs"):
        outs = []
        for k, v in sig["outputs"].items():
            nm = v.get("name", k).split(":")[0]
            if nm in names:
                outs.append(nm)
        if outs:
            return _natural_sort(outs)
    consumed = {(_ref(i) or ("",))[0] for n in nodes for i in n.get("input", [])}
    return _natural_sort([n["name"] for n in nodes if n["name"] not in consumed and n["op"] != "Const"])


def _natural_sort(names):
    return sorted(names, key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)])


def load_graph(path, outputs=None):
    try:
        with open(path, "r", encoding="utf-8") as f:
            model_json = json.load(f)
    except OSError as e:
        raise ConvertError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConvertError(f"{path} is not JSON: {e}") from None
    if model_json.get("format") not in (None, "graph-model") or "modelTopology" not in model_json:
        raise ConvertError(f"{path} is not a TF.js graph model (format {model_json.get('format')!r}; layers models are not supported)")
    weights = load_weights(model_json, os.path.dirname(os.path.abspath(path)))
    return TfjsGraph(model_json, weights, outputs or default_outputs(model_json))


def detector_order(graph, example):
    """NanoDet: orders the outputs (scores, distributions) per level, finest first."""
    with torch.no_grad():
        outs = graph(example)
    levels = {}
    for i, o in enumerate(outs):
        if o.dim() != 3:
            raise ConvertError(f"detector output {graph.outputs[i]} has shape {list(o.shape)}, expected (1, anchors, C)")
        levels.setdefault(int(o.shape[1]), []).append(i)
    order = []
    for anchors in sorted(levels, reverse=True):
        idx = levels[anchors]
        if len(idx) != 2:
            raise ConvertError(f"detector: {len(idx)} outputs with {anchors} anchors, expected a scores and a box output")
        a, b = idx
        ca, cb = int(outs[a].shape[2]), int(outs[b].shape[2])
        # the box distributions have 4 * (reg_max + 1) channels, the scores one per class
        if ca == 80 or (cb != 80 and cb % 4 == 0 and ca % 4 != 0):
            order += [a, b]
        else:
            order += [b, a]
    return [graph.outputs[i] for i in order]


def convert(src, dst, outputs=None, embedder=False, detector=False, batch=1):
    graph = load_graph(src, outputs)
    shape = [batch if s <= 0 else s for s in graph.input_shape]
    if len(shape) != 4:
        raise ConvertError(f"input {graph.input_name} has shape {graph.input_shape}, expected 4-d")
    example = torch.rand(shape) * (255.0 if embedder else 1.0)
    if detector:
        graph.outputs = detector_order(graph, example)
    module = graph
    if embedder:
        module = NhwcEmbedder(graph)
        example = example.permute(0, 3, 1, 2).contiguous()
    module.eval()
    with torch.no_grad():
        traced = torch.jit.trace(module, example, check_trace=False)
    d = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=".convert-tfjs.", dir=d)
    os.close(fd)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        traced.save(tmp)
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
    return graph


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_json")
    ap.add_argument("out")
    ap.add_argument("--output", action="append", help="output node (repeatable; default: the signature's, or the graph's sinks)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--embedder", action="store_true", help="wrap a 0-255 NHWC embedder for embedder model=")
    g.add_argument("--detector", action="store_true", help="order a NanoDet's outputs for objectdetect")
    ap.add_argument("--batch", type=int, default=1, help="batch size traced with (batch dimensions of -1)")
    args = ap.parse_args()
    try:
        graph = convert(args.model_json, args.out, args.output, args.embedder, args.detector, args.batch)
    except ConvertError as e:
        print(f"convert-tfjs: {args.model_json}: {e}", file=sys.stderr)
        return 1
    print(f"convert-tfjs: {args.out}: input {graph.input_name} {graph.input_shape}, outputs {', '.join(graph.outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
