"""Euler and Heun on ODEs with known solutions: the order of each, Heun's exactness where the trapezoid rule is
exact, and the number of derivative evaluations each spends."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.diffusion import SOLVERS
from genlab.errors import ConfigError


def linear_ode(a: float):
    """dx/dt = a x: x(t) = x(0) e^(a t)."""
    return lambda x, t: a * x


def uniform(t0: float, t1: float, steps: int) -> list[float]:
    return [t0 + (t1 - t0) * i / steps for i in range(steps + 1)]


@pytest.mark.parametrize("steps", [5, 20, 80])
def test_heun_integrates_a_linear_ode_to_its_exact_solution_within_its_error_bound(steps):
    x0, a, t1 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), -1.5, 2.0
    exact = x0 * math.exp(a * t1)
    ah = a * t1 / steps
    got = SOLVERS.get("heun").integrate(linear_ode(a), x0, uniform(0.0, t1, steps))
    # one Heun step multiplies by g = 1 + ah + (ah)^2/2, which differs from e^(ah) by at most |ah|^3/6 (Taylor's
    # remainder, ah < 0); n steps: |g^n - e^(n ah)| <= n |g - e^(ah)| max(|g|, e^(ah))^(n - 1). O(h^2) in all.
    g = 1 + ah + ah ** 2 / 2
    bound = steps * abs(ah) ** 3 / 6 * max(abs(g), math.exp(ah)) ** (steps - 1)
    err = (got - exact).abs()
    assert (err <= bound * x0.abs() + 1e-15).all(), (err, bound)
    assert (err > 0).all()  # a real approximation: the bound is what is being tested, not an exact answer


def test_heun_is_second_order_and_euler_first_order():
    x0, a, t1 = torch.tensor([1.0], dtype=torch.float64), 0.8, 1.0
    exact = x0 * math.exp(a * t1)

    def error(name: str, steps: int) -> float:
        return (SOLVERS.get(name).integrate(linear_ode(a), x0, uniform(0.0, t1, steps)) - exact).abs().item()

    heun = error("heun", 20) / error("heun", 40)
    euler = error("euler", 20) / error("euler", 40)
    assert 3.7 < heun < 4.3  # halving h quarters the error
    assert 1.8 < euler < 2.2  # halves it


def test_heun_is_exact_when_the_derivative_is_linear_in_t():
    # dx/dt = 3 - 2t: x(t) = x0 + 3t - t^2 (the trapezoid rule integrates a linear function exactly)
    x0 = torch.tensor([0.25], dtype=torch.float64)
    got = SOLVERS.get("heun").integrate(lambda x, t: torch.full_like(x, 3 - 2 * t), x0, uniform(0.0, 1.5, 3))
    assert torch.allclose(got, x0 + 3 * 1.5 - 1.5 ** 2, atol=1e-12)
    euler = SOLVERS.get("euler").integrate(lambda x, t: torch.full_like(x, 3 - 2 * t), x0, uniform(0.0, 1.5, 3))
    assert not torch.allclose(euler, got, atol=1e-3)  # negative control: Euler is not exact here


@pytest.mark.parametrize("name, steps, final_euler, expected", [
    ("euler", 7, False, 7), ("heun", 7, False, 14), ("heun", 7, True, 13), ("heun", 1, True, 1)])
def test_each_solver_spends_the_evaluations_it_reports(name, steps, final_euler, expected):
    calls = []

    def f(x, t):
        calls.append(t)
        return -x

    solver = SOLVERS.get(name)
    solver.integrate(f, torch.ones(2), uniform(1.0, 0.0, steps), final_euler=final_euler)
    assert len(calls) == solver.evaluations(steps, final_euler) == expected
    if final_euler and name == "heun":
        assert 0.0 not in calls  # the last step never evaluates at the grid's end (EDM: sigma = 0)


def test_an_unknown_solver_names_the_known_ones():
    with pytest.raises(ConfigError, match="euler, heun"):
        SOLVERS.get("rk4")
