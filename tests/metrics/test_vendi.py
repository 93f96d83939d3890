"""The Vendi score equals the ``vendi-score`` package's on the same features (its dual and its primal form)."""
from __future__ import annotations

import numpy as np
import pytest
from vendi_score import vendi

from genlab.errors import GenlabError
from genlab.metrics.vendi import vendi_score


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(size=(300, 24)) @ rng.normal(size=(24, 24)), 0)  # ReLU-like, as pool features are
    x[7] = 0.0  # a zero row: sklearn's normalize leaves it at zero, so does genlab
    return x


@pytest.mark.parametrize("q", [1.0, 0.5, 2.0])
def test_equals_the_vendi_score_package(features, q):
    ours = vendi_score(features, q)
    assert ours == pytest.approx(vendi.score_dual(features, q=q), rel=1e-9)
    assert 1.0 < ours < features.shape[1]
    if q == 1.0:  # the primal form (an n x n kernel); the package's score_X only computes q = 1
        assert ours == pytest.approx(vendi.score_X(features), rel=1e-6)


def test_duplicates_lower_it_and_orthogonal_rows_reach_the_dimension():
    eye = np.eye(16)
    assert vendi_score(eye) == pytest.approx(16.0)
    assert vendi_score(np.repeat(eye[:1], 50, axis=0)) == pytest.approx(1.0)
    assert vendi_score(np.concatenate([eye, eye])) == pytest.approx(16.0)  # repeats of every row: no change
    assert vendi_score(np.concatenate([eye, np.repeat(eye[:1], 16, axis=0)])) < 16.0  # one mode dominates
    with pytest.raises(GenlabError, match="q must be > 0"):
        vendi_score(eye, q=0)
