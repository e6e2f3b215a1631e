# SPDX-License-Identifier: LGPL-2.1-or-later
"""Random-weight torchvision models whose batch norms are not the identity, so
that a mis-mapped parameter name, or arithmetic that loses precision, shows."""
import torch


def randomise_batch_norms(model, gen):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.normal_(0, 0.1, generator=gen)
            m.running_mean.normal_(0, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)


def save_random_model(name, path, seed, gen):
    """A torchvision model `name` with weights drawn from `seed` and random batch
    norms from `gen`, its state dict saved to `path`; returns the model."""
    import torchvision
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None)
    randomise_batch_norms(model, gen)
    torch.save(model.state_dict(), path)
    return model
