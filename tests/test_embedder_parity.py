# SPDX-License-Identifier: LGPL-2.1-or-later
"""embedder against torchvision, on random-weight checkpoints made here.

    test_embedder_parity.py EMBED_TENSOR EMBEDDER_RUN_PY resnet|torchscript

The element runs in tests/embedder_run.py (appsrc ! FRAGMENT ! appsink over
the GstVisualSearch typelib), in a process of its own.

resnet: for resnet18 and resnet50 checkpoints saved with torch.save (batch-norm
statistics and affines randomised too, so a mis-mapped name shows):
  (a) the same preprocessed tensor: max |diff| <= 1e-4 per component (fp32);
  (b) uint8 frames of several sizes and formats (RGB, BGRx, I420) through the
      element: cosine >= 0.999 against torchvision's transforms on the same
      pixels (for I420, the RGB that videoconvert makes of them);
  (c) bf16: on a CPU with native bf16 (avx512_bf16 or amx_bf16 in
      /proc/cpuinfo, plus avx512bw/vl/dq) it runs as bf16 with cosine >= 0.99
      against fp32; elsewhere, and on every CPU with
      VISUALSEARCH_HIDE_NATIVE_BF16=1, it runs as fp32 and says so.
  (d) auto: resolves to fp32 or bf16, within cosine 0.999 of fp32 (fp32
      itself, without a warning, on a CPU without native bf16 or with it
      hidden).
torchscript: two architectures exported by models/export-torchscript.py with
random weights give torchvision's output, through the engine and the element.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
from torchvision import transforms as T

EMBED_TENSOR, EMBEDDER_RUN_PY, MODE = sys.argv[1:4]
SOURCE = os.environ["VS_SOURCE_DIR"]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
torch.set_num_threads(2)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
from model_fixtures import randomise_batch_norms  # noqa: E402


def reference(model, x):
    with torch.no_grad():
        return torch.nn.functional.normalize(model(x), dim=1)


def cpu_has_native_bf16():
    """Read independently of the code under test, from the kernel's view; a
    CPU whose bf16 is hidden (as tests/run.sh's avx2-class run does) has none."""
    if os.environ.get("VISUALSEARCH_HIDE_NATIVE_BF16", "0") not in ("", "0"):
        return False
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return bool(flags & {"avx512_bf16", "amx_bf16"}) and {"avx512bw", "avx512vl", "avx512dq"} <= flags


NATIVE_BF16 = cpu_has_native_bf16()
print(f"CPU native bf16: {NATIVE_BF16}", flush=True)


def embed_tensor(tmp, x, env=None, with_info=False, **props):
    inp, out = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
    x.numpy().astype(np.float32).tofile(inp)
    n, _, h, w = x.shape
    args = [EMBED_TENSOR, inp, str(n), str(h), str(w), out] + [f"{k}={v}" for k, v in props.items()]
    res = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    emb = torch.from_numpy(np.fromfile(out, dtype=np.float32).reshape(n, -1))
    if not with_info:
        return emb
    lines = res.stdout.splitlines()
    info = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("warning="))
    info["warnings"] = [line[len("warning="):] for line in lines if line.startswith("warning=")]
    return emb, info


def check_bf16(tmp, x, ref, name, **props):
    """bf16 where the CPU runs it natively; the fp32 fallback (with a warning)
    elsewhere, and on every CPU when native bf16 is hidden."""
    emb, info = embed_tensor(tmp, x, with_info=True, precision="bf16", **props)
    cos = cosine(emb, ref).min().item()
    if NATIVE_BF16:
        check(info["active_precision"] == "bf16" and cos >= 0.99 and not info["warnings"],
              f"(c) {name} bf16 on a native-bf16 CPU: runs bf16, min cosine {cos:.5f} >= 0.99")
    else:
        check(info["active_precision"] == "fp32" and cos >= 0.99999
              and any("runs as fp32" in w for w in info["warnings"]),
              f"(c) {name} bf16 on a CPU without native bf16: falls back to fp32 with a "
              f"warning (active {info['active_precision']}, cosine {cos:.6f})")
    emb, info = embed_tensor(tmp, x, with_info=True, precision="bf16",
                             env={"VISUALSEARCH_HIDE_NATIVE_BF16": "1"}, **props)
    cos = cosine(emb, ref).min().item()
    check(info["active_precision"] == "fp32" and cos >= 0.99999
          and any("VISUALSEARCH_HIDE_NATIVE_BF16" in w for w in info["warnings"]),
          f"(c) {name} bf16 with native bf16 hidden: fp32 fallback, warning names the variable "
          f"(cosine {cos:.6f})")


def check_auto(tmp, x, ref, name, cache_checks=False, **props):
    """cache_checks: also what the cache decides (once per model kind: each
    check starts the model again)."""
    cache = os.path.join(tmp, "cache-" + name.replace(" ", "-"))
    cache_file = os.path.join(cache, "visualsearch", "precision-auto.ini")
    env = {"XDG_CACHE_HOME": cache}
    emb, info = embed_tensor(tmp, x, env=env, with_info=True, precision="auto", **props)
    cos = cosine(emb, ref).min().item()
    check(info["active_precision"] in ("fp32", "bf16") and cos >= 0.999 and not info["warnings"],
          f"(d) {name} auto runs {info['active_precision']} ({info['precision_reason']}), "
          f"min cosine {cos:.6f} >= 0.999")
    if not NATIVE_BF16:
        check(info["active_precision"] == "fp32" and cos >= 0.99999
              and not os.path.exists(cache_file),
              f"(d) {name} auto on a CPU without native bf16 is fp32, nothing measured")
    else:
        # Measured: fp32 and bf16 timed on a batch of the batch size, the
        # figures in the reason, the verdict cached.
        reason = info["precision_reason"]
        check(reason.endswith("measured now") and " ms, bf16 " in reason
              and "a batch of 1 " in reason and os.path.exists(cache_file),
              f"(d) {name} auto measured fp32 and bf16 on a batch of 1 and cached it", reason)
        emb2, again = embed_tensor(tmp, x, env=env, with_info=True, precision="auto", **props)
        check(again["active_precision"] == info["active_precision"]
              and "measured earlier; cached in " + cache_file in again["precision_reason"],
              f"(d) {name} auto's next start takes the cached verdict",
              again["precision_reason"])
    if NATIVE_BF16 and cache_checks:
        # The cache is what decides: a verdict planted there is followed.
        flip = "fp32" if info["active_precision"] == "bf16" else "bf16"
        with open(cache_file) as f:
            text = f.read()
        with open(cache_file, "w") as f:
            f.write(text.replace("choice=" + info["active_precision"], "choice=" + flip)
                    .replace("why=auto chose", "why=planted: auto chose"))
        emb3, planted = embed_tensor(tmp, x, env=env, with_info=True, precision="auto", **props)
        cos3 = cosine(emb3, ref).min().item()
        check(planted["active_precision"] == flip
              and planted["precision_reason"].startswith("planted: ") and cos3 >= 0.99,
              f"(d) {name} auto follows a cached {flip} verdict (cosine {cos3:.5f})",
              planted["precision_reason"])
        # Another batch size is another measurement; a corrupt file is none.
        _, other = embed_tensor(tmp, x[:2], env=env, with_info=True, precision="auto",
                                batch_size=2, **props)
        check(other["precision_reason"].endswith("measured now")
              and "a batch of 2 " in other["precision_reason"],
              f"(d) {name} auto measures batch size 2 afresh", other["precision_reason"])
        with open(cache_file, "wb") as f:
            f.write(b"\x00[garbage\n=")
        _, fresh = embed_tensor(tmp, x, env=env, with_info=True, precision="auto", **props)
        check(fresh["precision_reason"].endswith("measured now"),
              f"(d) {name} auto measures again over a corrupt cache", fresh["precision_reason"])
    emb, info = embed_tensor(tmp, x, with_info=True, precision="auto",
                             env={"VISUALSEARCH_HIDE_NATIVE_BF16": "1"}, **props)
    cos = cosine(emb, ref).min().item()
    check(info["active_precision"] == "fp32" and cos >= 0.99999 and not info["warnings"]
          and "VISUALSEARCH_HIDE_NATIVE_BF16" in info["precision_reason"],
          f"(d) {name} auto with native bf16 hidden: fp32 ({info['precision_reason']})")


def run_pipeline(tmp, caps, frames, fragment, mode="meta"):
    """Pushes raw frames through appsrc ! FRAGMENT ! appsink."""
    inp, out = os.path.join(tmp, "frames.raw"), os.path.join(tmp, "out.bin")
    np.concatenate([f.reshape(-1) for f in frames]).tofile(inp)
    res = subprocess.run([sys.executable, EMBEDDER_RUN_PY, caps, inp, out, mode, fragment],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stdout + res.stderr)
    info = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    data = np.fromfile(out, dtype=np.uint8 if mode == "raw" else np.float32)
    return info, data


def smooth_image(gen, h, w, channels):
    """Natural-ish pixels: low-frequency colour blobs plus a little noise."""
    low = torch.rand(1, channels, max(h // 16, 2), max(w // 16, 2), generator=gen)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    img = img[0] * 230 + torch.rand(channels, h, w, generator=gen) * 25
    return img.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=1)


def torchvision_transform(rgb_hwc):
    tf = T.Compose([T.Resize(256, antialias=True), T.CenterCrop(224),
                    T.ConvertImageDtype(torch.float32), T.Normalize(MEAN, STD)])
    return tf(torch.from_numpy(rgb_hwc).permute(2, 0, 1))


def resnet_parity(tmp):
    gen = torch.Generator().manual_seed(1234)
    for arch in ["resnet18", "resnet50"]:
        torch.manual_seed(7)
        model = getattr(torchvision.models, arch)(weights=None)
        randomise_batch_norms(model, gen)
        model.eval()
        path = os.path.join(tmp, f"{arch}-random.pth")
        torch.save(model.state_dict(), path)
        model.fc = torch.nn.Identity()

        # (a) same preprocessed tensor, fp32
        x = torch.randn(2, 3, 224, 224, generator=gen)
        ref = reference(model, x)
        ours = embed_tensor(tmp, x, model=arch, weights=path)
        diff = (ours - ref).abs().max().item()
        check(ours.shape == ref.shape and diff <= 1e-4,
              f"(a) {arch} fp32 same tensor: max |diff| {diff:.2e} <= 1e-4")

        # (c) bf16 against fp32, as this CPU allows
        check_bf16(tmp, x, ref, arch, model=arch, weights=path)
        check_auto(tmp, x, ref, arch, cache_checks=arch == "resnet18", model=arch, weights=path)

        # (b) uint8 frames through the element
        fragment = f"embedder model={arch} weights={path} batch-size=2 precision=fp32"
        frame_cases = [("RGB", 320, 240), ("RGB", 223, 131), ("BGRx", 200, 300), ("I420", 176, 144)]
        # resnet50 is slow here: the layouts are the same code as for resnet18.
        for fmt, w, h in frame_cases if arch == "resnet18" else frame_cases[::3]:
            caps = f"video/x-raw,format={fmt},width={w},height={h},framerate=30/1"
            if fmt == "I420":
                # Random Y, U and V planes; the reference sees what videoconvert makes of them.
                frames = [smooth_image(gen, h, w, 1).reshape(-1) for _ in range(2)]
                frames = [np.concatenate([f, smooth_image(gen, h // 2, w // 2, 2)
                                          .transpose(2, 0, 1).reshape(-1)]) for f in frames]
                _, raw = run_pipeline(tmp, caps, frames,
                                      "videoconvert ! video/x-raw,format=RGB", mode="raw")
                rgb = list(raw.reshape(len(frames), h, w, 3))
            else:
                rgb = [smooth_image(gen, h, w, 3) for _ in range(3)]
                if fmt == "BGRx":
                    frames = [np.concatenate([f[..., ::-1], np.full((h, w, 1), 77, np.uint8)], axis=2)
                              for f in rgb]
                else:
                    # GStreamer pads RGB rows to a multiple of 4 bytes.
                    stride = (w * 3 + 3) // 4 * 4
                    frames = [np.pad(f.reshape(h, w * 3), ((0, 0), (0, stride - w * 3)))
                              for f in rgb]
            info, data = run_pipeline(tmp, caps, frames, fragment)
            got = torch.from_numpy(data.reshape(len(frames), -1))
            want = reference(model, torch.stack([torchvision_transform(f) for f in rgb]))
            cos = cosine(got, want).min().item() if got.shape == want.shape else float("nan")
            check(cos >= 0.999 and info["pts_in_order"] == "1",
                  f"(b) {arch} {fmt} {w}x{h} frames through embedder: min cosine {cos:.6f} >= 0.999")
            check(info["model_id"] == f"{arch}:" + subprocess.run(
                ["sha256sum", path], capture_output=True, text=True).stdout[:8]
                and info["preprocessing_id"] ==
                "rgb;resize=256;crop=224;mean=0.485,0.456,0.406;std=0.229,0.224,0.225",
                f"    meta ids {info['model_id']} {info['preprocessing_id']}")

        # Frames already at the input size take a path of their own (no
        # resize, no crop): CIFAR's 32x32 with input-size=32 resize=0.
        if arch == "resnet18":
            at_size = T.Compose([T.ConvertImageDtype(torch.float32), T.Normalize(MEAN, STD)])
            for fmt in ["RGB", "BGRx"]:
                caps = f"video/x-raw,format={fmt},width=32,height=32,framerate=30/1"
                rgb = [smooth_image(gen, 32, 32, 3) for _ in range(3)]
                frames = rgb if fmt == "RGB" else [
                    np.concatenate([f[..., ::-1], np.full((32, 32, 1), 9, np.uint8)], axis=2)
                    for f in rgb]
                info, data = run_pipeline(
                    tmp, caps, frames, f"embedder model={arch} weights={path} input-size=32 "
                    "resize=0 batch-size=2 precision=fp32")
                got = torch.from_numpy(data.reshape(len(frames), -1))
                want = reference(model, torch.stack(
                    [at_size(torch.from_numpy(f).permute(2, 0, 1)) for f in rgb]))
                cos = cosine(got, want).min().item() if got.shape == want.shape else float("nan")
                check(cos >= 0.99999, f"(b) {arch} {fmt} 32x32 frames at input-size=32 resize=0: "
                      f"min cosine {cos:.7f} >= 0.99999")


def torchscript_parity(tmp):
    spec = importlib.util.spec_from_file_location(
        "export_torchscript", os.path.join(SOURCE, "models", "export-torchscript.py"))
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    gen = torch.Generator().manual_seed(99)
    for name in ["mobilenet_v3_small", "squeezenet1_1"]:
        torch.manual_seed(3)
        full = getattr(torchvision.models, name)(weights=None)
        randomise_batch_norms(full, gen)
        state = os.path.join(tmp, f"{name}.pth")
        torch.save(full.state_dict(), state)
        pt = os.path.join(tmp, f"{name}.pt")
        subprocess.run([sys.executable, os.path.join(SOURCE, "models", "export-torchscript.py"),
                        name, pt, "--weights", state], check=True, capture_output=True)
        model = exporter.build(name, state)

        x = torch.randn(2, 3, 224, 224, generator=gen)
        ref = reference(model, x)
        ours = embed_tensor(tmp, x, model=pt)
        diff = (ours - ref).abs().max().item() if ours.shape == ref.shape else float("nan")
        check(diff <= 1e-4, f"{name} TorchScript, same tensor: max |diff| {diff:.2e} <= 1e-4")
        check_bf16(tmp, x, ref, f"{name} TorchScript", model=pt)
        check_auto(tmp, x, ref, f"{name} TorchScript", cache_checks=name == "squeezenet1_1",
                   model=pt)

        rgb = [smooth_image(gen, 240, 320, 3) for _ in range(2)]
        info, data = run_pipeline(tmp, "video/x-raw,format=RGB,width=320,height=240,framerate=30/1",
                                  rgb, f"embedder model={pt} precision=fp32")
        got = torch.from_numpy(data.reshape(len(rgb), -1))
        want = reference(model, torch.stack([torchvision_transform(f) for f in rgb]))
        cos = cosine(got, want).min().item() if got.shape == want.shape else float("nan")
        check(cos >= 0.999 and info["model_id"].startswith("torchscript:"),
              f"{name} TorchScript through embedder: min cosine {cos:.6f}, id {info['model_id']}")


with tempfile.TemporaryDirectory() as tmp:
    resnet_parity(tmp) if MODE == "resnet" else torchscript_parity(tmp)
finish()
