# SPDX-License-Identifier: LGPL-2.1-or-later
"""gallerysrc ! embedder against torchvision, and the embedder on a stream of
mixed sizes.

    test_gallerysrc_parity.py GALLERY_RUN

A folder of stills of different sizes and formats (one an EXIF-rotated JPEG)
goes through `gallerysrc ! embedder` with a random-weight resnet18 checkpoint
saved by torch.save; the caps change at almost every frame. Every frame must
come out embedded, each embedding with cosine >= 0.999 against torchvision's
ResNet-18 and transforms on the same picture as PIL decodes it (upright).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision import transforms as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_fixtures as fx  # noqa: E402

GALLERY_RUN = sys.argv[1]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
torch.set_num_threads(2)
from checks import check, finish  # noqa: E402


with tempfile.TemporaryDirectory() as tmp:
    torch.manual_seed(5)
    model = torchvision.models.resnet18(weights=None)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    weights = os.path.join(tmp, "resnet18-random.pth")
    torch.save(model.state_dict(), weights)
    model.fc = torch.nn.Identity()

    gallery = os.path.join(tmp, "gallery")
    os.makedirs(gallery)
    cases = [("a.png", "png", 320, 240), ("b.jpg", "jpeg", 223, 131), ("c.webp", "webp-lossless", 200, 300),
             ("d.tif", "tiff", 1, 1), ("e.bmp", "bmp", 640, 480), ("f.ppm", "ppm", 57, 301),
             ("g.png", "png", 320, 240)]
    for name, fmt, w, h in cases:
        fx.save(os.path.join(gallery, name), fmt, fx.gradient(w, h, seed=w + h))
    fx.exif_rotated_jpeg(os.path.join(gallery, "h.jpg"), fx.gradient(300, 160, seed=9), 6)
    names = sorted([c[0] for c in cases] + ["h.jpg"])

    res = subprocess.run(
        [GALLERY_RUN, f"gallerysrc location={gallery} label-from=none ! embedder model=resnet18 "
         f"weights={weights} batch-size=3 threads=2", os.path.join(tmp, "p.raw"),
         os.path.join(tmp, "e.f32")], capture_output=True, text=True, timeout=240)
    frames = [line.split("\t") for line in res.stdout.splitlines() if line.startswith("frame\t")]
    check(res.returncode == 0, f"gallerysrc ! embedder plays to EOS ({res.stdout[-300:]} {res.stderr[-300:]})")
    check([f[4] for f in frames] == names, f"every picture comes out, in order: {[f[4] for f in frames]}")
    check(all(f[8] == "1" for f in frames), "every frame of every size is embedded "
          f"({sum(f[8] == '1' for f in frames)}/{len(frames)}), the caps changing between them")

    emb = torch.from_numpy(np.fromfile(os.path.join(tmp, "e.f32"), dtype=np.float32))
    emb = emb.reshape(len(frames), -1) if len(frames) and emb.numel() % len(frames) == 0 else emb
    tf = T.Compose([T.Resize(256, antialias=True), T.CenterCrop(224),
                    T.ConvertImageDtype(torch.float32), T.Normalize(MEAN, STD)])
    pictures = [np.asarray(ImageOps.exif_transpose(Image.open(os.path.join(gallery, n))).convert("RGB"))
                for n in names]
    with torch.no_grad():
        x = torch.stack([tf(torch.from_numpy(p.copy()).permute(2, 0, 1)) for p in pictures])
        want = torch.nn.functional.normalize(model(x), dim=1)
    if emb.dim() == 2 and emb.shape == want.shape:
        cos = torch.nn.functional.cosine_similarity(emb, want, dim=1)
        for n, p, c in zip(names, pictures, cos.tolist()):
            check(c >= 0.999, f"{n} ({p.shape[1]}x{p.shape[0]}): cosine {c:.6f} >= 0.999 against "
                  "torchvision on the same decoded pixels")
    else:
        check(False, f"embeddings shape {tuple(emb.shape)} vs {tuple(want.shape)}")

finish()
