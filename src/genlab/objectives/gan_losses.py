"""Adversarial losses as small objects: d_loss(real_logits, fake_logits) and g_loss(fake_logits).

A ``paired`` loss (relativistic) compares each fake with a real image, so G's loss needs D's scores of the real
batch too: ``g_loss(fake_logits, real_logits)``; only objectives whose options say ``pairs_real_in_g`` use one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from genlab.registry import Registry


class GANLoss:
    #: how D's raw outputs are shown as "D(x)" and "D(G(z))" in the logs
    probabilities: bool = True
    #: G's loss needs D's scores of the reals as well (``g_loss(fake, real)``)
    paired: bool = False

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.probabilities else logits


LOSSES: Registry[GANLoss] = Registry("loss")


class NonSaturatingBCE(GANLoss):
    """Goodfellow et al.'s loss with the non-saturating G objective; real_label < 1 = one-sided smoothing."""

    def d_loss(self, real, fake, real_label=1.0):
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_label))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def g_loss(self, fake):
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye; used with spectral norm by Miyato et al.)."""

    probabilities = False

    def d_loss(self, real, fake, real_label=1.0):
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()


class Wasserstein(GANLoss):
    """WGAN critic loss; needs a Lipschitz constraint (weight clipping or gradient penalty)."""

    probabilities = False

    def d_loss(self, real, fake, real_label=1.0):
        return fake.mean() - real.mean()

    def g_loss(self, fake):
        return -fake.mean()


class RelativisticPairing(GANLoss):
    """Relativistic pairing loss (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024): D's loss is
    ``softplus(-(D(x) - D(G(z))))`` over pairs of a real and a fake, G's the same with the roles swapped,
    ``softplus(-(D(G(z)) - D(x)))``. Batches are paired in order (both have the batch's size)."""

    probabilities = False
    paired = True

    def d_loss(self, real, fake, real_label=1.0):
        return F.softplus(fake - real).mean()

    def g_loss(self, fake, real=None):
        if real is None:
            raise ValueError("the relativistic loss pairs fakes with reals: call g_loss(fake, real)")
        return F.softplus(real - fake).mean()


LOSSES.add("bce", NonSaturatingBCE())
LOSSES.add("hinge", Hinge())
LOSSES.add("wasserstein", Wasserstein())
LOSSES.add("relativistic", RelativisticPairing())
