from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from genlab.errors import GenlabError
from genlab.metrics.fid import (
    cholesky_factor,
    fid_from_stats,
    frechet_distance,
    frechet_distance_sqrtm,
    sqrt_psd,
    trace_sqrt_product,
)
from genlab.metrics.stats import FeatureStats

from .conftest import gaussian_stats


class Passthrough(torch.nn.Module):
    """Hands torchmetrics the features we give it, so both sides see identical inputs."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x):
        return x


def test_matches_textbook_sqrtm_formula():
    _, mu1, s1 = gaussian_stats(64, 500, seed=0)
    _, mu2, s2 = gaussian_stats(64, 400, seed=1, shift=0.3, scale=1.5)
    ours = frechet_distance(mu1, s1, mu2, s2)
    textbook = frechet_distance_sqrtm(mu1, s1, mu2, s2)
    assert ours > 1.0
    assert ours == pytest.approx(textbook, rel=1e-6)


def test_accepts_tensors_and_is_symmetric():
    _, mu1, s1 = gaussian_stats(16, 200, seed=3)
    _, mu2, s2 = gaussian_stats(16, 200, seed=4, shift=1.0)
    a = frechet_distance(torch.from_numpy(mu1), torch.from_numpy(s1), torch.from_numpy(mu2), torch.from_numpy(s2))
    b = frechet_distance(mu2, s2, mu1, s1)
    assert a == pytest.approx(b, rel=1e-9)


def test_same_statistics_give_zero():
    x, mu, s = gaussian_stats(32, 300, seed=5)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-8
    stats = FeatureStats.from_features(x)
    assert fid_from_stats(stats, stats) == pytest.approx(0.0, abs=1e-8)


def test_mean_shift_only():
    # Equal covariances: FID is exactly the squared mean distance.
    _, mu, s = gaussian_stats(8, 100, seed=6)
    assert frechet_distance(mu, s, mu + 0.5, s) == pytest.approx(8 * 0.25, rel=1e-9)


def test_agrees_with_torchmetrics_on_identical_features():
    x1, _, _ = gaussian_stats(48, 700, seed=7)
    x2, _, _ = gaussian_stats(48, 500, seed=8, shift=0.2, scale=0.8)
    tm = FrechetInceptionDistance(feature=Passthrough(48))
    tm.update(torch.from_numpy(x1), real=True)
    tm.update(torch.from_numpy(x2), real=False)
    expected = float(tm.compute())
    ours = fid_from_stats(FeatureStats.from_features(x1), FeatureStats.from_features(x2))
    assert ours == pytest.approx(expected, rel=1e-4)


def test_different_feature_sizes_refused():
    a = FeatureStats.from_features(np.random.default_rng(0).normal(size=(50, 4)))
    b = FeatureStats.from_features(np.random.default_rng(1).normal(size=(50, 5)))
    with pytest.raises(ValueError, match="different"):
        fid_from_stats(a, b)


def _exact_fd_from_rows(x1: np.ndarray, x2: np.ndarray) -> float:
    """An independent reference: both covariances formed from the rows in 40-digit arithmetic (no float64
    round-off eigenvalues), tr((S1 S2)^(1/2)) from the general eigenvalues of S1 S2 (mpmath.eig)."""
    mpmath.mp.dps = 40

    def cov(x):
        n, d = x.shape
        xm = mpmath.matrix(x.tolist())
        mu = [mpmath.fsum(xm[i, j] for i in range(n)) / n for j in range(d)]
        xc = mpmath.matrix([[xm[i, j] - mu[j] for j in range(d)] for i in range(n)])
        return mu, xc.T * xc / (n - 1)

    (mu1, c1), (mu2, c2) = cov(x1), cov(x2)
    ev = mpmath.eig(c1 * c2, left=False, right=False)
    tr_sqrt = mpmath.fsum(mpmath.sqrt(max(mpmath.re(e), 0)) for e in ev)
    value = mpmath.fsum((a - b) ** 2 for a, b in zip(mu1, mu2))
    value += mpmath.fsum(c1[i, i] + c2[i, i] for i in range(c1.rows)) - 2 * tr_sqrt
    return float(value)


def test_full_rank_equals_sqrtm_route_to_1e_10():
    for d, n1, n2, seed in ((64, 500, 400, 0), (96, 300, 900, 1)):
        _, mu1, s1 = gaussian_stats(d, n1, seed=seed)
        _, mu2, s2 = gaussian_stats(d, n2, seed=seed + 10, shift=0.3, scale=1.5)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance_sqrtm(mu1, s1, mu2, s2),
                                                                   rel=1e-10)


@pytest.mark.parametrize("n1,n2", [(6, 40), (40, 6), (6, 5)])
def test_singular_covariances_match_an_exact_reference(n1, n2):
    # Fewer samples than dimensions: rank n-1 covariances. Float64 covariances carry round-off eigenvalues of
    # size ~eps |S| in their null space, whose square roots move sqrtm's value by ~1e-8 relative; the pivoted
    # Cholesky factor is cut at the numerical rank, so genlab matches the exact (40-digit, from the rows) value.
    x1, mu1, s1 = gaussian_stats(10, n1, seed=11)
    x2, mu2, s2 = gaussian_stats(10, n2, seed=12, shift=0.3, scale=1.5)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(_exact_fd_from_rows(x1, x2), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm: "Matrix is singular and may not have a square root"
        assert ours == pytest.approx(frechet_distance_sqrtm(mu1, s1, mu2, s2), rel=1e-7)


def test_pivoted_factor_reproduces_a_singular_covariance_at_its_rank():
    x, _, s = gaussian_stats(24, 12, seed=13)
    f = cholesky_factor(s)
    assert f.rank == 11 and f.perm is not None  # rank n - 1 after centring
    np.testing.assert_allclose(f.dense() @ f.dense().T, s, atol=1e-12)
    _, _, full = gaussian_stats(24, 200, seed=14)
    f = cholesky_factor(full)
    assert f.rank == 24 and f.perm is None
    np.testing.assert_allclose(f.dense() @ f.dense().T, full, atol=1e-12)
    zero = cholesky_factor(np.zeros((5, 5)))  # no variance at all: tr sqrt is 0
    assert zero.rank == 0 and not zero.dense().any()
    assert trace_sqrt_product(np.zeros((5, 5)), full[:5, :5]) == 0.0


def test_trace_sqrt_product_matches_explicit_symmetric_root():
    _, _, singular = gaussian_stats(24, 12, seed=9)  # rank-deficient (n < d): PSD, not PD
    _, _, full = gaussian_stats(24, 200, seed=10)
    for s1, s2 in ((singular, full), (full, singular)):  # eigh of a singular S1; no Cholesky of a singular S2
        r = sqrt_psd(s1)
        np.testing.assert_allclose(r @ r, s1, atol=1e-10)
        w = np.linalg.eigvalsh(r @ s2 @ r)
        assert trace_sqrt_product(s1, s2) == pytest.approx(np.sqrt(np.clip(w, 0, None)).sum(), rel=1e-7)
        assert trace_sqrt_product(s1, s2) == pytest.approx(trace_sqrt_product(s2, s1), rel=1e-7)


def test_bad_statistics_are_refused_by_name():
    """Each argument's problem names that argument: a non-square or 1-D covariance, a NaN, shapes that differ."""
    mu, sigma = np.zeros(3), np.eye(3)
    for args, where in [((mu, np.ones((3, 4)), mu, sigma), "sigma1 must be a square matrix, got shape (3, 4)"),
                        ((mu, sigma, mu, np.ones(3)), "sigma2 must be a square matrix, got shape (3,)")]:
        with pytest.raises(ValueError) as e:
            frechet_distance(*args)
        assert str(e.value) == where
    for i, name in enumerate(["mu1", "sigma1", "mu2", "sigma2"]):
        args = [mu, sigma, mu, sigma]
        args[i] = args[i].copy()
        args[i].flat[1] = np.nan
        with pytest.raises(GenlabError) as e:
            frechet_distance(*args)
        assert str(e.value).startswith(f"{name} contain 1 NaN or infinite value(s)"), e.value
    # each mismatch alone: the means, the covariances, the covariances against the means
    for args, shapes in [((mu, sigma, np.zeros(4), sigma), "mu (3,) vs (4,), sigma (3, 3) vs (3, 3)"),
                         ((mu, sigma, mu, np.eye(4)), "mu (3,) vs (3,), sigma (3, 3) vs (4, 4)"),
                         ((np.zeros(4), sigma, np.zeros(4), sigma), "mu (4,) vs (4,), sigma (3, 3) vs (3, 3)")]:
        with pytest.raises(ValueError) as e:
            frechet_distance(*args)
        assert str(e.value) == f"shapes differ: {shapes}"


def test_one_feature_is_the_closed_form():
    """FID of N(0, 1) and N(1, 4) in one dimension: 1 + 1 + 4 - 2 * sqrt(1 * 4) = 2 (a 1x1 matrix route)."""
    assert frechet_distance(np.zeros(1), [[1.0]], np.ones(1), [[4.0]]) == pytest.approx(2.0, rel=1e-12)
    assert trace_sqrt_product([[1.0]], [[4.0]]) == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("d", [2, 4, 7])
def test_few_features_match_the_sqrtm_route(d):
    """Small feature sizes too: LAPACK's unblocked sygst leaves the other triangle as it was, so reading the wrong
    one shows here (at 64 features the blocked code happens to fill both)."""
    _, mu1, s1 = gaussian_stats(d, 50, seed=d)
    _, mu2, s2 = gaussian_stats(d, 60, seed=d + 10, shift=0.3, scale=1.5)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance_sqrtm(mu1, s1, mu2, s2), rel=1e-10)
    assert trace_sqrt_product(s1, s2) == pytest.approx(np.trace(scipy.linalg.sqrtm(s1 @ s2)).real, rel=1e-10)
    with pytest.raises(ValueError, match="sigma2 must be a square matrix"):
        trace_sqrt_product(s1, np.ones(d + 1))
    with pytest.raises(ValueError, match="sigma1 must be a square matrix"):
        trace_sqrt_product(np.ones(d + 1), s2)
