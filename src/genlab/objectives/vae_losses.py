"""VAE pieces as pure functions: reparameterisation, the Gaussian KL term and the reconstruction loss.

Images cross the seam in [-1, 1]; decoders end in ``tanh(a)``. Since ``(tanh(a) + 1) / 2 == sigmoid(2a)``, the
Bernoulli (BCE) likelihood of the image mapped to [0, 1] is computed from the logits ``2a`` (stable, exact).
Both reconstruction losses are sums over pixels in [0, 1] units and the KL is a sum over latent units, each
averaged over the batch: the negative ELBO per image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

RECON_LOSSES = ("bce", "mse")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2): dz/dmu = 1, dz/dlogvar = eps * sigma / 2."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over latent units, one value per row: (N,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def recon_loss(pre_tanh: torch.Tensor, x: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Per-image reconstruction loss (N,) of the decoder output ``tanh(pre_tanh)`` against ``x`` in [-1, 1]."""
    target = (x + 1.0) * 0.5
    if kind == "bce":
        loss = F.binary_cross_entropy_with_logits(2.0 * pre_tanh, target, reduction="none")
    elif kind == "mse":
        loss = (torch.tanh(pre_tanh) * 0.5 + 0.5 - target).pow(2)
    else:
        raise ValueError(f"recon loss {kind!r} is not one of {RECON_LOSSES}")
    return loss.flatten(1).sum(dim=1)


@dataclass
class ELBO:
    """The terms of one batch's loss; ``total == recon + beta * kl`` exactly."""

    recon: torch.Tensor
    kl: torch.Tensor
    total: torch.Tensor


def negative_elbo(pre_tanh: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  beta: float = 1.0, kind: str = "bce") -> ELBO:
    recon = recon_loss(pre_tanh, x, kind).mean()
    kl = kl_divergence(mu, logvar).mean()
    return ELBO(recon=recon, kl=kl, total=recon + beta * kl)
