# SPDX-License-Identifier: LGPL-2.1-or-later
"""models/export-torchscript.py --int8: a post-training int8 resnet18 that embedder runs.

    test_int8_export.py EMBED_TENSOR

Calibrates a random-weight resnet18 on generated PNG and JPEG images, exports
it, and embeds held-out images (preprocessed as embedder does) through the
engine's TorchScript path: 512 values each, within cosine 0.99 of
torchvision's fp32 model; --int8 without --calibrate is refused.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

EMBED_TENSOR = sys.argv[1]
SOURCE = os.environ["VS_SOURCE_DIR"]
EXPORTER = os.path.join(SOURCE, "models", "export-torchscript.py")
torch.set_num_threads(2)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures  # noqa: E402
from checks import check, finish  # noqa: E402

spec = importlib.util.spec_from_file_location("export_torchscript", EXPORTER)
exporter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exporter)

with tempfile.TemporaryDirectory() as tmp:
    calib, held_out = os.path.join(tmp, "calib"), os.path.join(tmp, "held-out")
    for folder, seeds in ((calib, range(12)), (held_out, range(100, 104))):
        os.mkdir(folder)
        for i in seeds:
            rgb = image_fixtures.gradient(320, 240, seed=i)
            # Different images, not one gradient: rotate and tint by seed.
            rgb = np.ascontiguousarray(np.rot90(rgb, i % 4) // (1 + i % 3))
            image_fixtures.save(os.path.join(folder, f"{i}.{'png' if i % 2 else 'jpeg'}"),
                                "png" if i % 2 else "jpeg", rgb)

    out = os.path.join(tmp, "r18-int8.pt")
    res = subprocess.run([sys.executable, EXPORTER, "resnet18", out, "--weights", "none",
                          "--seed", "5", "--int8", "--calibrate", calib],
                         capture_output=True, text=True)
    check(res.returncode == 0 and os.path.exists(out), f"--int8 export: {res.stderr[-300:]}")

    torch.manual_seed(5)
    fp32 = exporter.build("resnet18", "none")
    x = exporter.calibration_images(held_out, 224, 100)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(fp32(x), dim=1)
    inp, emb = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
    x.numpy().astype(np.float32).tofile(inp)
    res = subprocess.run([EMBED_TENSOR, inp, str(len(x)), "224", "224", emb, f"model={out}"],
                         capture_output=True, text=True)
    check(res.returncode == 0, f"embed-tensor runs the int8 module {res.stderr[-300:]}")
    if res.returncode == 0:
        got = torch.from_numpy(np.fromfile(emb, dtype=np.float32)).view(len(x), -1)
        cos = torch.nn.functional.cosine_similarity(got, ref, dim=1).min().item() \
            if got.shape == ref.shape else float("nan")
        check(got.shape == (len(x), 512) and cos >= 0.99,
              f"int8 through the engine: shape {tuple(got.shape)}, min cosine to fp32 "
              f"{cos:.4f} >= 0.99")

    res = subprocess.run([sys.executable, EXPORTER, "resnet18", out, "--int8"],
                         capture_output=True, text=True)
    check(res.returncode != 0 and "--calibrate" in res.stderr,
          "--int8 without --calibrate DIR is refused")

finish()
