#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Export a torchvision model, classifier removed, as TorchScript for embedder.

    /usr/bin/python3 models/export-torchscript.py MODEL OUT.pt [--weights W]
        [--int8 --calibrate DIR]

The exported module maps a normalised NCHW float batch to (N, D) pooled
features, which is what `embedder model=OUT.pt` expects. W is `default`
(torchvision's pretrained weights; downloads them unless cached), `none`
(random initialisation from --seed: offline, for tests) or the path of a
state dict of the full torchvision model (classifier included).

--int8 (resnet18/34/50/101/152) quantizes post-training, static, for
LibTorch's onednn engine: convolutions fused with their batch norms and
ReLUs, per-channel int8 weights, int8 activations whose ranges are
calibrated on the images in DIR (JPEG or PNG, up to --calibrate-images,
preprocessed as embedder does by default: resize 256, centre crop, ImageNet
mean and std). The module takes and returns float like the others.
"""
import argparse
import os
import sys

import torch
import torchvision
from torch import nn

MODELS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small",
    "squeezenet1_1", "shufflenet_v2_x1_0", "convnext_tiny",
]


def strip_classifier(name, model):
    """Returns the module whose output is the pooled feature vector."""
    if name.startswith(("resnet", "shufflenet")):
        model.fc = nn.Identity()
    elif name.startswith(("efficientnet", "mobilenet")):
        model.classifier = nn.Identity()
    elif name.startswith("convnext"):
        # Keep the final LayerNorm: it is part of ConvNeXt's representation.
        model.classifier[2] = nn.Identity()
    elif name.startswith("squeezenet"):
        # The classifier is a 1x1 convolution to 1000 classes before pooling.
        model = nn.Sequential(model.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    else:
        raise ValueError(f"unsupported model {name}")
    return model


def build(name, weights="none"):
    """The torchvision model `name` with weights, classifier removed, in eval mode."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name}; choose one of {', '.join(MODELS)}")
    factory = getattr(torchvision.models, name)
    if weights == "default":
        model = factory(weights="DEFAULT")
    else:
        model = factory(weights=None)
        if weights != "none":
            model.load_state_dict(torch.load(weights, map_location="cpu"))
    return strip_classifier(name, model).eval()


def calibration_images(folder, input_size, limit):
    """Up to `limit` JPEG/PNG images of `folder`, preprocessed as embedder does."""
    from torchvision import transforms as T
    from torchvision.io import ImageReadMode, read_image
    tf = T.Compose([T.Resize(256, antialias=True), T.CenterCrop(input_size),
                    T.ConvertImageDtype(torch.float32),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith((".jpg", ".jpeg", ".png")))[:limit]
    if not names:
        raise ValueError(f"{folder} holds no JPEG or PNG images to calibrate on")
    return torch.stack([tf(read_image(os.path.join(folder, n), ImageReadMode.RGB))
                        for n in names])


def quantize_resnet(name, model, calibration, engine="onednn"):
    """Post-training static int8 of a classifier-less torchvision ResNet, traced."""
    from torch.ao import quantization as tq
    if not name.startswith("resnet"):
        raise ValueError(f"--int8 supports the ResNets only, not {name}")
    torch.backends.quantized.engine = engine
    q = getattr(torchvision.models.quantization, name)(weights=None, quantize=False)
    q.fc = nn.Identity()
    q.load_state_dict(model.state_dict())
    q.eval()
    q.fuse_model()
    q.qconfig = tq.get_default_qconfig(engine)
    tq.prepare(q, inplace=True)
    with torch.no_grad():
        for batch in calibration.split(16):
            q(batch)
    tq.convert(q, inplace=True)
    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(q, calibration[:2]))


def export(model, path, input_size=224):
    scripted = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.script(model)
    with torch.no_grad():
        out = scripted(torch.zeros(2, 3, input_size, input_size))
    if out.dim() != 2 or out.shape[0] != 2:
        raise RuntimeError(f"exported module returns shape {tuple(out.shape)}, not (N, D)")
    scripted.save(path)
    return out.shape[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("output", help="TorchScript file to write")
    parser.add_argument("--weights", default="default",
                        help="default | none | path of a state dict (default: default)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --weights none")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--int8", action="store_true",
                        help="post-training static int8 (ResNets; needs --calibrate)")
    parser.add_argument("--calibrate", metavar="DIR", help="images to calibrate --int8 on")
    parser.add_argument("--calibrate-images", type=int, default=256)
    args = parser.parse_args()
    if args.int8 != bool(args.calibrate):
        parser.error("--int8 and --calibrate DIR go together")

    torch.manual_seed(args.seed)
    model = build(args.model, args.weights)
    if args.int8:
        images = calibration_images(args.calibrate, args.input_size, args.calibrate_images)
        model = quantize_resnet(args.model, model, images)
    dims = export(model, args.output, args.input_size)
    print(f"{args.output}: {args.model} features, {dims} dims; "
          f"use: embedder model={args.output} input-size={args.input_size}")


if __name__ == "__main__":
    sys.exit(main())
