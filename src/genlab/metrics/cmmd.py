"""CMMD (Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image Generation", CVPR 2024):
the maximum mean discrepancy between CLIP image embeddings of generated and real images, with a Gaussian kernel.

    k(x, y) = exp(-|x - y|^2 / (2 sigma^2)),   sigma = 10
    MMD^2 = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j) - 2/(mn) sum_{i,j} k(x_i, y_j)
    CMMD = 1000 * MMD^2

on the L2-normalised CLIP ViT-L/14@336 embeddings (``features/clip.py``). The paper's bandwidth (sigma = 10) and
scale (1000) are the defaults. Unlike FID it assumes no Gaussian shape, and its estimator is unbiased, so values
from few samples are comparable with values from many. ``estimator="unbiased"`` (the default) is the formula
above; ``"biased"`` averages the whole kernel matrices, diagonals included (the V-statistic), which is what the
paper's reference code (google-research/cmmd, ``distance.py``) computes, so its published numbers are of that
kind: use it to compare with them. The biased value is larger by about scale * (1/m + 1/n) * (1 - mean kernel).

Computed in float64 torch, in row blocks (memory ~ block x N), on the symmetric halves only.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.metrics.stats import as_float64, check_finite

CMMD = "cmmd"
SIGMA = 10.0  # the paper's bandwidth
SCALE = 1000.0  # the paper's scale ("to make the metric more human readable")
ESTIMATORS = ("unbiased", "biased")
_BLOCK = 2048


def rbf_kernel(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """exp(-|x_i - y_j|^2 / (2 sigma^2)) as an (len(x), len(y)) float64 matrix."""
    a, b = torch.from_numpy(as_float64(x)), torch.from_numpy(as_float64(y))
    return _kernel(a, b, sigma).numpy()


def _kernel(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return torch.exp(-d2.clamp_(min=0.0) / (2.0 * sigma * sigma))


def _sum_within(x: torch.Tensor, sigma: float) -> float:
    """Sum of k(x_i, x_j) over all i, j (diagonal included), from the blocks on and above the diagonal."""
    total = 0.0
    for i in range(0, len(x), _BLOCK):
        for j in range(i, len(x), _BLOCK):
            s = float(_kernel(x[i:i + _BLOCK], x[j:j + _BLOCK], sigma).sum())
            total += s if i == j else 2.0 * s
    return total


def _sum_between(x: torch.Tensor, y: torch.Tensor, sigma: float) -> float:
    return sum(float(_kernel(x[i:i + _BLOCK], y, sigma).sum()) for i in range(0, len(x), _BLOCK))


def mmd2_rbf(x: Any, y: Any, sigma: float = SIGMA, scale: float = SCALE, estimator: str = "unbiased") -> float:
    """``scale`` x MMD^2 between rows of ``x`` (m, D) and ``y`` (n, D) under the Gaussian kernel of bandwidth
    ``sigma`` (see the module docstring for the two estimators)."""
    if estimator not in ESTIMATORS:
        raise GenlabError(f"unknown MMD estimator {estimator!r}; choose from: {', '.join(ESTIMATORS)}")
    a, b = torch.from_numpy(as_float64(x)), torch.from_numpy(as_float64(y))
    check_finite(a, "features")
    check_finite(b, "features")
    m, n = len(a), len(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise GenlabError(f"CMMD needs two (N, D) feature sets of one size D, got {tuple(a.shape)} and "
                          f"{tuple(b.shape)}")
    if m < 2 or n < 2:
        raise GenlabError(f"CMMD needs at least 2 samples per set, got {m} and {n}")
    xx, yy, xy = _sum_within(a, sigma), _sum_within(b, sigma), _sum_between(a, b, sigma)
    if estimator == "unbiased":  # k(x, x) = 1: the diagonals sum to m and n
        value = (xx - m) / (m * (m - 1)) + (yy - n) / (n * (n - 1)) - 2.0 * xy / (m * n)
    else:
        value = xx / (m * m) + yy / (n * n) - 2.0 * xy / (m * n)
    return float(scale * value)
