"""A small time-conditioned U-Net for flow matching and diffusion, 28, 32 and 64 pixels, 1 or 3 channels.

The network ``G(x, s, cond=None)`` maps a noisy image and a per-image noise label ``s`` (a float per image: the
flow time in [0, 1], or EDM's c_noise = ln(sigma) / 4) to an output of the image's shape (a velocity, or EDM's
F); what the output means is the noise process's business (``genlab.diffusion``), not the network's.

Layout (the DDPM++ / ADM family, simplified): a 3x3 input conv; per resolution level ``model.depth`` residual
blocks of width ``model.hidden_dim x model.channel_mult[level]``, self-attention after each block whose feature
map side is in ``model.attention``, then a strided-conv downsampling (not after the last level); a middle of
block, attention, block; the mirror path up with one more block per level taking the skip connections, nearest
upsampling + conv; GroupNorm, SiLU and a 3x3 conv out. Every residual block takes the embedding
of the noise label (Fourier features at frequencies 1 to 1000, then a 2-layer MLP) as a scale and shift after its
second normalisation; ``model.dropout_g`` is its dropout. Residual sums are plain sums (ADM's; DDPM++'s 1/sqrt(2)
scaling shrinks the signal of a deep stack of near-zero branches at initialisation, and its gradients with it).

Class-conditional networks (``num_classes`` > 0) add a learned class embedding to the noise embedding; a label of
-1 (or ``cond=None``) means "no label": its own embedding row, which label dropout trains and classifier-free
guidance uses (``Conditioning.without``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import ModelConfig
from genlab.errors import ConfigError
from genlab.models.conditioning import resolve
from genlab.models.registry import DataShape, ModelSpec, register_model

RESOLUTIONS = (28, 32, 64)


def norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups of at least 4 channels (EDM's rule), the count dividing ``channels``."""
    groups = min(32, max(1, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels, eps=1e-6)


def near_zero(module: nn.Module) -> nn.Module:
    """Weights at 1e-5 x Xavier-uniform and a zero bias (EDM's init of the last layer of every block and of the
    output): each residual branch starts as almost nothing, so the network starts near the identity and near 0,
    yet every weight behind it gets a gradient from the first step (exact zeros would cut them off)."""
    nn.init.xavier_uniform_(module.weight)
    with torch.no_grad():
        module.weight.mul_(1e-5)
    nn.init.zeros_(module.bias)
    return module


class NoiseEmbedding(nn.Module):
    """Per-image noise label (N,) -> (N, dim): cos/sin at log-spaced frequencies 1..1000, then Linear-SiLU-Linear."""

    def __init__(self, features: int, dim: int):
        super().__init__()
        half = max(features // 2, 1)
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(1000.0), half)), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * half, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        angles = s.float()[:, None] * self.freqs[None, :]
        return self.mlp(torch.cat([angles.cos(), angles.sin()], dim=1))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, scale/shift from the embedding, GroupNorm-SiLU-dropout-conv, plus the (1x1) skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.affine = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = norm(c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = near_zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the feature map's positions (heads of 64 channels, at least one)."""

    def __init__(self, channels: int):
        super().__init__()
        self.heads = max(1, channels // 64)
        self.norm = norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = near_zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        out = out.transpose(-1, -2).reshape(n, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """``forward(x, s, cond=None)``: image (N, C, R, R), noise label (N,), labels (N,) int64 or None -> (N, C, R, R)."""

    def __init__(self, channels: int, resolution: int, base: int, channel_mult: tuple[int, ...], depth: int,
                 attention: tuple[int, ...] = (), dropout: float = 0.0, num_classes: int = 0):
        super().__init__()
        levels = len(channel_mult)
        sides = [resolution // 2 ** i for i in range(levels)]
        if resolution % 2 ** (levels - 1):
            raise ConfigError(f"model.channel_mult has {levels} levels, which halve {resolution} px "
                              f"{levels - 1} times: use at most {_max_levels(resolution)} levels at {resolution} px")
        bad = sorted(set(attention) - set(sides))
        if bad:
            raise ConfigError(f"model.attention={list(attention)}: {bad} is not a feature-map side of this U-Net at "
                              f"{resolution} px (its sides: {', '.join(map(str, sides))})")
        self.num_classes = num_classes
        emb_dim = 4 * base
        self.embed = NoiseEmbedding(base, emb_dim)
        self.label = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None  # row K: "no label"
        self.conv_in = nn.Conv2d(channels, base * channel_mult[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips, c = [base * channel_mult[0]], base * channel_mult[0]
        for i, mult in enumerate(channel_mult):
            for _ in range(depth):
                self.down.append(ResBlock(c, base * mult, emb_dim, dropout))
                c = base * mult
                if sides[i] in attention:
                    self.down.append(SelfAttention(c))
                skips.append(c)
            if i < levels - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, emb_dim, dropout), SelfAttention(c), ResBlock(c, c, emb_dim, dropout)])
        self.up = nn.ModuleList()
        for i, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(depth + 1):
                self.up.append(ResBlock(c + skips.pop(), base * mult, emb_dim, dropout))
                c = base * mult
                if sides[i] in attention:
                    self.up.append(SelfAttention(c))
            if i > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(c, c, 3, padding=1)))
        self.out = nn.Sequential(norm(c), nn.SiLU(), near_zero(nn.Conv2d(c, channels, 3, padding=1)))

    def embedding(self, s: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        emb = self.embed(s)
        if self.label is not None:
            k = self.num_classes
            labels = torch.full((len(s),), k, dtype=torch.long, device=s.device) if cond is None else \
                torch.where(cond < 0, k, cond.long())
            emb = emb + self.label(labels)
        return F.silu(emb)

    def forward(self, x: torch.Tensor, s: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        s = s.reshape(-1).expand(x.shape[0]) if s.numel() == 1 else s
        emb = self.embedding(s, cond)
        h = self.conv_in(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, (ResBlock, SelfAttention)) else layer(h)
            if not isinstance(layer, SelfAttention):
                skips.append(h)
            else:
                skips[-1] = h  # the block's output after its attention is what the up path takes
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), emb)
            elif isinstance(layer, SelfAttention):
                h = layer(h)
            else:
                h = layer(h)
        return self.out(h)


def _max_levels(resolution: int) -> int:
    n = 1
    while resolution % 2 ** n == 0:
        n += 1
    return n


def build_unet(m: ModelConfig, d: DataShape, conditional: bool = False) -> nn.ModuleDict:
    return nn.ModuleDict({"G": UNet(d.channels, d.resolution, m.hidden_dim, tuple(m.channel_mult), m.depth,
                                    tuple(m.attention), m.dropout_g, d.num_classes if conditional else 0)})


def build_class_unet(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    return build_unet(m, d, conditional=True)


_LAYOUT = "residual blocks with a time embedding, optional self-attention"
for _name, _objective, _cond, _what in (
        ("flow-unet", "flow", "none", "Flow matching (rectified flow, optional minibatch OT)"),
        ("cflow-unet", "flow", "class", "Class-conditional flow matching with label dropout and guidance"),
        ("edm-unet", "edm", "none", "EDM diffusion (Karras et al. 2022: preconditioning, Heun sampler)"),
        ("cedm-unet", "edm", "class", "Class-conditional EDM diffusion with label dropout and guidance")):
    register_model(ModelSpec(name=_name, description=f"{_what}: U-Net, {_LAYOUT}",
                             build=build_class_unet if _cond == "class" else build_unet, objective=_objective,
                             conditioning=resolve(_cond), resolutions=RESOLUTIONS, process=_objective))
