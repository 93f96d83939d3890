"""Reparameterisation gradients, KL and reconstruction losses against closed forms and references."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genlab.objectives.vae_losses import kl_divergence, negative_elbo, recon_loss, reparameterize


def test_reparameterisation_gradients_match_the_closed_form():
    # z = mu + exp(logvar / 2) * eps: dz/dmu = 1, dz/dsigma = eps, so dz/dlogvar = eps * sigma / 2
    torch.manual_seed(0)
    mu = torch.randn(6, 3, requires_grad=True)
    logvar = torch.randn(6, 3, requires_grad=True)
    eps = torch.randn(6, 3)
    z = reparameterize(mu, logvar, eps)
    upstream = torch.randn(6, 3)  # dL/dz of some loss L
    z.backward(upstream)
    sigma = torch.exp(0.5 * logvar.detach())
    assert torch.allclose(mu.grad, upstream)
    assert torch.allclose(logvar.grad, upstream * eps * sigma / 2, rtol=1e-5, atol=1e-7)
    # and dz/dsigma = eps when the network outputs sigma directly
    s = sigma.clone().requires_grad_(True)
    (mu.detach() + s * eps).backward(upstream)
    assert torch.allclose(s.grad, upstream * eps)


def test_samples_have_the_requested_mean_and_variance():
    torch.manual_seed(0)
    mu, logvar = torch.full((200_000, 1), 1.5), torch.full((200_000, 1), math.log(0.25))
    z = reparameterize(mu, logvar)
    assert z.mean().item() == pytest.approx(1.5, abs=0.01)
    assert z.var().item() == pytest.approx(0.25, abs=0.01)


def kl_closed_form(mu: list[float], logvar: list[float]) -> float:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) from the textbook formula, in plain float64 Python."""
    return sum(0.5 * (m * m + math.exp(lv) - 1.0 - lv) for m, lv in zip(mu, logvar, strict=True))


def test_kl_matches_the_closed_form_and_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu, logvar = torch.tensor([[0.7, -1.2]]), torch.tensor([[0.3, -0.8]])
    ours = kl_divergence(mu, logvar)
    assert ours.shape == (1,)  # one value per row, summed over the latent units
    assert ours.item() == pytest.approx(kl_closed_form([0.7, -1.2], [0.3, -0.8]), rel=1e-6)
    # Monte-Carlo estimate of E_q[log q(z) - log p(z)], sampled by torch.distributions (not reparameterize)
    q = torch.distributions.Normal(mu.double(), torch.exp(0.5 * logvar.double()))
    p = torch.distributions.Normal(0.0, 1.0)
    z = q.sample((400_000,)).squeeze(1)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(1).mean()
    assert ours.item() == pytest.approx(mc.item(), abs=0.01)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0


def test_kl_per_row_agrees_with_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(5, 3, generator=g) * 2, torch.randn(5, 3, generator=g)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
                                            torch.distributions.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(kl_divergence(mu, logvar), ref, rtol=1e-5, atol=1e-6)
    for i in range(5):
        assert kl_divergence(mu, logvar)[i].item() == pytest.approx(
            kl_closed_form(mu[i].tolist(), logvar[i].tolist()), rel=1e-5)


def test_bce_from_pre_tanh_equals_bce_on_images_in_unit_range():
    torch.manual_seed(0)
    a = torch.randn(4, 1, 5, 5)
    x = torch.rand(4, 1, 5, 5) * 2 - 1
    p = (torch.tanh(a) + 1) / 2
    ref = F.binary_cross_entropy(p, (x + 1) / 2, reduction="none").flatten(1).sum(1)
    assert torch.allclose(recon_loss(a, x, "bce"), ref, rtol=1e-4)
    ref_mse = (p - (x + 1) / 2).pow(2).flatten(1).sum(1)
    assert torch.allclose(recon_loss(a, x, "mse"), ref_mse, rtol=1e-5)


def test_negative_elbo_total_is_recon_plus_beta_kl():
    a, x = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4) * 2 - 1
    mu, logvar = torch.randn(3, 2), torch.randn(3, 2)
    e = negative_elbo(a, x, mu, logvar, beta=0.3, kind="bce")
    assert e.total.item() == pytest.approx(e.recon.item() + 0.3 * e.kl.item(), rel=1e-6)
    # each term against an independent computation: the batch mean of the per-image closed forms
    kl_rows = [kl_closed_form(mu[i].tolist(), logvar[i].tolist()) for i in range(3)]
    assert e.kl.item() == pytest.approx(sum(kl_rows) / 3, rel=1e-5)
    p = (torch.tanh(a) + 1) / 2
    bce = F.binary_cross_entropy(p, (x + 1) / 2, reduction="sum").item() / 3
    assert e.recon.item() == pytest.approx(bce, rel=1e-4)
