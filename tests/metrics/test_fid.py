from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from genlab.metrics.fid import fid_from_stats, frechet_distance, frechet_distance_sqrtm
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


def test_trace_sqrt_product_matches_explicit_symmetric_root():
    from genlab.metrics.fid import sqrt_psd, trace_sqrt_product

    _, _, singular = gaussian_stats(24, 12, seed=9)  # rank-deficient (n < d): PSD, not PD
    _, _, full = gaussian_stats(24, 200, seed=10)
    for s1, s2 in ((singular, full), (full, singular)):  # eigh of a singular S1; no Cholesky of a singular S2
        r = sqrt_psd(s1)
        np.testing.assert_allclose(r @ r, s1, atol=1e-10)
        w = np.linalg.eigvalsh(r @ s2 @ r)
        assert trace_sqrt_product(s1, s2) == pytest.approx(np.sqrt(np.clip(w, 0, None)).sum(), rel=1e-7)
        assert trace_sqrt_product(s1, s2) == pytest.approx(trace_sqrt_product(s2, s1), rel=1e-7)
