"""One training step, built from the objective's phases (phases.py): each phase in order, then the EMA.

A phase trains only its own networks (the others are frozen while it runs, so their parameters get no
gradients), steps its optimizer ``repeat`` times (WGAN's n_critic) and, under DDP, sees the networks it trains
through DDP (ddp.phase_views). Everything a step needs is resolved when the step is built, so calling it does
no lookups and builds no lists.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ContextManager

import torch

from genlab.models.ema import EMA
from genlab.training import ddp
from genlab.training.phases import Batch, Phase, StepContext


@dataclass
class PhasePlan:
    """A phase with everything the step needs precomputed."""

    phase: Phase
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    trains: frozenset
    nets_view: Mapping | None  # ctx.nets during this phase under DDP (trained networks through DDP)


class TrainStep:
    """``step(batch) -> stats`` (scalar tensors, not synchronised): every phase of the objective, then the EMA.

    ``synced``: the DDP-wrapped networks (ddp.wrap_ddp) when several ranks train; ``autocast``: the run's mixed
    precision context (perf.Runtime.autocast).
    """

    def __init__(self, phases: Sequence[Phase], ctx: StepContext, optimizers: Mapping[str, torch.optim.Optimizer],
                 scalers: Mapping[str, torch.amp.GradScaler | None], *, ema: EMA | None = None,
                 autocast: Callable[[], ContextManager], synced: Mapping[str, ddp.Synced] | None = None):
        self.ctx, self.ema, self.autocast = ctx, ema, autocast
        self.nets = ctx.nets
        views = ddp.phase_views(self.nets, synced, phases) if synced else {}
        self.plan = [PhasePlan(ph, optimizers[ph.optimizer], scalers.get(ph.optimizer), frozenset(ph.trains),
                               views.get(ph.name)) for ph in phases]
        self._params = {k: list(net.parameters()) for k, net in self.nets.items()}
        self._trainable: frozenset | None = None  # networks whose parameters require grad right now
        self._one = torch.ones((), device=ctx.device)  # scaler.scale(one): the loss scale, without a sync

    def forget_trainable(self) -> None:
        """Someone may have touched ``requires_grad`` (e.g. between two fits): set it afresh next step."""
        self._trainable = None

    def _set_trainable(self, trains: frozenset) -> None:
        """Freeze the networks a phase does not train; only networks whose state changes are touched."""
        current = self._trainable
        for name, params in self._params.items():
            want = name in trains
            if current is None or (name in current) != want:
                for p in params:
                    p.requires_grad_(want)
        self._trainable = trains

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        stats: dict[str, torch.Tensor] = {}
        ctx = self.ctx
        ctx.cache.clear()
        nets = ctx.nets
        autocast = self.autocast
        try:
            for plan in self.plan:
                phase, opt, scaler = plan.phase, plan.optimizer, plan.scaler
                if self._trainable is not plan.trains:
                    self._set_trainable(plan.trains)
                if plan.nets_view is not None:
                    ctx.nets = plan.nets_view  # type: ignore[assignment]  # DDP-wrapped, same keys
                for _ in range(phase.repeat):
                    opt.zero_grad(set_to_none=True)
                    ctx.loss_scale = None if scaler is None else scaler.scale(self._one)
                    with autocast():
                        loss, s = phase.fn(batch, ctx)
                    if scaler is None:
                        loss.backward()
                        opt.step()
                    else:
                        scaler.scale(loss).backward()
                        scaler.step(opt)
                        scaler.update()
                    if phase.after is not None:
                        phase.after(ctx)
                stats.update(s)
        finally:
            ctx.nets = nets
            ctx.loss_scale = None
        if self.ema is not None:
            self.ema.update(self.nets["G"])
        return stats

    def release_ddp(self) -> None:
        """Drop the DDP views (the networks stay): their reducers hold the process group (DistContext.hold)."""
        self.plan = [replace(p, nets_view=None) for p in self.plan]
