"""Each training objective's options: a small dataclass per objective family, read from the ``objective:`` section.

``OPTIONS`` maps an objective name (``ModelSpec.objective``) to its dataclass, so a recipe's ``objective:`` keys
are checked against the objective its model trains with (``genlab.recipe``) and the objective receives them
typed. Every option is documented where it is declared; ``check`` holds the value bounds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from genlab.errors import ConfigError
from genlab.registry import Registry


def _check(cond: bool, key: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"objective.{key}={value!r} is not allowed: {allowed}")


@dataclass
class ObjectiveOptions:
    """Base of every objective's options."""

    #: whether the objective can apply train.diffaugment (the VAE's likelihood is on the un-augmented image)
    augments: ClassVar[bool] = True
    #: whether the objective's G phase scores the real batch for a paired loss (train.loss=relativistic)
    pairs_real_in_g: ClassVar[bool] = False

    def check(self) -> None:
        """ConfigError (one line: key, value, what is allowed) for a value out of bounds."""


@dataclass
class AdversarialOptions(ObjectiveOptions):
    """What every objective with a discriminator (critic) shares."""

    real_label: float = 1.0  # target for real images in D's BCE; 0.9 = one-sided label smoothing
    n_critic: int = 1  # D (critic) updates per G update

    def check(self) -> None:
        _check(self.n_critic > 0, "n_critic", self.n_critic, "a positive integer")
        _check(0.0 < self.real_label <= 1.0, "real_label", self.real_label,
               "a target in (0, 1]; 0.9 = one-sided smoothing")


@dataclass
class GANOptions(AdversarialOptions):
    """GANs whose D scores real and fake batches (gan, cgan, text-gan)."""

    pairs_real_in_g: ClassVar[bool] = True
    merged_batch: bool = False  # D sees one shuffled real+fake batch instead of two
    #: options for small datasets
    lecam: float = 0.0  # LeCam regularisation weight lambda (Tseng et al. 2021: 0.1-0.3; 0 = off)
    lecam_decay: float = 0.99  # decay of LeCam's moving averages of D's scores
    #: adaptive augmentation (ADA heuristic): train.diffaugment applied per image with a probability p raised
    #: while E[sign(D(real))] > ada_target (D over-fits) and lowered below it; 0 = off (p is always 1)
    ada_target: float = 0.0  # ADA: 0.6
    ada_interval: int = 4  # D updates between adjustments of p
    ada_images: int = 100_000  # images over which p can move from 0 to 1 (ADA: 500k)

    def check(self) -> None:
        super().check()
        _check(self.lecam >= 0, "lecam", self.lecam, "a non-negative weight (0 = off; Tseng et al.: 0.1-0.3)")
        _check(0.0 <= self.lecam_decay < 1.0, "lecam_decay", self.lecam_decay, "a decay in [0, 1), e.g. 0.99")
        _check(0.0 <= self.ada_target < 1.0, "ada_target", self.ada_target,
               "a sign rate in [0, 1) (ADA: 0.6; 0 = off)")
        _check(self.ada_interval > 0, "ada_interval", self.ada_interval, "a positive number of D updates")
        _check(self.ada_images > 0, "ada_images", self.ada_images, "a positive number of images")


class _Critic:
    """Mixin for critics: a raw score has no label to smooth."""

    real_label: float

    def check(self) -> None:
        super().check()  # type: ignore[misc]
        real_label = self.real_label
        if real_label != 1.0:
            raise ConfigError(f"objective.real_label={real_label} (label smoothing) means nothing to a critic; "
                              "leave it at 1.0")


@dataclass
class WGANOptions(_Critic, GANOptions):
    """WGAN (Arjovsky et al.): the critic's weights are clipped after every critic step."""

    clip_value: float = 0.01  # WGAN weight clipping bound

    def check(self) -> None:
        super().check()
        _check(self.clip_value > 0, "clip_value", self.clip_value, "a positive clipping bound (WGAN: 0.01)")


@dataclass
class WGANGPOptions(_Critic, GANOptions):
    """WGAN-GP (Gulrajani et al.): a gradient penalty on interpolates keeps the critic Lipschitz."""

    grad_penalty: float = 10.0  # WGAN-GP lambda

    def check(self) -> None:
        super().check()
        _check(self.grad_penalty >= 0, "grad_penalty", self.grad_penalty,
               "a non-negative penalty weight (WGAN-GP: 10)")


@dataclass
class R3GANOptions(_Critic, GANOptions):
    """R3GAN (Huang et al. 2024): relativistic pairing loss + zero-centred gradient penalties on reals (R1) and
    fakes (R2), ``gamma / 2 * E||grad_x D(x)||^2`` each, applied lazily (StyleGAN2): on every ``reg_every``-th
    step, multiplied by ``reg_every`` so their average weight stays ``gamma / 2``."""

    gamma: float = 0.05  # R1 and R2 weight (the paper's CIFAR-10 value; larger for larger images)
    reg_every: int = 4  # lazy regularisation: the penalties every k steps, scaled by k (1 = every step)

    def check(self) -> None:
        super().check()
        _check(self.gamma >= 0, "gamma", self.gamma, "a non-negative penalty weight (R3GAN CIFAR-10: 0.05)")
        _check(self.reg_every > 0, "reg_every", self.reg_every, "a positive number of steps (1 = every step)")
        _check(not self.merged_batch, "merged_batch", self.merged_batch,
               "false: the R1 and R2 penalties take the real and the fake batch apart")


@dataclass
class VAEOptions(ObjectiveOptions):
    """VAE: reconstruction + beta * KL."""

    augments: ClassVar[bool] = False
    beta: float = 1.0  # weight of the KL term
    recon_loss: str = "bce"  # reconstruction likelihood: "bce" or "mse"

    def check(self) -> None:
        _check(self.beta >= 0, "beta", self.beta, "a non-negative KL weight")
        _check(self.recon_loss in ("bce", "mse"), "recon_loss", self.recon_loss, "bce or mse")


@dataclass
class VAEGANOptions(AdversarialOptions):
    """VAE-GAN (Larsen et al.): D's loss, E's feature reconstruction + beta * KL, G's weighted reconstruction."""

    beta: float = 1.0  # weight of the KL term in E's loss
    recon_weight: float = 1.0  # weight of the feature-space reconstruction in G's loss (Larsen's gamma)

    def check(self) -> None:
        super().check()
        _check(self.beta >= 0, "beta", self.beta, "a non-negative KL weight")
        _check(self.recon_weight >= 0, "recon_weight", self.recon_weight, "a non-negative weight")


@dataclass
class DenoisingOptions(ObjectiveOptions):
    """What flow and diffusion objectives share: label dropout in training, and how the run draws its images by
    default (the sample grids, evaluations during training, `genlab sample` and `genlab eval` unless their
    --steps / --solver / --guidance say otherwise)."""

    augments: ClassVar[bool] = False  # the denoising target is the image itself: no DiffAugment
    solver: str = "euler"  # ODE solver of the sampler: euler | heun (genlab.diffusion.SOLVERS)
    steps: int = 50  # ODE steps per image (network evaluations: euler steps, heun 2 x steps, EDM 2 x steps - 1)
    #: classifier-free guidance scale w (class-conditional models): out_u + w (out_c - out_u); 1 = the plain
    #: conditional model (one evaluation per step), 0 = unconditional, > 1 sharper classes, less diversity
    guidance: float = 1.0
    #: training: the probability that a label is replaced by "no label", which teaches the unconditional model that
    #: guidance needs (Ho & Salimans: 0.1-0.2); class-conditional models only
    label_dropout: float = 0.0

    def check(self) -> None:
        _check(self.solver in ("euler", "heun"), "solver", self.solver, "euler or heun")
        _check(self.steps > 0, "steps", self.steps, "a positive number of ODE steps")
        _check(0.0 <= self.guidance < float("inf"), "guidance", self.guidance, "a scale >= 0 (1 = no guidance)")
        _check(0.0 <= self.label_dropout < 1.0, "label_dropout", self.label_dropout,
               "a probability in [0, 1) (0.1-0.2 for classifier-free guidance)")


@dataclass
class FlowOptions(DenoisingOptions):
    """Flow matching with straight paths from noise (t = 0) to data (t = 1); genlab.diffusion.FlowProcess."""

    ot_pairing: bool = False  # pair each batch's noise with its images by minibatch optimal transport
    time_sampling: str = "uniform"  # training times: uniform | logit-normal (sigmoid of N(logit_mean, logit_std))
    logit_mean: float = 0.0  # logit-normal times: the normal's mean (flow_matching's CIFAR-10 "skewed": 1.2)
    logit_std: float = 1.0  # logit-normal times: its standard deviation (flow_matching's CIFAR-10: 1.2)

    def check(self) -> None:
        super().check()
        _check(self.time_sampling in ("uniform", "logit-normal"), "time_sampling", self.time_sampling,
               "uniform or logit-normal")
        _check(self.logit_std > 0, "logit_std", self.logit_std, "a positive standard deviation")


@dataclass
class EDMOptions(DenoisingOptions):
    """EDM (Karras et al. 2022); genlab.diffusion.EDMProcess. Defaults: the paper's values."""

    solver: str = "heun"  # EDM's sampler: Heun, 18 steps = 35 network evaluations (CIFAR-10)
    steps: int = 18
    sigma_data: float = 0.5  # standard deviation of the images in [-1, 1]
    p_mean: float = -1.2  # training noise levels: ln(sigma) ~ N(p_mean, p_std^2)
    p_std: float = 1.2
    sigma_min: float = 0.002  # sampling: the smallest noise level before the final step to 0
    sigma_max: float = 80.0  # sampling: the noise level sampling starts from
    rho: float = 7.0  # sampling: exponent of the time discretisation

    def check(self) -> None:
        super().check()
        for key in ("sigma_data", "p_std", "sigma_min", "sigma_max", "rho"):
            _check(getattr(self, key) > 0, key, getattr(self, key), "a positive number")
        _check(self.sigma_min < self.sigma_max, "sigma_min", self.sigma_min,
               f"a noise level below objective.sigma_max={self.sigma_max}")


OPTIONS: Registry[type[ObjectiveOptions]] = Registry("objective")
for _name, _cls in (("gan", GANOptions), ("cgan", GANOptions), ("text-gan", GANOptions),
                    ("acgan", AdversarialOptions),  # D's class head sees real and fake apart: no merged batch
                    ("wgan", WGANOptions), ("wgan-gp", WGANGPOptions), ("text-wgan-gp", WGANGPOptions),
                    ("r3gan", R3GANOptions),
                    ("vae", VAEOptions), ("vae-gan", VAEGANOptions), ("cvae-gan", VAEGANOptions),
                    ("flow", FlowOptions), ("edm", EDMOptions)):
    OPTIONS.add(_name, _cls)
