"""TrainStep: a phase trains only its own networks, and ``repeat`` steps its optimizer that many times."""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from genlab.config import Config
from genlab.training.phases import Batch, Phase, StepContext
from genlab.training.step import TrainStep


class SpySGD(torch.optim.SGD):
    """SGD that records, at every step, the gradients every network holds."""

    def __init__(self, params, nets: nn.ModuleDict, log: list, name: str):
        super().__init__(params, lr=0.1)
        self.nets, self.log, self.name = nets, log, name

    def step(self, closure=None):
        self.log.append((self.name, {k: [None if p.grad is None else p.grad.clone() for p in net.parameters()]
                                     for k, net in self.nets.items()}))
        return super().step(closure)


def toy(repeat: int = 1):
    torch.manual_seed(0)
    nets = nn.ModuleDict({"A": nn.Linear(3, 3), "B": nn.Linear(3, 1)})
    ctx = StepContext(nets=nets, cfg=Config(), device=torch.device("cpu"))
    log: list = []
    after: list = []

    def a_phase(batch: Batch, ctx: StepContext):  # backpropagates through B, which it does not train
        loss = ctx.nets["B"](ctx.nets["A"](batch.x)).square().mean()
        return loss, {"loss_A": loss.detach()}

    def b_phase(batch: Batch, ctx: StepContext):  # backpropagates into A's output, A is not trained
        loss = (ctx.nets["B"](ctx.nets["A"](batch.x)) - 1).square().mean()
        return loss, {"loss_B": loss.detach()}

    phases = [Phase("A", "A", ("A",), a_phase, repeat=repeat, after=lambda c: after.append("A")),
              Phase("B", "B", ("B",), b_phase)]
    optimizers = {k: SpySGD(nets[k].parameters(), nets, log, k) for k in ("A", "B")}
    step = TrainStep(phases, ctx, optimizers, {}, autocast=contextlib.nullcontext)
    return step, nets, log, after


def test_only_the_phase_networks_get_gradients():
    step, nets, log, _ = toy()
    stats = step(Batch(torch.randn(8, 3)))
    assert set(stats) == {"loss_A", "loss_B"}
    (name_a, grads_a), (name_b, grads_b) = log
    assert (name_a, name_b) == ("A", "B")
    assert all(g is not None for g in grads_a["A"]) and all(g is None for g in grads_a["B"])
    assert all(g is not None for g in grads_b["B"])
    for before, after in zip(grads_a["A"], grads_b["A"]):  # B's phase left A's gradients as they were
        assert torch.equal(before, after)
    assert all(p.requires_grad for p in nets["B"].parameters())  # the last phase's networks stay trainable
    assert not any(p.requires_grad for p in nets["A"].parameters())


def test_repeat_steps_the_optimizer_that_many_times():
    step, _, log, after = toy(repeat=3)
    step(Batch(torch.randn(8, 3)))
    step(Batch(torch.randn(8, 3)))
    assert [name for name, _ in log] == ["A", "A", "A", "B"] * 2
    assert after == ["A"] * 6  # ``after`` follows every optimizer step of its phase
