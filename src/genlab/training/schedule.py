"""Learning-rate schedules over a run's budget (``train.lr_schedule``, ``train.warmup_steps``) as a pure function
of the step, so a resumed run sets exactly the rates the uninterrupted run had (the optimizers' state in the
checkpoint holds the last rate too). The budget is ``train.epochs`` x steps per epoch, or ``train.max_steps``
when that is smaller; changing either on resume re-spreads the rest of the schedule over the new budget.

With a wall-clock budget (``train.minutes``) the decay's progress is the larger of the step progress and the
fraction of the minutes trained, so the rate reaches 0 when the first of the two budgets runs out. That part
depends on the machine's speed; a resume reads the seconds trained from the checkpoint and goes on from there.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch

SCHEDULES = ("constant", "cosine", "linear")


def lr_factor(kind: str, step: int, total: int, warmup: int = 0, time_progress: float = 0.0) -> float:
    """The multiplier of the base learning rate for the update after ``step`` steps (0-based) of ``total``.

    Warm-up: ``(step + 1) / warmup`` for the first ``warmup`` steps. Then constant 1, or a cosine
    ``(1 + cos(pi * p)) / 2`` or linear ``1 - p`` decay with progress ``p = (step - warmup) / (total - warmup)``,
    which reaches 0 one step after the budget's last; ``time_progress`` (the fraction of a wall-clock budget
    used) replaces ``p`` when it is larger.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"learning-rate schedule {kind!r} is not one of {SCHEDULES}")
    if step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    p = min(1.0, max((step - warmup) / max(1, total - warmup), time_progress))
    return 0.5 * (1.0 + math.cos(math.pi * p)) if kind == "cosine" else 1.0 - p


class LRSchedule:
    """Sets every optimizer's learning rate to ``base[name] * lr_factor(...)`` before each step; ``budget_s`` (> 0:
    ``train.minutes`` in seconds) also decays it over the seconds trained."""

    def __init__(self, optimizers: Mapping[str, torch.optim.Optimizer], base: Mapping[str, float], kind: str,
                 total: int, warmup: int = 0, budget_s: float = 0.0):
        self.optimizers, self.base = optimizers, dict(base)
        self.kind, self.total, self.warmup, self.budget_s = kind, total, warmup, budget_s

    def apply(self, step: int, seconds: float = 0.0) -> None:
        """The rates for the update after ``step`` steps and ``seconds`` of training."""
        f = lr_factor(self.kind, step, self.total, self.warmup, seconds / self.budget_s if self.budget_s else 0.0)
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = self.base[name] * f


def budget_steps(epochs: int, steps_per_epoch: int, max_steps: int | None) -> int:
    """The run's length in steps: epochs x steps per epoch, or max_steps when smaller."""
    total = epochs * steps_per_epoch
    return min(total, max_steps) if max_steps else total
