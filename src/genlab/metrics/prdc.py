"""k-NN manifold metrics: precision/recall (Kynkaanniemi et al., 2019) and density/coverage (Naeem et al., 2020).

Each sample's "ball" has the radius of the distance to its k-th nearest neighbour within its own set.
- precision: share of generated samples inside at least one real ball (fidelity);
- recall: share of real samples inside at least one generated ball (diversity);
- density: mean number of real balls holding a generated sample, divided by k (~1 when the sets match;
  unlike precision it is not inflated by real outliers);
- coverage: share of real samples whose ball holds at least one generated sample.

Distances are squared Euclidean in float64, computed in row blocks of ``block`` x N so 10k x 10k sets fit
comfortably in memory on a CPU (one block is ``block * N * 8`` bytes). The two sets should have equal
sizes, as in both papers; ``evaluate`` subsamples them to the same count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genlab.errors import GenlabError
from genlab.metrics.stats import as_float64, check_finite

PR = "pr"
DEFAULT_BLOCK = 1024


@dataclass(frozen=True)
class PRDCResult:
    precision: float
    recall: float
    density: float
    coverage: float
    k: int


def _tensor(x: Any, what: str) -> torch.Tensor:
    a = as_float64(x)
    check_finite(a, what)
    if a.ndim != 2:
        raise ValueError(f"{what} must be (N, D), got shape {a.shape}")
    return torch.from_numpy(a)


def _sq_dist(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """|a_i - b_j|^2 as (|a_i|^2 + |b_j|^2) - 2 a_i.b_j, rounded the same way for (i, j) and (j, i)."""
    d = (a * a).sum(1)[:, None] + b_sq[None, :]
    return d.addmm_(a, b.T, alpha=-2.0).clamp_(min=0.0)


def knn_radii_sq(x: Any, k: int = 3, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """Squared distance from each row of ``x`` to its k-th nearest other row (the row itself excluded)."""
    t = x if isinstance(x, torch.Tensor) else _tensor(x, "features")
    n = t.shape[0]
    if n <= k:
        raise GenlabError(f"k-NN radii with k={k} need more than {k} samples, got {n}")
    sq = (t * t).sum(1)
    out = torch.empty(n, dtype=t.dtype)
    for i in range(0, n, block):
        d = _sq_dist(t[i : i + block], t, sq)
        # k + 1 smallest: the row's own zero distance comes first
        out[i : i + block] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def prdc(real: Any, fake: Any, k: int = 3, block: int = DEFAULT_BLOCK) -> PRDCResult:
    """Precision, recall, density and coverage of ``fake`` against ``real`` feature rows."""
    r, f = _tensor(real, "real features"), _tensor(fake, "generated features")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: {r.shape[1]} vs {f.shape[1]}")
    with torch.inference_mode():
        r_rad, f_rad = knn_radii_sq(r, k, block), knn_radii_sq(f, k, block)
        r_sq = (r * r).sum(1)
        n_real, n_fake = r.shape[0], f.shape[0]
        precise = 0
        inside_real_balls = 0
        recalled = torch.zeros(n_real, dtype=torch.bool)
        covered = torch.zeros(n_real, dtype=torch.bool)
        for i in range(0, n_fake, block):
            d = _sq_dist(f[i : i + block], r, r_sq)  # (b, n_real)
            in_real = d <= r_rad[None, :]  # fake j inside real i's ball
            precise += int(in_real.any(1).sum())
            inside_real_balls += int(in_real.sum())
            covered |= in_real.any(0)  # real i's ball holds a fake sample
            recalled |= (d <= f_rad[i : i + block, None]).any(0)  # real i inside a fake ball
        return PRDCResult(
            precision=precise / n_fake,
            recall=float(recalled.double().mean()),
            density=inside_real_balls / (k * n_fake),
            coverage=float(covered.double().mean()),
            k=k,
        )
