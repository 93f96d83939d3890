"""fp16 gradient penalties are loss-scaled (issue 31): float16's backward flushes small input gradients towards
zero, which R1/R2 and WGAN-GP's penalty are made of. CPU float16 autocast shows it (PyTorch supports it)."""
from __future__ import annotations

import torch
from torch import nn

from genlab.objectives.penalties import gradient_penalty, input_gradient, zero_centered_penalty

SCALE = torch.tensor(65536.0)  # GradScaler's initial scale


def small_critic() -> nn.Module:
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(64, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(1e-3)  # input gradients of ~1e-6 per element: float16 subnormals
    return D


def r1(D: nn.Module, x: torch.Tensor, scale=None, fp16: bool = False) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.float16, enabled=fp16):
        return zero_centered_penalty(D(x).squeeze(1), x, scale)


def test_scaling_is_exact_in_float32_and_keeps_the_graph():
    D, x = small_critic(), torch.randn(16, 64)
    plain, scaled = r1(D, x), r1(D, x, SCALE)
    assert torch.allclose(plain, scaled, rtol=1e-5)
    weights = [D[0].weight, D[0].bias, D[2].weight]  # the last bias does not move an input gradient
    ga = torch.autograd.grad(plain, weights)
    gb = torch.autograd.grad(scaled, weights)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-12) for a, b in zip(ga, gb))
    xr = torch.randn(8, 64, requires_grad=True)
    g = input_gradient(D(xr).squeeze(1), xr, SCALE)
    (ref,) = torch.autograd.grad(D(xr).squeeze(1).sum(), xr)
    assert torch.allclose(g, ref, rtol=1e-5, atol=1e-12)
    real, fake = torch.randn(8, 64), torch.randn(8, 64)
    alpha = torch.rand(8, 1)
    critic = lambda v: D(v).squeeze(1)  # noqa: E731
    assert torch.allclose(gradient_penalty(critic, real, fake, 10.0, alpha),
                          gradient_penalty(critic, real, fake, 10.0, alpha, scale=SCALE), rtol=1e-6)


def test_fp16_penalty_is_accurate_only_when_scaled():
    D, x = small_critic(), torch.randn(16, 64)
    ref = float(r1(D, x))
    unscaled, scaled = float(r1(D, x, fp16=True)), float(r1(D, x, SCALE, fp16=True))
    assert abs(unscaled / ref - 1) > 0.05  # the negative control: float16 loses it (measured 32% off)
    assert abs(scaled / ref - 1) < 1e-3
