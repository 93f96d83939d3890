from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from genlab.errors import GenlabError
from genlab.metrics.prdc import knn_radii_sq, prdc

from .conftest import make_random_extractor


def _reference(real, fake, k):
    # Independent reference with scipy's cdist and a full sort, straight from the papers' definitions.
    rr, ff, fr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
    r_rad = np.sort(rr, axis=1)[:, k]
    f_rad = np.sort(ff, axis=1)[:, k]
    precision = (fr <= r_rad[None]).any(1).mean()
    recall = (fr.T <= f_rad[None]).any(1).mean()
    density = (fr <= r_rad[None]).sum() / (k * len(fake))
    coverage = (fr.min(0) <= r_rad).mean()
    return precision, recall, density, coverage


def test_matches_reference_implementation_and_block_size():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 8))
    fake = rng.normal(0.4, 1.2, size=(250, 8))
    ref = _reference(real, fake, 3)
    for block in (7, 64, 1024):
        r = prdc(real, fake, k=3, block=block)
        assert (r.precision, r.recall, r.density, r.coverage) == pytest.approx(ref, abs=1e-12)


def test_identical_sets_score_one():
    x = np.random.default_rng(1).normal(size=(400, 16))
    r = prdc(x, x.copy(), k=3)
    assert r.precision == 1.0 and r.recall == 1.0 and r.coverage == 1.0
    # each point lies in its own ball plus, on average, k others: density (k + 1) / k
    assert r.density == pytest.approx(4 / 3, abs=0.01)  # up to round-off at the ball boundaries


def test_same_distribution_scores_near_expectations():
    rng = np.random.default_rng(4)
    r = prdc(rng.normal(size=(1000, 4)), rng.normal(size=(1000, 4)), k=3)
    assert r.precision > 0.9 and r.recall > 0.9
    assert r.density == pytest.approx(1.0, abs=0.1)
    assert r.coverage == pytest.approx(1 - 0.5**3, abs=0.06)  # Naeem et al.: 1 - 2^-k for equal distributions


def test_disjoint_sets_score_zero():
    rng = np.random.default_rng(2)
    r = prdc(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 100.0, k=3)
    assert (r.precision, r.recall, r.density, r.coverage) == (0.0, 0.0, 0.0, 0.0)


def test_collapsed_generator_keeps_precision_loses_recall():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(500, 4))
    fake = real[:50][rng.integers(0, 50, size=500)] + rng.normal(0, 1e-3, size=(500, 4))  # 50 modes only
    r = prdc(real, fake, k=3)
    assert r.precision > 0.9 and r.recall < 0.5 and r.coverage < 0.5


def test_radius_excludes_self():
    x = np.array([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii_sq(x, k=1).tolist() == [1.0, 1.0, 4.0, 9.0]


def _bars(labels: np.ndarray, seed: int, side: int = 16) -> torch.Tensor:
    """uint8 (N, 1, side, side) like the tiny Fashion-MNIST stand-in: class k is a bright bar at rows k..k+3."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, size=(len(labels), side, side)).astype(np.uint8)
    for i, k in enumerate(labels):
        x[i, k : k + 4, 2 : side - 2] = 220
    return torch.from_numpy(x[:, None])


def _blurred_noisy(images: torch.Tensor, seed: int) -> torch.Tensor:
    """A VAE-like set: every class present, each image blurred (3x3 box) with strong pixel noise."""
    x = torch.nn.functional.pad(images.double(), (1, 1, 1, 1), mode="replicate")
    x = torch.nn.functional.conv2d(x, torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64))
    x = x + 60 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x.round().clamp(0, 255).to(torch.uint8)


def test_precision_recall_convention_collapse_vs_blur():
    """Kynkaanniemi et al.'s convention: precision is fidelity, recall is diversity. One class repeated (mode
    collapse) keeps precision and loses recall; a blurred, noisy set of every class loses precision and keeps
    recall. Fixed thresholds, seeded data; judged in pixel space (an identity extractor) and, for the collapse,
    through a fixed seeded conv extractor too."""
    n = 300
    real = _bars(np.arange(n) % 10, seed=0)
    fresh = _bars(np.arange(n) % 10, seed=1)
    collapsed = _bars(np.full(n, 3), seed=2)
    blurred = _blurred_noisy(_bars(np.arange(n) % 10, seed=3), seed=4)

    def pixels(x):
        return x.flatten(1).double().numpy()

    control = prdc(pixels(real), pixels(fresh), k=3)
    assert control.precision > 0.75 and control.recall > 0.75
    mode = prdc(pixels(real), pixels(collapsed), k=3)
    assert mode.precision > 0.75 and mode.recall < 0.2
    blur = prdc(pixels(real), pixels(blurred), k=3)
    assert blur.precision < 0.1 and blur.recall > 0.9
    ext = make_random_extractor(seed=0)
    feats = {name: ext.features(x)[0].numpy() for name, x in (("real", real), ("collapsed", collapsed))}
    mode = prdc(feats["real"], feats["collapsed"], k=3)
    assert mode.precision > 0.7 and mode.recall < 0.2


def test_a_sample_exactly_on_a_ball_edge_is_inside():
    """The balls are closed: in 1-D with k=1 every fake's radius is 1, and the real sample at 4 lies exactly on
    the ball of the fake at 3 (squared distances are exact here)."""
    fake = np.array([[0.0], [1.0], [2.0], [3.0]])
    real = np.array([[4.0], [10.0], [20.0], [30.0]])
    r = prdc(real, fake, k=1)
    assert (r.recall, r.k) == (0.25, 1)
    assert prdc(real, fake, k=2).k == 2


def test_bad_features_are_refused_by_name():
    x = np.random.default_rng(0).normal(size=(10, 3))
    for args, what in (((x, np.where(np.arange(30).reshape(10, 3) == 4, np.nan, x)), "generated features"),
                       ((np.where(np.arange(30).reshape(10, 3) == 4, np.nan, x), x), "real features")):
        with pytest.raises(GenlabError, match=f"^{what} contain 1 NaN or infinite value"):
            prdc(*args)
    with pytest.raises(GenlabError, match="^features contain 1 NaN"):
        knn_radii_sq(np.where(np.arange(30).reshape(10, 3) == 4, np.nan, x).tolist())
    with pytest.raises(ValueError, match=r"^real features must be \(N, D\), got shape \(10,\)$"):
        prdc(x[:, 0], x)
    with pytest.raises(ValueError, match="^feature sizes differ: 3 vs 2$"):
        prdc(x, x[:, :2])
    with pytest.raises(GenlabError, match="^k-NN radii with k=3 need more than 3 samples, got 3$"):
        knn_radii_sq(x[:3], k=3)
    assert knn_radii_sq(x[:4], k=3).shape == (4,)


def test_the_defaults_are_k_3():
    x = np.random.default_rng(0).normal(size=(12, 3))
    assert prdc(x[:6], x[6:]) == prdc(x[:6], x[6:], k=3, block=1024)
    assert torch.equal(knn_radii_sq(x), knn_radii_sq(x, k=3, block=1024))
