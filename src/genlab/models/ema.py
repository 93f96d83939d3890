"""Exponential moving average of the generator's weights (sampling and evaluation use it when on).

With ``warmup`` (``train.ema_warmup``, on by default) the decay of update ``t`` (counting from 0) is
``min(decay, (1 + t) / (10 + t))``: 0.1 at the first update, 0.9 after ~90, 0.99 after ~1000 and 0.999 after
~10,000. A fixed 0.999 would keep e^-1 of the random initial weights after 1,000 steps and e^-5 after 5,000,
so short runs would sample from an average still dominated by the untrained generator. The update count is a
buffer (``num_updates``), saved in checkpoints, so a resumed run continues the same schedule.

With a half-life (``train.ema_halflife_kimg``, EDM's form, for flow and diffusion models, which need a long
average) the decay is ``0.5 ** (batch / h)`` with ``h`` the half-life in images, capped at ``rampup`` times the
images seen before the update (``train.ema_rampup``): the first update copies the weights and the average then
covers the last ``rampup`` share of training until it reaches the half-life.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    def __init__(self, net: nn.Module, decay: float, warmup: bool = False, *, halflife_images: float = 0.0,
                 rampup: float = 0.0, batch_size: int = 1):
        super().__init__()
        self.decay, self.warmup = decay, warmup
        self.halflife, self.rampup, self.batch_size = float(halflife_images), float(rampup), int(batch_size)
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))
        self._updates = 0  # host copy of num_updates (no device sync per step)

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if self.halflife > 0:
            h = self.halflife
            if self.rampup > 0:
                h = min(h, self._updates * self.batch_size * self.rampup)
            return 0.5 ** (self.batch_size / h) if h > 0 else 0.0
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self._updates) / (10 + self._updates))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        src = list(net.parameters())
        dst = list(self.net.parameters())
        torch._foreach_lerp_(dst, src, 1.0 - self.current_decay())
        for b_ema, b in zip(self.net.buffers(), net.buffers()):
            b_ema.copy_(b)
        self._updates += 1
        self.num_updates.fill_(self._updates)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False, *, updates: int = 0):
        """``updates``: the count to assume when ``state_dict`` predates ``num_updates`` (the run's step)."""
        if "num_updates" not in state_dict:
            state_dict = {**state_dict, "num_updates": torch.tensor(int(updates), dtype=torch.int64)}
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._updates = int(self.num_updates)
        return result
