#!/usr/bin/python3
"""Export a torchvision model, classifier removed, as TorchScript for embedder.

    /usr/bin/python3 models/export-torchscript.py MODEL OUT.pt [--weights W]

The exported module maps a normalised NCHW float batch to (N, D) pooled
features, which is what `embedder model=OUT.pt` expects. W is `default`
(torchvision's pretrained weights; downloads them unless cached), `none`
(random initialisation from --seed: offline, for tests) or the path of a
state dict of the full torchvision model (classifier included).
"""
import argparse
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


def export(model, path, input_size=224):
    scripted = torch.jit.script(model)
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
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    dims = export(build(args.model, args.weights), args.output, args.input_size)
    print(f"{args.output}: {args.model} features, {dims} dims; "
          f"use: embedder model={args.output} input-size={args.input_size}")


if __name__ == "__main__":
    sys.exit(main())
