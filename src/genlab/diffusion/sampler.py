"""How a trained network turns latent noise into images: ``sampler(net, z, cond, uncond) -> images in [-1, 1]``.

``OneStep``: a GAN generator or VAE decoder, one call ``net(z, cond)``. ``ODESampler``: a flow or diffusion
network integrated by a solver over the process's ODE from the noise ``z`` (flat, (N, C*H*W): the latent the run's
seeds, noise.pt and interpolations produce) to images. Both are deterministic given ``z`` and the conditions, and
``describe()`` is what an evaluation's protocol records (None for ``OneStep``: a one-step generator has nothing
to record, so GAN protocols stay as they were).

Classifier-free guidance (Ho & Salimans 2022), class-conditional networks only: each evaluation runs the network
on the conditions and on ``uncond`` (the same images with "no condition", see
``Conditioning.without``) in one batch of 2N, and uses ``out_u + w (out_c - out_u)``; ``w`` = 1 is the plain
conditional model (one evaluation), 0 the unconditional one, > 1 trades diversity for fidelity.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from genlab.diffusion.processes import Net, Process
from genlab.diffusion.solvers import SOLVERS, Solver
from genlab.errors import ConfigError


class ImageSampler(Protocol):
    nfe: int  # network evaluations per image

    def __call__(self, net: nn.Module, z: torch.Tensor, cond: torch.Tensor | None = None,
                 uncond: torch.Tensor | None = None) -> torch.Tensor: ...

    def describe(self) -> dict | None: ...


@dataclass(frozen=True)
class OneStep:
    """A generator that maps a latent to an image in one call (GANs, VAE decoders)."""

    nfe: int = 1

    def __call__(self, net: nn.Module, z: torch.Tensor, cond: torch.Tensor | None = None,
                 uncond: torch.Tensor | None = None) -> torch.Tensor:
        return net(z, cond)

    def describe(self) -> dict | None:
        return None


def guided(net: nn.Module, cond: torch.Tensor | None, uncond: torch.Tensor | None, scale: float) -> Net:
    """``net(x, s, cond)`` as a ``Net``; with a guidance ``scale`` other than 1, the classifier-free mix."""
    if scale == 1.0 or cond is None or uncond is None:
        return lambda x, s: net(x, s, cond)

    def mixed(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = net(torch.cat([x, x]), torch.cat([s, s]), torch.cat([cond, uncond]))
        c, u = out.chunk(2)
        return u + scale * (c - u)

    return mixed


@dataclass(frozen=True)
class ODESampler:
    """Integrate ``process``'s ODE with ``solver`` in ``steps`` steps, starting from the latent noise reshaped to
    ``shape`` (C, H, W); ``guidance``: the classifier-free guidance scale (1 = none)."""

    process: Process
    solver: str
    steps: int
    shape: tuple[int, int, int]
    guidance: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"sampling steps={self.steps!r} is not allowed: a positive number of ODE steps")
        SOLVERS.get(self.solver)  # an unknown solver: ConfigError naming the known ones
        if not (self.guidance >= 0 and self.guidance < float("inf")):
            raise ConfigError(f"guidance scale {self.guidance!r} is not allowed: a number >= 0 (1 = no guidance)")

    @property
    def ode_solver(self) -> Solver:
        return SOLVERS.get(self.solver)

    @property
    def guided(self) -> bool:
        return self.guidance != 1.0

    @property
    def nfe(self) -> int:
        """Network evaluations per image: the solver's evaluations, twice over with guidance."""
        return self.ode_solver.evaluations(self.steps, self.process.final_euler) * (2 if self.guided else 1)

    def __call__(self, net: nn.Module, z: torch.Tensor, cond: torch.Tensor | None = None,
                 uncond: torch.Tensor | None = None) -> torch.Tensor:
        if self.guided and (cond is None or uncond is None):
            raise ConfigError(f"guidance scale {self.guidance:g} needs a class-conditional model; leave it at 1")
        x = self.process.prior(z.reshape(z.shape[0], *self.shape))
        model = guided(net, cond, uncond, self.guidance)
        x = self.ode_solver.integrate(lambda xt, t: self.process.derivative(model, xt, t), x,
                                      self.process.grid(self.steps), self.process.final_euler)
        return x.clamp(-1, 1)

    def describe(self) -> dict | None:
        return {"process": self.process.name, "solver": self.solver, "steps": self.steps, "nfe": self.nfe,
                "guidance": float(self.guidance)}
