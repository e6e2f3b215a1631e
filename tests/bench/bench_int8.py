#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Is a post-training int8 resnet18 worth shipping as precision=int8?

    nice /usr/bin/python3 tests/bench/bench_int8.py [BUILD_DIR] [--weights FILE.pth]
        [--dataset DIR/cifar-10-batches-py] [--engine onednn|qnnpack] [--seconds S]

Quantizes resnet18 post-training, static, as models/export-torchscript.py
--int8 does (quantize_resnet(): torchvision's quantizable resnet18, convs fused
with their batch norms and ReLUs, per-channel weights), with LibTorch's
quantized engine (onednn by default; this LibTorch 1.13 has onednn and
qnnpack, no fbgemm), activations calibrated on 256 CIFAR training images
resized to 224. It is traced to TorchScript and measured, at 224 batch
16 with 2 threads, side by side in rounds against:
  - the same int8 TorchScript through our TorchScript path (tests/embedder_run.py,
    `appsrc ! embedder model=INT8.pt resize=0 ...`, as bench_embedder.py),
  - our native int8 (`embedder precision=int8 calibration-location=DIR`, the
    same 256 CIFAR training images written as PNGs, calibrated by the engine
    itself at input-size 224 resize 0),
  - our native fp32 (precision=fp32), the same way,
  - our native bf16 (precision=bf16) where the CPU has native bf16: what
    precision=auto picks there when it is the faster,
  - torchvision fp32 in this process.
Quality, on 1000 CIFAR test images resized to 224: cosine of each int8's
embeddings to fp32's, and P@10 of each (leave-one-out, same class relevant);
the native int8 embeds them through tests/embed-tensor with the weights file.
The gate (issue 12): int8 >= 1.5x our fp32, cosine >= 0.99, P@10 within 0.01.
Without --weights (or the official file in the torch hub cache) the weights
are random with randomised batch-norm statistics: cosine and the speed are
still measured, but P@10 then says little about real use.
"""
import argparse
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_embedder  # noqa: E402
import cpu  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import model_fixtures  # noqa: E402

spec = importlib.util.spec_from_file_location("export_torchscript", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "export-torchscript.py"))
exporter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exporter)

DEFAULT_DATASET = "/work/shared/data/cifar10-sample/cifar-10-batches-py"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def cifar(dataset, name, n):
    with open(os.path.join(dataset, name), "rb") as f:
        d = pickle.load(f, encoding="bytes")
    x = torch.from_numpy(np.asarray(d[b"data"][:n]).reshape(-1, 3, 32, 32))
    x = torch.nn.functional.interpolate(x.float() / 255, size=(224, 224), mode="bilinear",
                                        align_corners=False, antialias=False)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, np.asarray(d[b"labels"][:n])


def write_pngs(dataset, name, n, folder):
    """The first n images of a CIFAR batch as PNG files, in sorted order."""
    with open(os.path.join(dataset, name), "rb") as f:
        d = pickle.load(f, encoding="bytes")
    os.makedirs(folder)
    for i, row in enumerate(np.asarray(d[b"data"][:n])):
        Image.fromarray(row.reshape(3, 32, 32).transpose(1, 2, 0)).save(
            os.path.join(folder, f"{i:04d}.png"))


def native_bf16(build, weights, x, tmp):
    """Our precision=bf16 embeddings of x through tests/embed-tensor."""
    out, chunks = os.path.join(tmp, "bf16.f32"), []
    for chunk in x.split(100):
        inp = os.path.join(tmp, "chunk.f32")
        chunk.numpy().astype(np.float32).tofile(inp)
        res = subprocess.run([os.path.join(build, "tests", "embed-tensor"), inp, str(len(chunk)),
                              "224", "224", out, "model=resnet18", f"weights={weights}",
                              "precision=bf16", "threads=2"], capture_output=True, text=True)
        info = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
        if res.returncode != 0 or info.get("active_precision") != "bf16":
            raise RuntimeError(f"native bf16: {res.stderr[-500:]} {info}")
        chunks.append(torch.from_numpy(np.fromfile(out, dtype=np.float32)).view(len(chunk), -1))
    return torch.cat(chunks)


def native_int8(build, weights, calib, x, tmp):
    """Our precision=int8 embeddings of x through tests/embed-tensor: the first
    chunk calibrates on calib, the others reuse the ranges it reports."""
    out, ranges, chunks = os.path.join(tmp, "native.f32"), None, []
    for chunk in x.split(100):
        inp = os.path.join(tmp, "chunk.f32")
        chunk.numpy().astype(np.float32).tofile(inp)
        keys = [f"calibration={calib}", "calibration_images=256", "input_size=224", "resize=0"] \
            if ranges is None else [f"int8_activations={ranges}"]
        res = subprocess.run([os.path.join(build, "tests", "embed-tensor"), inp, str(len(chunk)),
                              "224", "224", out, "model=resnet18", f"weights={weights}",
                              "precision=int8", "threads=2", *keys],
                             capture_output=True, text=True)
        info = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
        if res.returncode != 0 or info.get("active_precision") != "int8":
            raise RuntimeError(f"native int8: {res.stderr[-500:]} {info}")
        ranges = info["int8_activations"]
        chunks.append(torch.from_numpy(np.fromfile(out, dtype=np.float32)).view(len(chunk), -1))
    return torch.cat(chunks)


def state_dict(weights):
    if weights:
        return torch.load(weights, map_location="cpu")
    gen = torch.Generator().manual_seed(1234)
    torch.manual_seed(7)
    model = torchvision.models.resnet18(weights=None)
    model_fixtures.randomise_batch_norms(model, gen)
    return model.state_dict()


def embed(model, x):
    with torch.no_grad():
        return torch.cat([torch.nn.functional.normalize(model(b), dim=1) for b in x.split(16)])


def precision_at_10(emb, labels):
    sims = emb @ emb.T
    sims.fill_diagonal_(-float("inf"))
    top = sims.topk(10, dim=1).indices.numpy()
    return float((labels[top] == labels[:, None]).mean())


def rate(model, x, seconds):
    with torch.no_grad():
        model(x)
        done, start = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - start < seconds:
            model(x)
            done += x.shape[0]
        return done / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--weights", help="torchvision resnet18 .pth (default: the hub cache's "
                        "official file if present, else random)")
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--engine", default="onednn", choices=["onednn", "qnnpack"])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    weights = args.weights
    if weights is None:
        hub = os.path.join(torch.hub.get_dir(), "checkpoints", "resnet18-f37072fd.pth")
        weights = hub if os.path.exists(hub) else None
    print(cpu.describe(), flush=True)
    print(f"weights: {weights or 'random (randomised batch norms)'}; quantized engine "
          f"{args.engine} (supported: {', '.join(torch.backends.quantized.supported_engines)})",
          flush=True)

    state = state_dict(weights)
    fp32 = torchvision.models.resnet18(weights=None)
    fp32.load_state_dict(state)
    fp32.fc = torch.nn.Identity()
    fp32.eval()
    calib, _ = cifar(args.dataset, "data_batch_1", 256)
    int8 = exporter.quantize_resnet("resnet18", fp32, calib, args.engine)

    x, labels = cifar(args.dataset, "test_batch", args.queries)
    e32, e8 = embed(fp32, x), embed(int8, x)
    cos = torch.nn.functional.cosine_similarity(e32, e8, dim=1)
    p32, p8 = precision_at_10(e32, labels), precision_at_10(e8, labels)

    batch = x[:16].contiguous()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        calib = os.path.join(tmp, "calib")
        write_pngs(args.dataset, "data_batch_1", 256, calib)
        pth = weights or os.path.join(tmp, "resnet18.pth")
        if not weights:
            torch.save(state, pth)
        n8 = native_int8(args.build, pth, calib, x, tmp)
        ncos = torch.nn.functional.cosine_similarity(e32, n8, dim=1)
        pn8 = precision_at_10(n8, labels)
        bf16 = cpu.native_bf16()
        if bf16:
            n16 = native_bf16(args.build, pth, x, tmp)
            cos16 = torch.nn.functional.cosine_similarity(e32, n16, dim=1)
            p16 = precision_at_10(n16, labels)
        native = f"calibration-location={calib}"
        path = os.path.join(tmp, "resnet18-int8.pt")
        int8.save(path)
        for _ in range(args.rounds):
            tv32 = rate(fp32, batch, args.seconds)
            py8 = rate(int8, batch, args.seconds)
            ours32 = bench_embedder.our_rate(args.build, "resnet18", 224, 16, "fp32", tv32,
                                             args.seconds, tmp)
            ours8 = bench_embedder.our_rate(args.build, path, 224, 16, "fp32", py8,
                                            args.seconds, tmp)
            native8 = bench_embedder.our_rate(args.build, "resnet18", 224, 16, "int8", ours8,
                                              args.seconds, tmp, native)
            ours16 = bench_embedder.our_rate(args.build, "resnet18", 224, 16, "bf16", ours32,
                                             args.seconds, tmp) if bf16 else float("nan")
            rows.append((tv32, ours32, py8, ours8, native8, ours16))
            print("  round: tv fp32 %.1f, ours fp32 %.1f, int8 in Python %.1f, int8 TorchScript "
                  "through embedder %.1f, native int8 %.1f, native bf16 %.1f img/s" % rows[-1],
                  file=sys.stderr, flush=True)
            print(f"  load average after the round: {os.getloadavg()[0]:.2f}", file=sys.stderr,
                  flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print("%-18s %9s %10s %12s %10s %12s %10s %10s %10s %10s" % (
        "resnet18 @224 b16", "tv fp32", "ours fp32", "int8 Python", "int8 .pt", "native int8",
        "ours bf16", ".pt/ours32", "nat/ours32", "nat/bf16"))
    for tv32, ours32, py8, ours8, native8, ours16 in rows:
        print("%-18s %9.1f %10.1f %12.1f %10.1f %12.1f %10.1f %9.2fx %9.2fx %9.2fx" % (
            "img/s", tv32, ours32, py8, ours8, native8, ours16, ours8 / ours32,
            native8 / ours32, native8 / ours16))
    print(f"cosine to fp32 over {len(labels)} CIFAR test images at 224: TorchScript int8 min "
          f"{cos.min():.4f} mean {cos.mean():.4f}; native int8 min {ncos.min():.4f} mean "
          f"{ncos.mean():.4f}")
    print(f"P@10: fp32 {p32:.4f}, TorchScript int8 {p8:.4f} ({p8 - p32:+.4f}), native int8 "
          f"{pn8:.4f} ({pn8 - p32:+.4f})")
    if bf16:
        print(f"native bf16: cosine to fp32 min {cos16.min():.5f} mean {cos16.mean():.5f}; "
              f"P@10 {p16:.4f} ({p16 - p32:+.4f})")
    else:
        print("native bf16: n/a, this CPU has no native bf16")
    print("gate: int8 >= 1.5x ours fp32, cosine >= 0.99, |P@10 difference| <= 0.01")


if __name__ == "__main__":
    main()
