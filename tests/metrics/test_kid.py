from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance

from genlab.metrics.kid import kernel_inception_distance, mmd2_unbiased, polynomial_kernel

from .conftest import gaussian_stats
from .test_fid import Passthrough


def _brute_mmd2(x, y):
    # Independent reference: explicit double loops over the unbiased estimator's definition.
    m, d = len(x), x.shape[1]
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_mmd2_matches_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 5)), rng.normal(0.5, 1.0, size=(20, 5))
    assert mmd2_unbiased(x, y) == pytest.approx(_brute_mmd2(x, y), rel=1e-10)
    assert polynomial_kernel(x, y).shape == (20, 20)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")
def test_agrees_with_torchmetrics_on_identical_features():
    x1, _, _ = gaussian_stats(32, 300, seed=1)
    x2, _, _ = gaussian_stats(32, 300, seed=2, shift=0.3)
    # One subset holding every row: torchmetrics' random permutation cannot change the (symmetric) estimate.
    tm = KernelInceptionDistance(feature=Passthrough(32), subsets=1, subset_size=300)
    tm.update(torch.from_numpy(x1), real=True)
    tm.update(torch.from_numpy(x2), real=False)
    expected = float(tm.compute()[0])
    ours = kernel_inception_distance(x1, x2, subsets=1, subset_size=300)
    assert ours.mean == pytest.approx(expected, rel=1e-4)
    assert ours.mean > 0


def test_seeded_subsets_mean_and_std():
    x1, _, _ = gaussian_stats(16, 400, seed=3)
    x2, _, _ = gaussian_stats(16, 300, seed=4, shift=0.5)
    a = kernel_inception_distance(x1, x2, subsets=20, subset_size=100, seed=7)
    b = kernel_inception_distance(x1, x2, subsets=20, subset_size=100, seed=7)
    c = kernel_inception_distance(x1, x2, subsets=20, subset_size=100, seed=8)
    assert a == b and a.mean != c.mean
    assert a.std > 0 and a.subsets == 20 and a.subset_size == 100
    # subset size is capped by the smaller set
    assert kernel_inception_distance(x1, x2, subsets=2, subset_size=1000).subset_size == 300


def test_same_distribution_near_zero_different_large():
    x1, _, _ = gaussian_stats(16, 500, seed=5)
    x2, _, _ = gaussian_stats(16, 500, seed=5)  # identical rows
    x3, _, _ = gaussian_stats(16, 500, seed=6, shift=1.0)
    same = kernel_inception_distance(x1, x2, subsets=10, subset_size=200).mean
    far = kernel_inception_distance(x1, x3, subsets=10, subset_size=200).mean
    assert abs(same) < 0.05 * far
