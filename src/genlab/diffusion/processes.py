"""The noise processes: rectified flow (flow matching) and EDM (Karras et al. 2022).

A process holds the maths that training and sampling share, and nothing else:

- training: how a batch is noised and what the network must predict (``genlab.diffusion.losses``);
- sampling: the probability-flow ODE that carries noise to images: the time grid of ``steps`` steps (``grid``),
  the starting point (``prior``: the latent noise scaled as the process starts), the derivative ``dx/dt`` given
  the network (``derivative``), and whether the last step must be a first-order one (``final_euler``: EDM's ODE is
  singular at sigma = 0).

The network is a callable ``net(x, s) -> output`` with its condition already bound; ``s`` is the per-image noise
label the network is conditioned on (flow: the time t in [0, 1]; EDM: c_noise = ln(sigma) / 4).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from genlab.errors import ConfigError
from genlab.registry import Registry

#: a network with its condition bound: (x, per-image noise label) -> output of x's shape
Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: how flow matching draws its training times
TIME_SAMPLING = ("uniform", "logit-normal")


def _per_image(value: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar (or (N,) tensor) as an (N,) float32 tensor on x's device."""
    if isinstance(value, torch.Tensor) and value.ndim == 1:
        return value.to(device=x.device, dtype=torch.float32)
    return torch.full((x.shape[0],), float(value), device=x.device, dtype=torch.float32)


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1, 1) in x's dtype, to scale images."""
    return v.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)


class Process:
    """Base: the options a process reads from an objective's options (``from_options``)."""

    name: ClassVar[str] = ""
    final_euler: ClassVar[bool] = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Process:
        """The process with the fields it declares taken from ``options`` (an objective's options dict)."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in options.items() if k in known})

    def grid(self, steps: int) -> list[float]:
        raise NotImplementedError

    def prior(self, noise: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def derivative(self, net: Net, x: torch.Tensor, t: float) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class FlowProcess(Process):
    """Rectified flow / conditional flow matching with straight paths (Liu et al. 2022, Lipman et al. 2023):
    ``x_t = (1 - t) x_0 + t x_1`` from noise ``x_0 ~ N(0, I)`` at t = 0 to data ``x_1`` at t = 1; the network
    predicts the velocity ``dx_t/dt = x_1 - x_0`` (the convention of facebookresearch/flow_matching's
    CondOTProbPath). Sampling integrates ``dx/dt = v(x, t)`` from t = 0 to 1 on a uniform grid."""

    name: ClassVar[str] = "flow"
    final_euler: ClassVar[bool] = False
    time_sampling: str = "uniform"  # training times: uniform on [0, 1] | logit-normal (sigmoid of a normal)
    logit_mean: float = 0.0  # logit-normal: mean of the normal (> 0 puts more times near the data end)
    logit_std: float = 1.0  # logit-normal: its standard deviation

    def __post_init__(self) -> None:
        if self.time_sampling not in TIME_SAMPLING:
            raise ConfigError(f"objective.time_sampling={self.time_sampling!r} is not allowed: one of "
                              f"{', '.join(TIME_SAMPLING)}")
        if not self.logit_std > 0:
            raise ConfigError(f"objective.logit_std={self.logit_std!r} is not allowed: a positive deviation")

    def sample_time(self, n: int, device: torch.device) -> torch.Tensor:
        """Training times (N,) in [0, 1], from the global RNG (checkpointed, so a resume draws the same)."""
        if self.time_sampling == "uniform":
            return torch.rand(n, device=device)
        return torch.sigmoid(self.logit_mean + self.logit_std * torch.randn(n, device=device))

    def path(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, target velocity) for noise ``x0``, data ``x1`` and times ``t`` (N,)."""
        tt = _bcast(t, x1)
        return (1 - tt) * x0 + tt * x1, x1 - x0

    def noise_label(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def grid(self, steps: int) -> list[float]:
        return [i / steps for i in range(steps + 1)]

    def prior(self, noise: torch.Tensor) -> torch.Tensor:
        return noise

    def derivative(self, net: Net, x: torch.Tensor, t: float) -> torch.Tensor:
        return net(x, self.noise_label(_per_image(t, x))).to(x.dtype)


@dataclass(frozen=True)
class EDMProcess(Process):
    """EDM (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models").

    Data ``y`` noised as ``x = y + sigma n``; the denoiser is the network preconditioned as
    ``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)`` with c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd /
    sqrt(sigma^2 + sd^2), c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = ln(sigma) / 4 (sd = sigma_data). Training draws
    ln(sigma) ~ N(p_mean, p_std^2) and weighs the squared error by (sigma^2 + sd^2) / (sigma sd)^2. Sampling
    integrates the probability-flow ODE ``dx/dsigma = (x - D(x; sigma)) / sigma`` from sigma_max to 0 on the
    time discretisation ``sigma_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``,
    i < N, then sigma_N = 0 (its last step is an Euler step: the derivative is undefined at 0)."""

    name: ClassVar[str] = "edm"
    final_euler: ClassVar[bool] = True
    sigma_data: float = 0.5  # standard deviation of the training images (in [-1, 1])
    p_mean: float = -1.2  # training: mean of ln(sigma)
    p_std: float = 1.2  # training: standard deviation of ln(sigma)
    sigma_min: float = 0.002  # sampling: smallest noise level before the final step to 0
    sigma_max: float = 80.0  # sampling: the noise level sampling starts from
    rho: float = 7.0  # sampling: the time discretisation's exponent

    def __post_init__(self) -> None:
        for key in ("sigma_data", "p_std", "sigma_min", "sigma_max", "rho"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"objective.{key}={getattr(self, key)!r} is not allowed: a positive number")
        if not self.sigma_min < self.sigma_max:
            raise ConfigError(f"objective.sigma_min={self.sigma_min!r} must be below objective.sigma_max="
                              f"{self.sigma_max!r}")

    def sample_sigma(self, n: int, device: torch.device) -> torch.Tensor:
        """Training noise levels (N,), log-normal, from the global RNG."""
        return (self.p_mean + self.p_std * torch.randn(n, device=device)).exp()

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        sd = self.sigma_data
        return (sigma ** 2 + sd ** 2) / (sigma * sd) ** 2

    def preconditioning(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_skip, c_out, c_in, c_noise) for noise levels ``sigma`` (N,)."""
        sd2 = self.sigma_data ** 2
        s2 = sigma ** 2
        return sd2 / (s2 + sd2), sigma * self.sigma_data / (s2 + sd2).sqrt(), 1 / (s2 + sd2).sqrt(), sigma.log() / 4

    def denoise(self, net: Net, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """D(x; sigma) for noise levels ``sigma`` (N,)."""
        c_skip, c_out, c_in, c_noise = self.preconditioning(sigma.float())
        out = net(_bcast(c_in, x) * x, c_noise)
        return _bcast(c_skip, x) * x + _bcast(c_out, x) * out.to(x.dtype)

    def grid(self, steps: int) -> list[float]:
        if steps == 1:  # one Euler step from sigma_max to 0: the denoiser's output at sigma_max
            return [self.sigma_max, 0.0]
        a, b = self.sigma_max ** (1 / self.rho), self.sigma_min ** (1 / self.rho)
        return [(a + i / (steps - 1) * (b - a)) ** self.rho for i in range(steps)] + [0.0]

    def prior(self, noise: torch.Tensor) -> torch.Tensor:
        return noise * self.sigma_max

    def derivative(self, net: Net, x: torch.Tensor, t: float) -> torch.Tensor:
        if t <= 0 or not math.isfinite(t):
            raise ValueError(f"the EDM ODE has no derivative at sigma={t}")
        return (x - self.denoise(net, x, _per_image(t, x))) / t


PROCESSES: Registry[type[Process]] = Registry("noise process")
PROCESSES.add("flow", FlowProcess)
PROCESSES.add("edm", EDMProcess)
