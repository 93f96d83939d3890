from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance

from genlab.errors import GenlabError
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


def test_other_kernel_degrees_follow_the_formula():
    x, y = np.random.default_rng(0).normal(size=(5, 4)), np.random.default_rng(1).normal(size=(6, 4))
    for degree, coef in ((1, 0.0), (2, 1.0), (3, 0.5), (4, 2.0)):
        assert np.allclose(polynomial_kernel(x, y, degree, coef), (x @ y.T / 4 + coef) ** degree, rtol=1e-12)


def test_sample_sizes_and_bad_features_are_checked():
    x = np.random.default_rng(0).normal(size=(30, 4))
    mmd2_unbiased(x[:2], x[2:4])  # two rows each: the smallest unbiased estimate
    for a, b in ((x[:1], x[1:2]), (x[:3], x[3:5])):
        with pytest.raises(ValueError) as e:
            mmd2_unbiased(a, b)
        assert str(e.value) == f"need two samples of equal size >= 2, got {len(a)} and {len(b)}"
    small = kernel_inception_distance(x[:5], x[5:], subsets=3, subset_size=1000)  # capped by the smaller set
    assert (small.subsets, small.subset_size) == (3, 5)
    assert kernel_inception_distance(x[:2], x[2:], subsets=2).subset_size == 2
    with pytest.raises(GenlabError, match="KID needs at least 2 samples per set, got 1 and 29"):
        kernel_inception_distance(x[:1], x[1:])
    with pytest.raises(ValueError, match="^feature sizes differ: 4 vs 3$"):
        kernel_inception_distance(x, x[:, :3])
    for i in range(2):
        args = [x, x.copy()]
        args[i] = x.copy()
        args[i][3, 1] = np.inf
        with pytest.raises(GenlabError, match="^features contain 1 NaN or infinite value"):
            kernel_inception_distance(*args)


def test_the_defaults_are_100_subsets_of_1000_seed_0():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1200, 2)), rng.normal(size=(1100, 2)) + 0.2
    assert kernel_inception_distance(a, b, subsets=1).subset_size == 1000
    r = kernel_inception_distance(a[:20], b[:30])  # subsets of 20 (the smaller set) keep it cheap
    assert (r.subsets, r.subset_size) == (100, 20)
    assert r == kernel_inception_distance(a[:20], b[:30], subsets=100, subset_size=1000, seed=0)
    assert r.mean != kernel_inception_distance(a[:20], b[:30], seed=1).mean


def test_the_kernel_defaults_to_the_cubic_with_offset_1():
    x, y = np.random.default_rng(0).normal(size=(5, 4)), np.random.default_rng(1).normal(size=(6, 4))
    assert np.allclose(polynomial_kernel(x, y), (x @ y.T / 4 + 1) ** 3, rtol=1e-12)
