"""What one training step does, as data: a list of phases run by one loop.

A phase names the optimizer it steps, the networks it trains, how many times it repeats per step (WGAN's
n_critic) and a function ``fn(batch, ctx) -> (loss, stats)``. A new model needs a new objective (a phase
list), never a new loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from genlab.config import Config, OptimConfig
from genlab.objectives import LOSSES, GANLoss
from genlab.objectives.diffaugment import make_augment
from genlab.registry import Registry


@dataclass
class Batch:
    x: torch.Tensor  # real images, float in [-1, 1], (N, C, H, W)
    y: Optional[torch.Tensor] = None  # int64 labels (N,) for labeled data
    idx: Optional[torch.Tensor] = None  # the images' indices in the training set (per-image captions)


@dataclass
class StepContext:
    """Everything a phase may use; built once per run by the loop."""

    nets: nn.ModuleDict
    cfg: Config
    device: torch.device
    num_classes: int = 0
    loss: Optional[GANLoss] = None
    augment: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    cache: dict = field(default_factory=dict)  # per-step scratch shared between phases (cleared each step)

    def z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.model.latent_dim, device=self.device)


PhaseFn = Callable[[Batch, StepContext], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Phase:
    name: str
    optimizer: str  # key of Objective.optimizers()
    trains: tuple[str, ...]  # networks that receive gradients in this phase (others are frozen)
    fn: PhaseFn
    repeat: int = 1
    after: Optional[Callable[[StepContext], None]] = None  # e.g. weight clipping after a critic step


class Objective:
    """Turns networks + config into optimizers and phases. Subclasses set ``phases``."""

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def optimizers(self) -> dict[str, tuple[tuple[str, ...], OptimConfig]]:
        """optimizer name -> (networks it owns, settings)."""
        t = self.cfg.train
        return {"D": (("D",), t.d_opt), "G": (("G",), t.g_opt)}

    def context(self, nets: nn.ModuleDict, device: torch.device, num_classes: int) -> StepContext:
        return StepContext(nets=nets, cfg=self.cfg, device=device, num_classes=num_classes,
                           loss=LOSSES.get(self.cfg.train.loss), augment=make_augment(self.cfg.train.diffaugment))

    def phases(self) -> list[Phase]:
        raise NotImplementedError


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


def make_optimizer(params, o: OptimConfig, **impl) -> torch.optim.Optimizer:
    """``impl``: implementation switches that keep the maths (``fused=True``, ``foreach=True``; perf.py)."""
    if o.optimizer == "rmsprop":  # the WGAN paper's choice for weight clipping
        return torch.optim.RMSprop(params, lr=o.lr, eps=o.eps, weight_decay=o.weight_decay,
                                   foreach=impl.get("foreach"))
    return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay, **impl)


@OBJECTIVES.register("gan")
class GANObjective(Objective):
    """Unconditional GAN: D phase (repeated n_critic times), then G phase, with any registered loss."""

    def d_phase(self, batch: Batch, ctx: StepContext):
        G, D, loss = ctx.nets["G"], ctx.nets["D"], ctx.loss
        n = batch.x.shape[0]
        with torch.no_grad():
            fake = G(ctx.z(n))
        real, fake = ctx.augment(batch.x), ctx.augment(fake)
        if ctx.cfg.train.merged_batch:  # one forward over real+fake: BatchNorm sees a mixed batch
            logits = D(torch.cat([real, fake]))
            real_logits, fake_logits = logits[:n], logits[n:]
        else:
            real_logits, fake_logits = D(real), D(fake)
        d_loss = loss.d_loss(real_logits, fake_logits, ctx.cfg.train.real_label)
        stats = {"loss_D": d_loss.detach(), "D(x)": loss.score(real_logits.detach()).mean(),
                 "D(G(z))": loss.score(fake_logits.detach()).mean()}
        return d_loss, stats

    def g_phase(self, batch: Batch, ctx: StepContext):
        G, D, loss = ctx.nets["G"], ctx.nets["D"], ctx.loss
        fake_logits = D(ctx.augment(G(ctx.z(batch.x.shape[0]))))
        g_loss = loss.g_loss(fake_logits)
        return g_loss, {"loss_G": g_loss.detach()}

    def phases(self) -> list[Phase]:
        return [
            Phase("D", "D", ("D",), self.d_phase, repeat=self.cfg.train.n_critic),
            Phase("G", "G", ("G",), self.g_phase),
        ]


from genlab.training import families  # noqa: E402,F401  (registers wgan, cgan, acgan, text, vae, vae-gan objectives)
