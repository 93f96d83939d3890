"""The ODE sampler: exact networks reach their data exactly, guidance mixes as documented, NFE is what is spent."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.diffusion import EDMProcess, FlowProcess, ODESampler
from genlab.errors import ConfigError

SHAPE = (1, 2, 2)
Y = torch.tensor([[[[0.5, -0.25], [0.75, 0.0]]]])  # the one image of a one-point dataset


class OnePointFlow(torch.nn.Module):
    """The exact velocity field of flow matching onto a single image y: v(x, t) = (y - x) / (1 - t)."""

    def forward(self, x, s, cond=None):
        return (Y - x) / (1 - s)[:, None, None, None]


class OnePointEDM(torch.nn.Module):
    """F such that EDM's preconditioned denoiser D(x; sigma) is exactly y (the ideal denoiser of one point)."""

    def __init__(self, process: EDMProcess):
        super().__init__()
        self.p = process

    def forward(self, x_in, c_noise, cond=None):
        sigma = (4 * c_noise.double()).exp()
        c_skip, c_out, c_in, _ = (c[:, None, None, None] for c in self.p.preconditioning(sigma))
        return ((Y.double() - c_skip * (x_in.double() / c_in)) / c_out).float()


@pytest.mark.parametrize("solver", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 3, 18])
def test_edm_sampler_with_the_ideal_denoiser_lands_on_the_data(solver, steps):
    """dx/dsigma = (x - y) / sigma is a straight line to y: every step is exact, whatever the solver."""
    p = EDMProcess()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(steps))
    images = ODESampler(p, solver, steps, SHAPE)(OnePointEDM(p), z)
    assert torch.allclose(images, Y.expand(5, *SHAPE), atol=1e-4)


@pytest.mark.parametrize("steps", [1, 4])
def test_flow_sampler_with_the_exact_velocity_lands_on_the_data(steps):
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(steps))
    images = ODESampler(FlowProcess(), "euler", steps, SHAPE)(OnePointFlow(), z)
    assert torch.allclose(images, Y.expand(5, *SHAPE), atol=1e-5)


def test_edm_grid_is_the_rho_discretisation_from_sigma_max_to_zero():
    p = EDMProcess()
    grid = p.grid(18)
    assert len(grid) == 19 and grid[0] == pytest.approx(80.0) and grid[-2] == pytest.approx(0.002) and grid[-1] == 0
    assert all(a > b for a, b in zip(grid, grid[1:]))
    # rho = 7: the 7th roots are evenly spaced
    roots = [s ** (1 / 7) for s in grid[:-1]]
    gaps = [a - b for a, b in zip(roots, roots[1:])]
    assert max(gaps) - min(gaps) < 1e-9
    assert p.grid(1) == [80.0, 0.0]
    assert FlowProcess().grid(4) == [0.0, 0.25, 0.5, 0.75, 1.0]


class LabelNet(torch.nn.Module):
    """Outputs 0.1 x the label everywhere (-1 = "no label"); records the batch size of every call."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, x, s, cond=None):
        self.batches.append(len(x))
        return 0.1 * cond.float()[:, None, None, None].expand_as(x)


@pytest.mark.parametrize("scale, expected", [(1.0, 0.2), (0.0, -0.1), (1.5, 0.35), (3.0, 0.8)])
def test_guidance_mixes_the_unconditional_and_conditional_outputs(scale, expected):
    """One Euler step of flow from 0 lands on the velocity: u + w (c - u) with c = 0.2 (label 2), u = -0.1."""
    net = LabelNet()
    sampler = ODESampler(FlowProcess(), "euler", 1, SHAPE, guidance=scale)
    images = sampler(net, torch.zeros(3, 4), torch.full((3,), 2), torch.full((3,), -1))
    assert torch.allclose(images, torch.full((3, *SHAPE), expected))
    assert net.batches == ([3] if scale == 1.0 else [6])  # guided: one batch of conditional + unconditional
    assert sampler.nfe == (1 if scale == 1.0 else 2) and sampler.describe()["nfe"] == sampler.nfe


def test_the_sampler_is_deterministic_given_the_noise_and_checks_its_settings():
    from genlab.models.unet import UNet

    torch.manual_seed(0)
    net = UNet(1, 8, 4, (1, 2), 1, attention=(4,)).eval()
    for p in net.out.parameters():  # the output conv starts near zero: give it weights so the images depend on z
        torch.nn.init.normal_(p, std=0.1)
    sampler = ODESampler(FlowProcess(), "heun", 3, (1, 8, 8))
    z = torch.randn(4, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = sampler(net, z), sampler(net, z)
        c = sampler(net, torch.randn(4, 64, generator=torch.Generator().manual_seed(4)))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (4, 1, 8, 8) and a.abs().max() <= 1
    assert sampler.describe() == {"process": "flow", "solver": "heun", "steps": 3, "nfe": 6, "guidance": 1.0}
    assert ODESampler(EDMProcess(), "heun", 18, (1, 8, 8)).nfe == 35  # EDM's CIFAR-10 sampler: 35 NFE
    with pytest.raises(ConfigError, match="steps=0"):
        ODESampler(FlowProcess(), "euler", 0, (1, 8, 8))
    with pytest.raises(ConfigError, match="unknown ODE solver 'rk4'"):
        ODESampler(FlowProcess(), "rk4", 2, (1, 8, 8))
    with pytest.raises(ConfigError, match="guidance scale"):
        ODESampler(FlowProcess(), "euler", 2, (1, 8, 8), guidance=math.nan)
    with pytest.raises(ConfigError, match="class-conditional"):
        ODESampler(FlowProcess(), "euler", 2, (1, 8, 8), guidance=2.0)(net, z)
