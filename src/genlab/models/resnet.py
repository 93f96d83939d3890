"""SNGAN-style ResNet generator and discriminator (Miyato et al. 2018; the layout of mimicry's and StudioGAN's
SNGAN/BigGAN-without-attention CIFAR nets) for 28, 32 and 64 pixels, 1 or 3 channels.

G: a linear map of z to a ``width x s x s`` map (s = 7 for 28 px, else 4), one up block per doubling
(BatchNorm, ReLU, nearest x2, 3x3 conv, BatchNorm, ReLU, 3x3 conv; shortcut: nearest x2, 1x1 conv), then
BatchNorm, ReLU, a 3x3 conv to the image and tanh. D: an "optimized" first block (conv, ReLU, conv, 2x2 average
pool; shortcut: pool then 1x1 conv), down blocks (ReLU, conv, ReLU, conv, pool; shortcut: 1x1 conv, pool) until
the side is at most 8, two blocks without pooling, ReLU, a sum over positions and a linear layer to one raw score.
Every block has ``model.hidden_dim`` channels (SNGAN's CIFAR nets: G 256, D 128). Weights: Xavier-uniform, gain
sqrt(2) in the residual branches and 1 elsewhere (as in the SNGAN code).

``resnet-gan`` puts spectral norm on every layer of D (SNGAN; train with ``train.loss=hinge``); ``r3gan`` trains
the same networks with the R3GAN objective (training/families/r3gan.py), where the R1/R2 penalties keep D smooth
and spectral norm is off unless ``model.spectral_norm`` asks for it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import ModelConfig
from genlab.models.blocks import maybe_sn
from genlab.models.dcgan import stages
from genlab.models.registry import DataShape, ModelSpec, register_model

RESOLUTIONS = (28, 32, 64)


class UpBlock(nn.Module):
    """SNGAN's generator block: BN-ReLU-up-conv3-BN-ReLU-conv3, plus an up-sampled 1x1 shortcut."""

    def __init__(self, w_in: int, w_out: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(w_in), nn.BatchNorm2d(w_out)
        self.conv1 = nn.Conv2d(w_in, w_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(w_out, w_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(w_in, w_out, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    """SNGAN's discriminator block. ``first``: the "optimized" block on the image (no ReLU before the first
    conv, pool before the shortcut conv); ``down``: 2x2 average pool at the end of both branches."""

    def __init__(self, w_in: int, w_out: int, down: bool, sn: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = maybe_sn(nn.Conv2d(w_in, w_out, 3, 1, 1), sn)
        self.conv2 = maybe_sn(nn.Conv2d(w_out, w_out, 3, 1, 1), sn)
        self.shortcut = maybe_sn(nn.Conv2d(w_in, w_out, 1, 1, 0), sn) if (first or down or w_in != w_out) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.down else s)


class ResNetGenerator(nn.Module):
    def __init__(self, latent_dim: int, width: int, channels: int, resolution: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.start, n = stages(resolution)
        self.width = width
        self.linear = nn.Linear(latent_dim, width * self.start * self.start)
        self.blocks = nn.Sequential(*[UpBlock(width, width) for _ in range(n)])
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z.view(z.shape[0], -1)).view(z.shape[0], self.width, self.start, self.start)
        return self.out(self.blocks(h))


class ResNetDiscriminator(nn.Module):
    """image -> one raw score per image; ``features``: the pooled ``width`` vector before the linear layer."""

    def __init__(self, width: int, channels: int, resolution: int, sn: bool = True):
        super().__init__()
        stages(resolution)  # a supported side
        blocks: list[nn.Module] = [DownBlock(channels, width, down=True, sn=sn, first=True)]
        side = resolution // 2
        while side > 8:
            blocks.append(DownBlock(width, width, down=True, sn=sn))
            side //= 2
        blocks += [DownBlock(width, width, down=False, sn=sn) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.side = side
        self.feature_dim = width
        self.head = maybe_sn(nn.Linear(width, 1), sn)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


def resnet_init(module: nn.Module) -> None:
    """Xavier-uniform weights (gain sqrt(2) for the 3x3 convs of residual branches, 1 for the rest), zero biases;
    the weight under a spectral-norm parametrisation is the original one."""
    for name, m in module.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            p = getattr(m, "parametrizations", None)
            weight = p.weight.original if p is not None and hasattr(p, "weight") else m.weight
            residual = name.rsplit(".", 1)[-1] in ("conv1", "conv2")
            nn.init.xavier_uniform_(weight, math.sqrt(2) if residual else 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _build(m: ModelConfig, d: DataShape, sn: bool) -> nn.ModuleDict:
    nets = nn.ModuleDict({
        "G": ResNetGenerator(m.latent_dim, m.hidden_dim, d.channels, d.resolution),
        "D": ResNetDiscriminator(m.hidden_dim, d.channels, d.resolution, sn=sn),
    })
    resnet_init(nets)
    return nets


def build_resnet_gan(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    """SNGAN: spectral norm on every layer of D, whatever ``model.spectral_norm`` says."""
    return _build(m, d, sn=True)


def build_r3gan(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    return _build(m, d, sn=m.spectral_norm)


register_model(ModelSpec(
    name="resnet-gan",
    description="SNGAN ResNet: residual up-block G with BatchNorm, residual down-block D with spectral norm on "
                "every layer, width model.hidden_dim; train with train.loss=hinge",
    build=build_resnet_gan,
    resolutions=RESOLUTIONS,
    losses=("hinge", "bce", "wasserstein", "relativistic"),
))

register_model(ModelSpec(
    name="r3gan",
    description="R3GAN (Huang et al. 2024): the resnet-gan nets (no spectral norm) trained with the relativistic "
                "pairing loss and R1+R2 penalties objective.gamma, lazily every objective.reg_every steps",
    build=build_r3gan,
    objective="r3gan",
    resolutions=RESOLUTIONS,
    losses=("relativistic",),
))
