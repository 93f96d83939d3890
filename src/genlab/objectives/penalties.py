"""Lipschitz constraints for critics: the WGAN-GP gradient penalty, WGAN weight clipping and the zero-centred
R1/R2 penalties (Mescheder et al. 2018; R3GAN) as pure functions; LeCam regularisation with its moving averages.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def interpolate(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Random points on the segments between paired real and fake images (one alpha ~ U[0, 1] per image).

    In ``real``'s dtype: under autocast the generator's fakes may be bfloat16/float16 while real images are float32.
    """
    fake = fake.to(real.dtype)
    if alpha is None:
        alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    return torch.lerp(real.detach(), fake.detach(), alpha)


def input_gradient(scores: torch.Tensor, inputs: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """``d sum(scores) / d inputs`` with the graph kept (``create_graph``), so a penalty on it trains the critic.

    ``scale``: the fp16 loss scale (a 0-d tensor, ``StepContext.loss_scale``). The gradient is then taken of the
    scaled mean score and unscaled (AMP's gradient-penalty recipe): float16's backward would otherwise flush small
    per-element gradients towards zero (an R1 of a critic with small weights came out 32% low, 0.01% with it). The
    mean, not the sum: a per-score gradient of 2^16 would overflow float16. ``None``: as in float32 or bf16.
    """
    if scale is None:
        (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
        return grad
    (grad,) = torch.autograd.grad(scores.float().mean() * scale, inputs, create_graph=True)
    return grad * (scores.numel() / scale)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     weight: float, alpha: torch.Tensor | None = None,
                     scale: torch.Tensor | None = None) -> torch.Tensor:
    """Gulrajani et al.: ``weight * E[(||grad_x critic(x_hat)||_2 - 1)^2]`` over random interpolates x_hat.

    The graph is kept (``create_graph``) so the penalty trains the critic. ``critic`` maps images to one score
    per image; a conditional critic is passed as ``lambda x: D(x, y)``. ``scale``: see :func:`input_gradient`.
    """
    x_hat = interpolate(real, fake, alpha).requires_grad_(True)
    grad = input_gradient(critic(x_hat), x_hat, scale)
    norms = grad.flatten(1).norm(2, dim=1)
    return weight * (norms - 1.0).pow(2).mean()


@torch.no_grad()
def clip_weights(net: nn.Module, value: float) -> None:
    """Arjovsky et al.'s WGAN constraint: clamp every parameter of the critic to [-value, value]."""
    for p in net.parameters():
        p.clamp_(-value, value)


def zero_centered_penalty(scores: torch.Tensor, inputs: torch.Tensor,
                          scale: torch.Tensor | None = None) -> torch.Tensor:
    """``E[||grad_x D(x)||_2^2]`` over the batch: R1 when ``inputs`` are real images, R2 when they are fakes.

    ``inputs`` must require grad and ``scores`` (one per image) come from them; the graph is kept
    (``create_graph``) so the penalty trains D. The caller weighs it (R3GAN: gamma / 2). ``scale``: see
    :func:`input_gradient`.
    """
    grad = input_gradient(scores, inputs, scale)
    return grad.float().flatten(1).pow(2).sum(dim=1).mean()


def lecam_penalty(real: torch.Tensor, fake: torch.Tensor, ema_real: torch.Tensor,
                  ema_fake: torch.Tensor) -> torch.Tensor:
    """LeCam regularisation (Tseng et al. 2021, their code): ``E[relu(D(x) - a_f)^2] + E[relu(a_r - D(G(z)))^2]``
    with ``a_r``, ``a_f`` moving averages of D's mean score on reals and fakes (``LeCamEMA``); keeps D's scores
    of reals and fakes from drifting apart on small datasets. The caller weighs it (lambda)."""
    return F.relu(real - ema_fake).pow(2).mean() + F.relu(ema_real - fake).pow(2).mean()


class LeCamEMA:
    """The moving averages of D's mean score on reals and fakes (decay ``decay``, starting at 0) the LeCam
    penalty anchors to; ``state_dict`` keeps them across a resume."""

    def __init__(self, decay: float = 0.99):
        self.decay = decay
        self.real = torch.zeros(())
        self.fake = torch.zeros(())

    def update(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        d = self.decay
        self.real = self.real.to(real.device) * d + real.detach().float().mean() * (1 - d)
        self.fake = self.fake.to(fake.device) * d + fake.detach().float().mean() * (1 - d)

    def state_dict(self) -> dict:
        return {"real": float(self.real), "fake": float(self.fake)}

    def load_state_dict(self, d: dict) -> None:
        self.real, self.fake = torch.tensor(float(d["real"])), torch.tensor(float(d["fake"]))
