"""Building blocks shared by the discriminators, critics and encoders of the model zoo.

``ConvBody`` is the DCGAN discriminator's trunk (strided 4x4 convs, widths doubling as the side halves, see
``dcgan.stages``/``dcgan.widths``) with a choice of normalisation: BatchNorm (DCGAN), a layer norm over
(C, H, W) (critics trained with a gradient penalty must not use BatchNorm: the penalty is per image) or none.
"""
from __future__ import annotations

from itertools import islice

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.models.dcgan import stages, widths
from genlab.models.layers import Dropout, JoinedConv2d, is_channels_last

NORMS = ("batch", "layer", "none")


def maybe_sn(module: nn.Module, sn: bool) -> nn.Module:
    return spectral_norm(module) if sn else module


def _norm(kind: str, width: int) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm2d(width)]
    if kind == "layer":
        return [nn.GroupNorm(1, width)]  # one group = normalise over (C, H, W) per image
    if kind == "none":
        return []
    raise ValueError(f"norm {kind!r} is not one of {NORMS}")


class ConvBody(nn.Module):
    """image (N, C, R, R) -> feature map (N, W, s, s) at the start side s (4, or 7 for 28 px).

    The first conv has no normalisation (as in DCGAN); spectral norm replaces BatchNorm when both are asked.
    ``cond_dim`` > 0: a condition vector, broadcast to maps, is concatenated to the first conv's output, so
    every later layer sees image and condition together (the conditional GAN's label maps). Without dropout the
    next conv is a ``JoinedConv2d``, which takes the maps' part without building the joined tensor (the same
    function; 1.5x fewer FLOPs in that conv for 16 maps beside 32 channels).
    """

    def __init__(self, channels: int, resolution: int, base: int, norm: str = "batch", dropout: float = 0.0,
                 sn: bool = False, cond_dim: int = 0):
        super().__init__()
        start, n = stages(resolution)
        ws = widths(base, n)[::-1]
        if sn and norm == "batch":
            norm = "none"
        self.first = nn.Sequential(maybe_sn(nn.Conv2d(channels, ws[0], 4, 2, 1), sn), nn.LeakyReLU(0.2, True))
        self.cond_dim = cond_dim
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(ws[:-1], ws[1:])):
            w_in += cond_dim if i == 0 else 0
            if dropout > 0:
                layers.append(Dropout(dropout))
            if i == 0 and cond_dim and not dropout:
                conv: nn.Conv2d = JoinedConv2d(w_in, w_out, 4, 2, 1, bias=norm != "batch", joined=cond_dim)
            else:
                conv = nn.Conv2d(w_in, w_out, 4, 2, 1, bias=norm != "batch")
            layers.append(maybe_sn(conv, sn))
            layers += _norm(norm, w_out)
            layers.append(nn.LeakyReLU(0.2, True))
        if dropout > 0:
            layers.append(Dropout(dropout))
        self.net = nn.Sequential(*layers)
        self.joined = bool(cond_dim) and not dropout  # net[0] takes the condition itself
        self.feature_shape = (ws[-1], start, start)
        self.feature_dim = ws[-1] * start * start
        if cond_dim and n < 2:
            raise ValueError(f"{resolution} px has no layer after the first to take the condition")

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first(x)
        if self.joined:
            assert cond is not None, "a conditional body needs its condition"
            h = self.net[0](h, cond)
            for layer in islice(self.net, 1, None):
                h = layer(h)
            return h
        if self.cond_dim:
            assert cond is not None, "a conditional body needs its condition"
            maps = cond[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
            if is_channels_last(h):
                # the same layout as h, or cat returns NCHW and the next conv converts the whole joined tensor
                maps = maps.contiguous(memory_format=torch.channels_last)
            h = torch.cat([h, maps], dim=1)
        return self.net(h)
