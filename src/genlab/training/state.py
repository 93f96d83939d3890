"""What a checkpoint holds, as one object (``TrainState``).

``TrainState.state_dict()`` is the checkpoint dict (keys ``nets``, ``ema``, ``optimizers``, ``step``,
``epoch``, ``step_in_epoch``, ``rng``, ``config``, ``genlab_version``, ``extra``) and ``load_state_dict``
takes one back (training and resume); ``sampling.restore`` rebuilds a checkpoint's networks for drawing, with
the same ``sampling.load_networks`` that a resume uses. The format is that
of genlab 0.1.0 (tests/fixtures/runs_v010).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from genlab import __version__
from genlab.checkpoint import rng_state, set_rng_state
from genlab.config import Config, to_dict
from genlab.errors import RunError
from genlab.models.ema import EMA
from genlab.sampling import load_networks
from genlab.training import perf

#: checkpoint ``extra`` entries that describe the writer, not the model (rebuilt at every save)
WRITER_KEYS = ("best", "runtime", "world_size", "rank_rng", "scalers", "train_seconds", "objective_state")


def build_ema(cfg: Config, G: nn.Module) -> EMA | None:
    """The EMA of the generator when ``train.ema`` > 0, or by half-life when ``train.ema_halflife_kimg`` > 0."""
    t = cfg.train
    if t.ema_halflife_kimg > 0:
        return EMA(G, t.ema, t.ema_warmup, halflife_images=1000 * t.ema_halflife_kimg, rampup=t.ema_rampup,
                   batch_size=t.batch_size)
    return EMA(G, t.ema, t.ema_warmup) if t.ema > 0 else None


@dataclass
class TrainState:
    """Everything training changes: weights, EMA, optimizers, loss scalers, counters, best FID, model facts."""

    cfg: Config
    nets: nn.ModuleDict
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler | None] = field(default_factory=dict)
    ema: EMA | None = None
    step: int = 0
    epoch: int = 0  # completed epochs
    step_in_epoch: int = 0
    best: float | None = None  # lowest FID seen by evaluation during training (best.pt)
    seconds: float = 0.0  # wall-clock seconds trained so far, over resumes (train.minutes)
    extra: dict = field(default_factory=dict)  # model facts: num_classes, class_names, a text vocabulary
    #: per optimizer, the implementation flags of this process (perf.optimizer_options); a loaded optimizer
    #: keeps them instead of the writer's
    optimizer_options: dict[str, dict] = field(default_factory=dict)
    #: the training objective, whose own state (LeCam's averages, ADA's p) is saved as extra["objective_state"]
    objective: Any = None

    @property
    def generator(self) -> nn.Module:
        """What sampling uses: the EMA generator when there is one."""
        return self.ema.net if self.ema is not None else self.nets["G"]

    def state_dict(self, *, runtime: dict | None = None, world_size: int = 1,
                   rank_rng: list | None = None) -> dict[str, Any]:
        """The checkpoint dict. ``runtime``, ``world_size`` and ``rank_rng`` (every rank's RNG, gathered by the
        caller under DDP) describe the writer."""
        extra = {**self.extra, "best": self.best, "runtime": runtime, "world_size": world_size,
                 "train_seconds": self.seconds}
        if rank_rng is not None:
            extra["rank_rng"] = rank_rng
        objective_state = self.objective.state_dict() if self.objective is not None else {}
        if objective_state:
            extra["objective_state"] = objective_state
        if any(s is not None for s in self.scalers.values()):
            extra["scalers"] = {k: s.state_dict() for k, s in self.scalers.items() if s is not None}
        return {
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "ema": None if self.ema is None else self.ema.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "step": self.step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "rng": rng_state(),
            "config": to_dict(self.cfg),
            "genlab_version": __version__,
            "extra": extra,
        }

    def load_state_dict(self, ckpt: dict, *, rank: int = 0, world_size: int = 1, source: str = "") -> None:
        """Continue from a checkpoint dict: weights, optimizers, scalers, EMA, counters, extra and RNG state
        (``rank``'s own stream when the writer ran on several processes). ``source`` names it in errors."""
        extra = ckpt.get("extra", {}) or {}
        saved_world = int(extra.get("world_size", 1))
        if saved_world != world_size:
            raise RunError(f"checkpoint {source} was written by a run on {saved_world} process(es) "
                           f"(world_size) and this one has {world_size}; resume with the same number of "
                           f"processes (torchrun --nproc_per_node/--nnodes giving world_size {saved_world}), "
                           "or start a new run from its weights")
        load_networks(self.nets, ckpt, self.cfg, source,
                      "resume the run that wrote it (its own --resume folder), or start a new run for this config")
        for k, sd in ckpt["optimizers"].items():
            self.optimizers[k].load_state_dict(sd)
            perf.retarget_optimizer(self.optimizers[k], self.optimizer_options.get(k, {}))
        for k, sd in (extra.get("scalers") or {}).items():
            scaler = self.scalers.get(k)
            if scaler is not None:
                scaler.load_state_dict(sd)
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.load_state_dict(ckpt["ema"], updates=ckpt["step"])
        self.step, self.epoch, self.step_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["step_in_epoch"]
        self.best = extra.get("best")
        self.seconds = float(extra.get("train_seconds", 0.0))
        if self.objective is not None and extra.get("objective_state"):
            self.objective.load_state_dict(extra["objective_state"])
        self.extra.update({k: v for k, v in extra.items() if k not in WRITER_KEYS})
        set_rng_state(extra["rank_rng"][rank] if world_size > 1 else ckpt["rng"])
