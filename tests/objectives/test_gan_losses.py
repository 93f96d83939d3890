"""The adversarial losses against their formulas, on hand-picked logits."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.objectives import LOSSES

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_bce_is_the_non_saturating_gan_loss_with_optional_smoothing():
    loss = LOSSES.get("bce")
    # D: -[t log s(r) + (1 - t) log(1 - s(r))] - log(1 - s(f)), averaged; G: -log s(f)
    for t in (1.0, 0.9):
        expect = sum(t * softplus(-r) + (1 - t) * softplus(r) for r in REAL.tolist()) / 3 \
            + sum(softplus(f) for f in FAKE.tolist()) / 3
        assert loss.d_loss(REAL, FAKE, t).item() == pytest.approx(expect, rel=1e-6)
    assert loss.g_loss(FAKE).item() == pytest.approx(sum(softplus(-f) for f in FAKE.tolist()) / 3, rel=1e-6)
    assert torch.allclose(loss.score(REAL), torch.sigmoid(REAL)) and loss.probabilities


def test_hinge():
    loss = LOSSES.get("hinge")
    expect = sum(max(0, 1 - r) for r in REAL.tolist()) / 3 + sum(max(0, 1 + f) for f in FAKE.tolist()) / 3
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(expect, rel=1e-6)
    assert loss.g_loss(FAKE).item() == pytest.approx(-FAKE.mean().item(), rel=1e-6)
    assert torch.equal(loss.score(REAL), REAL) and not loss.probabilities


def test_wasserstein():
    loss = LOSSES.get("wasserstein")
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(FAKE.mean().item() - REAL.mean().item(), rel=1e-6)
    assert loss.g_loss(FAKE).item() == pytest.approx(-FAKE.mean().item(), rel=1e-6)


@pytest.mark.parametrize("name", ["bce", "hinge", "wasserstein"])
def test_d_loss_falls_as_d_separates_real_from_fake(name):
    loss = LOSSES.get(name)
    weak = loss.d_loss(torch.zeros(4), torch.zeros(4)).item()
    strong = loss.d_loss(torch.full((4,), 3.0), torch.full((4,), -3.0)).item()
    assert strong < weak
    # and G's loss falls as D is fooled
    assert loss.g_loss(torch.full((4,), 3.0)).item() < loss.g_loss(torch.full((4,), -3.0)).item()


def test_relativistic_pairing_loss():
    loss = LOSSES.get("relativistic")
    # D: -log sigmoid(D(x) - D(G(z))) per pair, G: -log sigmoid(D(G(z)) - D(x)); pairs in batch order
    pairs = list(zip(REAL.tolist(), FAKE.tolist()))
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(
        sum(-math.log(1 / (1 + math.exp(-(r - f)))) for r, f in pairs) / 3, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(
        sum(-math.log(1 / (1 + math.exp(-(f - r)))) for r, f in pairs) / 3, rel=1e-6)
    assert loss.paired and not loss.probabilities
    with pytest.raises(ValueError, match="g_loss\\(fake, real\\)"):
        loss.g_loss(FAKE)
