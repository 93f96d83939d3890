"""ADA on a GPU reads its statistics one interval late (no sync per interval, issue 31): the same adjustments,
``interval`` batches later, and a checkpoint keeps the interval not applied yet. Checked with CPU tensors (the
CUDA event is the only part that needs a GPU)."""
from __future__ import annotations

import pytest
import torch

from genlab.objectives.diffaugment import AdaptiveAugment

#: D's real logits per batch: E[sign] 1 for three intervals, then -0.5 for two
BATCHES = [torch.ones(4)] * 6 + [torch.tensor([1.0, -1.0, -1.0, -1.0])] * 4


def trace(ada: AdaptiveAugment, batches) -> list[float]:
    out = []
    for b in batches:
        ada.observe(b)
        out.append(ada.p)
    return out


def test_deferred_adjustments_are_the_immediate_ones_one_interval_later():
    now = trace(AdaptiveAugment("color", target=0.6, interval=2, speed_images=40), BATCHES)
    late = trace(AdaptiveAugment("color", target=0.6, interval=2, speed_images=40, deferred=True), BATCHES)
    assert now == pytest.approx([0.0, 0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.4, 0.4, 0.2])
    assert late == [0.0, 0.0, 0.0, *now[1:-2]]  # shifted by one interval (2 batches)


def test_a_checkpoint_keeps_the_pending_interval():
    ada = AdaptiveAugment("color", target=0.6, interval=2, speed_images=40, deferred=True)
    trace(ada, BATCHES[:5])
    state = ada.state_dict()
    assert state["pending"] == [8.0, 8.0]  # batches 3-4: sum of signs, images; observed, not applied yet
    other = AdaptiveAugment("color", target=0.6, interval=2, speed_images=40, deferred=True)
    other.load_state_dict(state)
    assert trace(other, BATCHES[5:]) == trace(ada, BATCHES[5:])
    fresh = AdaptiveAugment("color", target=0.6, interval=2, speed_images=40)
    fresh.load_state_dict({k: v for k, v in state.items() if k != "pending"})  # a checkpoint of the CPU kind
    assert fresh._pending is None
