"""The gradient penalty against closed forms; weight clipping."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.objectives.penalties import (
    LeCamEMA,
    clip_weights,
    gradient_penalty,
    interpolate,
    lecam_penalty,
    zero_centered_penalty,
)


@pytest.mark.parametrize("norm_w", [0.25, 1.0, 3.0])
def test_linear_critic_penalty_is_lambda_times_norm_minus_one_squared(norm_w):
    # f(x) = w.x has grad_x f = w everywhere, so the penalty is lambda * (||w|| - 1)^2 at any interpolate
    torch.manual_seed(0)
    w = torch.randn(3 * 8 * 8)
    w = w / w.norm() * norm_w

    def critic(x):
        return x.flatten(1) @ w

    real, fake = torch.randn(16, 3, 8, 8), torch.randn(16, 3, 8, 8)
    gp = gradient_penalty(critic, real, fake, weight=10.0)
    assert gp.item() == pytest.approx(10.0 * (norm_w - 1.0) ** 2, rel=1e-5, abs=1e-6)


def test_quadratic_critic_penalty_at_known_interpolates():
    # f(x) = ||x||^2 has grad 2x: with alpha fixed the penalty is lambda * mean((2 ||x_hat|| - 1)^2)
    real, fake = torch.randn(5, 4), torch.randn(5, 4)
    alpha = torch.rand(5, 1)
    gp = gradient_penalty(lambda x: x.pow(2).sum(1), real, fake, weight=2.0, alpha=alpha)
    x_hat = real + alpha * (fake - real)
    expected = 2.0 * ((2 * x_hat.norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)


def test_penalty_trains_the_critic_and_not_the_inputs():
    critic = nn.Linear(6, 1)
    real = torch.randn(4, 6, requires_grad=True)
    fake = torch.randn(4, 6, requires_grad=True)
    gp = gradient_penalty(lambda x: critic(x).squeeze(1), real, fake, weight=10.0)
    gp.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0
    assert real.grad is None and fake.grad is None


def test_interpolates_lie_between_real_and_fake():
    real, fake = torch.zeros(100, 2), torch.ones(100, 2)
    x = interpolate(real, fake)
    assert (x >= 0).all() and (x <= 1).all() and torch.equal(x[:, 0], x[:, 1])
    assert x[:, 0].std() > 0.1  # one alpha per image, not one per batch


def test_clip_weights_bounds_every_parameter():
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    for p in net.parameters():
        nn.init.normal_(p, 0, 1)
    clip_weights(net, 0.01)
    assert all(p.abs().max() <= 0.01 for p in net.parameters())


def test_zero_centered_penalty_of_a_linear_and_a_quadratic_d():
    # D(x) = w.x: grad w, so E||grad||^2 = ||w||^2; D(x) = ||x||^2: grad 2x, so 4 * mean ||x||^2
    torch.manual_seed(1)
    w = torch.randn(12)
    x = torch.randn(7, 3, 2, 2, requires_grad=True)
    assert zero_centered_penalty(x.flatten(1) @ w, x).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    x2 = torch.randn(5, 4, requires_grad=True)
    expected = (4 * x2.detach().pow(2).sum(1)).mean()
    assert zero_centered_penalty(x2.pow(2).sum(1), x2).item() == pytest.approx(expected.item(), rel=1e-5)


def test_zero_centered_penalty_trains_d():
    d = nn.Linear(6, 1)
    x = torch.randn(4, 6, requires_grad=True)
    zero_centered_penalty(d(x).squeeze(1), x).backward()
    # d/dw ||w||^2 = 2w
    assert torch.allclose(d.weight.grad, 2 * d.weight.detach())


def test_lecam_penalty_and_its_moving_averages():
    real, fake = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.5, -1.0, 0.0])
    # relu(D(x) - a_f)^2 averaged + relu(a_r - D(G(z)))^2 averaged, a_r = 0.4, a_f = 0.2
    expected = ((0.8 ** 2 + 0 + 1.8 ** 2) / 3) + ((0 + 1.4 ** 2 + 0.4 ** 2) / 3)
    assert lecam_penalty(real, fake, torch.tensor(0.4), torch.tensor(0.2)).item() == pytest.approx(expected)
    ema = LeCamEMA(decay=0.9)
    ema.update(real, fake)
    ema.update(real * 0, fake * 0 + 1)
    assert ema.real.item() == pytest.approx(0.9 * 0.1 * (2.5 / 3))  # mean(real) = 2.5/3 once, then 0
    assert ema.fake.item() == pytest.approx(0.9 * 0.1 * (-0.5 / 3) + 0.1)
    again = LeCamEMA()
    again.load_state_dict(ema.state_dict())
    assert torch.equal(again.real, ema.real) and torch.equal(again.fake, ema.fake)
