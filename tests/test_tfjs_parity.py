# SPDX-License-Identifier: LGPL-2.1-or-later
"""models/convert-tfjs.py against TF.js itself, on the same pixels.

(a) Offline part: small TF.js graph models written here (random weights, every
    op the converter supports, float16- and uint8-quantized weights, weights split
    over two shards, onnx-tf's Pad-Transpose-conv-Add, which the converter folds
    into one convolution) convert to TorchScript that loads, and the converter's
    errors (unsupported op, truncated shard, layers model) are clear.
(b) TF.js part: @tensorflow/tfjs 4.x (pure JS, cpu backend) runs the same graphs
    in Node on the same inputs: max |diff| <= 2e-5 relative to the output's scale.
    It is installed with npm into $VS_BUILD_DIR/tests/tfjs-node once; without
    npm or the registry this part is skipped with a message.
(c) Real weights: when models/fetch-detectors.sh has filled the user's cache
    (~/.cache/visualsearch, or VS_HUMAN_MODELS_DIR), nanodet, faceres,
    mobileface and mobilefacenet are compared too; otherwise skipped with a message.
Exit 77 (meson's skip) only when (b) could not run at all.
"""
import base64
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import torch

SOURCE = os.environ.get("VS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("VS_BUILD_DIR", tempfile.gettempdir())
TFJS_VERSION = "4.22.0"
torch.set_num_threads(2)
torch.manual_seed(20261207)

spec = importlib.util.spec_from_file_location("convert_tfjs", os.path.join(SOURCE, "models", "convert-tfjs.py"))
conv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conv)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, failures, finish, run as run_bounded  # noqa: E402


# --- a graph writer -----------------------------------------------------------

def _s(v):
    return {"s": base64.b64encode(v.encode()).decode()}


def _ints(v):
    return {"list": {"i": [str(i) for i in v]}}


class Graph:
    def __init__(self):
        self.nodes = []
        self.weights = []  # (spec, bytes)
        self.n = 0

    def const(self, value, quant=None, name=None):
        name = name or f"c{len(self.weights)}"
        t = torch.as_tensor(value)
        if t.dtype == torch.float64:
            t = t.float()
        if t.dtype == torch.int64:
            t = t.int()
        dtype = {torch.float32: "float32", torch.int32: "int32"}[t.dtype]
        spec = {"name": name, "shape": list(t.shape), "dtype": dtype}
        if quant == "float16":
            data = t.half().numpy().tobytes()
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        elif quant == "uint8":
            lo, hi = float(t.min()), float(t.max())
            scale = (hi - lo) / 255 or 1.0
            q = torch.round((t - lo) / scale).clamp(0, 255).to(torch.uint8)
            data = q.numpy().tobytes()
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo, "original_dtype": "float32"}
        else:
            data = t.contiguous().numpy().tobytes()
        self.weights.append((spec, data))
        self.nodes.append({"name": name, "op": "Const",
                           "attr": {"dtype": {"type": "DT_FLOAT" if dtype == "float32" else "DT_INT32"}}})
        return name

    def op(self, op, inputs, **attr):
        self.n += 1
        name = f"{op.lower()}_{self.n}"
        a = {"T": {"type": "DT_FLOAT"}}
        a.update(attr)
        self.nodes.append({"name": name, "op": op, "input": list(inputs), "attr": a})
        return name

    def placeholder(self, shape, name="input"):
        self.nodes.append({"name": name, "op": "Placeholder",
                           "attr": {"dtype": {"type": "DT_FLOAT"},
                                    "shape": {"shape": {"dim": [{"size": str(s)} for s in shape]}}}})
        return name

    def write(self, d, outputs, shards=2):
        blob = b"".join(w[1] for w in self.weights)
        cut = len(blob) // 2 if shards == 2 else len(blob)
        paths = ["group1-shard1of2.bin", "group1-shard2of2.bin"] if shards == 2 else ["weights.bin"]
        with open(os.path.join(d, paths[0]), "wb") as f:
            f.write(blob[:cut])
        if shards == 2:
            with open(os.path.join(d, paths[1]), "wb") as f:
                f.write(blob[cut:])
        model = {"format": "graph-model", "generatedBy": "test", "convertedBy": "test_tfjs_parity.py",
                 "signature": {"outputs": {o: {"name": o} for o in outputs}},
                 "modelTopology": {"node": self.nodes, "library": {}, "versions": {}},
                 "weightsManifest": [{"paths": paths, "weights": [w[0] for w in self.weights]}]}
        path = os.path.join(d, "model.json")
        with open(path, "w") as f:
            json.dump(model, f)
        return path


def rnd(*shape, scale=0.5):
    return torch.randn(*shape) * scale


def conv_graph():
    """Convolutions, pools, pads, resize, element-wise ops (NHWC 1x9x11x3)."""
    g = Graph()
    x = g.placeholder([1, 9, 11, 3])
    same, valid = _s("SAME"), _s("VALID")
    nhwc = _s("NHWC")
    c = g.op("Conv2D", [x, g.const(rnd(3, 3, 3, 8), "float16")], strides=_ints([1, 2, 2, 1]), padding=same,
             data_format=nhwc, dilations=_ints([1, 1, 1, 1]))
    c = g.op("BiasAdd", [c, g.const(rnd(8))], data_format=nhwc)
    c = g.op("Relu", [c])
    d = g.op("DepthwiseConv2dNative", [c, g.const(rnd(3, 3, 8, 2), "uint8")], strides=_ints([1, 1, 1, 1]),
             padding=same, data_format=nhwc, dilations=_ints([1, 1, 1, 1]))
    d = g.op("Mul", [d, g.const(rnd(16))])
    d = g.op("Sub", [d, g.const(rnd(16))])
    d = g.op("Minimum", [g.op("Maximum", [d, g.const(torch.tensor(-1.0))]), g.const(torch.tensor(1.5))])
    d = g.op("LeakyRelu", [d], alpha={"f": 0.1})
    f = g.op("_FusedConv2D", [d, g.const(rnd(2, 2, 16, 6)), g.const(rnd(6))], strides=_ints([1, 1, 1, 1]),
             padding=valid, data_format=nhwc, dilations=_ints([1, 1, 1, 1]), num_args={"i": "1"},
             fused_ops={"list": {"s": [base64.b64encode(b"BiasAdd").decode(), base64.b64encode(b"Relu").decode()]}},
             epsilon={"f": 0.0})
    f = g.op("FusedDepthwiseConv2dNative", [f, g.const(rnd(3, 3, 6, 1)), g.const(rnd(6))],
             strides=_ints([1, 2, 2, 1]), padding=same, data_format=nhwc, dilations=_ints([1, 1, 1, 1]),
             num_args={"i": "1"},
             fused_ops={"list": {"s": [base64.b64encode(b"BiasAdd").decode(), base64.b64encode(b"Relu6").decode()]}})
    dil = g.op("Conv2D", [d, g.const(rnd(3, 3, 16, 4))], strides=_ints([1, 1, 1, 1]), padding=same,
               data_format=nhwc, dilations=_ints([1, 2, 2, 1]))
    m = g.op("MaxPool", [dil], ksize=_ints([1, 3, 3, 1]), strides=_ints([1, 2, 2, 1]), padding=same, data_format=nhwc)
    a = g.op("AvgPool", [dil], ksize=_ints([1, 3, 3, 1]), strides=_ints([1, 2, 2, 1]), padding=same, data_format=nhwc)
    av = g.op("AvgPool", [dil], ksize=_ints([1, 2, 2, 1]), strides=_ints([1, 2, 2, 1]), padding=valid,
              data_format=nhwc)
    p = g.op("Pad", [m, g.const(torch.tensor([[0, 0], [1, 2], [0, 1], [0, 0]], dtype=torch.int32))])
    p2 = g.op("PadV2", [a, g.const(torch.tensor([[0, 0], [2, 0], [1, 1], [0, 0]], dtype=torch.int32)),
                        g.const(torch.tensor(-0.5))])
    r = g.op("ResizeBilinear", [f, g.const(torch.tensor([7, 5], dtype=torch.int32))],
             half_pixel_centers={"b": True}, align_corners={"b": False})
    r2 = g.op("ResizeBilinear", [f, g.const(torch.tensor([6, 9], dtype=torch.int32))],
              half_pixel_centers={"b": False}, align_corners={"b": True})
    t = g.op("Transpose", [r, g.const(torch.tensor([0, 3, 1, 2], dtype=torch.int32))])
    e = g.op("Abs", [t])
    e = g.op("Add", [g.op("Square", [e]), g.const(torch.tensor(1.0))])
    e = g.op("Rsqrt", [e])
    e = g.op("AddV2", [e, g.op("Sqrt", [g.op("Exp", [g.op("Neg", [g.op("Tanh", [g.op("Sigmoid", [t])])])])])])
    e = g.op("RealDiv", [e, g.const(torch.tensor(3.0))])
    ident = g.op("Identity", [av])
    # onnx-tf's shape (nanodet): NCHW Pad -> Transpose to NHWC -> VALID conv -> Add
    # bias, which the converter folds into one convolution
    nchw = g.op("Transpose", [x, g.const(torch.tensor([0, 3, 1, 2], dtype=torch.int32))])
    padded = g.op("Pad", [nchw, g.const(torch.tensor([[0, 0], [0, 0], [1, 1], [1, 1]], dtype=torch.int32))])
    back = g.op("Transpose", [padded, g.const(torch.tensor([0, 2, 3, 1], dtype=torch.int32))])
    folded = g.op("Conv2D", [back, g.const(rnd(3, 3, 3, 5))], strides=_ints([1, 1, 1, 1]), padding=valid,
                  data_format=nhwc, dilations=_ints([1, 1, 1, 1]))
    folded = g.op("Add", [folded, g.const(rnd(5))])
    return g, [p, p2, r2, e, ident, folded]


def head_graph():
    """Reductions, matrix products, shapes, splits, folding (NHWC 2x4x4x6)."""
    g = Graph()
    x = g.placeholder([2, 4, 4, 6])
    mean = g.op("Mean", [x, g.const(torch.tensor([1, 2], dtype=torch.int32))], keep_dims={"b": False})
    mm = g.op("MatMul", [mean, g.const(rnd(6, 10))], transpose_a={"b": False}, transpose_b={"b": False})
    fm = g.op("_FusedMatMul", [mm, g.const(rnd(12, 10)), g.const(rnd(12))], transpose_a={"b": False},
              transpose_b={"b": True}, num_args={"i": "1"}, epsilon={"f": 0.0},
              fused_ops={"list": {"s": [base64.b64encode(b"BiasAdd").decode(), base64.b64encode(b"Relu").decode()]}})
    sm = g.op("Softmax", [fm])
    s = g.op("Sum", [x, g.const(torch.tensor([3], dtype=torch.int32))], keep_dims={"b": True})
    mx = g.op("Max", [x, g.const(torch.tensor([2], dtype=torch.int32))], keep_dims={"b": False})
    rs = g.op("Reshape", [x, g.const(torch.tensor([2, -1, 6], dtype=torch.int32))])
    sp = g.op("SplitV", [rs, g.const(torch.tensor([2, -1, 3], dtype=torch.int32)),
                         g.const(torch.tensor(2, dtype=torch.int32))], num_split={"i": "3"})
    # a constant-only subgraph (folded at conversion): SparseToDense + AddV2 + Cast
    sd = g.op("SparseToDense", [g.const(torch.tensor([[0], [2]], dtype=torch.int32)),
                                g.const(torch.tensor([4], dtype=torch.int32)),
                                g.const(torch.tensor([1.5, -2.0])), g.const(torch.tensor(0.25))],
              validate_indices={"b": True}, Tindices={"type": "DT_INT32"})
    sd = g.op("AddV2", [sd, g.const(torch.tensor([0.0, 1.0, 2.0, 3.0]))])
    cat = g.op("ConcatV2", [sp, f"{sp}:2", g.const(torch.tensor(2, dtype=torch.int32))], N={"i": "2"},
               Tidx={"type": "DT_INT32"})
    cat = g.op("Mul", [cat, g.op("Cast", [g.const(torch.tensor([1, 2, 3, 4, 5], dtype=torch.int32))],
                                 SrcT={"type": "DT_INT32"}, DstT={"type": "DT_FLOAT"})])
    ch = g.op("Split", [g.const(torch.tensor(1, dtype=torch.int32)), rs], num_split={"i": "2"})
    pr = g.op("Prelu", [f"{ch}:1", g.const(rnd(6))])
    sq = g.op("Squeeze", [s], squeeze_dims=_ints([3]))
    ex = g.op("ExpandDims", [sq, g.const(torch.tensor(1, dtype=torch.int32))])
    fold = g.op("Mul", [f"{sp}:1", g.op("Reshape", [sd, g.const(torch.tensor([1, 1, 4], dtype=torch.int32))])])
    sub = g.op("Sub", [fold, g.const(rnd(4))])
    relu6 = g.op("Relu6", [g.op("Mul", [mx, g.const(torch.tensor(3.0))])])
    return g, [sm, ex, cat, pr, sub, relu6]


def loaded_graph_plan(path, outs):
    return conv.load_graph(path, outs).plan


def unsupported_graph():
    g = Graph()
    x = g.placeholder([1, 2, 2, 1])
    return g, [g.op("Erf", [x])]


# --- TF.js in Node -----------------------------------------------------------

RUNNER = r"""
const fs = require('fs');
const tf = require('@tensorflow/tfjs');
async function main() {
  await tf.setBackend('cpu');
  const [modelPath, inputPath, shapeJson, outPrefix, outputsJson] = process.argv.slice(2);
  const model = JSON.parse(fs.readFileSync(modelPath));
  const dir = require('path').dirname(modelPath);
  const specs = [], bufs = [];
  for (const g of model.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) bufs.push(fs.readFileSync(dir + '/' + p));
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = { load: async () => ({ modelTopology: model.modelTopology, weightSpecs: specs, weightData,
    format: model.format, generatedBy: model.generatedBy, convertedBy: model.convertedBy,
    signature: model.signature, userDefinedMetadata: model.userDefinedMetadata }) };
  const gm = await tf.loadGraphModel(handler);
  const raw = fs.readFileSync(inputPath);
  const x = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), JSON.parse(shapeJson));
  const outputs = JSON.parse(outputsJson);
  let res = gm.execute(x, outputs);
  if (!Array.isArray(res)) res = [res];
  for (let i = 0; i < res.length; i++) {
    const d = await res[i].data();
    fs.writeFileSync(outPrefix + i + '.bin', Buffer.from(new Float32Array(d).buffer));
    fs.writeFileSync(outPrefix + i + '.json', JSON.stringify(res[i].shape));
  }
}
main().catch((e) => { console.error(e && e.stack || e); process.exit(3); });
"""


def install_tfjs():
    """Returns the folder holding node_modules/@tensorflow/tfjs, or None with a reason."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "node/npm are not installed (apt-get install nodejs npm)"
    d = os.path.join(BUILD, "tests", "tfjs-node")
    marker = os.path.join(d, "node_modules", "@tensorflow", "tfjs", "package.json")
    if os.path.exists(marker):
        with open(marker) as f:
            if json.load(f).get("version") == TFJS_VERSION:
                return d, None
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "package.json"), "w") as f:
        json.dump({"name": "vs-tfjs-parity", "private": True}, f)
    try:
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--fetch-timeout=20000",
                            "--fetch-retries=1", f"@tensorflow/tfjs@{TFJS_VERSION}"],
                           cwd=d, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "npm install @tensorflow/tfjs timed out (registry unreachable?)"
    if r.returncode != 0 or not os.path.exists(marker):
        return None, "npm install @tensorflow/tfjs failed (offline?): " + r.stderr.strip().splitlines()[-1:][0] \
            if r.stderr.strip() else "npm install failed"
    return d, None


def run_tfjs(node_dir, model_json, x, outputs, work):
    inp = os.path.join(work, "input.bin")
    x.contiguous().numpy().astype("<f4").tofile(inp)
    runner = os.path.join(node_dir, "run-graph.js")
    with open(runner, "w") as f:
        f.write(RUNNER)
    prefix = os.path.join(work, "tfjs-out-")
    r = run_bounded(["node", runner, model_json, inp, json.dumps(list(x.shape)), prefix, json.dumps(outputs)],
                    cwd=node_dir, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("TF.js failed: " + r.stderr[-2000:])
    res = []
    for i in range(len(outputs)):
        with open(prefix + f"{i}.json") as f:
            shape = json.load(f)
        with open(prefix + f"{i}.bin", "rb") as f:
            data = f.read()
        res.append(torch.tensor(struct.unpack(f"<{len(data) // 4}f", data)).reshape(shape))
    return res


def compare(name, ours, theirs, tol=2e-5):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if list(a.shape) != list(b.shape):
            check(False, f"{name} output {i}: shape {list(a.shape)} vs TF.js {list(b.shape)}")
            continue
        diff = (a.float() - b.float()).abs().max().item()
        scale = max(1.0, b.abs().max().item())
        check(diff <= tol * scale, f"{name} output {i} {list(a.shape)}: max |diff| {diff:.2e} (scale {scale:.3g})")


def main():
    work = tempfile.mkdtemp(prefix="tfjs-parity-")
    try:
        graphs = {}
        for name, (g, outs), shape in (("conv", conv_graph(), (1, 9, 11, 3)), ("head", head_graph(), (2, 4, 4, 6))):
            d = os.path.join(work, name)
            os.makedirs(d)
            path = g.write(d, outs)
            x = torch.rand(shape) * 2 - 0.5
            pt = os.path.join(d, "model.pt")
            conv.convert(path, pt, outputs=outs)
            loaded = torch.jit.load(pt)
            with torch.no_grad():
                ours = list(loaded(x))
                eager = list(conv.load_graph(path, outs)(x))
            check(len(ours) == len(outs), f"{name}: TorchScript gives {len(ours)} outputs")
            check(all(torch.equal(a, b) for a, b in zip(ours, eager)), f"{name}: saved TorchScript == eager graph")
            if name == "conv":
                ops = [n["op"] for n, _ in loaded_graph_plan(path, outs)]
                check(ops[-4:] == ["Transpose", "Transpose", "Conv2D", "Identity"] and ops.count("Pad") == 1,
                      f"conv: the Pad before a VALID convolution and its bias Add are folded into it: {ops}")
            graphs[name] = (path, outs, x, ours)

        # errors the user sees
        d = os.path.join(work, "bad")
        os.makedirs(d)
        g, outs = unsupported_graph()
        path = g.write(d, outs, shards=1)
        try:
            conv.load_graph(path)
            check(False, "unsupported op rejected")
        except conv.ConvertError as e:
            check("Erf is not supported" in str(e), f"unsupported op rejected: {e}"[:160])
        g, outs = conv_graph()
        path = g.write(d, outs, shards=1)
        with open(os.path.join(d, "weights.bin"), "r+b") as f:
            f.truncate(100)
        try:
            conv.load_graph(path)
            check(False, "truncated shard rejected")
        except conv.ConvertError as e:
            check("weight shards end at byte 100" in str(e), f"truncated shard rejected: {e}")
        with open(path, "w") as f:
            json.dump({"format": "layers-model", "modelTopology": {}}, f)
        try:
            conv.load_graph(path)
            check(False, "layers model rejected")
        except conv.ConvertError as e:
            check("not a TF.js graph model" in str(e), f"layers model rejected: {e}")

        node_dir, why = install_tfjs()
        if node_dir is None:
            print(f"SKIP the TF.js comparison: {why}")
            if not failures:
                return 77
            finish()
        for name, (path, outs, x, ours) in graphs.items():
            theirs = run_tfjs(node_dir, path, x, outs, os.path.dirname(path))
            compare(name, ours, theirs)

        real(node_dir, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish()
    return 0


def real(node_dir, work):
    models = os.environ.get("VS_HUMAN_MODELS_DIR")
    models = os.path.join(models, "models") if models else os.path.join(
        os.path.expanduser("~"), ".cache", "visualsearch", "human-models", "3.0.4", "package", "models")
    if not os.path.exists(os.path.join(models, "nanodet.json")):
        print(f"SKIP the real human-models: {models} is missing (run models/fetch-detectors.sh)")
        return
    g = torch.Generator().manual_seed(7)
    for name, kind, out in (("nanodet", "detector", None), ("faceres", "embedder", ["global_pooling/Mean"]),
                            ("mobileface", "embedder", None), ("mobilefacenet", "embedder", None)):
        path = os.path.join(models, name + ".json")
        pt = os.path.join(work, name + ".pt")
        graph = conv.convert(path, pt, outputs=out, embedder=kind == "embedder", detector=kind == "detector")
        shape = [1 if s <= 0 else s for s in graph.input_shape]
        if kind == "embedder":
            shape[0] = 2
            x = torch.rand(shape, generator=g) * 255  # NHWC 0-255, what TF.js gets
            with torch.no_grad():
                ours = [torch.jit.load(pt)(x.permute(0, 3, 1, 2).contiguous())]
        else:
            x = torch.rand(shape, generator=g)
            with torch.no_grad():
                ours = list(torch.jit.load(pt)(x))
        theirs = run_tfjs(node_dir, path, x, graph.outputs, work)
        compare(name, ours, [t.reshape(o.shape) if t.numel() == o.numel() else t for t, o in zip(theirs, ours)])


if __name__ == "__main__":
    sys.exit(main())
