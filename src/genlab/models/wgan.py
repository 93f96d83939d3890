"""Wasserstein GANs: weight clipping (Arjovsky et al.) and gradient penalty (Gulrajani et al.).

Both use the DCGAN generator. The clipped critic is the DCGAN discriminator (a raw score, no sigmoid); the
gradient-penalty critic replaces BatchNorm with a per-image layer norm, since the penalty is defined per image.
"""
from __future__ import annotations

import torch
from torch import nn

from genlab.config import ModelConfig
from genlab.models.blocks import ConvBody, maybe_sn
from genlab.models.dcgan import RESOLUTIONS, DCGANGenerator, build_dcgan
from genlab.models.init import dcgan_init
from genlab.models.registry import DataShape, ModelSpec, register_model

CRITIC_LOSSES = ("wasserstein", "hinge")


class Critic(nn.Module):
    """image -> one unbounded score per image (conv trunk with layer norm, then a linear layer)."""

    def __init__(self, body: ConvBody, sn: bool = False):
        super().__init__()
        self.body = body
        self.feature_dim = body.feature_dim
        self.head = maybe_sn(nn.Linear(body.feature_dim, 1), sn)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


def build_wgan_gp(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    body = ConvBody(d.channels, d.resolution, m.hidden_dim, "layer", m.dropout_d, m.spectral_norm)
    nets = nn.ModuleDict({
        "G": DCGANGenerator(m.latent_dim, m.hidden_dim, d.channels, d.resolution, m.dropout_g),
        "D": Critic(body, m.spectral_norm),
    })
    dcgan_init(nets)
    return nets


register_model(ModelSpec(
    name="wgan",
    description="WGAN: DCGAN G, DCGAN critic without sigmoid, weights clipped to objective.clip_value after "
                "each of objective.n_critic steps",
    build=build_dcgan,
    objective="wgan",
    resolutions=RESOLUTIONS,
    losses=CRITIC_LOSSES,
))

register_model(ModelSpec(
    name="wgan-gp",
    description="WGAN-GP: DCGAN G, layer-norm critic, gradient penalty objective.grad_penalty on "
                "interpolates, objective.n_critic critic steps",
    build=build_wgan_gp,
    objective="wgan-gp",
    resolutions=RESOLUTIONS,
    losses=CRITIC_LOSSES,
))
