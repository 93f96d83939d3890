"""Fully connected GAN (the Fashion-MNIST and latent_dim x hidden_dim sweep reports)."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.config import ModelConfig
from genlab.models.init import dcgan_init
from genlab.models.layers import Dropout
from genlab.models.registry import DataShape, ModelSpec, register_model


class MLPGenerator(nn.Module):
    """z -> [Linear + BatchNorm + LeakyReLU] x depth (widths hidden_dim * 2^i) -> Linear -> Tanh -> image."""

    def __init__(self, latent_dim: int, hidden_dim: int, depth: int, image_shape: tuple[int, int, int],
                 dropout: float = 0.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = image_shape
        layers: list[nn.Module] = []
        width_in = latent_dim
        for i in range(depth):
            width = hidden_dim * 2**i
            layers += [nn.Linear(width_in, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(Dropout(dropout))
            width_in = width
        layers += [nn.Linear(width_in, math.prod(image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """image -> [Linear + LeakyReLU (+ Dropout)] x depth (widths mirror G) -> Linear -> logit."""

    def __init__(self, hidden_dim: int, depth: int, image_shape: tuple[int, int, int], dropout: float = 0.0,
                 sn: bool = False):
        super().__init__()
        wrap = spectral_norm if sn else (lambda m: m)
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = math.prod(image_shape)
        for i in reversed(range(depth)):
            width = hidden_dim * 2**i
            layers += [wrap(nn.Linear(width_in, width)), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(Dropout(dropout))
            width_in = width
        self.body = nn.Sequential(*layers)
        self.head = wrap(nn.Linear(width_in, 1))
        self.feature_dim = width_in

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(x)).view(-1)



def build_mlp_gan(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    shape = (d.channels, d.resolution, d.resolution)
    nets = nn.ModuleDict({
        "G": MLPGenerator(m.latent_dim, m.hidden_dim, m.depth, shape, m.dropout_g),
        "D": MLPDiscriminator(m.hidden_dim, m.depth, shape, m.dropout_d, m.spectral_norm),
    })
    dcgan_init(nets)
    return nets


register_model(ModelSpec(
    name="mlp-gan",
    description="fully connected GAN: Linear+BatchNorm+LeakyReLU G, Linear+LeakyReLU(+dropout) D",
    build=build_mlp_gan,
    resolutions=(28, 32, 64),
))
