"""The flow-matching and EDM losses against answers known in closed form, and minibatch OT against brute force."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from genlab.diffusion import EDMProcess, FlowProcess
from genlab.diffusion.losses import edm_loss, flow_matching_loss, ot_pairing
from genlab.errors import ConfigError

# a two-point toy: noise point a_k travels to data point b_k on a straight line; the two lines never meet
A = torch.tensor([[[[-1.0, 0.0]]], [[[1.0, 0.0]]]])
B = torch.tensor([[[[-2.0, 2.0]]], [[[2.0, 3.0]]]])


def true_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The toy's velocity field: the line through x at time t is the nearest one's, and it moves at b_k - a_k."""
    where = (1 - t)[:, None, None, None, None] * A[None] + t[:, None, None, None, None] * B[None]  # (N, 2, ...)
    k = (where - x[:, None]).flatten(2).norm(dim=2).argmin(dim=1)
    return (B - A)[k]


def test_flow_matching_loss_is_zero_for_the_true_velocity_of_a_two_point_toy():
    g = torch.Generator().manual_seed(0)
    k = torch.randint(0, 2, (64,), generator=g)
    t = torch.rand(64, generator=g)
    x0, x1 = A[k], B[k]
    process = FlowProcess()
    assert flow_matching_loss(true_velocity, process, x1, x0, t).item() == 0.0
    # negative controls: standing still costs the mean squared velocity, the other line's velocity costs too
    still = flow_matching_loss(lambda x, s: torch.zeros_like(x), process, x1, x0, t)
    assert torch.isclose(still, (x1 - x0).pow(2).mean()) and still.item() > 2
    other = flow_matching_loss(lambda x, s: (B - A)[1 - k] + 0 * x, process, x1, x0, t)
    assert torch.isclose(other, torch.tensor(2.5))  # ||(-1, 2) - (1, 3)||^2 / 2 pixels


def test_flow_path_runs_from_the_noise_at_t0_to_the_data_at_t1():
    x0, x1 = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    p = FlowProcess()
    assert torch.equal(p.path(x0, x1, torch.zeros(3))[0], x0)
    assert torch.equal(p.path(x0, x1, torch.ones(3))[0], x1)
    assert torch.equal(p.path(x0, x1, torch.rand(3))[1], x1 - x0)


def test_logit_normal_times_lie_in_the_unit_interval_around_the_chosen_mean():
    torch.manual_seed(0)
    t = FlowProcess(time_sampling="logit-normal", logit_mean=1.2, logit_std=1.2).sample_time(20000, torch.device("cpu"))
    assert 0 < t.min() and t.max() < 1
    assert abs(torch.logit(t).mean().item() - 1.2) < 0.03 and abs(torch.logit(t).std().item() - 1.2) < 0.03
    with pytest.raises(ConfigError, match="time_sampling"):
        FlowProcess(time_sampling="beta")


def test_ot_pairing_finds_the_cheapest_assignment():
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(6, 1, 3, 3, generator=g), torch.randn(6, 1, 3, 3, generator=g)
    idx = ot_pairing(x0, x1)
    assert sorted(idx.tolist()) == list(range(6))

    def cost(order) -> float:
        return float(sum((x0[j] - x1[i]).pow(2).sum() for i, j in enumerate(order)))

    best = min(itertools.permutations(range(6)), key=cost)
    assert math.isclose(cost(idx.tolist()), cost(best), rel_tol=1e-6)
    assert cost(idx.tolist()) < cost(range(6))  # negative control: the identity pairing costs more here
    # the two-point toy: data given in the crossing order gets the noise of its own line back
    assert ot_pairing(A, B.flip(0)).tolist() == [1, 0]


def test_edm_preconditioning_and_weight_are_the_papers():
    p = EDMProcess()
    sd = p.sigma_data
    sigma = torch.tensor([sd, 2.0, 0.01])
    c_skip, c_out, c_in, c_noise = p.preconditioning(sigma)
    assert torch.allclose(c_skip[0], torch.tensor(0.5)) and torch.allclose(c_out[0], torch.tensor(sd / math.sqrt(2)))
    assert torch.allclose(c_in[0], torch.tensor(1 / (sd * math.sqrt(2))))
    assert torch.allclose(c_noise, sigma.log() / 4)
    # the paper's weight makes the effective weight on F's error 1: lambda(sigma) c_out(sigma)^2 = 1
    assert torch.allclose(p.loss_weight(sigma) * c_out ** 2, torch.ones(3))


def test_edm_loss_is_the_mean_squared_error_of_f_against_its_effective_target():
    """Karras et al. eq. (8): lambda ||D - y||^2 = ||F(c_in x, c_noise) - (y - c_skip x) / c_out||^2."""
    g = torch.Generator().manual_seed(2)
    y, n = torch.randn(4, 1, 3, 3, generator=g), torch.randn(4, 1, 3, 3, generator=g)
    sigma = torch.tensor([0.05, 0.5, 3.0, 40.0])
    p = EDMProcess()
    w = torch.randn(1, 1, 3, 3, generator=g)
    net = lambda x, s: torch.tanh(x * w) + s[:, None, None, None]  # noqa: E731  (any function of x and c_noise)
    x = y + sigma[:, None, None, None] * n
    c_skip, c_out, c_in, c_noise = (c[:, None, None, None] for c in p.preconditioning(sigma))
    target = (y - c_skip * x) / c_out
    expected = (net(c_in * x, c_noise.flatten()) - target).pow(2).mean()
    assert torch.allclose(edm_loss(net, p, y, n, sigma), expected, rtol=1e-5)
    # and a network that outputs exactly that target has zero loss
    ideal = lambda xin, s: ((y - (c_skip * x)) / c_out)  # noqa: E731
    assert edm_loss(ideal, p, y, n, sigma).item() < 1e-10


def test_edm_noise_levels_are_log_normal_with_the_papers_parameters():
    torch.manual_seed(0)
    sigma = EDMProcess().sample_sigma(20000, torch.device("cpu"))
    assert abs(sigma.log().mean().item() + 1.2) < 0.03 and abs(sigma.log().std().item() - 1.2) < 0.03
