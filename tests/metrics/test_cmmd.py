"""CMMD's formula against independent implementations: scikit-learn's RBF kernel with the textbook unbiased MMD^2
(Gretton et al. 2012, eq. 3) and the reference code's biased form (google-research/cmmd ``distance.py``: the mean
of the whole kernel matrices), both written out here; over block boundaries and unequal set sizes."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel

from genlab.errors import GenlabError
from genlab.metrics import cmmd


def unit_rows(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # CLIP embeddings are L2-normalised


def textbook(x: np.ndarray, y: np.ndarray, sigma: float) -> tuple[float, float]:
    """(unbiased, biased) MMD^2 under exp(-|a - b|^2 / (2 sigma^2))."""
    gamma = 1.0 / (2 * sigma**2)
    kxx, kyy, kxy = rbf_kernel(x, x, gamma=gamma), rbf_kernel(y, y, gamma=gamma), rbf_kernel(x, y, gamma=gamma)
    m, n = len(x), len(y)
    biased = kxx.mean() + kyy.mean() - 2 * kxy.mean()
    unbiased = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                - 2 * kxy.mean())
    return unbiased, biased


@pytest.mark.parametrize("m, n", [(300, 200), (2060, 40)])  # 2060 > one block of rows (2048)
def test_both_estimators_equal_independent_implementations(m, n):
    x, y = unit_rows(m, 4, 0), unit_rows(n, 4, 1, shift=0.3)
    unbiased, biased = textbook(x, y, 10.0)
    assert cmmd.mmd2_rbf(x, y) == pytest.approx(1000 * unbiased, rel=1e-9)
    assert cmmd.mmd2_rbf(x, y, estimator="biased") == pytest.approx(1000 * biased, rel=1e-9)
    assert biased > unbiased > 0  # the V-statistic sits above, by about (1/m + 1/n)(1 - mean kernel)
    if m < 2048:
        assert cmmd.mmd2_rbf(x, y, sigma=0.5, scale=1.0) == pytest.approx(textbook(x, y, 0.5)[0], rel=1e-9)


def test_unbiased_is_zero_in_expectation_for_one_distribution():
    values = [cmmd.mmd2_rbf(unit_rows(100, 8, s), unit_rows(100, 8, 100 + s), sigma=0.5) for s in range(20)]
    biased = [cmmd.mmd2_rbf(unit_rows(100, 8, s), unit_rows(100, 8, 100 + s), sigma=0.5, estimator="biased")
              for s in range(20)]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(20)  # centred on 0
    assert np.mean(biased) > 10 * np.std(biased) / np.sqrt(20)  # the V-statistic is not
    with pytest.raises(GenlabError, match="unknown MMD estimator"):
        cmmd.mmd2_rbf(unit_rows(4, 2, 0), unit_rows(4, 2, 1), estimator="other")
