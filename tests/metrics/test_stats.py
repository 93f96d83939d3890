from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.metrics.stats import Features, FeatureStats, FeatureWarning, mean_cov


def test_mean_cov_matches_numpy_in_float64():
    x = np.random.default_rng(0).normal(size=(9000, 12)).astype(np.float32) * 3 + 100  # > one chunk, offset
    mu, cov = mean_cov(x)
    assert mu.dtype == np.float64 and cov.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-9, atol=1e-9)


def test_singular_covariance_warns_with_the_count_needed():
    x = np.random.default_rng(1).normal(size=(20, 64))
    with pytest.warns(FeatureWarning, match="at least 65 samples"):
        FeatureStats.from_features(x)


def test_nan_features_raise():
    x = np.random.default_rng(2).normal(size=(30, 4))
    x[3, 1] = np.nan
    with pytest.raises(GenlabError, match="NaN"):
        Features(x)
    with pytest.raises(GenlabError, match="NaN"):
        FeatureStats.from_features(x)


def test_keep_subset_and_class_histogram_and_state_roundtrip():
    rng = np.random.default_rng(3)
    feats = Features(rng.normal(size=(100, 5)).astype(np.float32), rng.normal(size=(100, 3)).astype(np.float32))
    s = FeatureStats.from_features(feats, keep=40, seed=1)
    assert s.features.shape == (40, 5) and s.n == 100
    assert s.class_hist.sum() == 100 and s.class_hist.shape == (3,)
    assert FeatureStats.from_features(feats, keep=0).features is None
    back = FeatureStats.from_state(s.state())
    np.testing.assert_array_equal(back.sigma, s.sigma)
    np.testing.assert_array_equal(back.features, s.features)
    np.testing.assert_array_equal(back.class_hist, s.class_hist)


def test_too_few_samples():
    with pytest.raises(GenlabError, match="at least 2"):
        FeatureStats.from_features(np.zeros((1, 3)))


def test_tensor_input():
    # a torch tensor (float32, float64, a non-contiguous view) gives the numpy path's statistics
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 60, generator=g) * torch.tensor([[1.0], [5.0], [0.1]]) + 7
    ref = FeatureStats.from_features(x.T.numpy().copy())
    np.testing.assert_allclose(ref.mu, x.T.double().mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ref.sigma, np.cov(x.numpy().astype(np.float64)), rtol=1e-10)
    for t in (x.T, x.T.contiguous(), x.T.double()):
        s = FeatureStats.from_features(t)
        assert s.n == 60 and s.mu.dtype == s.sigma.dtype == np.float64
        np.testing.assert_allclose(s.mu, ref.mu, rtol=1e-12)
        np.testing.assert_allclose(s.sigma, ref.sigma, rtol=1e-10)
        np.testing.assert_array_equal(s.features, ref.features)
