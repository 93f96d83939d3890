"""Variational autoencoders (report 003): fully connected (``vae``) and convolutional (``conv-vae``).

"E" is the encoder, image (and optionally a condition) -> (mu, logvar); "G" is the decoder, latent -> image in
[-1, 1], so sampling, evaluation and interpolation treat a VAE like any generator. Decoders also expose
``pre_tanh(z)`` (the activation before the final tanh) for a stable Bernoulli likelihood.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from genlab.config import ModelConfig
from genlab.models.blocks import ConvBody
from genlab.models.dcgan import stages, widths
from genlab.models.layers import Dropout
from genlab.models.registry import DataShape, ModelSpec, register_model

CONV_RESOLUTIONS = (28, 32, 64, 128)
MLP_RESOLUTIONS = (28, 32, 64)


class GaussianHead(nn.Module):
    """features (+ condition vector) -> (mu, logvar) of a diagonal Gaussian posterior."""

    def __init__(self, in_dim: int, latent_dim: int, cond: nn.Module | None = None):
        super().__init__()
        self.cond = cond
        in_dim += int(cond.out_dim) if cond is not None else 0  # type: ignore[arg-type]  # an int attribute
        self.mu = nn.Linear(in_dim, latent_dim)
        self.logvar = nn.Linear(in_dim, latent_dim)

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cond is not None:  # built without a condition module: ``cond`` is ignored
            h = torch.cat([h, self.cond(cond, h.shape[0])], dim=1)
        return self.mu(h), self.logvar(h)


class MLPEncoder(nn.Module):
    """image -> [Linear + LeakyReLU] x depth (widths hidden_dim * 2^(depth-1) ... hidden_dim) -> (mu, logvar)."""

    def __init__(self, image_shape: tuple[int, int, int], hidden_dim: int, depth: int, latent_dim: int,
                 cond: nn.Module | None = None):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = math.prod(image_shape)
        for i in reversed(range(depth)):
            layers += [nn.Linear(width_in, hidden_dim * 2**i), nn.LeakyReLU(0.2)]
            width_in = hidden_dim * 2**i
        self.body = nn.Sequential(*layers)
        self.head = GaussianHead(width_in, latent_dim, cond)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(x), cond)


class MLPDecoder(nn.Module):
    """z -> [Linear + ReLU (+ Dropout)] x depth (widths hidden_dim * 2^i) -> Linear -> tanh -> image."""

    def __init__(self, latent_dim: int, hidden_dim: int, depth: int, image_shape: tuple[int, int, int],
                 dropout: float = 0.0):
        super().__init__()
        self.latent_dim, self.image_shape = latent_dim, image_shape
        layers: list[nn.Module] = []
        width_in = latent_dim
        for i in range(depth):
            layers += [nn.Linear(width_in, hidden_dim * 2**i), nn.ReLU(True)]
            if dropout > 0:
                layers.append(Dropout(dropout))
            width_in = hidden_dim * 2**i
        layers.append(nn.Linear(width_in, math.prod(image_shape)))
        self.net = nn.Sequential(*layers)

    def pre_tanh(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.pre_tanh(z, cond))


class ConvEncoder(nn.Module):
    """image -> the DCGAN discriminator trunk -> flatten -> (mu, logvar)."""

    def __init__(self, channels: int, resolution: int, base: int, latent_dim: int, dropout: float = 0.0,
                 cond: nn.Module | None = None):
        super().__init__()
        self.body = ConvBody(channels, resolution, base, "batch", dropout)
        self.head = GaussianHead(self.body.feature_dim, latent_dim, cond)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(x).flatten(1), cond)


class ConvDecoder(nn.Module):
    """z -> Linear -> (W, s, s) -> [ConvTranspose x2 + BatchNorm + ReLU (+ Dropout)] x n -> 3x3 conv -> tanh.

    The report's decoder: Dense -> reshape -> ConvTranspose + BatchNorm + Dropout blocks -> a stride-1 output
    layer; widths follow the DCGAN generator here (``hidden_dim`` at the last block).
    """

    def __init__(self, latent_dim: int, base: int, channels: int, resolution: int, dropout: float = 0.0):
        super().__init__()
        self.latent_dim = latent_dim
        start, n = stages(resolution)
        ws = widths(base, n)
        self.start_shape = (ws[0], start, start)
        self.fc = nn.Sequential(nn.Linear(latent_dim, ws[0] * start * start), nn.ReLU(True))
        layers: list[nn.Module] = []
        for w_in, w_out in zip(ws, ws[1:] + ws[-1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
            if dropout > 0:
                layers.append(Dropout(dropout))
        layers.append(nn.Conv2d(ws[-1], channels, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def pre_tanh(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.fc(z).view(z.shape[0], *self.start_shape))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.pre_tanh(z, cond))


def build_vae(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    shape = (d.channels, d.resolution, d.resolution)
    return nn.ModuleDict({
        "E": MLPEncoder(shape, m.hidden_dim, m.depth, m.latent_dim),
        "G": MLPDecoder(m.latent_dim, m.hidden_dim, m.depth, shape, m.dropout_g),
    })


def build_conv_vae(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    return nn.ModuleDict({
        "E": ConvEncoder(d.channels, d.resolution, m.hidden_dim, m.latent_dim, m.dropout_d),
        "G": ConvDecoder(m.latent_dim, m.hidden_dim, d.channels, d.resolution, m.dropout_g),
    })


register_model(ModelSpec(
    name="vae",
    description="fully connected VAE: MLP encoder -> (mu, logvar), reparameterised z, MLP decoder; BCE or MSE "
                "reconstruction + beta * KL",
    build=build_vae,
    objective="vae",
    resolutions=MLP_RESOLUTIONS,
))

register_model(ModelSpec(
    name="conv-vae",
    description="convolutional VAE: strided-conv encoder, Linear + ConvTranspose/BatchNorm/Dropout decoder "
                "(report 003); BCE or MSE reconstruction + beta * KL",
    build=build_conv_vae,
    objective="vae",
    resolutions=CONV_RESOLUTIONS,
))
