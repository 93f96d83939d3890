"""Fixed-step ODE solvers on a time grid: Euler (first order) and Heun (second order, EDM's Algorithm 1).

``solver.integrate(f, x, grid, final_euler)`` follows ``dx/dt = f(x, t)`` from ``grid[0]`` to ``grid[-1]``, one
step per interval; it is deterministic (no noise is added: these are probability-flow ODEs). Heun's method takes
the Euler step, evaluates the derivative there and steps again with the mean of both slopes (the trapezoidal
rule): exact when the derivative is linear in t along the path, error O(h^3) per step otherwise.
``final_euler``: the last interval gets a plain Euler step (EDM's ODE has no derivative at sigma = 0).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from genlab.registry import Registry

#: the ODE's right-hand side: (x, t) -> dx/dt
Derivative = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class Solver:
    name: str
    order: int  # 1: Euler, 2: Heun

    def evaluations(self, steps: int, final_euler: bool = False) -> int:
        """Derivative evaluations for ``steps`` steps (the network evaluations per image, without guidance)."""
        return steps if self.order == 1 else 2 * steps - (1 if final_euler else 0)

    def integrate(self, f: Derivative, x: torch.Tensor, grid: Sequence[float], final_euler: bool = False
                  ) -> torch.Tensor:
        last = len(grid) - 2
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            h = t_next - t
            d = f(x, t)
            x_next = x + h * d
            if self.order == 2 and not (final_euler and i == last):
                x_next = x + h * 0.5 * (d + f(x_next, t_next))
            x = x_next
        return x


SOLVERS: Registry[Solver] = Registry("ODE solver")
SOLVERS.add("euler", Solver("euler", 1))
SOLVERS.add("heun", Solver("heun", 2))
