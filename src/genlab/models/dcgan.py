"""DCGAN generator and discriminator for 28, 32, 64 and 128 pixels, 1 or 3 channels.

Feature maps double as resolution halves (capped at 8x the base width). 28 px starts from 7x7, the others
from 4x4. Optional dropout (the 128x128 report needed it) and spectral normalisation on D.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.config import ModelConfig
from genlab.models.init import dcgan_init
from genlab.models.layers import Dropout, FullConv2d, LatentProjection
from genlab.models.registry import DataShape, ModelSpec, register_model

RESOLUTIONS = (28, 32, 64, 128)


def stages(resolution: int) -> tuple[int, int]:
    """(start side, number of x2 up/down-samplings) for a supported resolution."""
    start = 7 if resolution == 28 else 4
    n, side = 0, start
    while side < resolution:
        side, n = side * 2, n + 1
    if side != resolution:
        raise ValueError(f"DCGAN supports {RESOLUTIONS} pixels, not {resolution}")
    return start, n


def widths(base: int, n: int) -> list[int]:
    """Channels at each feature map from the start side upwards, e.g. base 64, n 4 -> [512, 256, 128, 64]."""
    return [base * min(2 ** (n - 1 - i), 8) for i in range(n)]


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, base: int, channels: int, resolution: int, dropout: float = 0.0,
                 cond_dim: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        start, n = stages(resolution)
        ws = widths(base, n)
        layers: list[nn.Module] = [
            LatentProjection(latent_dim + cond_dim, ws[0], start, 1, 0, bias=False),  # 1x1 -> start
            nn.BatchNorm2d(ws[0]), nn.ReLU(True),
        ]
        for w_in, w_out in zip(ws[:-1], ws[1:]):
            if dropout > 0:
                layers.append(Dropout(dropout))
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ws[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Unconditional: ``cond`` is ignored (the conditional G wraps this one and calls ``decode``)."""
        return self.decode(z)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: z, or [z, condition vector] when built with ``cond_dim``."""
        return self.net(h.view(h.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Strided convs down to the start side (BatchNorm after the first, unless spectral norm), then a head."""

    def __init__(self, base: int, channels: int, resolution: int, dropout: float = 0.0, sn: bool = False,
                 out_dim: int = 1):
        super().__init__()
        start, n = stages(resolution)
        ws = widths(base, n)[::-1]  # [64, 128, 256, 512] for 64 px
        wrap = spectral_norm if sn else (lambda m: m)
        layers: list[nn.Module] = [wrap(nn.Conv2d(channels, ws[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in zip(ws[:-1], ws[1:]):
            if dropout > 0:
                layers.append(Dropout(dropout))
            layers.append(wrap(nn.Conv2d(w_in, w_out, 4, 2, 1, bias=sn)))
            if not sn:
                layers.append(nn.BatchNorm2d(w_out))
            layers.append(nn.LeakyReLU(0.2, True))
        if dropout > 0:
            layers.append(Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.feature_shape = (ws[-1], start, start)
        self.feature_dim = ws[-1] * start * start
        self.head = wrap(FullConv2d(ws[-1], out_dim, start, 1, 0))

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(x)).view(x.shape[0], -1).squeeze(1)


def build_dcgan(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    """DCGAN G and D; also the WGAN's (its critic is this D read as a raw score)."""
    nets = nn.ModuleDict({
        "G": DCGANGenerator(m.latent_dim, m.hidden_dim, d.channels, d.resolution, m.dropout_g),
        "D": DCGANDiscriminator(m.hidden_dim, d.channels, d.resolution, m.dropout_d, m.spectral_norm),
    })
    dcgan_init(nets)
    return nets


register_model(ModelSpec(
    name="dcgan",
    description="DCGAN: ConvTranspose+BatchNorm+ReLU G, strided Conv+BatchNorm+LeakyReLU D (dropout, SN optional)",
    build=build_dcgan,
    resolutions=RESOLUTIONS,
))
